"""Batched runs give the single runs' results: the same iterates, outcomes and files per start."""

from __future__ import annotations

import json

import numpy as np
import pytest

from optlab.engine.log import LogOptions
from optlab.engine.plan import make_plan, step_solver_names
from optlab.engine.run_set import per_run, run_set
from optlab.engine.stopping import Stop
from optlab.errors import ConfigError
from optlab.objectives import OBJECTIVES
from optlab.rundir.load import load
from optlab.rundir.store import RunDirs
from optlab.solvers import SOLVERS

from ..conftest import Branching, assert_same_runs, batched, interrupting_clock

pytestmark = pytest.mark.paths


def single(objective, lr, x0, stop, max_coords=100, solver="gd"):
    (out, its), = batched(objective, SOLVERS[solver](lr=lr), [x0], stop, backend=None, max_coords=max_coords)
    assert out.backend in ("fused", "generic")
    return out, its


def assert_batch_matches_single_runs(objective, starts, lrs, stop, exact=True, backend="batched", **options):
    options.setdefault("max_coords", 100)
    results = batched(objective, SOLVERS["gd"](), starts, stop, lrs=lrs, backend=backend, **options)
    assert len(results) == len(starts)
    for start, lr, res in zip(starts, np.broadcast_to(lrs, len(starts)), results):
        assert_same_runs(res, single(objective, lr, start, stop, options["max_coords"]), exact)
    return results


def grid_starts(objective, n, seed=0):
    rng = np.random.default_rng(seed)
    low, high = objective.box[:, 0], objective.box[:, 1]
    return low + (high - low) * rng.random((n, objective.dim))


def test_rosenbrock_starts_and_learning_rates_end_as_their_single_runs():
    obj = OBJECTIVES["rosenbrock"]()
    starts = np.vstack([[[0.0, 2.0], [1.0, 1.0]], grid_starts(obj, 22)])
    lrs = np.resize([1e-3, 5e-4, 2e-3, 4e-3], len(starts))
    # small chunks and a small memory budget: several chunks, runs ending inside and at their ends
    results = assert_batch_matches_single_runs(obj, starts, lrs, Stop(max_iter=700, gtol=1e-3, xtol=1e-9),
                                               chunk_rows=64, memory_bytes=1 << 16)
    ends = {out.message.split(" ")[0] for out, _ in results}
    assert {"reached", "f", "||grad"} <= ends  # max_iter, diverged, converged all occur


@pytest.mark.parametrize("name, options, backend", [
    ("himmelblau", {}, "batched"),
    ("beale", {}, "batched"),  # pow
    ("styblinski_tang", {"dim": 3}, "batched"),
    ("ackley", {}, "batched"),  # exp, cos, sqrt and maximum: the C library's bits in batches too
    ("curve_fit", {}, "batched"),
    ("rosenbrock", {"dim": 20}, None),  # no scalar code: the runs go one after the other
])
def test_other_objectives_batch_like_single_runs(name, options, backend):
    obj = OBJECTIVES[name](**options)
    results = assert_batch_matches_single_runs(obj, grid_starts(obj, 6, seed=3), 1e-3, Stop(max_iter=300),
                                               backend=backend)
    assert {out.backend for out, _ in results} == {backend or "generic"}


def test_a_stop_at_the_start_and_zero_iterations():
    obj = OBJECTIVES["rosenbrock"]()
    assert_batch_matches_single_runs(obj, [[1.0, 1.0], [0.0, 2.0]], 1e-3, Stop(max_iter=50))
    assert_batch_matches_single_runs(obj, [[1.0, 1.0], [0.0, 2.0]], 1e-3, Stop(max_iter=0))


def test_x_that_stops_changing_is_converged_as_in_a_single_run():
    obj = OBJECTIVES["double_well"]()
    assert_batch_matches_single_runs(obj, [[1.0 + 1e-12], [2.0]], [1e-20, 1e-2], Stop(max_iter=100))


def test_max_coords_limits_the_logged_coordinates():
    obj = OBJECTIVES["rosenbrock"](dim=4)
    results = assert_batch_matches_single_runs(obj, grid_starts(obj, 3), 1e-3, Stop(max_iter=20), max_coords=2)
    assert [c for c in results[0][1].columns if c.startswith("x_")] == ["x_0", "x_1"]


