"""Values: every value that validates can be recorded; every other is one line (exit 2), alone or
in a sweep; a sweep with a bad job still finishes with its status line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from optlab.app.cli import main

QUIET = ["hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]


def call(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """``python -m optlab ARGS`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["optlab", *args, *QUIET])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(code: int, err: str, *parts: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("optlab: error: "), err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


SINGLE = {  # issue 12: each of these was a traceback
    "max_iter inf": (["stop.max_iter=inf"], ["stop.max_iter=inf is not a whole number", "a whole number >= 0"]),
    "patience nan": (["stop.patience=nan"], ["stop.patience=nan is not a whole number"]),
    "max_coords nan": (["log.max_coords=nan"], ["log.max_coords=nan is not a whole number"]),
    "gtol inf": (["stop.gtol=inf"], ["stop.gtol=inf is not finite", "a finite number >= 0"]),
    "dim 1e20": (["objective.dim=1e20"], ["cannot be built with dim=1e+20", "allowed:"]),
    "400-digit lr": ([f"solver.lr={'9' * 400}"], ["solver.lr=999", "(400 characters) is out of range"]),
    "unknown stop key": (["+stop.foo=1"], ["stop.foo is not an option of stop", "allowed: max_iter"]),
    "unknown top key": (["+foo=1"], ["foo is not an option", "allowed: objective, solver"]),
    "log null": (["log=null"], ["log=null is not a table of log options"]),
    "solver null": (["solver=null"], ["solver=null is not allowed", "gd, lbfgs"]),
    "data not a path": (["objective=least_squares", "objective.data=5", "solver=lstsq"],
                        ["cannot be built with", "data=5", "TypeError"]),
    "out of memory": (["objective=quadratic", "objective.dim=100000"], ["dim=100000", "MemoryError"]),
    "stop null then a stop key": (["stop=null", "stop.max_iter=20"],
                                  ["stop.max_iter cannot be set after stop=null", "not both"]),
    "x0 nested": (["x0=[[1,2]]"], ["x0=[[1, 2]] is not a list of numbers"]),
    "x0 booleans": (["x0=[true,false]"], ["x0=[True, False] is not a list of numbers"]),
    "infinite box": (["starts=random", "starts.box=[-inf,inf]"], ["starts.box=[-inf, inf]", "finite low < high"]),
}


@pytest.mark.parametrize("name", SINGLE)
def test_bad_value_is_one_line(name, tmp_path, capsys, monkeypatch):
    args, parts = SINGLE[name]
    code, _, err = call([*args, f"hydra.run.dir={tmp_path / 'run'}"], capsys, monkeypatch)
    one_line(code, err, *parts)
    assert "(add a new key" not in err  # the hint led to keys that were silently ignored
    assert not (tmp_path / "run" / "run.json").exists()


@pytest.mark.parametrize("kind", ["scalar A", "near 1e300"])
def test_hostile_data_files(kind, tmp_path, capsys, monkeypatch):
    path = tmp_path / "data.npz"
    if kind == "scalar A":
        np.savez(path, A=np.array(3.0), z=np.ones(3))
    else:
        np.savez(path, A=np.full((5, 2), 1e300), z=np.full(5, 1e300))
    code, _, err = call(["objective=least_squares", f"objective.data={path}", "solver=lstsq",
                         f"hydra.run.dir={tmp_path / 'run'}"], capsys, monkeypatch)
    if kind == "scalar A":
        one_line(code, err, "cannot be built with", "data=")
    else:  # it runs; f overflows: recorded (as null), never a JSON error
        assert code == 0, err
        record = json.loads((tmp_path / "run" / "run.json").read_text())
        assert record["status"] in ("converged", "diverged", "error") and "Traceback" not in err


def test_max_seconds_inf_means_no_limit_and_is_recorded(tmp_path, capsys, monkeypatch):
    code, _, err = call(["objective=double_well", "stop.max_seconds=inf", "stop.max_iter=20",
                         f"hydra.run.dir={tmp_path / 'run'}"], capsys, monkeypatch)
    assert code == 0, err
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["stop"]["max_seconds"] is None and record["status"] in ("converged", "max_iter")


def test_sweep_with_an_infinite_budget_runs_every_job(tmp_path, capsys, monkeypatch):
    sweep = tmp_path / "sweep"
    code, out, err = call(["-m", "objective=double_well", "stop.max_seconds=10,inf", "stop.max_iter=30",
                           "report.auto=false", f"hydra.sweep.dir={sweep}"], capsys, monkeypatch)
    assert code == 0, err
    assert f"sweep: 2 runs in {sweep}" in out
    budgets = sorted(str(json.loads((sweep / j / "run.json").read_text())["stop"]["max_seconds"]) for j in "01")
    assert budgets == ["10.0", "None"]


@pytest.mark.parametrize("override", ["stop.max_iter=50,inf", "stop.patience=3,nan", "log.chunk_rows=10,0",
                                      "+stop.foo=1,2"])
def test_sweep_values_are_checked_before_the_first_job(override, tmp_path, capsys, monkeypatch):
    sweep = tmp_path / "sweep"
    code, out, err = call(["-m", "objective=double_well", override, "report.auto=false",
                           f"hydra.sweep.dir={sweep}"], capsys, monkeypatch)
    one_line(code, err)
    assert not list(sweep.rglob("run.json"))  # no job was queued


def test_an_exception_in_a_job_is_its_status_and_the_sweep_goes_on(tmp_path, capsys, monkeypatch):
    """A job whose objective cannot be built (MemoryError) is recorded; the other runs; the sweep
    ends with its status line and exit 1."""
    sweep = tmp_path / "sweep"
    code, out, err = call(["-m", "objective=quadratic", "objective.dim=2,100000", "stop.max_iter=20",
                           "report.auto=false", f"hydra.sweep.dir={sweep}"], capsys, monkeypatch)
    assert code == 1, err
    assert "Traceback" not in err and f"sweep: 2 runs in {sweep}" in out
    statuses = {j: json.loads((sweep / j / "run.json").read_text())["status"] for j in "01"}
    assert statuses["1"] == "invalid" and statuses["0"] in ("converged", "max_iter")
    assert "MemoryError" in json.loads((sweep / "1" / "run.json").read_text())["message"]


def test_version(capsys, monkeypatch):
    from optlab import __version__

    code, out, _ = call(["--version"], capsys, monkeypatch)
    assert code == 0 and out.strip() == f"optlab {__version__}"


def test_relative_data_path_is_taken_from_where_optlab_started(tmp_path, monkeypatch, capsys):
    """hydra.job.chdir=true makes the job directory the working directory; objective.data=FILE
    still means the file beside the command."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((10, 2))
    np.savetxt(tmp_path / "rows.csv", np.column_stack([A, A @ [1.0, 2.0]]), delimiter=",")
    monkeypatch.chdir(tmp_path)
    code, _, err = call(["objective=least_squares", "objective.data=rows.csv", "solver=lstsq", "hydra.job.chdir=true",
                         f"hydra.run.dir={tmp_path / 'run'}"], capsys, monkeypatch)
    assert code == 0, err
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert Path(record["objective_params"]["data"]) == tmp_path / "rows.csv"
    np.testing.assert_allclose(record["x_final"], [1.0, 2.0], atol=1e-9)


def test_an_unexpected_exception_is_the_job_status_error(tmp_path, capsys, monkeypatch):
    import optlab.app.job

    run_job = optlab.app.job.run_job

    def fails_for_one_rate(job, *args, **kwargs):
        if job.solver.lr == 0.002:
            raise RuntimeError("boom inside the job")
        return run_job(job, *args, **kwargs)

    monkeypatch.setattr(optlab.app.job, "run_job", fails_for_one_rate)
    sweep = tmp_path / "sweep"
    code, out, err = call(["-m", "objective=double_well", "solver.lr=0.001,0.002", "stop.max_iter=20",
                           "report.auto=false", f"hydra.sweep.dir={sweep}"], capsys, monkeypatch)
    assert code == 1 and "Traceback" not in err
    assert "[1] error: RuntimeError: boom inside the job" in err
    assert f"sweep: 2 runs in {sweep}: " in out and "1 error" in out and "1 max_iter" in out
    record = json.loads((sweep / "1" / "run.json").read_text())
    assert record["status"] == "error" and "boom" in record["message"]
