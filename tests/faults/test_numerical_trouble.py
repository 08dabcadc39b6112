"""Numerical trouble inside a run ends with a status and a message on record; nothing is lost."""

from __future__ import annotations

import json

import numpy as np
import pytest

import optlab
from optlab import autodiff as ad
from optlab.objectives.base import Objective

from ..conftest import run_cli


class Valley(Objective):
    """x0^2 + x1: the Hessian diag(2, 0) is singular while the gradient is not zero."""

    name = "valley"

    def __init__(self) -> None:
        self.dim, self.x0, self.box = 2, np.array([1.0, 1.0]), np.array([[-2, 2], [-2, 2]])

    def f(self, x):
        return x[0] ** 2 + x[1]


class Raising(Objective):
    """Raises once x0 drops below 0.5, as a buggy user objective would."""

    name = "raising"

    def __init__(self) -> None:
        self.dim, self.x0, self.box = 1, np.array([1.0]), np.array([[-2, 2]])

    def f(self, x):
        if x.data[0] < 0.5:
            raise RuntimeError("model file vanished")
        return ad.sum(x * x)


class NonScalar(Objective):
    name = "non_scalar"

    def __init__(self) -> None:
        self.dim, self.x0, self.box = 2, np.array([1.0, 1.0]), np.array([[-2, 2], [-2, 2]])

    def f(self, x):
        return x * x


def test_overflow_is_divergence_with_iterates_kept_and_no_warning_flood(cli):
    out = cli("solver=gd", "solver.lr=0.1")
    assert out.returncode == 0
    assert "RuntimeWarning" not in out.stderr and "overflow" not in out.stderr
    runs, its = optlab.load(cli.run_dir)
    assert runs.status[0] == "diverged" and "not finite at iteration" in runs.message[0]
    assert len(its) == runs.iterations[0] + 1
    assert np.all(np.isfinite(its.f.iloc[:-1])) and not np.isfinite(its.f.iloc[-1])
    assert runs.f_final.isna()[0]  # recorded as null, not as a bogus number


def test_singular_hessian_fails_cleanly():
    r = optlab.minimize(Valley(), "newton")
    assert r.status == "failed" and "singular Hessian" in r.message
    assert len(r.iterates) == 1 and r.iterates.f[0] == 2.0  # the start point is kept


def test_singular_hessian_from_the_command_line(cli):
    # det H of Rosenbrock vanishes on x1 = x0^2 + 0.005: at (0, 0.005) H = diag(0, 200).
    out = cli("solver=newton", "x0=[0,0.005]")
    assert out.returncode == 0
    runs, its = optlab.load(cli.run_dir)
    assert runs.status[0] == "failed" and "singular Hessian" in runs.message[0] and len(its) == 1


def test_pure_newton_reaching_a_maximum_says_so(cli):
    out = cli("solver=newton", "objective=double_well", "x0=[0.3]")
    runs, _ = optlab.load(cli.run_dir)
    assert runs.status[0] == "converged" and runs.x_final[0] == [0.0]
    assert "a maximum, not a minimum" in runs.message[0] and runs.hessian_min_eig[0] == pytest.approx(-4)
    assert "a maximum, not a minimum" in out.stdout


def test_objective_that_raises_is_an_error_with_its_message():
    r = optlab.minimize(Raising(), "gd", solver_options={"lr": 0.2}, max_iter=50)
    assert r.status == "error" and "RuntimeError: model file vanished" in r.message
    assert len(r.iterates) >= 2 and (r.iterates.x_0 >= 0.5).all()


def test_objective_returning_a_vector_is_an_error():
    r = optlab.minimize(NonScalar(), "gd")
    assert r.status == "error" and "not a scalar" in r.message and "(2,)" in r.message


def test_sweep_keeps_going_past_divergence_and_invalid_jobs(tmp_path):
    out = run_cli("-m", "solver.lr=0.001,0.1,-1", "stop.max_iter=300", f"hydra.sweep.dir={tmp_path}",
                  "report.auto=false")
    assert out.returncode == 1  # one job could not run
    assert f"sweep: 3 runs in {tmp_path}: " in out.stdout
    assert all(f"1 {s}" in out.stdout for s in ("max_iter", "diverged", "invalid"))
    assert "optlab: 1 of 3 runs could not run" in out.stderr
    records = {int(p.parent.name): json.loads(p.read_text()) for p in tmp_path.glob("*/run.json")}
    assert sorted(records) == [0, 1, 2]
    assert [records[i]["status"] for i in range(3)] == ["max_iter", "diverged", "invalid"]
    assert "solver.lr=-1 is out of range" in records[2]["message"]
    assert "invalid configuration: solver.lr=-1" in out.stderr
    runs, its = optlab.load(tmp_path)
    assert len(runs) == 3
    assert set(its.run_id) == set(runs.run_id[runs.status != "invalid"])


def test_sweep_of_results_exits_zero_even_with_divergence(tmp_path):
    out = run_cli("-m", "solver.lr=0.001,0.1", "stop.max_iter=100", f"hydra.sweep.dir={tmp_path}", "report.auto=false")
    assert out.returncode == 0, out.stderr
    assert "sweep: 2 runs" in out.stdout and "1 diverged" in out.stdout and "1 max_iter" in out.stdout


def test_sweep_grid_skips_solvers_that_do_not_apply(tmp_path):
    out = run_cli("-m", "solver=lstsq,newton", "objective=rosenbrock,least_squares", "stop.max_iter=20",
                  f"hydra.sweep.dir={tmp_path}", "report.auto=false")
    assert out.returncode == 0, out.stderr
    assert "3 converged, 1 not applicable" in out.stdout
    assert "[0] not applicable: solver=lstsq needs a linear least-squares objective" in out.stderr
    record = json.loads((tmp_path / "0" / "run.json").read_text())
    assert record["status"] == "invalid" and record["not_applicable"] is True
