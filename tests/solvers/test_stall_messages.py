"""Every stall and failure states ||grad f|| where the run stands (the Statuses promise: a
``stalled`` message says which rule or search stopped it, and ||grad f||), and an objective that
cannot evaluate what a solver needs is refused in one line naming the method."""

from __future__ import annotations

import re

import numpy as np
import pytest

import optlab
from optlab.errors import ConfigError, NotApplicable
from optlab.objectives.base import Objective

ILL = {"dim": 5, "cond": 1e16}  # a quadratic no method resolves to ||grad f|| = 0: every one stalls
STALLS = [
    ("bfgs", {}, "quadratic", ILL), ("bfgs", {"line_search": "armijo"}, "quadratic", ILL),
    ("lbfgs", {}, "quadratic", ILL), ("cg", {}, "quadratic", ILL), ("newton_cg", {}, "quadratic", ILL),
    ("newton", {"line_search": "armijo", "hessian_modification": "eigenvalue"}, "quadratic", ILL),
    ("trust_region", {}, "quadratic", ILL), ("trust_region", {"subproblem": "exact"}, "quadratic", ILL),
    ("levenberg_marquardt", {}, "curve_fit", {}), ("gauss_newton", {}, "brown_badly_scaled", {}),
    ("gd", {}, "quadratic", {"stop": {"xtol": 1e-3}}),  # the driver's own rule xtol
]
GRADIENT = re.compile(r"\|\|grad f\|\| = (\S+?)(?:[ ,)]|$)")


@pytest.mark.parametrize("solver, options, objective, objective_options", STALLS,
                         ids=[f"{s}-{'-'.join(map(str, o.values()))}-{b}" for s, o, b, _ in STALLS])
def test_every_stall_states_the_gradient_norm_where_the_run_stands(solver, options, objective, objective_options):
    objective_options = dict(objective_options)
    stop = objective_options.pop("stop", {})
    result = optlab.minimize(objective, solver, solver_options=options, objective_options=objective_options,
                             gtol=0.0, max_iter=20_000, **stop)
    assert result.status == "stalled", result.message
    stated = GRADIENT.findall(result.message)
    assert stated, f"no ||grad f|| in {result.message!r}"
    assert stated[0] == f"{result.iterates.grad_norm.iloc[-1]:.3g}"


def test_a_method_without_gradient_states_none():
    result = optlab.minimize("quadratic", "nelder_mead", objective_options=ILL, max_iter=20_000)
    assert result.status == "stalled" and "grad f" not in result.message


class OnlyValueAndGradient(Objective):
    """A hand-written objective: value and gradient written out together, no f(x)."""

    name = "only_value_and_gradient"

    def __init__(self) -> None:
        self.dim, self.x0, self.box = 2, np.ones(2), np.array([[-2.0, 2.0]] * 2)

    def value_and_grad(self, x):
        return float(x @ x), 2.0 * x


@pytest.mark.parametrize("solver, method", [("nelder_mead", "value"), ("newton", "hessian"),
                                            ("trust_region", "hvp"), ("newton_cg", "hvp")])
def test_a_solver_needing_what_the_objective_cannot_evaluate_is_refused_in_one_line(solver, method):
    with pytest.raises(NotApplicable) as refused:
        optlab.minimize(OnlyValueAndGradient(), solver)
    assert isinstance(refused.value, ConfigError)
    assert str(refused.value) == (
        f"solver={solver} needs {method}(x), which objective=only_value_and_gradient cannot evaluate: it writes out "
        f"value_and_grad and has no f(x) to derive the rest from; allowed: an objective with f(x), or with "
        f"{method}(x) written out")


def test_what_the_objective_gives_is_enough_for_a_gradient_method():
    assert optlab.minimize(OnlyValueAndGradient(), "bfgs").status == "converged"


def test_an_option_needing_more_ends_the_run_with_the_line_naming_it():
    result = optlab.minimize(OnlyValueAndGradient(), "bfgs", solver_options={"line_search": "armijo"})
    assert result.status == "error" and "\n" not in result.message
    assert result.message.startswith("NotImplementedError: the solver needs value(x), which "
                                     "objective=only_value_and_gradient cannot evaluate")
