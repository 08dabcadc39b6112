"""Statuses that mean what they say, on problems nobody tuned for.

``converged`` only where the method's own optimality test held (||grad f|| <= gtol, or a
method's own test: lstsq's closed form); a method that cannot make progress ends
``stalled`` (x stopped changing, no step decreases f, f stopped decreasing), soon after its
last improvement; converged runs say what kind of point they reached.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import optlab
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop, point_kind, verdict
from optlab.errors import ConfigError
from optlab.norms import norm
from optlab.objectives import OBJECTIVES
from optlab.solvers import SOLVERS

GRADIENT_SOLVERS = sorted(name for name in SOLVERS if SOLVERS[name].uses_gradient)
HARD = [("quadratic", {"dim": 5, "cond": cond}) for cond in (1e10, 1e12, 1e16)] + [
    ("brown_badly_scaled", {}), ("powell_badly_scaled", {})]
# the methods with a stopping test of their own beyond the budget: Newton-type, quasi-Newton, CG,
# trust regions, least squares (first-order methods with a fixed step run until max_iter there)
TERMINATING = [("bfgs", {}), ("lbfgs", {}), ("cg", {}), ("newton", {}),
               ("newton", {"line_search": "wolfe", "hessian_modification": "eigenvalue"}), ("newton_cg", {}),
               ("trust_region", {}), ("trust_region", {"subproblem": "exact"}), ("gauss_newton", {}),
               ("levenberg_marquardt", {})]


def starts(objective, count: int = 2) -> np.ndarray:
    low, high = objective.box[:, 0], objective.box[:, 1]
    rng = np.random.default_rng(11)
    return np.vstack([objective.start(), low + (high - low) * rng.random((count - 1, objective.dim))])


def last_improvement(f: np.ndarray) -> int:
    """The iteration of the last new best value of f."""
    best = np.minimum.accumulate(f)
    better = np.flatnonzero(np.diff(best) < 0)
    return int(better[-1] + 1) if len(better) else 0


@pytest.mark.parametrize("solver_name", GRADIENT_SOLVERS)
def test_no_gradient_method_ends_converged_with_a_large_gradient(solver_name):
    solver = SOLVERS[solver_name]()
    cases = [(name, {}) for name in OBJECTIVES] + HARD
    seen = set()
    for name, options in cases:
        objective = OBJECTIVES[name](**options)
        try:
            solver.check(objective)
        except ConfigError:
            continue  # not applicable (lstsq on a nonlinear problem, Gauss-Newton without residuals)
        for x0 in starts(objective):
            for gtol in (1e-5, 1e-12):
                (out,) = run_set(objective, solver, [x0], Stop(max_iter=1500, gtol=gtol))
                seen.add(out.status)
                if out.status == "converged" and not out.message.startswith(solver_name):  # not its own test
                    assert norm(objective.grad(out.state.x)) <= gtol, (name, x0, gtol, out.message)
                    assert out.message.startswith("||grad f||"), out.message
    assert seen & {"converged", "stalled", "max_iter"}


@pytest.mark.parametrize("solver_name, options", TERMINATING, ids=[f"{s}{list(o.values())}" for s, o in TERMINATING])
def test_hard_problems_end_converged_or_stalled_soon_after_the_last_improvement(solver_name, options):
    solver = SOLVERS[solver_name](**options)
    for name, objective_options in HARD:
        objective = OBJECTIVES[name](**objective_options)
        try:
            solver.check(objective)
        except ConfigError:
            continue
        result = optlab.minimize(objective, solver, gtol=1e-5, max_iter=10_000)
        gnorm = norm(objective.grad(result.x))
        assert result.status in ("converged", "stalled"), (name, objective_options, result.message)
        assert result.status == "stalled" or gnorm <= 1e-5, (name, result.message)
        assert result.iterations - last_improvement(result.iterates.f.to_numpy()) <= 50, (name, result.message)


def test_the_issues_examples_are_now_stalls_not_convergence():
    result = optlab.minimize("quadratic", "lbfgs", objective_options={"dim": 5, "cond": 1e12}, gtol=1e-5)
    assert result.status == "stalled" and not result.success
    assert "no step decreases f" in result.message and result.f > 0.1
    result = optlab.minimize("quadratic", "trust_region", objective_options={"dim": 5, "cond": 1e16}, gtol=1e-5)
    assert result.status == "stalled" and result.nfev < 200


def test_x_that_stops_changing_is_a_stall_and_says_the_gradient():
    result = optlab.minimize("double_well", "gd", [1.0 + 1e-12], solver_options={"lr": 1e-20}, max_iter=100)
    assert result.status == "stalled" and not result.success
    assert result.message == "x stopped changing at iteration 1, while ||grad f|| = 8e-12 > gtol = 1e-12"


def test_f_that_stops_decreasing_over_the_patience_window_is_a_stall():
    result = optlab.minimize("rosenbrock", "gd", solver_options={"lr": 1e-11}, ftol=1e-6, patience=5)
    assert result.status == "stalled" and result.iterations == 5
    assert result.message.startswith("f decreased by at most ftol = 1e-06 (relative) over the last 5 iterations")


def test_the_target_and_the_budget_of_evaluations_end_runs_with_their_own_statuses():
    result = optlab.minimize("rosenbrock", "bfgs", target=1e-6)
    assert result.status == "target" and result.success and result.f <= 1e-6
    previous = result.iterates.f.to_numpy()[:-1]
    assert np.all(previous > 1e-6)  # the first iterate at the target ends the run
    result = optlab.minimize("quadratic", "bfgs", objective_options={"dim": 3}, target=0.5)  # f* = 0: a gap
    assert result.status == "target" and result.f <= 0.5
    result = optlab.minimize("rosenbrock", "newton_cg", max_fev=7)
    assert result.status == "max_fev" and result.nfev <= 7


@pytest.mark.parametrize("eigenvalues, kind", [
    ([1.0, 2.0], "minimum"), ([-1.0, -2.0], "maximum"), ([-1.0, 3.0], "saddle"), ([0.0, 3.0], "unknown"),
    ([1e-12, 3.0], "unknown"), ([np.nan, 1.0], "unknown"),
])
def test_point_kinds_from_the_hessian_eigenvalues(eigenvalues, kind):
    assert point_kind(np.array(eigenvalues)) == kind


def test_newton_on_himmelblau_counts_saddles_and_maxima_apart(tmp_path):
    from optlab.rundir.load import status_counts

    objective = OBJECTIVES["himmelblau"]()
    grid = np.stack(np.meshgrid(np.linspace(-5, 5, 7), np.linspace(-5, 5, 7)), axis=-1).reshape(-1, 2)
    from optlab.rundir.store import RunDirs

    sinks = RunDirs([tmp_path / str(i) for i in range(len(grid))])
    outcomes = run_set(objective, SOLVERS["newton"](), grid, Stop(max_iter=100), sinks)
    records = [sinks.records[i] for i in range(len(grid))]
    assert [o.point for o in outcomes] == [r["point"] for r in records]
    kinds = {r["point"] for r in records if r["status"] == "converged"}
    assert {"minimum", "saddle", "maximum"} <= kinds
    counts = status_counts(tmp_path)
    labels = {verdict(r) for r in records}
    assert {"converged", "converged at a saddle", "converged at a maximum"} <= labels
    assert sum(counts.values()) == len(grid) and counts["converged at a saddle"] == sum(
        r["point"] == "saddle" for r in records)


def test_an_infinite_budget_is_no_budget_and_other_infinities_are_refused():
    stop = Stop(max_seconds=math.inf, max_fev=math.inf)
    assert stop.max_seconds is None and stop.max_fev is None
    for bad in ({"max_seconds": -math.inf}, {"max_iter": math.inf}, {"gtol": math.nan}, {"target": math.inf}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            Stop(**bad)