def test_max_seconds_is_a_budget_for_the_batch():
    obj = OBJECTIVES["rosenbrock"]()
    results = batched(obj, SOLVERS["gd"](), grid_starts(obj, 4), Stop(max_iter=10**8, gtol=0, max_seconds=0.05))
    for out, its in results:
        assert out.status == "max_seconds" and out.iterations > 0
        assert its.iter.tolist() == list(range(out.iterations + 1))


def test_run_directories_are_those_of_single_runs(tmp_path):
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3)
    starts = grid_starts(obj, 5)
    dirs = [tmp_path / f"start_{i}" for i in range(5)]
    sinks = RunDirs(dirs, [{"start": {"index": i}} for i in range(5)], chunk_rows=64)
    run_set(obj, solver, starts, Stop(max_iter=200), sinks, lrs=[1e-3, 2e-3, 1e-3, 5e-4, 1e-3],
            log=LogOptions(chunk_rows=64))
    records = [sinks.records[i] for i in range(5)]
    assert {r["backend"] for r in records} == {"batched"}
    runs, its = load(tmp_path)
    assert len(runs) == 5 and runs.run_id.nunique() == 5
    assert sorted(runs["solver.lr"]) == sorted([1e-3, 2e-3, 1e-3, 5e-4, 1e-3])
    for d, record, start in zip(dirs, records, starts):
        on_disk = json.loads((d / "run.json").read_text())
        assert on_disk == record and on_disk["start"]["index"] == dirs.index(d)
        out, table = single(obj, on_disk["solver_params"]["lr"], start, Stop(max_iter=200))
        mine = its[its.run_id == on_disk["run_id"]].drop(columns=["run_id", "time_s"]).reset_index(drop=True)
        np.testing.assert_array_equal(mine.to_numpy(), table.drop(columns="time_s").to_numpy())
        assert (on_disk["status"], on_disk["iterations"], on_disk["x_final"]) == (
            out.status, out.iterations, out.state.x.tolist())
        assert not list(d.glob(".*")) and not (d / "iterates.parts").exists()


def test_runs_that_cannot_be_batched_run_one_after_the_other(tmp_path):
    obj = OBJECTIVES["rosenbrock"]()
    newton = SOLVERS["newton"]()
    assert "newton" in make_plan(obj, [newton, newton], obj.start(), Stop()).reason
    sinks = RunDirs([tmp_path / "a", tmp_path / "b"])
    outcomes = run_set(obj, newton, [[0.0, 2.0], [-1.2, 1.0]], Stop(max_iter=50), sinks)
    assert [sinks.records[i]["status"] for i in (0, 1)] == ["converged", "converged"]
    assert [o.backend for o in outcomes] == ["generic", "generic"]
    assert sinks.records[0]["backend_reason"].startswith("solver newton is not written as a step")
    (one,) = batched(obj, newton, [[-1.2, 1.0], [0.0, 2.0]], Stop(max_iter=50), backend=None)[1:]
    assert_same_runs(one, batched(obj, newton, [[0.0, 2.0]], Stop(max_iter=50), backend=None)[0])


@pytest.mark.parametrize("objective, solver, reason", [
    (OBJECTIVES["least_squares"](), SOLVERS["gd"](), "writes its gradient out"),
    (Branching(), SOLVERS["gd"](), "reads the values"),
    (OBJECTIVES["rosenbrock"](), SOLVERS["gd"](line_search="armijo"), "line search"),
    (OBJECTIVES["rosenbrock"](), SOLVERS["bfgs"](), "not written as a step"),
    (OBJECTIVES["rosenbrock"](dim=17), SOLVERS["gd"](), "no scalar code"),
])
def test_the_plan_says_why_runs_are_not_batched(objective, solver, reason):
    plan = make_plan(objective, [solver, solver], objective.start(), Stop())
    assert plan.backend == "generic" and reason in plan.reason
    with pytest.raises(ConfigError, match=f"backend='batched' does not apply here .*{reason}"):
        make_plan(objective, [solver, solver], objective.start(), Stop(), backend="batched")


@pytest.mark.parametrize("solver", step_solver_names())
def test_every_step_method_is_batched_with_any_schedule(solver):
    for schedule in ("constant", "exponential", "step", "inverse_time"):
        s = SOLVERS[solver](schedule=schedule)
        assert make_plan(OBJECTIVES["rosenbrock"](), [s, s], np.zeros(2), Stop()).backend == "batched"


