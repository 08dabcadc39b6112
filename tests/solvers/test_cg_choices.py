"""CG's line-search constant and restart rule, chosen by benchmarks/vs_scipy.py's study, and the
line-search changes behind them: Brown's badly scaled function converges, CG's evaluations over
the comparison's problems stay within 1.1x scipy's CG, Brown and Dennis's function converges
again (the approximate Wolfe conditions), and L-BFGS on BBOB's f6 with differenced gradients
goes on along -g where its direction fails."""

from __future__ import annotations

import numpy as np
import pytest

import optlab
from optlab.errors import ConfigError, NoProgress
from optlab.objectives.base import Objective
from optlab.solvers import SOLVERS
from optlab.solvers.line_search import StrongWolfe
from optlab.solvers.problem import Problem

from ..conftest import REPO


@pytest.fixture
def benchmarks(monkeypatch):
    pytest.importorskip("scipy")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import mgh_problems
    import vs_scipy
    import vs_scipy_studies

    return vs_scipy, vs_scipy_studies, mgh_problems


def test_cg_converges_on_browns_badly_scaled_function():
    result = optlab.minimize("brown_badly_scaled", "cg", gtol=1e-5)
    assert result.status == "converged" and result.gap < 1e-8


def test_cg_takes_at_most_a_tenth_more_evaluations_than_scipys_over_the_comparisons_problems(benchmarks):
    vs_scipy, studies, _ = benchmarks
    ours = theirs = 0
    unsolved = []
    for label, objective in vs_scipy.problems_of():
        (nfev, solved), (scipy_nfev, scipy_solved) = studies.optlab_cg(objective, 1e-5), studies.scipy_cg(objective,
                                                                                                          1e-5)
        if scipy_solved and not solved:  # (a CG that gave up early would spend fewer evaluations)
            unsolved.append(label)
        if solved and scipy_solved:
            ours, theirs = ours + nfev, theirs + scipy_nfev
    assert not unsolved, f"solved by scipy's CG, not by optlab's: {unsolved}"
    assert theirs > 0 and ours <= 1.1 * theirs


def test_cg_converges_on_brown_and_dennis_where_f_no_longer_resolves_the_decrease(benchmarks):
    *_, mgh = benchmarks
    objective = mgh.BrownDennis()
    for c2 in (0.05, 0.1, 0.4):
        result = optlab.minimize(objective, "cg", solver_options={"c2": c2}, gtol=1e-5)
        assert result.status == "converged", (c2, result.message)
        assert abs(result.f - 85822.2016263563) <= 1e-9 * 85822.2  # f* of Moré, Garbow and Hillstrom


class Level(Objective):
    """f(x) = 1e5 + 1e-12 (x - 1)^2: from x = 0 no change of f shows (f is 1e5 to 1.5e-11), but the
    slope does, and the minimiser is x = 1."""

    name = "level"

    def __init__(self) -> None:
        self.dim, self.x0, self.box = 1, np.zeros(1), np.array([[-2.0, 2.0]])

    def f(self, x):
        return 1e5 + 1e-12 * (x[0] - 1.0) ** 2


def test_the_wolfe_search_takes_the_step_the_slope_vouches_for_where_f_cannot_tell():
    problem = Problem(Level())
    x = np.zeros(1)
    f, g = problem.value_and_grad(x)
    step = StrongWolfe(1e-4, 0.05).search(problem, x, f, g, -g / abs(g), 0.5)
    assert abs(step.x[0] - 1.0) <= 0.05  # |phi'| <= c2 |phi'(0)|: within 5% of the minimiser
    assert abs(step.f - f) <= 1e-10  # f itself did not change measurably


def test_the_wolfe_search_still_refuses_a_step_along_which_f_rises():
    problem = Problem(Level())
    x = np.zeros(1)
    f, g = problem.value_and_grad(x)
    with pytest.raises(NoProgress):
        StrongWolfe(1e-4, 0.05).search(problem, x, f - 1e-6, g, -g / abs(g), 0.5)  # every trial: f up by 1e-6


def test_lbfgs_goes_on_along_minus_g_where_a_differenced_gradient_spoilt_its_direction():
    """BBOB f6, 2-D, instance 1: near the optimum central differences straddle the hyperplane where
    the slope jumps; L-BFGS's direction then finds no decrease (it stopped at f - f* = 9.4e-5)."""
    pytest.importorskip("cocoex", reason="objective=bbob needs COCO's cocoex (the bbob extra)")
    from optlab.objectives.bbob import BBOB

    result = optlab.minimize(BBOB(function=6, instance=1, dim=2), "lbfgs", max_fev=4000, target=1e-8, gtol=0.0)
    assert result.status == "target" and result.gap <= 1e-8


def test_the_restart_rule_is_an_option_checked_in_one_line():
    for restart in ("periodic", "every_n", "powell", "never"):
        assert optlab.minimize("rosenbrock", "cg", solver_options={"restart": restart}, gtol=1e-5).success
    with pytest.raises(ConfigError, match=r"^solver.restart='sometimes' is unknown; allowed: periodic, every_n, "
                                          r"powell, never$"):
        SOLVERS["cg"](restart="sometimes")
