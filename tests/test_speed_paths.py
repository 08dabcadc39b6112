"""The fast single-run paths give the generic path's results.

The fused gradient-descent loop (optlab.fastpath) is checked against ``run(..., fused=False)``
(one ``solver.update`` per iteration) on the same runs: the same log, row for row, the same
outcome and final state, whichever stopping rule ends the run. Compiled derivatives are
checked against the eager engine through whole runs, and the log against its chunking.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

import optlab.autodiff as ad
import optlab.fastpath as fastpath
from optlab.autodiff import compile as C
from optlab.log import MAX_CHUNK_BYTES, ChunkFiles, IterateLog
from optlab.objectives import OBJECTIVES
from optlab.objectives.base import Objective
from optlab.runner import Stop, run
from optlab.solvers import SOLVERS
from optlab.store import load, run_to_dir

from .conftest import REPO, assert_same_runs, interrupting_clock


def logged(objective, solver, x0=None, *, fused=True, chunk_rows=10_000, **stop):
    log = IterateLog(objective.dim, chunk_rows)
    out = run(objective, solver, x0, Stop(**stop), log=log, fused=fused)
    return out, log.table().to_pandas()


GD_CASES = [  # objective, its options, solver options, x0, stopping rules, how the run ends
    ("rosenbrock", {}, {"lr": 1e-3}, None, {"max_iter": 3000, "gtol": 1e-8}, "reached max_iter"),
    ("rosenbrock", {"dim": 5}, {"lr": 1e-3}, None, {"max_iter": 500}, "reached max_iter"),
    ("himmelblau", {}, {"lr": 0.01}, None, {"max_iter": 2000}, "||grad f||"),
    ("beale", {}, {"lr": 0.01}, [1.0, 1.5], {"max_iter": 2000}, "reached max_iter"),
    ("double_well", {}, {"lr": 0.01}, [2.0], {"max_iter": 2000}, "||grad f||"),
    ("styblinski_tang", {"dim": 3}, {"lr": 0.01}, None, {"max_iter": 500}, "||grad f||"),
    ("rastrigin", {}, {"lr": 1e-3}, None, {"max_iter": 500}, "||grad f||"),
    ("ackley", {}, {"lr": 0.01}, None, {"max_iter": 500}, "||grad f||"),
    ("six_hump_camel", {}, {"lr": 0.01}, None, {"max_iter": 500}, "||grad f||"),
    ("curve_fit", {}, {"lr": 1e-3}, None, {"max_iter": 500}, "reached max_iter"),
    ("rosenbrock", {}, {"lr": 2e-3, "schedule": "exponential", "decay_rate": 0.5, "decay_steps": 100}, None,
     {"max_iter": 500}, "reached max_iter"),
    ("rosenbrock", {}, {"lr": 2e-3, "schedule": "inverse_time", "decay_rate": 2.0, "decay_steps": 50}, None,
     {"max_iter": 500}, "reached max_iter"),
    ("rosenbrock", {}, {"lr": 2e-3, "schedule": "step", "decay_rate": 0.5, "decay_steps": 64}, None,
     {"max_iter": 500}, "reached max_iter"),
    ("rosenbrock", {}, {"lr": 1e-3}, None, {"max_iter": 20_000, "gtol": 5e-3}, "||grad f||"),
    ("rosenbrock", {}, {"lr": 1e-3}, None, {"max_iter": 50_000, "xtol": 1e-7}, "step <= xtol"),
    ("rosenbrock", {}, {"lr": 0.1}, None, {"max_iter": 100}, "f or x is not finite"),
    ("rosenbrock", {}, {"lr": 1e-3}, None, {"max_iter": 0}, "reached max_iter"),
    ("double_well", {}, {"lr": 1e-20}, [1.0 + 1e-12], {"max_iter": 100}, "step <= xtol"),  # x stops changing
]


@pytest.mark.parametrize("name, options, solver_options, x0, stop, ending", GD_CASES)
def test_fused_gradient_descent_is_the_generic_path(name, options, solver_options, x0, stop, ending):
    obj = OBJECTIVES[name](**options)
    solver = SOLVERS["gd"](**solver_options)
    assert fastpath.fused_loop(obj, solver, obj.start(x0), Stop(**stop), IterateLog(obj.dim)) is not None
    fused = logged(obj, solver, x0, **stop)
    assert fused[0].message.startswith(ending)
    assert_same_runs(fused, logged(obj, solver, x0, fused=False, **stop))


def test_fused_loop_crosses_log_chunks_like_the_generic_path(tmp_path):
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3)
    assert_same_runs(logged(obj, solver, chunk_rows=7, max_iter=50), logged(obj, solver, fused=False, max_iter=50))
    run_to_dir(tmp_path, obj, solver, None, Stop(max_iter=50, gtol=0), chunk_rows=7)
    runs, its = load(tmp_path)
    assert its.iter.tolist() == list(range(51)) and runs.status[0] == "max_iter"
    assert pq.ParquetFile(tmp_path / "iterates.parquet").metadata.num_rows == 51


def test_float_error_in_scalar_code_hands_the_step_to_numpy():
    class SteepWell(Objective):
        name = "steep_well"

        def __init__(self):
            self.dim, self.x0, self.box = 1, np.array([1.0]), np.array([[-2.0, 2.0]])

        def f(self, x):
            return ad.sum(ad.exp(x * x))

    obj, solver = SteepWell(), SOLVERS["gd"](lr=10.0)
    fused, generic = logged(obj, solver, max_iter=5), logged(obj, solver, fused=False, max_iter=5)
    assert fused[0].status == "diverged" and fused[0].iterations == 1
    assert_same_runs(fused, generic)


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
    assert len(np.unique(times[1:])) <= 1_000 // fastpath.UNROLL + fastpath.UNROLL


def test_a_replay_that_misses_its_checkpoints_runs_the_stretch_again_with_every_row(monkeypatch):
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3)
    loop = fastpath.fused_loop(obj, solver, obj.start(), Stop(), IterateLog(2))
    x, ends = obj.start(), np.array([[0.5, 0.5]])
    assert loop._replay(loop.loop.replay, x, ends, 1e-3, loop.loop.unroll) is None  # a block from x does not end there
    monkeypatch.setattr(fastpath.GradientDescentLoop, "_replay", lambda *args: None)
    assert_same_runs(logged(obj, solver, max_iter=1_000), logged(obj, solver, fused=False, max_iter=1_000))


# The fused loop reads the clock once per block of UNROLL steps, then once per step for the
# last steps of a stretch (here one stretch of 5,003 steps). Ctrl-C during a reading drops
# the block or step in progress: every step that counts is logged.
BLOCKS = 5_003 // fastpath.UNROLL


@pytest.mark.parametrize("at, counted", [(BLOCKS // 2 + 1, BLOCKS // 2 * fastpath.UNROLL),
                                         (BLOCKS + 2, BLOCKS * fastpath.UNROLL + 1)])
def test_ctrl_c_inside_the_fused_loop_keeps_every_finished_step(monkeypatch, at, counted):
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3)
    _, generic = logged(obj, solver, fused=False, max_iter=5_003, gtol=0)
    monkeypatch.setattr(fastpath, "time", interrupting_clock(at))
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

    def append_and_press_ctrl_c(self, fields, coords):
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the rows are being handed to the log
        append(self, fields, coords)

    monkeypatch.setattr(IterateLog, "append_columns", append_and_press_ctrl_c)
    out, its = logged(obj, solver, max_iter=5_000, gtol=0, chunk_rows=1_000)
    assert out.status == "interrupted" and out.iterations == 5_000 == len(its) - 1
    monkeypatch.setattr(IterateLog, "append_columns", append)
    generic = logged(obj, solver, fused=False, max_iter=5_000, gtol=0)[1]
    columns = [c for c in its.columns if c != "time_s"]
    np.testing.assert_array_equal(its[columns].to_numpy(), generic[columns].to_numpy())


@pytest.mark.parametrize("solver, options, name, obj_options", [
    ("newton", {}, "rosenbrock", {}),
    ("gd", {"line_search": "armijo"}, "rosenbrock", {}),
    ("gd", {}, "least_squares", {}),  # analytic value and gradient are kept
    ("gd", {}, "rosenbrock", {"dim": 40}),  # no scalar code: the generic path with array code
])
def test_no_fused_loop_where_it_does_not_apply(solver, options, name, obj_options):
    obj = OBJECTIVES[name](**obj_options)
    assert fastpath.fused_loop(obj, SOLVERS[solver](**options), obj.start(), Stop(), None) is None


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
    assert isinstance(obj.__dict__["_compiled_cache"][(obj.dim,)], C.Compiled)
    assert_same_runs(fast, slow, exact=name == "rosenbrock" or solver == "newton")


def test_log_blocks_split_at_chunk_boundaries():
    tables = []
    log = IterateLog(2, chunk_rows=4, sink=tables.append)
    rows = np.arange(10 * 8, dtype=float).reshape(10, 8)
    rows[:, 0] = np.arange(10)
    coords = np.arange(30, dtype=float).reshape(3, 10)  # a row per coordinate (one more than kept)
    log.append_columns([rows[:3, j] for j in range(8)], coords[:, :3])
    log.append_columns([rows[3:, j] for j in range(8)], coords[:, 3:])
    assert [t.num_rows for t in tables] == [4, 4]
    log.flush()
    assert [t.num_rows for t in tables] == [4, 4, 2]
    assert sum((t.column("iter").to_pylist() for t in tables), []) == list(range(10))
    assert sum((t.column("x_1").to_pylist() for t in tables), []) == coords[1].tolist()


def test_wide_logs_hold_a_bounded_chunk():
    log = IterateLog(1000, chunk_rows=100_000)
    assert log.capacity == MAX_CHUNK_BYTES // (8 * 1008)


def test_last_chunk_goes_straight_into_the_final_file(tmp_path):
    sink = ChunkFiles(tmp_path)
    log = IterateLog(1, chunk_rows=5, sink=sink)
    for k in range(12):
        log.append(k, 1.0, 1.0, 1.0, k, k, 0, 0.0, np.array([float(k)]))
    assert len(list((tmp_path / "iterates.parts").glob("*.parquet"))) == 2
    log.flush()
    assert len(list((tmp_path / "iterates.parts").glob("*.parquet"))) == 2  # the tail waits in memory
    sink.merge()
    assert not (tmp_path / "iterates.parts").exists()
    assert pq.read_table(tmp_path / "iterates.parquet").column("iter").to_pylist() == list(range(12))


def test_runs_import_neither_pandas_nor_matplotlib_nor_the_report(tmp_path):
    code = (
        "import sys, optlab, optlab.batch\n"
        "from optlab.store import run_to_dir\n"
        "from optlab.objectives import Rosenbrock\n"
        "from optlab.solvers import GradientDescent\n"
        "from optlab.runner import Stop\n"
        f"run_to_dir({str(tmp_path / 'run')!r}, Rosenbrock(), GradientDescent(), None, Stop(max_iter=30000))\n"
        "bad = [m for m in sys.modules\n"
        "       if m.split('.')[0] in ('pandas', 'matplotlib') or m.startswith('optlab.report')]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "iterates.parquet").exists()
