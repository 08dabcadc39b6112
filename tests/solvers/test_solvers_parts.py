"""The shared pieces of the solvers, each against an independent reference."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optlab import autodiff as ad
from optlab.errors import SolverFailure
from optlab.norms import SMALL
from optlab.objectives import OBJECTIVES, Objective
from optlab.solvers import SOLVERS
from optlab.solvers.descent import DescentSolver, DescentState
from optlab.solvers.gd import GradientDescent
from optlab.solvers.hessian_modification import MODIFICATIONS
from optlab.solvers.line_search import LineSearch, Step, make_line_search
from optlab.solvers.newton import newton_direction
from optlab.solvers.newton_cg import forcing_tolerance, truncated_cg
from optlab.solvers.problem import Problem
from optlab.solvers.residuals import evaluate_residual, residual_and_jacobian
from optlab.solvers.trust_subproblems import exact_step, steihaug_cg

# -- schedules ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("constant", lambda k: 0.1),
    ("exponential", lambda k: 0.1 * 0.5 ** (k / 10)),
    ("step", lambda k: 0.1 * 0.5 ** (k // 10)),
    ("inverse_time", lambda k: 0.1 / (1 + 0.5 * k / 10)),
])
def test_schedules_follow_their_closed_forms(name, expected):
    schedule = GradientDescent(lr=0.1, schedule=name, decay_rate=0.5, decay_steps=10).lr_at
    for k in (0, 1, 9, 10, 11, 25, 1000):
        assert schedule(k) == pytest.approx(expected(k), rel=1e-15)
    assert schedule(0) == 0.1


def test_decaying_schedules_shrink_and_the_logged_step_is_lr_k():
    import optlab

    r = optlab.minimize("quadratic", "gd", solver_options={"lr": 0.2, "schedule": "step", "decay_rate": 0.5,
                                                            "decay_steps": 5}, max_iter=12, gtol=0)
    lr = r.iterates.step_size.to_numpy()[1:]
    np.testing.assert_array_equal(lr, [0.2 * 0.5 ** (k // 5) for k in range(12)])


# -- line searches ---------------------------------------------------------------------------


def _line_problem(name: str = "rosenbrock", x=(-1.2, 1.0)):
    problem = Problem(OBJECTIVES[name]())
    x = np.array(x, dtype=float)
    f, g = problem.objective.value_and_grad(x)
    return problem, x, f, g


@settings(max_examples=25, deadline=None)
@given(angle=st.floats(-1.4, 1.4), scale=st.floats(-3, 1), c2=st.sampled_from([0.1, 0.4, 0.9]))
def test_wolfe_step_satisfies_the_strong_wolfe_conditions(angle, scale, c2):
    problem, x, f, g = _line_problem()
    # a descent direction: -g rotated by |angle| < pi/2, of length 10^scale
    c, s = math.cos(angle), math.sin(angle)
    d = -np.array([[c, -s], [s, c]]) @ g / np.linalg.norm(g) * 10**scale
    step = make_line_search("wolfe", 1e-4, c2).search(problem, x, f, g, d, 1.0)
    f_new, g_new = problem.objective.value_and_grad(x + step.alpha * d)
    assert step.alpha > 0
    assert f_new <= f + 1e-4 * step.alpha * (g @ d)
    assert abs(g_new @ d) <= c2 * abs(g @ d)
    np.testing.assert_array_equal(step.x, x + step.alpha * d)
    assert step.f == f_new and np.array_equal(step.g, g_new)
    assert problem.nfev == problem.ngev >= 1  # every trial counted


def test_wolfe_interpolation_lands_on_the_exact_minimiser_of_a_quadratic_line():
    # along any line a quadratic is a parabola: one cubic interpolation is exact
    problem, x, f, g = _line_problem("quadratic", (0.0, 0.0))
    step = make_line_search("wolfe", 1e-4, 0.01).search(problem, x, f, g, -g, 10.0)
    exact = float(g @ g) / float(g @ (problem.objective.Q @ g))
    assert step.alpha == pytest.approx(exact, rel=1e-12)
    assert problem.nfev == 2  # the overshoot, then the interpolated minimiser


class _Recording(Problem):
    """Keeps every point where f and g were evaluated."""

    def __init__(self, objective):
        super().__init__(objective)
        self.points = []

    def value_and_grad(self, x):
        self.points.append(np.array(x, dtype=float))
        return super().value_and_grad(x)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["rosenbrock", "himmelblau", "six_hump_camel", "ackley"]),
       angle=st.floats(-1.4, 1.4), scale=st.floats(-3, 1), c2=st.sampled_from([0.1, 0.4, 0.9]),
       alpha0=st.floats(0.01, 1.0))
def test_wolfe_search_tries_the_steps_of_minpack_dcsrch(name, angle, scale, c2, alpha0):
    # reference: scipy's wrapper of MINPACK-2's dcsrch (Moré and Thuente), the same trial steps in the same order
    from hypothesis import assume
    from scipy.optimize._linesearch import scalar_search_wolfe1

    problem, x, f, g = _line_problem(name, (-1.2, 1.0))
    problem = _Recording(problem.objective)
    c, s = math.cos(angle), math.sin(angle)
    d = -np.array([[c, -s], [s, c]]) @ g / np.linalg.norm(g) * 10**scale
    trials = []

    def phi(alpha):
        trials.append(alpha)
        return problem.objective.value(x + alpha * d)

    # old_phi0 is set so that scipy's first trial, min(1, 1.01 * 2 (phi0 - old_phi0) / phi'(0)), is alpha0
    alpha, _, _ = scalar_search_wolfe1(phi, lambda a: float(problem.objective.grad(x + a * d) @ d), f,
                                       f - alpha0 * float(g @ d) / 2.02, float(g @ d), c1=1e-4, c2=c2,
                                       amax=1e10, amin=0.0, xtol=1e-14)
    assume(alpha is not None)  # dcsrch ended on a warning (rounding): no reference step
    step = make_line_search("wolfe", 1e-4, c2).search(problem, x, f, g, d, alpha0)
    np.testing.assert_allclose([(p - x) @ d / (d @ d) for p in problem.points], trials, rtol=1e-9)
    assert step.alpha == pytest.approx(alpha, rel=1e-9)


def test_wolfe_search_on_a_line_without_minimiser_extrapolates_to_its_longest_step():
    # phi(alpha) = f(0) - alpha: equal slopes everywhere, so no cubic or secant step exists
    class Linear(Objective):
        name, dim, x0, minimizers, f_star, box = "linear", 2, np.zeros(2), np.zeros((0, 2)), None, np.ones((2, 2))

        def f(self, x):
            return -ad.sum(x)

    problem = Problem(Linear())
    x = np.zeros(2)
    f, g = problem.objective.value_and_grad(x)
    wolfe = make_line_search("wolfe")
    step = wolfe.search(problem, x, f, g, -g, 1.0)
    assert step.alpha == wolfe.max_alpha and step.f == pytest.approx(-2.0 * wolfe.max_alpha)
    assert problem.nfev < wolfe.max_trials


def test_truncated_cg_stops_at_the_first_residual_within_the_forcing_tolerance_in_the_1_norm():
    # seed 0: the 1-norm test (as scipy's Newton-CG) stops after 2 CG steps, the 2-norm one would take 4
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 8))
    h = a @ a.T + 0.1 * np.eye(8)
    g = 0.05 * rng.standard_normal(8)
    tolerance = forcing_tolerance(g)
    gnorm = float(np.abs(g).sum())
    assert tolerance == pytest.approx(min(0.5, math.sqrt(gnorm)) * gnorm)
    # plain conjugate gradients on h d = -g, written out: the first iterate whose residual passes
    d, r = np.zeros(8), g.copy()
    p = -r
    iterates = [(d, r)]
    for _ in range(8):
        a_ = float(r @ r) / float(p @ h @ p)
        d, r_next = d + a_ * p, r + a_ * (h @ p)
        p, r = -r_next + float(r_next @ r_next) / float(r @ r) * p, r_next
        iterates.append((d, r))
    first_1 = next(i for i, (_, r) in enumerate(iterates) if np.abs(r).sum() <= tolerance)
    norm2 = float(np.linalg.norm(g))
    first_2 = next(i for i, (_, r) in enumerate(iterates) if np.linalg.norm(r) <= min(0.5, math.sqrt(norm2)) * norm2)
    assert first_1 == 2 and first_2 == 4
    products = []
    direction = truncated_cg(lambda v: products.append(v) or h @ v, g, tolerance, 100)
    assert len(products) == first_1
    np.testing.assert_allclose(direction, iterates[first_1][0], rtol=1e-10)


def test_armijo_backtracks_by_halving_to_the_first_sufficient_decrease():
    problem, x, f, g = _line_problem()
    d = -g
    step = make_line_search("armijo", 1e-4).search(problem, x, f, g, d, 1.0)
    j = round(-math.log2(step.alpha))
    assert step.alpha == 2.0**-j
    value = problem.objective.value
    assert value(x + step.alpha * d) <= f + 1e-4 * step.alpha * (g @ d)
    assert value(x + 2 * step.alpha * d) > f + 1e-4 * 2 * step.alpha * (g @ d)
    assert problem.nfev == j + 1 and problem.ngev == 1  # trials need f only


def test_no_line_search_takes_the_step_as_given_with_one_evaluation():
    problem, x, f, g = _line_problem()
    step = make_line_search("none").search(problem, x, f, g, -g, 0.001)
    np.testing.assert_array_equal(step.x, x - 0.001 * g)
    assert (problem.nfev, problem.ngev) == (1, 1)


@pytest.mark.parametrize("name", ["armijo", "wolfe"])
def test_line_searches_refuse_an_ascent_direction(name):
    problem, x, f, g = _line_problem()
    with pytest.raises(SolverFailure, match="not a descent direction"):
        make_line_search(name).search(problem, x, f, g, g, 1.0)


def test_every_line_search_solver_uses_the_shared_implementations():
    for name in ("gd", "newton", "newton_cg", "bfgs", "lbfgs", "cg", "gauss_newton"):
        assert isinstance(SOLVERS[name]().search, LineSearch)
        assert type(SOLVERS[name]().search).__module__ == "optlab.solvers.line_search"


# -- Hessian modification ----------------------------------------------------------------


def test_a_descent_step_keeps_every_other_field_of_the_state():
    """DescentSolver.advance makes a plain DescentState directly: the same state as dataclasses.replace
    makes, every field included (each set here to a value other than its default)."""
    values = {"x": np.array([1.0, 2.0]), "f": 3.0, "g": np.array([4.0, 5.0]), "step_size": 6.0, "done": True,
              "k": 7, "f_previous": 8.0}
    assert set(values) == {field.name for field in dataclasses.fields(DescentState)}
    state = DescentState(**values)
    step = Step(0.5, np.array([9.0, 10.0]), 11.0, np.array([12.0, 13.0]))
    made = DescentSolver().advance(state, step, np.array([1.0, 1.0]))
    expected = dataclasses.replace(state, x=step.x, f=step.f, g=step.g, step_size=step.alpha, k=8, f_previous=3.0)
    assert type(made) is DescentState
    for field in dataclasses.fields(DescentState):
        assert np.array_equal(getattr(made, field.name), getattr(expected, field.name)), field.name


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(st.one_of(st.floats(width=64), st.sampled_from([1e308, -1e308, 1e-320])), min_size=1,
                        max_size=SMALL + 3))
def test_a_newton_step_is_refused_exactly_where_it_holds_inf_or_nan(entries):
    """newton_direction looks at a small step's entries as Python floats, a large one's with numpy."""
    g = np.array(entries)
    finite = bool(np.all(np.isfinite(g)))
    try:
        with np.errstate(all="ignore"):
            d = newton_direction(np.eye(len(g)), g)
    except SolverFailure as exc:
        assert not finite and "not finite" in str(exc)
    else:
        assert finite and np.array_equal(d, -g)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 6))
def test_modified_hessians_are_positive_definite_and_leave_convex_ones_alone(seed, n):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    indefinite = a + a.T
    spd = a @ a.T + n * np.eye(n)
    for name in ("eigenvalue", "cholesky"):
        modified = MODIFICATIONS[name](indefinite)
        assert np.linalg.eigvalsh(0.5 * (modified + modified.T))[0] > 0
        np.testing.assert_allclose(MODIFICATIONS[name](spd), spd, rtol=1e-12, atol=1e-12)
    # the eigenvalue modification flips the sign of negative curvature and keeps the eigenvectors
    w, v = np.linalg.eigh(indefinite)
    np.testing.assert_allclose(np.linalg.eigvalsh(MODIFICATIONS["eigenvalue"](indefinite)),
                               np.sort(np.maximum(np.abs(w), np.sqrt(np.finfo(float).eps) * max(1, abs(w).max()))),
                               rtol=1e-10, atol=1e-10)
    assert MODIFICATIONS["none"](indefinite) is indefinite


# -- trust-region subproblems ------------------------------------------------------------------


def _model_minimum_on_ball(h, g, radius, samples=20001):
    """Reference in 2-D: the model on a fine circle of the boundary, and the interior Newton step."""
    t = np.linspace(0, 2 * np.pi, samples)
    ring = radius * np.stack([np.cos(t), np.sin(t)], axis=1)
    values = ring @ g + 0.5 * np.einsum("ij,jk,ik->i", ring, h, ring)
    best = float(values.min())
    if np.all(np.linalg.eigvalsh(h) > 0):
        p = -np.linalg.solve(h, g)
        if np.linalg.norm(p) <= radius:
            best = min(best, float(g @ p + 0.5 * p @ h @ p))
    return best


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), radius=st.floats(0.05, 5.0), hard=st.booleans())
def test_exact_subproblem_is_the_global_minimiser_of_the_model(seed, radius, hard):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((2, 2))
    h = a + a.T
    g = rng.standard_normal(2)
    if hard:  # g orthogonal to the lowest eigenvector: the hard case
        w, v = np.linalg.eigh(h)
        g = g - v[:, 0] * (v[:, 0] @ g)
    p, on_boundary, _ = exact_step(h, g, radius)
    model = float(g @ p + 0.5 * p @ h @ p)
    assert np.linalg.norm(p) <= radius * (1 + 1e-9)
    assert model <= _model_minimum_on_ball(h, g, radius) + 1e-6 * (1 + abs(model))
    assert on_boundary == (abs(np.linalg.norm(p) - radius) <= 1e-8 * radius)


def test_steihaug_takes_the_newton_step_inside_and_stops_on_the_boundary():
    h = np.array([[3.0, 1.0], [1.0, 2.0]])
    g = np.array([1.0, -2.0])
    newton = -np.linalg.solve(h, g)
    p, on_boundary, _ = steihaug_cg(lambda v: h @ v, g, 10.0)
    np.testing.assert_allclose(p, newton, rtol=0.6)  # truncated CG: within the forcing tolerance
    assert not on_boundary
    p, on_boundary, _ = steihaug_cg(lambda v: h @ v, g, 0.1)
    assert on_boundary and np.linalg.norm(p) == pytest.approx(0.1)
    p, on_boundary, _ = steihaug_cg(lambda v: -h @ v, g, 0.5)  # negative curvature: to the boundary, downhill
    assert on_boundary and np.linalg.norm(p) == pytest.approx(0.5) and g @ p < 0


# -- residual Jacobians ------------------------------------------------------------------------


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "eager"])
@pytest.mark.parametrize(("name", "options"), [("curve_fit", {}), ("least_squares", {"m": 3, "n": 5}),
                                                ("least_squares", {"m": 8, "n": 3})])
def test_residual_jacobian_matches_finite_differences(name, options, compiled):
    import contextlib

    from optlab import autodiff as ad

    objective = OBJECTIVES[name](**options)
    rng = np.random.default_rng(1)
    x = objective.start() + rng.standard_normal(objective.dim) * 0.3
    with contextlib.nullcontext() if compiled else ad.eager():
        r, jacobian = residual_and_jacobian(objective, x)

    def residual(v):
        with ad.no_grad():
            return ad.as_variable(objective.residual(ad.Variable(v))).data.reshape(-1)

    # eager: r itself; compiled: the same operations, sums (A x) possibly in another order
    np.testing.assert_allclose(r, residual(x), rtol=0, atol=0 if not compiled else 4e-16 * np.abs(r).max())
    h = 1e-6
    fd = np.stack([(residual(x + h * e) - residual(x - h * e)) / (2 * h) for e in np.eye(x.size)], axis=1)
    np.testing.assert_allclose(jacobian, fd, rtol=1e-6, atol=1e-7)
    f, g = objective.value_and_grad(x)
    assert f == pytest.approx(r @ r, rel=1e-12)
    np.testing.assert_allclose(g, 2 * jacobian.T @ r, rtol=1e-10, atol=1e-10)
    problem = Problem(objective)
    evaluate_residual(problem, x)
    assert (problem.nfev, problem.ngev, problem.nhev) == (1, 1, 0)
