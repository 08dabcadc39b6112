"""One engine for a set of runs: a single run, a batch and a ``starts=`` job end alike.

The stopping rules are written once (:mod:`optlab.engine.stopping`); whatever path the planner
picks, a run from a start ends with the same status, message and iterations and logs the same
rows. ``max_seconds`` is left out of the property test (a clock, not a number of steps: its own
tests are in test_batch.py and test_step_paths.py).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optlab
from optlab.engine.plan import step_solver_names
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.errors import ConfigError
from optlab.objectives import OBJECTIVES
from optlab.rundir.iterates import coordinate_columns
from optlab.rundir.store import RunDirs, RunExists
from optlab.solvers import SOLVERS

from ..conftest import assert_same_runs, batched, logged, multi_start, run_cli

pytestmark = pytest.mark.paths

STARTS = [[0.0, 2.0], [-1.2, 1.0], [0.5, -0.5]]
STOPS = st.builds(
    Stop,
    max_iter=st.sampled_from([0, 1, 7, 60, 250]),
    gtol=st.sampled_from([0.0, 1e-3, 0.3, 5.0]),
    xtol=st.sampled_from([0.0, 1e-7, 1e-4]),
    max_fev=st.sampled_from([None, 1, 9, 80]),
    target=st.sampled_from([None, 1e-3, 0.5, 3.0]),
    ftol=st.sampled_from([0.0, 1e-8, 1e-4, 1e-2]),
    patience=st.sampled_from([1, 3, 10]),
)


def job_runs(tmp_path, solver, stop):
    """The runs of a ``starts=list`` job, read back from its run directories."""
    records, not_run = multi_start(tmp_path, OBJECTIVES["rosenbrock"](), solver, stop,
                                   {"kind": "list", "points": STARTS})
    assert not_run == 0
    runs = []
    for i, record in enumerate(records):
        table = pq.ParquetFile(tmp_path / f"start_{i:03d}" / "iterates.parquet").read().drop_columns(["run_id"])
        table = coordinate_columns(table)  # (x stored as one list column: x_0 .. x_k as in memory)
        runs.append((record, table.to_pandas()))
    return runs


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stop=STOPS, name=st.sampled_from(step_solver_names()), lr=st.sampled_from([1e-3, 2e-2, 3.0]))
def test_a_single_run_a_batch_and_a_starts_job_end_alike(tmp_path_factory, stop, name, lr):
    objective, solver = OBJECTIVES["rosenbrock"](), SOLVERS[name](lr=lr)
    together = batched(objective, solver, STARTS, stop)
    job = job_runs(tmp_path_factory.mktemp("job"), solver, stop)
    assert {o.backend for o, _ in together} == {"batched"}
    for start, in_batch, (record, on_disk) in zip(STARTS, together, job):
        alone = logged(objective, solver, start, **vars(stop))
        assert alone[0].backend == ("batched" if stop.ftol else "fused")  # (the fused loop keeps no window of f)
        generic = logged(objective, solver, start, backend="generic", **vars(stop))
        assert_same_runs(alone, generic)
        assert_same_runs(in_batch, generic)
        out = generic[0]
        assert (record["status"], record["message"], record["iterations"], record["nfev"]) == (
            out.status, out.message, out.iterations, out.nfev)
        columns = [c for c in generic[1].columns if c != "time_s"]
        np.testing.assert_array_equal(on_disk[columns].to_numpy(), generic[1][columns].to_numpy())


def test_ftol_ends_each_start_of_a_job_as_its_single_run(tmp_path):
    """gd on Rosenbrock from (0, 2) with ftol 1e-6 stalls at 8,275 iterations, alone and in a job."""
    common = ["solver=gd", "solver.lr=1e-3", "stop.ftol=1e-6", "stop.max_iter=20000"]
    alone = run_cli(*common, "x0=[0,2]", f"hydra.run.dir={tmp_path / 'alone'}")
    job = run_cli(*common, "starts=list", "starts.points=[[0,2],[-1.2,1]]", f"hydra.run.dir={tmp_path / 'job'}")
    assert alone.returncode == 0 and job.returncode == 0, alone.stderr + job.stderr
    single = json.loads((tmp_path / "alone" / "run.json").read_text())
    first = json.loads((tmp_path / "job" / "start_000" / "run.json").read_text())
    assert (single["status"], single["iterations"]) == ("stalled", 8275)
    assert (first["status"], first["iterations"], first["message"]) == ("stalled", 8275, single["message"])


def test_grad_norm_is_logged_for_every_row_of_every_start(tmp_path):
    out = run_cli("solver=nelder_mead", "objective=himmelblau", "log.grad_norm=true", "stop.max_iter=50",
                  "starts=list", "starts.points=[[0,0],[1,1]]", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    runs, its = optlab.load(tmp_path)
    assert len(runs) == 2 and len(its) == (runs.iterations + 1).sum() > 2 and its.grad_norm.notna().all()


@pytest.mark.parametrize("starts", [["starts=list", "starts.points=[[0,2],[-1.2,1],[1,1]]"],
                                    ["starts=grid", "starts.n=3"], ["x0=[0,2]"]])
def test_a_jobs_start_points_are_each_checked_once(tmp_path, capsys, monkeypatch, starts):
    from optlab.objectives.base import Objective

    from ..app.test_bad_values import call

    checked = []
    start = Objective.start
    monkeypatch.setattr(Objective, "start", lambda self, x0=None: checked.append(x0) or start(self, x0))
    code, _, err = call(["stop.max_iter=3", *starts, f"hydra.run.dir={tmp_path}"], capsys, monkeypatch)
    assert code == 0, err
    runs, _ = optlab.load(tmp_path)
    given = [x0 for x0 in checked if x0 is not None]  # (None: the standard start)
    kind = starts[0].split("=[")[0]
    assert len(runs) == {"x0": 1, "starts=list": 3, "starts=grid": 9}[kind]
    # each point a user gave checked once; a grid's points, made in the box, checked as a whole only
    assert len(given) == (0 if kind == "starts=grid" else len(runs))


def test_minimize_from_many_starts_and_rates():
    results = optlab.minimize("rosenbrock", "gd", starts=STARTS, lrs=[1e-3, 2e-3, 1e-3], max_iter=300)
    assert [r.backend for r in results] == ["batched"] * 3
    assert [r.iterates.iter.iloc[-1] for r in results] == [300] * 3
    (alone,) = optlab.minimize("rosenbrock", "gd", starts=[STARTS[1]], solver_options={"lr": 2e-3}, max_iter=300)
    np.testing.assert_array_equal(alone.x, results[1].x)
    assert alone.backend == "fused" and results[1].f == alone.f


def test_the_point_a_run_reached_decides_its_success():
    maximum = optlab.minimize("himmelblau", "newton", x0=[-0.270845, -0.923039])
    assert (maximum.status, maximum.point, maximum.success) == ("converged", "maximum", False)
    minimum = optlab.minimize("himmelblau", "newton", x0=[3.2, 2.1])
    assert (minimum.status, minimum.point, minimum.success) == ("converged", "minimum", True)
    assert "point='minimum'" in repr(minimum)


def test_a_finished_run_is_never_replaced(tmp_path):
    first = optlab.minimize("double_well", "newton", out=tmp_path / "run")
    assert first.path == tmp_path / "run" and len(first.iterates) == first.iterations + 1
    with pytest.raises(RunExists, match="already holds a finished run .*overwrite=true"):
        optlab.minimize("double_well", "gd", out=tmp_path / "run")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["solver"] == "newton"
    again = optlab.minimize("double_well", "gd", out=tmp_path / "run", overwrite=True, max_iter=5)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["solver"] == "gd" and again.iterations == 5


def test_a_sweep_directory_is_never_a_run_directory(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("-m", "objective=double_well", "solver=gd,newton", "stop.max_iter=5", "report.auto=false",
                  f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    with pytest.raises(RunExists, match="holds a sweep"):
        optlab.minimize("double_well", "newton", out=sweep)
    assert not (sweep / "run.json").exists()


def test_the_command_line_refuses_to_replace_a_finished_run(tmp_path):
    first = run_cli("solver=newton", "objective=double_well", f"hydra.run.dir={tmp_path}")
    second = run_cli("solver=gd", "objective=double_well", f"hydra.run.dir={tmp_path}")
    assert first.returncode == 0 and second.returncode == 2
    assert second.stderr.count("\n") == 1 and "already holds a finished run (converged" in second.stderr
    assert json.loads((tmp_path / "run.json").read_text())["solver"] == "newton"
    third = run_cli("solver=gd", "objective=double_well", "stop.max_iter=3", "overwrite=true",
                    f"hydra.run.dir={tmp_path}")
    assert third.returncode == 0 and json.loads((tmp_path / "run.json").read_text())["solver"] == "gd"


def test_runs_of_an_interrupted_set_that_never_began_are_said_so(monkeypatch):
    import optlab.engine.run_set as run_set_module

    drive = run_set_module.drive
    calls = []

    def interrupted_second(*args, **kwargs):
        calls.append(1)
        out = drive(*args, **kwargs)
        return out if len(calls) != 2 else type(out)(**{**vars(out), "status": "interrupted"})

    monkeypatch.setattr(run_set_module, "drive", interrupted_second)
    outcomes = run_set(OBJECTIVES["rosenbrock"](), SOLVERS["newton"](), STARTS, Stop(max_iter=20))
    assert [o.status for o in outcomes] == ["converged", "interrupted", "interrupted"]
    assert [o.started for o in outcomes] == [True, True, False] and len(calls) == 2
    assert outcomes[2].message.startswith("not started")


def test_runs_write_through_the_sinks_they_are_given(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    outcomes = run_set(OBJECTIVES["rosenbrock"](), SOLVERS["adam"](lr=1e-2), STARTS[:2], Stop(max_iter=40),
                       RunDirs(dirs, [{"note": "first"}, {"note": "second"}]))
    for d, out, note in zip(dirs, outcomes, ("first", "second")):
        record = json.loads((d / "run.json").read_text())
        assert (record["status"], record["iterations"], record["note"]) == (out.status, out.iterations, note)
        assert record["backend"] == "batched" and record["batch"] == {"size": 2}
    with pytest.raises(ConfigError, match="backend='fast' is unknown"):
        run_set(OBJECTIVES["rosenbrock"](), SOLVERS["adam"](), None, backend="fast")
