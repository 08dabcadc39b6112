"""More than one machine: a sweep under hydra/launcher=ray on a local Ray instance, and Ctrl-C or
SIGTERM under joblib and Ray, which must leave every job's record ``interrupted``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import optlab

from ..conftest import REPO, run_cli
from ..faults.test_interrupts import parts, wait_for

# A local instance of two CPUs without its dashboard: quicker to start, no web port opened.
RAY = ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2", "+hydra.launcher.ray.init.include_dashboard=false"]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
# Two jobs that only a signal ends: a tiny learning rate keeps x moving for millions of steps.
ENDLESS = ["solver=gd", "solver.lr=1e-7,2e-7", "stop.max_iter=1000000000", "stop.gtol=0", "log.chunk_rows=5000",
           "report.auto=false"]


def needs_ray() -> None:
    pytest.importorskip("ray", reason="hydra/launcher=ray needs ray (the ray extra)")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="hydra/launcher=ray needs hydra-ray-launcher "
                                                                   "(the ray extra)")


def needs_joblib() -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="hydra/launcher=joblib needs "
                                                                      "hydra-joblib-launcher (the sweep extra)")


@pytest.mark.slow  # (about 9 s each: a local Ray instance starts)
def test_sweep_on_a_local_ray_instance(tmp_path):
    needs_ray()
    sweep = tmp_path / "sweep"
    out = run_cli("-m", *RAY, "solver=gd,newton", "objective=double_well,rosenbrock", "stop.max_iter=100",
                  f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"sweep: 4 runs in {sweep}: " in out.stdout and (sweep / "report" / "index.html").is_file()
    runs, its = optlab.load(sweep)
    assert sorted(zip(runs.solver, runs.objective)) == [("gd", "double_well"), ("gd", "rosenbrock"),
                                                         ("newton", "double_well"), ("newton", "rosenbrock")]
    assert set(runs.status) == {"max_iter", "converged"}
    for r in runs.itertuples():
        assert its[its.run_id == r.run_id].iter.tolist() == list(range(r.iterations + 1))
    # the jobs ran as Ray tasks (Ray prefixes their output with the task and its worker's pid)
    shown = out.stdout + out.stderr
    assert "Ray Launcher is launching 4 jobs" in shown and shown.count("(_run_job pid=") >= 4


def interrupt_sweep(tmp_path: Path, launcher: list[str], number: int, whole_group: bool) -> tuple[int, str, Path]:
    """Start a sweep of two endless jobs, wait until both have written iterates, send ``number`` to the
    driver (``whole_group``: to its whole process group, as a terminal's Ctrl-C or Slurm's scancel do)."""
    sweep = tmp_path / "sweep"
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "optlab", "-m", *launcher, *ENDLESS, f"hydra.sweep.dir={sweep}"],
                            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        wait_for(lambda: all(parts(sweep / j) for j in "01"), timeout=120)
        if whole_group:
            os.killpg(proc.pid, number)
        else:
            os.kill(proc.pid, number)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, stderr, sweep


def assert_every_job_interrupted(code: int, stderr: str, sweep: Path) -> None:
    statuses = [json.loads((sweep / j / "run.json").read_text())["status"] for j in "01"]
    assert statuses == ["interrupted", "interrupted"], (statuses, stderr[-2000:])
    assert code == 130 and "Traceback" not in stderr
    runs, its = optlab.load(sweep)
    for r in runs.itertuples():  # every iteration counted is in the log
        assert its[its.run_id == r.run_id].iter.tolist() == list(range(r.iterations + 1))


def test_sigterm_to_a_joblib_sweep_records_every_job_interrupted(tmp_path):
    """Slurm's scancel and a batch system's time limit signal every process of the job."""
    needs_joblib()
    assert_every_job_interrupted(*interrupt_sweep(tmp_path, JOBLIB, signal.SIGTERM, whole_group=True))


@pytest.mark.slow  # (about 9 s each: a local Ray instance starts)
def test_ctrl_c_in_a_ray_sweep_records_every_job_interrupted(tmp_path):
    needs_ray()
    assert_every_job_interrupted(*interrupt_sweep(tmp_path, RAY, signal.SIGINT, whole_group=True))