def test_step_solvers_are_read_off_the_registry():
    assert step_solver_names() == ["adagrad", "adam", "gd", "momentum", "nesterov", "rmsprop"]
    plan = make_plan(OBJECTIVES["rosenbrock"](), [SOLVERS["bfgs"]()], np.zeros(2), Stop())
    assert f"those written as steps: {', '.join(step_solver_names())}" in plan.reason


def test_bad_inputs_are_one_line_config_errors(tmp_path):
    obj, gd = OBJECTIVES["rosenbrock"](), SOLVERS["gd"]()
    with pytest.raises(ConfigError, match="solver.lr"):
        per_run(gd, [-1.0], 1)
    with pytest.raises(ConfigError, match="x0"):
        run_set(obj, gd, [[0.0, 2.0, 3.0]])
    with pytest.raises(ConfigError, match="x0=.*not a list of numbers"):
        run_set(obj, gd, [[True, 2.0]])
    with pytest.raises(ConfigError, match="starts=.*not a list of start points"):
        run_set(obj, gd, [])
    with pytest.raises(ConfigError, match="one per start"):
        run_set(obj, gd, [[0.0, 2.0], [1.0, 1.0]], sinks=RunDirs([tmp_path / "a"]))
    assert not (tmp_path / "a").exists()


def test_ctrl_c_ends_the_runs_still_going_as_interrupted(monkeypatch):
    import optlab.engine.batch

    monkeypatch.setattr(optlab.engine.batch, "time", interrupting_clock(50))
    obj = OBJECTIVES["rosenbrock"]()
    results = batched(obj, SOLVERS["gd"](), [[0.0, 2.0], [1.0, 1.0], [-1.0, 1.0]], Stop(max_iter=1000))
    assert results[1][0].status == "converged" and results[1][0].iterations == 0
    for out, its in (results[0], results[2]):
        k = out.iterations
        assert out.status == "interrupted" and out.message == f"interrupted by the user at iteration {k}"
        assert k > 0 and its.iter.tolist() == list(range(k + 1))
        assert its.x_0.tolist()[-1] == out.state.x[0]


def test_each_run_of_a_batch_records_its_share_of_the_batch_time(tmp_path):
    import time

    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["momentum"](lr=1e-4)
    starts = grid_starts(obj, 8)
    t = time.perf_counter()
    sinks = RunDirs([tmp_path / str(i) for i in range(8)])
    run_set(obj, solver, starts, Stop(max_iter=3000), sinks)
    records = [sinks.records[i] for i in range(8)]
    elapsed = time.perf_counter() - t
    assert all(r["batch"] == {"size": 8} for r in records)
    shares = [r["wall_time_s"] for r in records]
    assert 0 < sum(shares) <= elapsed and all(r["setup_s"] >= 0 for r in records)
    _, its = load(tmp_path)
    for r in records:  # a run's clock: its share, rising to its wall time
        times = its[its.run_id == r["run_id"]].time_s.to_numpy()
        assert np.all(np.diff(times) >= 0) and times[-1] == pytest.approx(r["wall_time_s"], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("jit", ["off", pytest.param("on", marks=pytest.mark.slow)])
def test_a_batchs_last_chunk_holds_only_the_rows_its_runs_can_take(jit, monkeypatch):
    """1,001 rows in chunks of 1,000: the second chunk is one row per run, not another 1,000 (fresh
    memory is written page by page: a chunk sized for nothing costs as much as a full one)."""
    from optlab.autodiff import native
    from optlab.engine import batch, jit_many

    if jit == "on" and native.installed():
        pytest.skip(native.installed())
    shapes = []

    def recording(shape, *args, **kwargs):
        shapes.append(shape)
        return np.empty(shape)

    for module in (batch, jit_many):
        monkeypatch.setattr(module, "pool_array", recording)
    monkeypatch.setenv("OPTLAB_JIT", jit)
    starts = np.array([[0.0, 2.0], [-1.0, 1.0], [1.5, 0.5]])
    outcomes = run_set(OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-4), starts, Stop(max_iter=1_000, gtol=0),
                       log=LogOptions(chunk_rows=1_000))
    assert [o.backend for o in outcomes] == ["batched"] * 3 and all(o.jit == (jit == "on") for o in outcomes)
    assert all(o.iterations == 1_000 for o in outcomes)
    chunks = [shape[-1] for shape in shapes if shape[-2] == len(starts)]  # (rows per run of each log buffer)
    assert sorted(set(chunks)) == [1, 1_000]
