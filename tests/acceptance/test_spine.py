"""The spine's acceptance checks: the seed numbers through the command line, end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

import optlab
from optlab.objectives import DoubleWell, LeastSquares
from optlab.objectives.base import Objective

from ..conftest import run_cli

NEWTON_DOUBLE_WELL = [2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978,
                      1.0009084519430513, 1.0000012353089454, 1.000000000002289, 1.0]


def test_first_note_gradient_descent_50000_steps(cli):
    out = cli("solver=gd", "objective=rosenbrock", "solver.lr=0.001", "stop.max_iter=50000", "stop.gtol=0")
    assert out.returncode == 0, out.stderr
    runs, its = optlab.load(cli.run_dir)
    assert len(runs) == 1 and runs.status[0] == "max_iter"
    assert len(its) == 50_001
    assert its.iter.tolist() == list(range(50_001))
    assert its.grad_norm[0] == pytest.approx(math.hypot(-2.0, 400.0), rel=1e-15)
    last = its.iloc[-1]
    assert abs(last.x_0 - 1.0) < 1e-6 and abs(last.x_1 - 1.0) < 1e-6
    assert (its.step_size.iloc[1:] == 0.001).all() and np.isnan(its.step_size[0])
    assert its.nfev.iloc[-1] == 50_001 and its.ngev.iloc[-1] == 50_001 and its.nhev.iloc[-1] == 0
    assert its.time_s.is_monotonic_increasing


def test_notes_newton_iterates_on_double_well(cli):
    out = cli("solver=newton", "objective=double_well")
    assert out.returncode == 0, out.stderr
    runs, its = optlab.load(cli.run_dir)
    assert runs.status[0] == "converged"
    np.testing.assert_allclose(its.x_0.to_numpy(), NEWTON_DOUBLE_WELL, rtol=0, atol=1e-12)
    assert its.nhev.iloc[-1] == len(NEWTON_DOUBLE_WELL) - 1  # one Hessian per step


def test_double_well_second_derivative_is_autodiff():
    # No hand-written Hessian: DoubleWell inherits the autodiff one, and it gives 12 x^2 - 4.
    assert DoubleWell.hessian is Objective.hessian and DoubleWell.grad is Objective.grad
    for x in (-1.7, 0.3, 2.0):
        assert DoubleWell().hessian(np.array([x]))[0, 0] == pytest.approx(12 * x * x - 4, rel=1e-14)


def test_newton_reaches_rosenbrock_minimum_in_six_iterations(cli):
    out = cli("solver=newton", "objective=rosenbrock")
    assert out.returncode == 0, out.stderr
    runs, its = optlab.load(cli.run_dir)
    reached = its[(abs(its.x_0 - 1) < 1e-10) & (abs(its.x_1 - 1) < 1e-10)]
    assert not reached.empty and reached.iter.min() <= 6
    assert runs.status[0] == "converged" and runs.iterations[0] <= 6


@pytest.mark.parametrize("solver", ["newton", "lstsq"])
def test_least_squares_lands_on_numpy_lstsq(cli, solver):
    out = cli(f"solver={solver}", "objective=least_squares")
    assert out.returncode == 0, out.stderr
    runs, its = optlab.load(cli.run_dir)
    obj = LeastSquares()
    expected, *_ = np.linalg.lstsq(obj.A, obj.z, rcond=None)
    x1 = its.loc[its.iter == 1, [f"x_{i}" for i in range(obj.n)]].to_numpy()[0]
    assert np.linalg.norm(x1 - expected) <= 1e-10 * np.linalg.norm(expected)
    assert runs.status[0] == "converged" and runs.iterations[0] == 1
    assert runs.gap[0] == pytest.approx(0.0, abs=1e-12 * runs.f_star[0])


def test_gradient_descent_approaches_least_squares_solution():
    obj = LeastSquares()
    expected, *_ = np.linalg.lstsq(obj.A, obj.z, rcond=None)
    # Stable for lr < 1 / lambda_max(A^T A) (the Hessian is 2 A^T A).
    lr = 0.5 / np.linalg.eigvalsh(obj.A.T @ obj.A).max()
    r = optlab.minimize(obj, "gd", solver_options={"lr": lr}, max_iter=2000, gtol=1e-9)
    assert r.status == "converged"
    np.testing.assert_allclose(r.x, expected, rtol=1e-8)
    dist = np.linalg.norm(r.iterates[[f"x_{i}" for i in range(obj.n)]].to_numpy() - expected, axis=1)
    assert np.all(np.diff(dist) <= 1e-12)  # the distance to the solution never grows


def test_diverging_gradient_descent_is_recorded(cli):
    out = cli("solver=gd", "objective=rosenbrock", "solver.lr=0.1")
    assert out.returncode == 0, out.stderr
    assert "diverged" in out.stdout
    runs, its = optlab.load(cli.run_dir)
    assert runs.status[0] == "diverged"
    assert len(its) == runs.iterations[0] + 1 >= 2
    assert np.isfinite(its.f.iloc[0]) and not np.isfinite(its.f.iloc[-1])


def test_sweep_of_four_runs_loads_as_one_table(tmp_path):
    out = run_cli("-m", "solver=gd,newton", "objective=rosenbrock,double_well", "stop.max_iter=200",
                  "report.auto=false", f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    runs, its = optlab.load(tmp_path)
    assert len(runs) == 4 and runs.run_id.nunique() == 4
    assert set(zip(runs.solver, runs.objective)) == {
        (s, o) for s in ("gd", "newton") for o in ("rosenbrock", "double_well")}
    assert set(its.run_id) == set(runs.run_id)
    per_run = its.groupby("run_id").size()
    for row in runs.itertuples():
        assert per_run[row.run_id] == row.iterations + 1


@pytest.mark.parametrize("args, expected", [
    (["solver=nope"], "solver='nope' is unknown; allowed: "),
    (["solver.lr=-0.5"], "solver.lr=-0.5 is out of range; allowed: a number > 0"),
    (["x0=[1,2,3]"], "x0=[1, 2, 3] has length 3; allowed: length 2"),
])
def test_user_mistakes_get_one_line(cli, args, expected):
    out = cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("optlab: error: ") and expected in lines[0], out.stderr
    assert "Traceback" not in out.stderr and not (cli.run_dir / "iterates.parquet").exists()
    if args == ["solver=nope"]:
        assert all(name in lines[0] for name in ("gd", "newton", "lstsq"))


def test_summary_names_status_point_and_log(cli):
    out = cli("solver=newton", "objective=double_well")
    assert "converged after 7 iterations" in out.stdout
    assert "x = [1]" in out.stdout and "f - f* = 0" in out.stdout and str(cli.run_dir) in out.stdout


def test_help_lists_objectives_and_solvers():
    out = run_cli("--help")
    assert out.returncode == 0
    for line in ("objective: ", "solver: "):
        assert any(ln.startswith(line) for ln in out.stdout.splitlines())
    for name in ("rosenbrock", "double_well", "least_squares", "gd", "newton", "lstsq"):
        assert name in out.stdout


def test_compiling_is_set_up_time_not_the_runs_time():
    from optlab import autodiff as ad
    from optlab.objectives.base import Objective

    class FreshBowl(Objective):  # a class of its own: its code is compiled in this run
        name = "fresh_bowl"

        def __init__(self) -> None:
            self.dim, self.x0, self.box = 3, np.array([1.0, -2.0, 0.5]), np.array([[-3.0, 3.0]] * 3)

        def f(self, x):
            return ad.sum(ad.exp(0.1 * x) * x * x) + ad.sum(ad.cos(x) * x)

    result = optlab.minimize(FreshBowl(), "newton", max_iter=20)
    record_time = result.iterates.time_s.to_numpy()
    assert result.setup_s > 0 and record_time[1] < result.setup_s  # the Hessian's code was built before the clock


def test_minimize_can_keep_its_run_for_load_and_the_report(tmp_path):
    result = optlab.minimize("rosenbrock", "bfgs", out=tmp_path / "run", gtol=1e-6)
    runs, iterates = optlab.load(tmp_path)
    assert runs.run_id.nunique() == 1 and runs.status[0] == result.status == "converged"
    assert len(iterates) == len(result.iterates) == result.iterations + 1
    np.testing.assert_array_equal(iterates.f.to_numpy(), result.iterates.f.to_numpy())
