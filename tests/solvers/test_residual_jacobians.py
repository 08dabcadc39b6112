"""Compiled residuals and Jacobians (optlab.solvers.residuals) against finite differences and
the eager engine, on every shipped least-squares objective and MINPACK's test problems."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from optlab import autodiff as ad
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.errors import EndRun
from optlab.objectives import OBJECTIVES
from optlab.solvers import SOLVERS
from optlab.solvers.problem import Problem
from optlab.solvers.residuals import CompiledResidual, EagerResidual, ResidualTrials, residual_code

from ..least_squares_problems import (
    MINPACK_PROBLEMS,
    ResidualProblem,
    first_at_most,
    minpack_problems,
    watching_residuals,
)

SHIPPED = [name for name, cls in OBJECTIVES.items() if callable(getattr(cls, "residual", None))]
PROBLEMS = {name: OBJECTIVES[name] for name in SHIPPED} | {p.name + "_mgh": (lambda p=p: p) for p in
                                                              minpack_problems()}


def eager_residual(objective, x):
    with ad.no_grad():
        return ad.as_variable(objective.residual(ad.Variable(np.array(x, dtype=float)))).data.reshape(-1)


def central_differences(objective, x, h=1e-6):
    return np.stack([(eager_residual(objective, x + h * e) - eager_residual(objective, x - h * e)) / (2 * h)
                     for e in np.eye(x.size)], axis=1)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_compiled_jacobian_matches_finite_differences_and_the_eager_engine(name):
    objective = PROBLEMS[name]()
    rng = np.random.default_rng(3)
    x = objective.start() + 0.05 * (1.0 + np.abs(objective.start())) * rng.standard_normal(objective.dim)
    code = residual_code(objective, x)
    assert isinstance(code, CompiledResidual)
    r, jacobian = code.residual(x), code.jacobian(x)
    with ad.eager():
        eager = residual_code(objective, x)
        assert isinstance(eager, EagerResidual)
        r_eager, jacobian_eager = eager.residual(x), eager.jacobian(x)
    # the same operations on the same values: equal up to the order of sums
    scale = max(1.0, float(np.abs(r_eager).max()))
    np.testing.assert_allclose(r, r_eager, rtol=0, atol=1e-14 * scale)
    np.testing.assert_allclose(jacobian, jacobian_eager, rtol=0, atol=1e-13 * max(1.0, float(np.abs(jacobian).max())))
    # an independent reference: central differences of r, O(h^2) plus rounding / h
    fd = central_differences(objective, x)
    np.testing.assert_allclose(jacobian, fd, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(jacobian).max())))
    assert jacobian.shape == (r.size, x.size) and jacobian.flags.c_contiguous


def test_the_batched_and_the_scalar_column_code_agree_with_the_eager_jacobian():
    # least_squares (m = 50: batched code) and beale (scalar code), J at three points each
    for objective in (OBJECTIVES["least_squares"](), OBJECTIVES["beale"](), OBJECTIVES["rosenbrock"](dim=30)):
        code = residual_code(objective, objective.start())
        for seed in range(3):
            x = objective.start() + np.random.default_rng(seed).standard_normal(objective.dim)
            with ad.eager():
                expected = residual_code(objective, x).jacobian(x)
            np.testing.assert_allclose(code.jacobian(x), expected, rtol=1e-13, atol=1e-13)


def test_objectives_sharing_their_compiled_f_share_the_residual_code_and_no_others():
    a, b = OBJECTIVES["curve_fit"](seed=4), OBJECTIVES["curve_fit"](seed=4)
    x = a.start()
    assert residual_code(a, x) is residual_code(b, x)  # recorded once
    assert residual_code(OBJECTIVES["curve_fit"](seed=5), x) is not residual_code(a, x)
    # the same class and options (params() is the name alone), other residuals: f's code is not
    # shared (its check against the objective's own recording fails), nor is r's
    first = ResidualProblem("same_name", lambda x: ad.stack([x[0] - 1.0, x[1] - 2.0]), [0.0, 0.0])
    other = ResidualProblem("same_name", lambda x: ad.stack([x[0] + 1.0, x[1] * 3.0]), [0.0, 0.0])
    assert first.params() == other.params()
    code = residual_code(other, other.start())
    assert code is not residual_code(first, first.start())
    z = np.array([0.5, -0.25])
    np.testing.assert_array_equal(code.residual(z), [1.5, -0.75])
    np.testing.assert_array_equal(code.jacobian(z), [[1.0, 0.0], [0.0, 3.0]])


class ReadsValues(ResidualProblem):
    """A residual that branches on x.data: it cannot be replayed, so it stays eager."""

    def __init__(self) -> None:
        super().__init__("reads_values", None, [2.0, 1.0])

    def residual(self, x):
        sign = 1.0 if x.data[0] > 0 else -1.0
        return ad.stack([sign * (x[0] - 1.0), 10.0 * (x[1] - x[0] ** 2)])


class NotCompiled(ResidualProblem):
    compiled = False


def test_residuals_that_cannot_be_compiled_stay_on_the_eager_engine_and_still_solve():
    rosenbrock = {name: residual for name, residual, _ in MINPACK_PROBLEMS}["rosenbrock"]
    for objective in (ReadsValues(), NotCompiled("rosenbrock", rosenbrock, [-1.2, 1.0])):
        assert isinstance(residual_code(objective, objective.start()), EagerResidual)
        for solver in ("gauss_newton", "levenberg_marquardt"):
            out = run_set(objective, SOLVERS[solver](), None, Stop(gtol=1e-10))[0]
            assert out.status == "converged", (solver, out.message)
            np.testing.assert_allclose(out.state.x, [1.0, 1.0], atol=1e-8)


@pytest.mark.parametrize("solver", ["gauss_newton", "levenberg_marquardt"])
def test_compiled_and_eager_runs_take_the_same_path(solver):
    # r and J agree to rounding, so both runs take the same steps (to rounding) on a curved problem
    objective = OBJECTIVES["curve_fit"]()
    compiled = run_set(objective, SOLVERS[solver](), None, Stop(gtol=1e-10))[0]
    with ad.eager():
        eager = run_set(OBJECTIVES["curve_fit"](), SOLVERS[solver](), None, Stop(gtol=1e-10))[0]
    assert compiled.status == eager.status == "converged"
    assert (compiled.iterations, compiled.nfev, compiled.ngev) == (eager.iterations, eager.nfev, eager.ngev)
    np.testing.assert_allclose(compiled.state.x, eager.state.x, rtol=1e-12)


CHECKS_EVERY_EVALUATION = "limit" in inspect.signature(Problem).parameters
needs_target_checks = pytest.mark.skipif(not CHECKS_EVERY_EVALUATION,
                                         reason="Problem checks f's target at each evaluation once it takes a limit")


@needs_target_checks
def test_each_residual_evaluation_is_checked_against_the_target():
    objective = OBJECTIVES["beale"]()
    problem = Problem(objective, limit=1.0)
    trials = ResidualTrials(problem)
    assert trials.value(np.array([1.0, 1.0])) == pytest.approx(14.203125)  # above the limit: the run goes on
    with pytest.raises(EndRun) as ended:
        trials.value(np.array([3.0, 0.5]))  # the minimiser: f = 0
    assert ended.value.status == "target" and problem.nfev == 2 and ended.value.f == 0.0


@needs_target_checks
@pytest.mark.parametrize("solver", ["gauss_newton", "levenberg_marquardt"])
def test_a_residual_method_ends_at_the_first_evaluation_reaching_the_target(solver):
    # the solver's own loop (line-search or trust-region trials included) on Rosenbrock from (-1.2, 1)
    objective, seen = minpack_problems()[3], []
    problem, method = Problem(objective, limit=1e-6), SOLVERS[solver]()
    with watching_residuals(seen), pytest.raises(EndRun) as ended:
        state = method.init(problem, objective.start())
        for _ in range(1000):
            state = method.update(problem, state)
    assert ended.value.status == "target"
    assert problem.nfev == first_at_most(seen, 1e-6) == len(seen)  # the run's last evaluation is the first hit
    assert ended.value.f == seen[-1] <= 1e-6
