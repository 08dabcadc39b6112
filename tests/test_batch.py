"""Batched runs give the single runs' results: the same iterates, outcomes and files per start."""

from __future__ import annotations

import json

import numpy as np
import pytest

from optlab.engine.batch import batchable, run_batch, run_batch_to_dirs
from optlab.engine.driver import Stop, run
from optlab.engine.log import IterateLog
from optlab.errors import ConfigError
from optlab.objectives import OBJECTIVES
from optlab.rundir.load import load
from optlab.solvers import SOLVERS

from .conftest import Branching, assert_same_runs, interrupting_clock

pytestmark = pytest.mark.paths


def single(objective, lr, x0, stop, max_coords=100):
    log = IterateLog(min(objective.dim, max_coords))
    out = run(objective, SOLVERS["gd"](lr=lr), x0, stop, log=log)
    return out, log.table().to_pandas()


def assert_batch_matches_single_runs(objective, starts, lrs, stop, exact=True, **options):
    results = run_batch(objective, SOLVERS["gd"](), starts, stop, lrs=lrs, **options)
    assert len(results) == len(starts)
    for start, lr, res in zip(starts, np.broadcast_to(lrs, len(starts)), results):
        out, its = single(objective, lr, start, stop, options.get("max_coords", 100))
        assert_same_runs((res.outcome, res.iterates.to_pandas()), (out, its), exact)
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
    ends = {r.outcome.message.split(" ")[0] for r in results}
    assert {"reached", "f", "||grad"} <= ends  # max_iter, diverged, converged all occur


@pytest.mark.parametrize("name, options", [
    ("himmelblau", {}),
    ("beale", {}),  # pow
    ("styblinski_tang", {"dim": 3}),
    ("ackley", {}),  # exp, cos, sqrt and maximum: the C library's bits in batches too
    ("curve_fit", {}),
    ("rosenbrock", {"dim": 20}),  # no scalar code: the runs go one after the other
])
def test_other_objectives_batch_like_single_runs(name, options):
    obj = OBJECTIVES[name](**options)
    assert_batch_matches_single_runs(obj, grid_starts(obj, 6, seed=3), 1e-3, Stop(max_iter=300))


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
    assert [c for c in results[0].iterates.column_names if c.startswith("x_")] == ["x_0", "x_1"]


def test_max_seconds_is_a_budget_for_the_batch():
    obj = OBJECTIVES["rosenbrock"]()
    results = run_batch(obj, SOLVERS["gd"](), grid_starts(obj, 4), Stop(max_iter=10**8, gtol=0, max_seconds=0.05))
    for r in results:
        assert r.outcome.status == "max_seconds" and r.outcome.iterations > 0
        assert r.iterates.column("iter").to_pylist() == list(range(r.outcome.iterations + 1))


def test_run_directories_are_those_of_single_runs(tmp_path):
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3)
    starts = grid_starts(obj, 5)
    dirs = [tmp_path / f"start_{i}" for i in range(5)]
    records = run_batch_to_dirs(dirs, obj, solver, starts, Stop(max_iter=200), lrs=[1e-3, 2e-3, 1e-3, 5e-4, 1e-3],
                                extras=[{"start": {"index": i}} for i in range(5)], chunk_rows=64)
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
    assert "newton" in batchable(obj, newton)
    records = run_batch_to_dirs([tmp_path / "a", tmp_path / "b"], obj, newton, [[0.0, 2.0], [-1.2, 1.0]],
                                Stop(max_iter=50))
    assert [r["status"] for r in records] == ["converged", "converged"]
    (one,) = run_batch(obj, newton, [[-1.2, 1.0]], Stop(max_iter=50))
    log = IterateLog(2)
    assert_same_runs((one.outcome, one.iterates.to_pandas()),
                     (run(obj, newton, [-1.2, 1.0], Stop(max_iter=50), log=log), log.table().to_pandas()))


@pytest.mark.parametrize("objective, solver, reason", [
    (OBJECTIVES["least_squares"](), SOLVERS["gd"](), "writes its gradient out"),
    (Branching(), SOLVERS["gd"](), "reads the values"),
    (OBJECTIVES["rosenbrock"](), SOLVERS["gd"](line_search="armijo"), "line search"),
    (OBJECTIVES["rosenbrock"](), SOLVERS["bfgs"](), "not written as a step"),
    (OBJECTIVES["rosenbrock"](dim=17), SOLVERS["gd"](), "no scalar code"),
])
def test_batchable_says_why_not(objective, solver, reason):
    assert reason in batchable(objective, solver)


@pytest.mark.parametrize("solver", ["gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_every_step_method_is_batchable_with_any_schedule(solver):
    for schedule in ("constant", "exponential", "step", "inverse_time"):
        assert batchable(OBJECTIVES["rosenbrock"](), SOLVERS[solver](schedule=schedule)) is None


def test_bad_inputs_are_one_line_config_errors(tmp_path):
    obj, gd = OBJECTIVES["rosenbrock"](), SOLVERS["gd"]()
    with pytest.raises(ConfigError, match="solver.lr"):
        run_batch(obj, gd, [[0.0, 2.0]], lrs=[-1.0])
    with pytest.raises(ConfigError, match="x0"):
        run_batch(obj, gd, [[0.0, 2.0, 3.0]])
    with pytest.raises(ConfigError, match="one per start"):
        run_batch_to_dirs([tmp_path / "a"], obj, gd, [[0.0, 2.0], [1.0, 1.0]])


def test_ctrl_c_ends_the_runs_still_going_as_interrupted(monkeypatch):
    import optlab.engine.batch

    monkeypatch.setattr(optlab.engine.batch, "time", interrupting_clock(50))
    obj = OBJECTIVES["rosenbrock"]()
    results = run_batch(obj, SOLVERS["gd"](), [[0.0, 2.0], [1.0, 1.0], [-1.0, 1.0]], Stop(max_iter=1000))
    assert results[1].outcome.status == "converged" and results[1].outcome.iterations == 0
    for r in (results[0], results[2]):
        k = r.outcome.iterations
        assert r.outcome.status == "interrupted" and r.outcome.message == f"interrupted by the user at iteration {k}"
        assert k > 0 and r.iterates.column("iter").to_pylist() == list(range(k + 1))
        assert r.iterates.column("x_0").to_pylist()[-1] == r.outcome.state.x[0]


def test_each_run_of_a_batch_records_its_share_of_the_batch_time(tmp_path):
    import time

    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["momentum"](lr=1e-4)
    starts = grid_starts(obj, 8)
    t = time.perf_counter()
    records = run_batch_to_dirs([tmp_path / str(i) for i in range(8)], obj, solver, starts, Stop(max_iter=3000))
    elapsed = time.perf_counter() - t
    assert all(r["batch"] == {"size": 8} for r in records)
    shares = [r["wall_time_s"] for r in records]
    assert 0 < sum(shares) <= elapsed and all(r["setup_s"] >= 0 for r in records)
    _, its = load(tmp_path)
    for r in records:  # a run's clock: its share, rising to its wall time
        times = its[its.run_id == r["run_id"]].time_s.to_numpy()
        assert np.all(np.diff(times) >= 0) and times[-1] == pytest.approx(r["wall_time_s"], rel=1e-9, abs=1e-12)
