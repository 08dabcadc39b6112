"""Sweeps: failing runs keep their status, launchers (joblib, submitit_local), Optuna, multi-start
runs, and a killed multi-start sweep resumed without redoing what was complete."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import optlab
from optlab.app.scoring import score as _score
from optlab.engine.starts import start_points
from optlab.errors import ConfigError
from optlab.objectives import DoubleWell, Rosenbrock

from ..conftest import REPO, run_cli

QUICK = ["objective=double_well", "stop.max_iter=100"]


def records(root: Path) -> dict[str, dict]:
    """run.json of every run under ``root``, by its directory relative to ``root``."""
    return {str(p.parent.relative_to(root)): json.loads(p.read_text()) for p in sorted(root.rglob("run.json"))}


def test_failing_diverging_and_invalid_runs_do_not_stop_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("-m", "solver=gd", "solver.lr=0.001,0.1", "x0=[0,2],[1,2,3]", "stop.max_iter=200",
                  f"hydra.sweep.dir={sweep}")
    assert out.returncode == 1, out.stderr  # every job ran; two could not, so the sweep says so at its end
    assert "2 of 4 runs could not run" in out.stderr
    by_job = records(sweep)
    assert sorted(by_job) == ["0", "1", "2", "3"]
    statuses = {tuple(o for o in r["overrides"] if o.startswith(("solver.lr=", "x0="))): r["status"]
                for r in by_job.values()}
    assert statuses == {("solver.lr=0.001", "x0=[0,2]"): "max_iter", ("solver.lr=0.1", "x0=[0,2]"): "diverged",
                        ("solver.lr=0.001", "x0=[1,2,3]"): "invalid", ("solver.lr=0.1", "x0=[1,2,3]"): "invalid"}
    # Each job's messages are also in its own log file (Hydra's JOB/NAME.log), the printed ones kept.
    for job, record in by_job.items():
        (log_file,) = (sweep / job).glob("*.log")
        text = log_file.read_text()
        if record["status"] == "invalid":
            assert f"[{job}] invalid configuration: x0=[1, 2, 3] has length 3" in text
        else:
            swept = " ".join(o for o in record["overrides"] if o.startswith(("solver.lr=", "x0=")))
            assert f"[{job}] gd on rosenbrock ({swept}): {record['status']} after" in text
            assert f"log: {sweep / job}" in text
    assert "] invalid configuration: x0=[1, 2, 3]" in out.stderr
    assert "] gd on rosenbrock (solver.lr=0.001 x0=[0,2]): max_iter" in out.stdout
    # The report was built by the end-of-sweep callback and counts every run, diverged and invalid too.
    assert f"report: {sweep / 'report' / 'index.html'}" in out.stdout
    summary = pd.read_csv(sweep / "report" / "summary.csv")
    assert summary.status.value_counts().to_dict() == {"invalid": 2, "max_iter": 1, "diverged": 1}


def test_joblib_launcher_runs_jobs_in_parallel_and_report_can_be_switched_off(tmp_path):
    sweep = tmp_path / "sweep"
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", "import os, runpy, sys; print(os.getpid(), flush=True); "
                           "sys.argv[0] = 'optlab'; runpy.run_module('optlab', run_name='__main__')",
                           "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "solver.lr=1e-3,2e-3,3e-3", *QUICK,
                           "report.auto=false", f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out, sweep_pid = proc, int(proc.stdout.split()[0])
    runs, its = optlab.load(sweep)
    assert sorted(runs["solver.lr"]) == [1e-3, 2e-3, 3e-3] and set(runs.status) == {"max_iter"}
    assert (its.groupby("run_id").size() == 101).all()
    assert sweep_pid not in {r["pid"] for r in records(sweep).values()}  # the jobs ran in joblib's workers
    assert not (sweep / "report").exists() and "report:" not in out.stdout


def test_submitit_local_launcher_runs_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "solver=gd,newton", *QUICK,
                  "report.auto=false", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    runs, _ = optlab.load(sweep)
    assert sorted(runs.solver) == ["gd", "newton"]
    newton = runs[runs.solver == "newton"].iloc[0]
    assert newton.status == "converged" and newton.x_final == pytest.approx([1.0], abs=1e-12)
    assert list((sweep / ".submitit").rglob("*_result.pkl"))  # the jobs went through submitit


def test_optuna_searches_the_learning_rate(tmp_path):
    sweep = tmp_path / "sweep"
    # The study is kept in SQLite (the storage needs SQLAlchemy 1.4: pinned in the sweep extra).
    out = run_cli("-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=5", "hydra.sweeper.sampler.seed=1",
                  f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}", "hydra.sweeper.study_name=lr",
                  "solver.lr=tag(log, interval(1e-4, 0.3))", "objective=double_well", "x0=[2]", "stop.max_iter=50",
                  "report.auto=false", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "study.db").stat().st_size > 0
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    runs, _ = optlab.load(sweep)
    assert len(runs) == 5
    scores = [r.gap if r.status not in ("diverged", "failed", "error") else math.inf for r in runs.itertuples()]
    best = runs.iloc[int(np.argmin(scores))]
    assert result["best_value"] == pytest.approx(min(scores), rel=1e-12)
    assert result["best_params"]["solver.lr"] == pytest.approx(best["solver.lr"], rel=1e-12)


def test_score_is_the_median_gap_and_inf_when_diverged():
    assert _score([{"status": "max_iter", "gap": 3.0}, {"status": "converged", "gap": 1.0},
                   {"status": "diverged", "gap": None}]) == 3.0
    assert _score([{"status": "converged", "gap": None, "f_final": -2.5}]) == -2.5  # f* unknown: f itself
    assert _score([{"status": "diverged", "gap": 5.0}]) == math.inf
    assert _score([]) == math.inf


def test_start_points_grid_random_and_list():
    rb = Rosenbrock()
    grid = start_points(rb, "grid", n=3)
    assert grid.shape == (9, 2)
    assert sorted(set(grid[:, 0])) == [-2.0, 0.0, 2.0] and sorted(set(grid[:, 1])) == [-1.0, 1.0, 3.0]
    a, b = start_points(rb, "random", n=50, seed=3), start_points(rb, "random", n=50, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, start_points(rb, "random", n=50, seed=4))
    assert np.all((a >= rb.box[:, 0]) & (a <= rb.box[:, 1]))
    np.testing.assert_array_equal(start_points(DoubleWell(), "list", points=[1.5, -0.5]), [[1.5], [-0.5]])
    np.testing.assert_array_equal(start_points(rb, "grid", n=2, box=[[0, 1], [5, 6]]), [[0, 5], [0, 6], [1, 5],
                                                                                          [1, 6]])
    for kwargs, expected in [({"kind": "grid", "n": 0}, "starts.n=0 is out of range"),
                             ({"kind": "spiral"}, "starts.kind='spiral' is unknown; allowed: grid, random, list"),
                             ({"kind": "list", "points": [[1, 2, 3]]}, "has length 3; allowed: length 2"),
                             ({"kind": "grid", "n": 200}, "gives 200^2 = 40000 grid points")]:
        with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace("^", r"\^")):
            start_points(rb, **kwargs)


def test_multistart_grid_runs_one_logged_run_per_start(tmp_path):
    run_dir = tmp_path / "run"
    out = run_cli("objective=double_well", "solver=newton", "starts=grid", "starts.n=5", f"hydra.run.dir={run_dir}")
    assert out.returncode == 0, out.stderr
    assert "newton on double_well from 5 starts (grid)" in out.stdout
    runs, its = optlab.load(run_dir)
    assert sorted(Path(p).name for p in runs.path) == [f"start_00{i}" for i in range(5)]
    assert runs.run_id.is_unique and set(its.run_id) == set(runs.run_id)
    starts = {Path(p).name: (x0[0], x[0], s["index"]) for p, x0, x, s in zip(runs.path, runs.x0, runs.x_final,
                                                                                runs.start)}
    np.testing.assert_allclose([starts[f"start_00{i}"][0] for i in range(5)], np.linspace(-2.2, 2.2, 5))
    assert [starts[f"start_00{i}"][2] for i in range(5)] == list(range(5))
    # Newton goes to the minimum on its own side; from 0, a maximum, it cannot move.
    finals = [starts[f"start_00{i}"][1] for i in range(5)]
    np.testing.assert_allclose(finals, [-1, -1, 0, 1, 1], atol=1e-10)


def test_multistart_with_x0_is_one_line_error(tmp_path):
    out = run_cli("objective=double_well", "starts=list", "x0=[1]", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2
    assert out.stderr.strip() == ("optlab: error: x0=[1] is given together with starts; "
                                  "allowed: one of x0 and starts")


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "optlab", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # (4 to 6 s: whole sweeps in subprocesses; the README's command stays under 6 minutes)
def test_killed_multistart_sweep_resumes_without_redoing_complete_runs(tmp_path):
    sweep = tmp_path / "sweep"
    # Job 0 finishes at once; job 1's starts each run for 1.5 s (a tiny rate never settles), one after the
    # other (gd with a line search has no batched form), so the kill lands inside job 1's first start.
    args = ["-m", "objective=rosenbrock", "solver=gd", "solver.line_search=armijo", "solver.lr=1e-7", "starts=list",
            "starts.points=[[0,2],[-1.2,1]]", "stop.max_iter=50,1000000000", "stop.gtol=0", "stop.max_seconds=1.5",
            "report.auto=false", f"hydra.sweep.dir={sweep}"]
    proc = _start(args, tmp_path)
    end = time.monotonic() + 120
    while not (sweep / "1" / "start_000" / "run.json").exists():
        assert time.monotonic() < end and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.kill()
    proc.communicate(timeout=60)
    before = records(sweep)
    assert {before["0/start_000"]["status"], before["0/start_001"]["status"]} == {"max_iter"}
    assert before["1/start_000"]["status"] == "running" and "1/start_001" not in before
    stamps = {k: (sweep / k / "run.json").stat().st_mtime_ns for k in ("0/start_000", "0/start_001")}

    again = _start(args, tmp_path)
    _, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    after = records(sweep)
    assert sorted(after) == ["0/start_000", "0/start_001", "1/start_000", "1/start_001"]
    for key, stamp in stamps.items():  # complete runs kept, not redone
        assert after[key]["run_id"] == before[key]["run_id"]
        assert (sweep / key / "run.json").stat().st_mtime_ns == stamp
    assert after["1/start_000"]["run_id"] != before["1/start_000"]["run_id"]
    assert {after["1/start_000"]["status"], after["1/start_001"]["status"]} == {"max_seconds"}
    runs, its = optlab.load(sweep)
    assert len(runs) == 4 and set(its.run_id) == set(runs.run_id)
    for r in runs.itertuples():  # every log is whole: one row per iteration from 0
        rows = its[its.run_id == r.run_id].iter
        assert rows.tolist() == list(range(r.iterations + 1))


def test_batched_multistart_job_redoes_only_unfinished_starts(tmp_path):
    """Gradient descent's starts run as one batch; a start left unfinished is the only one run again."""
    sweep = tmp_path / "sweep"
    args = ["-m", "objective=double_well", "solver=gd", "solver.lr=0.01", "starts=grid", "starts.n=3",
            "stop.max_iter=40,60", "report.auto=false", f"hydra.sweep.dir={sweep}"]
    assert run_cli(*args).returncode == 0
    before = records(sweep)
    assert len(before) == 6 and {r["status"] for r in before.values()} <= {"max_iter", "converged"}
    crashed = sweep / "1" / "start_001" / "run.json"  # as if killed while running
    crashed.write_text(json.dumps({**before["1/start_001"], "status": "running"}))
    (crashed.parent / "iterates.parquet").unlink()
    stamps = {k: (sweep / k / "run.json").stat().st_mtime_ns for k in before if k != "1/start_001"}
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    after = records(sweep)
    for key, stamp in stamps.items():
        assert after[key]["run_id"] == before[key]["run_id"] and (sweep / key / "run.json").stat().st_mtime_ns == stamp
    redone = after["1/start_001"]
    assert redone["run_id"] != before["1/start_001"]["run_id"] and redone["status"] == before["1/start_001"]["status"]
    assert redone["x_final"] == pytest.approx(before["1/start_001"]["x_final"], abs=1e-12)
    runs, its = optlab.load(sweep)
    assert (its.groupby("run_id").size().loc[list(runs.run_id)].to_numpy() == runs.iterations.to_numpy() + 1).all()
