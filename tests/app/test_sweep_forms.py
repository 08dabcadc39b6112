"""Sweeps as users write them: an experiment file is a sweep without -m, objectives with options
of their own in one sweep, each job saying which values it ran, and the sweep's progress."""

from __future__ import annotations

import json
import re

import pytest

import optlab

from ..conftest import run_cli

SMALL_LR_SWEEP = ["stop.max_iter=20", "hydra.sweeper.params={solver:'gd,adam',solver.lr:'1e-3,1e-2',x0:'[0,2]'}",
                  "report.auto=false"]


def test_an_experiment_file_runs_its_sweep_without_dash_m(tmp_path):
    out = run_cli("+experiment=lr_sweep", *SMALL_LR_SWEEP, f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    runs, _ = optlab.load(tmp_path)
    assert len(runs) == 4 and sorted(set(runs.solver)) == ["adam", "gd"]
    assert f"sweep: 4 runs in {tmp_path}" in out.stdout


def test_each_job_says_which_of_the_swept_values_it_ran(tmp_path):
    out = run_cli("+experiment=lr_sweep", *SMALL_LR_SWEEP, f"hydra.sweep.dir={tmp_path}")
    lines = [ln for ln in out.stdout.splitlines() if re.match(r"\[\d+\] ", ln)]  # (not Hydra's own log lines)
    assert len(lines) == 4
    assert "[3] adam on rosenbrock (solver=adam solver.lr=0.01 x0=[0,2]): " in "\n".join(lines), lines
    assert all("report.auto" not in ln and "stop.max_iter" not in ln for ln in lines)  # fixed values: not shown


def test_objectives_with_options_of_their_own_share_a_sweep(tmp_path):
    out = run_cli("-m", "objective=rosenbrock,quadratic", "+options_for.quadratic.cond=100",
                  "+options_for.quadratic.dim=3", "stop.max_iter=5", "report.auto=false", f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    params = {r["objective"]: r["objective_params"] for r in
              (json.loads((tmp_path / j / "run.json").read_text()) for j in "01")}
    assert params["quadratic"]["cond"] == 100 and params["quadratic"]["dim"] == 3
    assert "cond" not in params["rosenbrock"]


@pytest.mark.parametrize("args, message", [
    (["+options_for.quadratc.cond=100"], "options_for.quadratc names no objective or solver; allowed: ackley"),
    (["+options_for.quadratic=3"], "options_for={'quadratic': 3} is not a table of tables"),
    (["objective=quadratic", "+options_for.quadratic.cnd=100"], "objective.cnd is not an option of objective"),
])
def test_options_for_a_name_are_checked(tmp_path, args, message):
    out = run_cli(*args, f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, out.stderr


def test_a_sweep_shows_its_progress_with_an_eta(tmp_path):
    out = run_cli("-m", "objective=double_well", "solver=gd,newton,bfgs", "stop.max_iter=200", "report.auto=false",
                  f"hydra.sweep.dir={tmp_path}", env={"OPTLAB_PROGRESS": "1"})
    assert out.returncode == 0, out.stderr
    assert "sweep: 100%" in out.stderr and "3/3" in out.stderr and "job" in out.stderr
