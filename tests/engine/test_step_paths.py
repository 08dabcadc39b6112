"""One step program, three paths, the same bits: generic, fused and batched runs.

Every first-order method written as a step (gd, momentum, nesterov, adagrad, rmsprop, adam),
with every learning-rate schedule, runs on objectives with library calls (pow, exp, cos,
sqrt) until each stopping rule ends it: one ``solver.update`` per iteration (the generic
path, ``backend="generic"``), the fused loop of :mod:`optlab.engine.fused`, and all starts at
once (``backend="batched"``), each through :func:`optlab.run_set`. Their logs, outcomes and final states must be equal
bit for bit. ``.ci/run`` runs these tests again with numpy's AVX-512 code switched off, so a
difference that depends on the CPU fails on every machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import optlab.autodiff as ad
import optlab.engine.fused as fused
from optlab.autodiff import compile as C
from optlab.engine.driver import fused_run
from optlab.engine.log import MAX_CHUNK_BYTES, IterateLog
from optlab.engine.plan import make_plan, step_solver_names
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.objectives import OBJECTIVES
from optlab.objectives.base import Objective
from optlab.objectives.derivatives import derivatives_of
from optlab.rundir.chunks import ChunkFiles
from optlab.rundir.load import load
from optlab.rundir.store import RunDirs
from optlab.solvers import SOLVERS

from ..conftest import REPO, assert_same_runs, batched, interrupting_clock, logged

pytestmark = pytest.mark.paths


def fused_loop_of(objective, solver, x0=None):
    """The fused loop a single run of ``solver`` gets, or None where the planner picks another path."""
    plan = make_plan(objective, [solver], objective.start(x0), Stop())
    return fused_run(plan, solver, Stop(), objective.dim) if plan.backend == "fused" else None


STEP_SOLVERS = step_solver_names()
SCHEDULES = [{"schedule": "constant"}, {"schedule": "exponential", "decay_rate": 0.5, "decay_steps": 40},
             {"schedule": "step", "decay_rate": 0.5, "decay_steps": 16}, {"schedule": "inverse_time",
                                                                          "decay_rate": 2.0, "decay_steps": 30}]
OBJECTIVE_CASES = [("rosenbrock", {}), ("beale", {}), ("ackley", {}), ("styblinski_tang", {"dim": 3})]


def starts_of(obj, count=3):
    low, high = obj.box[:, 0], obj.box[:, 1]
    return np.vstack([obj.start(), low + (high - low) * np.random.default_rng(7).random((count - 1, obj.dim))])


def rules_for(obj, solver_name, options, x0):
    """Stopping rules that end runs from x0 by each rule: the budget, ||grad f|| <= gtol and the
    step test xtol (thresholds read off the generic run at row 120), and divergence."""
    solver = SOLVERS[solver_name](lr=1e-3, **options)
    _, its = logged(obj, solver, x0, backend="generic", max_iter=200, gtol=0)
    gtol = float(its.grad_norm.iloc[120])
    xs = its[[c for c in its.columns if c.startswith("x_")]].to_numpy()
    step = np.linalg.norm(xs[120] - xs[119]) / (1.0 + np.linalg.norm(xs[119]))
    return [(1e-3, {"max_iter": 150}), (1e-3, {"max_iter": 400, "gtol": gtol}),
            (1e-3, {"max_iter": 400, "gtol": 0, "xtol": step}), (1e200, {"max_iter": 50})]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s["schedule"])
@pytest.mark.parametrize("solver_name", STEP_SOLVERS)
def test_generic_fused_and_batched_runs_are_the_same_run(solver_name, schedule):
    endings = set()
    for name, options in OBJECTIVE_CASES:
        obj = OBJECTIVES[name](**options)
        starts = starts_of(obj)
        for lr, stop in rules_for(obj, solver_name, schedule, starts[0]):
            solver = SOLVERS[solver_name](lr=lr, **schedule)
            assert fused_loop_of(obj, solver) is not None
            batch = batched(obj, solver, starts, Stop(**stop))
            for start, together in zip(starts, batch):
                generic = logged(obj, solver, start, backend="generic", **stop)
                assert_same_runs(logged(obj, solver, start, backend="fused", **stop), generic)
                assert_same_runs(together, generic)
                endings.add(generic[0].message.split(" ")[0])
    assert endings == {"reached", "||grad", "step", "f"}  # max_iter, gtol, xtol, diverged


@pytest.mark.parametrize("solver_name", STEP_SOLVERS)
def test_fused_runs_cross_log_chunks_and_stretches_like_the_generic_path(solver_name, monkeypatch):
    import optlab.engine.driver

    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS[solver_name](lr=1e-3)
    monkeypatch.setattr(optlab.engine.driver, "STRETCH", 37)  # stretches end inside blocks and chunks
    assert_same_runs(logged(obj, solver, chunk_rows=7, max_iter=300, gtol=0),
                     logged(obj, solver, backend="generic", max_iter=300, gtol=0))


def test_fused_loop_crosses_log_chunks_into_files(tmp_path):
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3)
    run_set(obj, solver, None, Stop(max_iter=50, gtol=0), RunDirs([tmp_path], chunk_rows=7))
    runs, its = load(tmp_path)
    assert its.iter.tolist() == list(range(51)) and runs.status[0] == "max_iter"
    assert pq.ParquetFile(tmp_path / "iterates.parquet").metadata.num_rows == 51


def test_x_that_stops_changing_is_a_stall_on_every_path():
    obj, solver = OBJECTIVES["double_well"](), SOLVERS["gd"](lr=1e-20)
    fast = logged(obj, solver, [1.0 + 1e-12], max_iter=100)
    generic = logged(obj, solver, [1.0 + 1e-12], backend="generic", max_iter=100)
    assert fast[0].status == "stalled" and fast[0].iterations == 1
    assert fast[0].message.startswith("x stopped changing at iteration 1, while ||grad f|| = 8e-12 > gtol")
    assert_same_runs(fast, generic)


class SteepWell(Objective):
    name = "steep_well"

    def __init__(self):
        self.dim, self.x0, self.box = 1, np.array([1.0]), np.array([[-2.0, 2.0]])

    def f(self, x):
        return ad.sum(ad.exp(x * x))


@pytest.mark.parametrize("solver_name", ["gd", "adam"])
def test_float_error_in_scalar_code_hands_the_step_to_numpy(solver_name):
    obj, solver = SteepWell(), SOLVERS[solver_name](lr=10.0 if solver_name == "gd" else 30.0)
    fast, generic = logged(obj, solver, max_iter=5), logged(obj, solver, backend="generic", max_iter=5)
    assert fast[0].status == "diverged"
    assert_same_runs(fast, generic)
    (together,) = batched(obj, solver, [[1.0]], Stop(max_iter=5))
    assert_same_runs(together, generic)


def test_max_seconds_on_the_fused_path_keeps_every_iterate():
    # lr 1e-6: x still changes after 0.05 s (at lr 1e-3 it stops changing after ~60 ms of steps)
    out, its = logged(OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-6), max_iter=10**9, gtol=0, max_seconds=0.05)
    assert out.status == "max_seconds" and len(its) == out.iterations + 1 > 1
    assert its.iter.tolist() == list(range(len(its)))


def test_fused_log_rows_share_a_clock_reading_per_block():
    out, its = logged(OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3), max_iter=1_000, gtol=0)
    times = its.time_s.to_numpy()
    assert out.iterations == 1_000 and np.all(np.diff(times) >= 0) and times[0] >= 0
    # 62 blocks of 16 (the first stretch starts after row 0), then 8 single steps
    assert len(np.unique(times[1:])) <= 1_000 // fused.UNROLL + fused.UNROLL


def test_a_replay_that_misses_its_checkpoints_runs_the_stretch_again_with_every_row(monkeypatch):
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["adam"](lr=1e-3)
    loop = fused_loop_of(obj, solver)
    start = np.array(loop.program.carry_of(obj.start(), obj.grad(obj.start()), solver.init_carry(obj.start())))
    assert loop._replay(start, start[None, :] + 1.0, 0) is None  # a block from start does not end there
    monkeypatch.setattr(fused.FusedRun, "_replay", lambda *args: None)
    assert_same_runs(logged(obj, solver, max_iter=1_000), logged(obj, solver, backend="generic", max_iter=1_000))


# The fused loop reads the clock once per block of UNROLL steps, then once per step for the
# last steps of a stretch (here one stretch of 5,003 steps). Ctrl-C during a reading drops
# the block or step in progress: every step that counts is logged.
BLOCKS = 5_003 // fused.UNROLL


@pytest.mark.parametrize("at, counted", [(BLOCKS // 2 + 1, BLOCKS // 2 * fused.UNROLL),
                                         (BLOCKS + 2, BLOCKS * fused.UNROLL + 1)])
def test_ctrl_c_inside_the_fused_loop_keeps_every_finished_step(monkeypatch, at, counted):
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3)
    _, generic = logged(obj, solver, backend="generic", max_iter=5_003, gtol=0)
    monkeypatch.setattr(fused, "time", interrupting_clock(at))
    out, its = logged(obj, solver, max_iter=5_003, gtol=0)
    assert out.status == "interrupted" and out.iterations == counted
    assert its.iter.tolist() == list(range(counted + 1))
    columns = [c for c in its.columns if c != "time_s"]
    np.testing.assert_array_equal(its[columns].to_numpy(), generic[columns].to_numpy()[: counted + 1])
    np.testing.assert_array_equal(its[["x_0", "x_1"]].to_numpy()[-1], out.state.x)
    assert its.f.iloc[-1] == out.state.f


def test_ctrl_c_while_a_stretch_is_logged_keeps_the_stretch_and_ends_there(monkeypatch):
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3)
    append = IterateLog.append_columns

    def append_and_press_ctrl_c(self, columns, coords):
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the rows are being handed to the log
        append(self, columns, coords)

    monkeypatch.setattr(IterateLog, "append_columns", append_and_press_ctrl_c)
    out, its = logged(obj, solver, max_iter=5_000, gtol=0, chunk_rows=1_000)
    assert out.status == "interrupted" and out.iterations == 5_000 == len(its) - 1
    monkeypatch.setattr(IterateLog, "append_columns", append)
    generic = logged(obj, solver, backend="generic", max_iter=5_000, gtol=0)[1]
    columns = [c for c in its.columns if c != "time_s"]
    np.testing.assert_array_equal(its[columns].to_numpy(), generic[columns].to_numpy())


@pytest.mark.parametrize("solver, options, name, obj_options", [
    ("newton", {}, "rosenbrock", {}),
    ("bfgs", {}, "rosenbrock", {}),
    ("gd", {"line_search": "armijo"}, "rosenbrock", {}),
    ("gd", {}, "least_squares", {}),  # analytic value and gradient are kept
    ("momentum", {}, "rosenbrock", {"dim": 40}),  # no scalar code: the generic path with array code
])
def test_no_fused_loop_where_it_does_not_apply(solver, options, name, obj_options):
    assert fused_loop_of(OBJECTIVES[name](**obj_options), SOLVERS[solver](**options)) is None


def test_first_note_gradient_descent_and_newton_seed_numbers():
    out, its = logged(OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3), max_iter=50_000, gtol=0)
    assert out.iterations == 50_000 and np.max(np.abs(out.state.x - 1.0)) < 1e-6
    out, its = logged(OBJECTIVES["double_well"](), SOLVERS["newton"](), [2.0])
    assert its.x_0.tolist()[:8] == [2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978,
                                    1.0009084519430513, 1.0000012353089454, 1.000000000002289, 1.0]


@pytest.mark.parametrize("name, solver, options, x0, max_iter", [
    ("rosenbrock", "gd", {"lr": 1e-3}, None, 2000),
    ("rosenbrock", "newton", {}, [-1.2, 1.0], 100),
    ("double_well", "newton", {}, [2.0], 100),
    ("himmelblau", "newton", {}, [1.0, 1.0], 100),
    ("beale", "bfgs", {}, [1.0, 1.5], 200),
])
def test_compiled_runs_follow_the_eager_engine(name, solver, options, x0, max_iter):
    obj = OBJECTIVES[name]()
    fast = logged(obj, SOLVERS[solver](**options), x0, max_iter=max_iter)
    with C.eager():
        slow = logged(OBJECTIVES[name](), SOLVERS[solver](**options), x0, max_iter=max_iter)
    assert isinstance(derivatives_of(obj).compiled(np.zeros(obj.dim)), C.Compiled)
    assert_same_runs(fast, slow, exact=name == "rosenbrock" or solver == "newton")


def test_log_blocks_split_at_chunk_boundaries():
    tables = []
    log = IterateLog(2, chunk_rows=4, sink=tables.append)
    rows = np.arange(12 * 8, dtype=float).reshape(12, 8)
    rows[:, 0] = np.arange(12)
    coords = np.arange(36, dtype=float).reshape(3, 12)  # a row per coordinate (one more than kept)
    names = ("iter", "f", "grad_norm", "step_size", "nfev", "ngev", "nhev", "time_s")

    def block(lo, hi):
        log.append_columns({name: rows[lo:hi, j] for j, name in enumerate(names)}, coords[:, lo:hi])

    block(0, 2)
    block(2, 3)  # shorter than a chunk: into the buffer
    assert tables == []
    block(3, 10)  # a chunk or more: the 3 rows buffered go first, then whole chunks without a copy
    assert [t.num_rows for t in tables] == [3, 4]
    block(10, 12)
    log.flush()
    assert [t.num_rows for t in tables] == [3, 4, 4, 1]
    assert all(t.num_rows <= 4 for t in tables)
    assert sum((t.column("iter").to_pylist() for t in tables), []) == list(range(12))
    assert sum((t.column("x_1").to_pylist() for t in tables), []) == coords[1].tolist()


def test_a_logs_buffer_grows_with_the_run_and_its_rows_keep_their_order():
    from optlab.engine.log import FIELDS, FIRST_ROWS

    tables = []
    short = IterateLog(3, chunk_rows=1_000)
    long = IterateLog(3, chunk_rows=1_000, sink=tables.append)
    values = np.arange(3_050 * 12, dtype=float).reshape(3_050, 12)  # the 8 fields and 4 coordinates of each row
    values[:, 0] = np.arange(3_050)

    def one(log, i):
        log.append(values[i, 8:], **dict(zip(FIELDS, values[i, :8].tolist())))

    for i in range(7):
        one(short, i)
    assert len(short.xs) == FIRST_ROWS and short.table().column("iter").to_pylist() == list(range(7))
    for i in range(700):
        one(long, i)
    long.append_columns(dict(zip(FIELDS, values[700:3_045, :8].T)), values[700:3_045, 8:].T)
    for i in range(3_045, 3_050):
        one(long, i)
    long.flush()
    assert [t.num_rows for t in tables] == [700, 2_000, 350] and len(long.xs) == 1_000
    kept = pa.concat_tables(tables)
    for j, name in enumerate(FIELDS):
        assert kept.column(name).to_numpy().tolist() == values[:, j].tolist(), name
    assert [kept.column(f"x_{i}").to_numpy().tolist() for i in range(3)] == values[:, 8:11].T.tolist()


def test_count_columns_are_shared_slices_where_they_fit_and_new_arrays_past_them():
    from optlab.engine.log import COUNTED, count_columns

    near = count_columns(5, 4, (6, 9, 0))
    assert {k: v.tolist() for k, v in near.items()} == {"iter": [6, 7, 8, 9], "nfev": [7, 8, 9, 10],
                                                        "ngev": [10, 11, 12, 13], "nhev": [0, 0, 0, 0]}
    assert all(not v.flags.writeable and v.base is not None for v in near.values())  # (no memory of their own)
    far = count_columns(COUNTED - 2, 4, (COUNTED, 3, 2))
    assert far["iter"].tolist() == [COUNTED - 1 + i for i in range(4)] and far["nfev"][0] == COUNTED + 1
    assert far["ngev"].tolist() == [4, 5, 6, 7] and far["nhev"].tolist() == [2] * 4


def test_wide_logs_hold_a_bounded_chunk():
    log = IterateLog(1000, chunk_rows=100_000)
    assert log.capacity == MAX_CHUNK_BYTES // (8 * 1008)


def test_last_chunk_goes_straight_into_the_final_file(tmp_path):
    sink = ChunkFiles(tmp_path, chunk_rows=5)
    log = IterateLog(1, chunk_rows=5, sink=sink)
    for k in range(12):
        log.append(np.array([float(k)]), iter=k, f=1.0, grad_norm=1.0, step_size=1.0, nfev=k, ngev=k, nhev=0,
                   time_s=0.0)
    assert len(list((tmp_path / "iterates.parts").glob("*.parquet"))) == 2
    log.flush()
    assert len(list((tmp_path / "iterates.parts").glob("*.parquet"))) == 2  # the tail waits in memory
    sink.merge()
    assert not (tmp_path / "iterates.parts").exists()
    assert pq.read_table(tmp_path / "iterates.parquet").column("iter").to_pylist() == list(range(12))


def test_runs_import_neither_pandas_nor_matplotlib_nor_the_report(tmp_path):
    code = (
        "import sys, optlab\n"
        "from optlab.rundir.store import RunDirs\n"
        "from optlab.objectives import Rosenbrock\n"
        "from optlab.solvers import GradientDescent\n"
        f"sinks = RunDirs([{str(tmp_path / 'run')!r}])\n"
        "optlab.run_set(Rosenbrock(), GradientDescent(), None, optlab.Stop(max_iter=30000), sinks)\n"
        "optlab.run_set(Rosenbrock(), GradientDescent(), [[0, 2], [1, 1]], optlab.Stop(max_iter=3000))\n"
        "bad = [m for m in sys.modules\n"
        "       if m.split('.')[0] in ('pandas', 'matplotlib') or m.startswith('optlab.report')]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "iterates.parquet").exists()


def test_runs_at_different_rates_share_one_fused_loop():
    """A job of an lr sweep compiles nothing the job before it compiled: lr is an input of the
    step program, not a constant of its code."""
    objective = OBJECTIVES["rosenbrock"]()
    first = fused_loop_of(objective, SOLVERS["adam"](lr=1e-3))
    second = fused_loop_of(objective, SOLVERS["adam"](lr=3e-2))
    assert first.loop is second.loop and (first.params, second.params) == ((1e-3,), (3e-2,))
    assert_same_runs(logged(objective, SOLVERS["adam"](lr=3e-2), max_iter=300),
                     logged(objective, SOLVERS["adam"](lr=3e-2), backend="generic", max_iter=300))


class ThresholdStep(SOLVERS["gd"]):
    """A step that uses lr as a Python number (a branch on it): it cannot be an input."""

    def step(self, x, g, carry, k):
        lr = self.lr if self.lr < 0.01 else 0.01
        return x - lr * g, carry, lr


def test_a_step_branching_on_lr_keeps_lr_a_constant_of_its_fused_loop():
    objective = OBJECTIVES["rosenbrock"]()
    run_ = fused_loop_of(objective, ThresholdStep(lr=0.5))
    assert run_ is not None and run_.params == ()
    assert_same_runs(logged(objective, ThresholdStep(lr=0.5), max_iter=200),
                     logged(objective, ThresholdStep(lr=0.5), backend="generic", max_iter=200))
