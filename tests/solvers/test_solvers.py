"""Every solver on the problems it is meant for; honest counts; independent checks.

Budgets are stated per case: the run must stop by its convergence test within ``budget``
iterations, at a known minimiser. Reference numbers: the source notes (default gd and
Newton), Nocedal and Wright's Rosenbrock experiment, and scipy's implementations of the
same algorithms (test-only references).
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import optlab
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.objectives import OBJECTIVES, Objective
from optlab.solvers import SOLVERS
from optlab.solvers.problem import Problem

NOTES_NEWTON = [2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978,
                1.0009084519430513, 1.0000012353089454, 1.000000000002289, 1.0]


def _distance_to_minimiser(objective: Objective, x: np.ndarray) -> float:
    return float(np.min(np.linalg.norm(objective.minimizers - x, axis=1)))


# (solver, solver options, objective, objective options, budget, tolerance on ||x - x*||)
CASES = [
    ("gd", {"lr": 0.1}, "quadratic", {}, 200, 1e-7),
    ("gd", {"lr": 0.15, "schedule": "inverse_time", "decay_rate": 1.0, "decay_steps": 200}, "quadratic", {}, 400, 1e-7),
    ("gd", {"lr": 0.15, "schedule": "exponential", "decay_rate": 0.7, "decay_steps": 100}, "quadratic", {}, 400, 1e-7),
    ("gd", {"lr": 1.0, "line_search": "armijo"}, "quadratic", {}, 200, 1e-7),
    # f* = 0: decreases stay resolvable down to ||g|| = 1e-8 (on least_squares, f* = 0.6, they vanish in
    # f's rounding near ||g|| ~ 1e-7 and the run honestly ends stalled)
    ("gd", {"lr": 1.0, "line_search": "wolfe"}, "quadratic", {"dim": 4, "cond": 30.0}, 400, 1e-7),
    ("momentum", {"lr": 0.05, "beta": 0.5}, "quadratic", {}, 200, 1e-7),
    ("nesterov", {"lr": 0.1, "beta": 0.5}, "quadratic", {}, 100, 1e-7),
    ("adagrad", {"lr": 0.5}, "quadratic", {}, 100, 1e-7),
    ("rmsprop", {"lr": 0.01, "schedule": "exponential", "decay_rate": 0.5, "decay_steps": 100}, "quadratic", {},
     2500, 1e-7),
    ("adam", {"lr": 0.1}, "quadratic", {}, 450, 1e-7),
    ("newton", {}, "double_well", {}, 8, 1e-11),
    ("newton", {}, "rosenbrock", {}, 6, 1e-12),
    ("newton", {"line_search": "armijo", "hessian_modification": "eigenvalue"}, "himmelblau", {}, 12, 1e-9),
    ("newton", {"line_search": "wolfe", "hessian_modification": "cholesky"}, "himmelblau", {}, 12, 1e-9),
    ("newton", {"line_search": "wolfe", "hessian_modification": "eigenvalue"}, "beale", {}, 15, 1e-8),
    ("newton_cg", {}, "rosenbrock", {"dim": 100}, 60, 1e-8),
    ("newton_cg", {}, "beale", {}, 20, 1e-8),
    ("trust_region", {}, "rosenbrock", {}, 30, 1e-8),
    ("trust_region", {"subproblem": "exact"}, "himmelblau", {}, 15, 1e-9),
    ("trust_region", {"subproblem": "exact"}, "beale", {}, 15, 1e-8),
    ("bfgs", {}, "rosenbrock", {}, 40, 1e-8),
    ("bfgs", {}, "beale", {}, 30, 1e-8),
    ("lbfgs", {"m": 3}, "rosenbrock", {"dim": 10}, 130, 1e-8),  # scipy L-BFGS-B (maxcor 3): 120; optlab: 120
    ("lbfgs", {}, "curve_fit", {}, 30, 1e-8),
    ("cg", {}, "rosenbrock", {}, 40, 1e-8),
    ("cg", {"beta": "fletcher_reeves"}, "quadratic", {}, 40, 1e-8),
    ("cg", {}, "quadratic", {"dim": 10, "cond": 100.0}, 40, 1e-7),
    ("gauss_newton", {}, "curve_fit", {}, 15, 1e-8),
    ("gauss_newton", {"line_search": "none"}, "least_squares", {}, 1, 1e-10),
    ("levenberg_marquardt", {}, "curve_fit", {}, 20, 1e-8),
    ("levenberg_marquardt", {}, "least_squares", {}, 10, 1e-9),
    ("lstsq", {}, "least_squares", {}, 1, 1e-12),
    ("nelder_mead", {"xatol": 1e-8, "fatol": 1e-12}, "rosenbrock", {}, 200, 1e-6),
    ("nelder_mead", {}, "himmelblau", {}, 60, 1e-3),
]


@pytest.mark.parametrize(("solver", "options", "objective", "objective_options", "budget", "tolerance"), CASES,
                         ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_solver_reaches_a_known_minimiser_within_its_budget(solver, options, objective, objective_options, budget,
                                                            tolerance):
    r = optlab.minimize(objective, solver, objective_options=objective_options, solver_options=options,
                        max_iter=budget, gtol=1e-8)
    assert r.status == "converged", r.message
    assert r.iterations <= budget
    obj = OBJECTIVES[objective](**objective_options)
    assert _distance_to_minimiser(obj, r.x) <= tolerance


def test_every_solver_has_a_convergence_case():
    assert {c[0] for c in CASES} == set(SOLVERS)


# -- the seeds' semantics are kept ----------------------------------------------------------


def test_default_gd_is_the_notes_loop_bit_for_bit():
    objective = OBJECTIVES["rosenbrock"]()
    r = optlab.minimize(objective, "gd", max_iter=300, gtol=0)
    x = np.array([0.0, 2.0])
    expected = [x.copy()]
    for _ in range(300):
        x = x - 0.001 * objective.grad(x)
        expected.append(x.copy())
    got = r.iterates[["x_0", "x_1"]].to_numpy()
    np.testing.assert_array_equal(got, np.array(expected))
    assert (r.iterates.step_size.iloc[1:] == 0.001).all()


def test_default_newton_gives_the_notes_iterates():
    r = optlab.minimize("double_well", "newton")
    np.testing.assert_array_equal(r.iterates.x_0.to_numpy(), NOTES_NEWTON)
    assert (r.iterates.step_size.iloc[1:] == 1.0).all()


def test_pure_newton_climbs_where_modified_newton_descends():
    # Himmelblau from (0, 0): H is negative definite, pure Newton converges to the local maximum
    pure = optlab.minimize("himmelblau", "newton", gtol=1e-10)
    assert pure.status == "converged" and pure.f > 180  # the maximum f = 181.6 at (-0.2708, -0.9230)
    modified = optlab.minimize("himmelblau", "newton", solver_options={"line_search": "armijo",
                                                                       "hessian_modification": "eigenvalue"},
                               gtol=1e-10)
    assert modified.f < 1e-15 and np.all(np.diff(modified.iterates.f) < 0)  # descends at every step
    # ... and pure Newton with a line search refuses the ascent direction instead of climbing
    stuck = optlab.minimize("himmelblau", "newton", solver_options={"line_search": "wolfe"})
    assert stuck.status == "failed" and "not a descent direction" in stuck.message


# -- Nocedal and Wright's Rosenbrock experiment (from (-1.2, 1), ||grad f|| <= 1e-5) --------------


def _nw(solver, options, max_iter=50_000):
    return optlab.minimize("rosenbrock", solver, x0=[-1.2, 1.0], solver_options=options, gtol=1e-5,
                           max_iter=max_iter)


def test_nocedal_wright_newton_with_backtracking_needs_about_21_iterations():
    r = _nw("newton", {"line_search": "armijo"})
    assert r.status == "converged"
    assert 18 <= r.iterations <= 25  # N&W: 21; optlab: 21


def test_nocedal_wright_bfgs_needs_about_34_iterations():
    r = _nw("bfgs", {})
    assert r.status == "converged"
    assert 25 <= r.iterations <= 45  # N&W: 34; optlab: 32


def test_nocedal_wright_steepest_descent_with_backtracking_needs_about_10000_iterations():
    r = _nw("gd", {"lr": 1.0, "line_search": "armijo"})
    assert r.status == "converged"
    assert 8_000 <= r.iterations <= 14_000  # about 10,000; optlab: 10,916
    assert np.abs(r.x - 1).max() < 1e-4


# -- honest evaluation counts ------------------------------------------------------------------


class Counting(Objective):
    """Wraps an objective and counts the calls that reach it, by kind."""

    def __init__(self, inner: Objective) -> None:
        self.inner, self.name = inner, inner.name
        self.dim, self.x0, self.minimizers, self.f_star, self.box = (inner.dim, inner.x0, inner.minimizers,
                                                                     inner.f_star, inner.box)
        self.calls: collections.Counter = collections.Counter()

    def f(self, x):
        return self.inner.f(x)

    def value(self, x):
        self.calls["f"] += 1
        return self.inner.value(x)

    def value_and_grad(self, x):
        self.calls["f"] += 1
        self.calls["g"] += 1
        return self.inner.value_and_grad(x)

    def grad(self, x):
        self.calls["g"] += 1
        return self.inner.grad(x)

    def hessian(self, x):
        self.calls["h"] += 1
        return self.inner.hessian(x)

    def hvp(self, x, v):
        self.calls["h"] += 1
        return self.inner.hvp(x, v)


class CountingResiduals(Counting):
    def residual(self, x):  # (on Variables: the recordings of compiled code, or each eager evaluation)
        self.calls["residual"] += 1
        return self.inner.residual(x)

    def linear_system(self):
        return self.inner.linear_system()


COUNT_CASES = [(name, {}) for name in SOLVERS] + [
    ("gd", {"lr": 1.0, "line_search": "wolfe"}), ("gd", {"lr": 1.0, "line_search": "armijo"}),
    ("newton", {"line_search": "wolfe", "hessian_modification": "eigenvalue"}),
    ("trust_region", {"subproblem": "exact"}), ("gauss_newton", {"line_search": "none"}),
]


@pytest.mark.parametrize(("solver", "options"), COUNT_CASES, ids=[f"{s}-{list(o.values())}" for s, o in COUNT_CASES])
def test_counts_are_every_evaluation_that_reached_the_objective(solver, options, monkeypatch):
    import optlab.solvers.residuals as residuals

    residual = solver in ("gauss_newton", "levenberg_marquardt", "lstsq")
    objective = CountingResiduals(OBJECTIVES["least_squares"]() if solver == "lstsq" else OBJECTIVES["curve_fit"]()) \
        if residual else Counting(OBJECTIVES["beale"]())
    code_for = residuals.residual_code

    class CountedCode:  # r and J reach the objective through its residual code (compiled or eager)
        def __init__(self, code):
            self.code = code

        def residual(self, x):
            objective.calls["r"] += 1
            return self.code.residual(x)

        def jacobian(self, x):
            objective.calls["J"] += 1
            return self.code.jacobian(x)

    monkeypatch.setattr(residuals, "residual_code", lambda obj, x: CountedCode(code_for(obj, x)))
    out = run_set(objective, SOLVERS[solver](**options), None, Stop(max_iter=40, gtol=1e-10))[0]
    assert out.status in ("converged", "max_iter", "stalled"), out.message  # (stalled: at f's rounding)
    calls = objective.calls
    if solver == "nelder_mead":  # derivative free: no gradient is evaluated, not even for the log
        assert (out.nfev, out.ngev, out.nhev) == (calls["f"], 0, 0)
        assert calls["g"] == 0
        return
    # r at a point is one function evaluation, J there one gradient evaluation: each point evaluated once
    assert out.nfev == calls["f"] + calls["r"]
    assert out.ngev == calls["g"] + calls["J"]
    # (a converged run's point is classified by one Hessian more, after the run: not the method's)
    assert out.nhev == calls["h"] - (out.point is not None)
    if solver in ("gauss_newton", "levenberg_marquardt"):
        assert calls["J"] == out.iterations + 1 and calls["r"] == out.nfev  # J only at accepted points


def test_newton_cg_is_hessian_free():
    objective = Counting(OBJECTIVES["rosenbrock"](dim=30))

    def no_matrix(x):
        raise AssertionError("newton_cg asked for the n x n Hessian")

    objective.hessian = no_matrix
    out = run_set(objective, SOLVERS["newton_cg"](), None, Stop(gtol=1e-8))[0]
    assert out.status == "converged", out.message
    assert out.nhev == objective.calls["h"] > out.iterations  # Hessian-vector products, several per step
    np.testing.assert_allclose(out.state.x, 1.0, atol=1e-8)


def test_step_size_is_the_multiplier_or_the_step_length():
    r = optlab.minimize("rosenbrock", "trust_region", gtol=1e-8)
    x = r.iterates[["x_0", "x_1"]].to_numpy()
    np.testing.assert_allclose(r.iterates.step_size.to_numpy()[1:], np.linalg.norm(np.diff(x, axis=0), axis=1),
                               rtol=1e-6)  # ||p|| against ||(x + p) - x||: equal up to the rounding of x
    r = optlab.minimize("rosenbrock", "bfgs", x0=[-1.2, 1], gtol=1e-8)
    alphas = r.iterates.step_size.to_numpy()[1:]
    assert np.all(alphas > 0) and alphas[0] < 1 and np.median(alphas) == 1.0  # unit steps near the solution


# -- against scipy's implementations of the same algorithms (test-only references) -------------------


def _scipy(objective, method, **kwargs):
    from scipy.optimize import minimize

    return minimize(objective.value, objective.start(), method=method, **kwargs)


@pytest.mark.parametrize("name", ["rosenbrock", "beale", "quadratic"])
def test_nelder_mead_takes_scipys_path_exactly(name):
    objective = OBJECTIVES[name]()
    ours = run_set(objective, SOLVERS["nelder_mead"](xatol=1e-8, fatol=1e-8, restart=False), None, Stop(gtol=0))[0]
    theirs = _scipy(objective, "Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-8})
    assert ours.status == "converged" and theirs.status == 0
    assert ours.nfev == theirs.nfev
    assert ours.state.simplex_iterations == theirs.nit - 1  # scipy counts from 1
    np.testing.assert_allclose(ours.state.x, theirs.x, rtol=1e-10)  # the same path, rounded differently
    assert ours.ngev == 0 and ours.state.g is None


@pytest.mark.parametrize(("solver", "options", "method", "derivatives"), [
    ("bfgs", {}, "BFGS", ("jac",)),
    ("lbfgs", {}, "L-BFGS-B", ("jac",)),
    ("cg", {}, "CG", ("jac",)),
    ("trust_region", {}, "trust-ncg", ("jac", "hess")),
    ("trust_region", {"subproblem": "exact"}, "trust-exact", ("jac", "hess")),
])
def test_quasi_newton_and_trust_region_match_scipy_on_rosenbrock(solver, options, method, derivatives):
    objective = OBJECTIVES["rosenbrock"]()
    given_ = {"jac": objective.grad, "hess": objective.hessian}
    ours = run_set(objective, SOLVERS[solver](**options), None, Stop(gtol=1e-6))[0]

    def stop(intermediate_result):
        if np.linalg.norm(objective.grad(intermediate_result.x)) <= 1e-6:
            raise StopIteration

    options_ = {"gtol": 0.0, "ftol": 0.0} if method == "L-BFGS-B" else {"gtol": 1e-6, "norm": 2} \
        if method in ("BFGS", "CG") else {"gtol": 1e-6}
    theirs = _scipy(objective, method, callback=stop, options=options_, **{k: given_[k] for k in derivatives})
    np.testing.assert_allclose(ours.state.x, theirs.x, atol=1e-5)
    np.testing.assert_allclose(ours.state.x, [1.0, 1.0], atol=1e-5)
    assert ours.nfev <= 1.1 * theirs.nfev + 1


class RecordingProblem(Problem):
    """Keeps every point where f and g were evaluated together (the line-search trials)."""

    def __init__(self, objective: Objective) -> None:
        super().__init__(objective)
        self.points: list[np.ndarray] = []

    def value_and_grad(self, x):
        self.points.append(np.array(x, dtype=float))
        return super().value_and_grad(x)


def test_bfgs_first_trials_follow_the_interpolated_step_rule():
    # Nocedal and Wright eq. 3.60 with the cap at 1 and the factor 1.01; at k = 0, f_{-1} = f_0 + ||g_0|| / 2
    problem = RecordingProblem(OBJECTIVES["rosenbrock"]())
    solver = SOLVERS["bfgs"]()
    state = solver.init(problem, np.array([-1.2, 1.0]))
    f_previous = state.f + 0.5 * np.linalg.norm(state.g)
    for k in range(10):
        d = -state.g if state.inverse_hessian is None else -state.inverse_hessian @ state.g
        alpha0 = min(1.0, 1.01 * 2.0 * (state.f - f_previous) / (state.g @ d))
        if k == 0:
            assert alpha0 == pytest.approx(1.01 / np.linalg.norm(state.g), rel=1e-14)
        n = len(problem.points)
        new = solver.update(problem, state)
        np.testing.assert_allclose(problem.points[n], state.x + alpha0 * d, rtol=1e-13)
        f_previous, state = state.f, new


@pytest.mark.parametrize("name", ["rosenbrock", "beale", "six_hump_camel", "curve_fit"])
def test_bfgs_takes_scipys_path(name):
    # the same first trials and the same line search (Moré-Thuente): scipy's BFGS iterates and counts
    objective = OBJECTIVES[name]()
    ours = run_set(objective, SOLVERS["bfgs"](), None, Stop(gtol=1e-6, max_iter=200))[0]
    path = []

    def record(intermediate_result):
        path.append(intermediate_result.x)
        if np.linalg.norm(objective.grad(intermediate_result.x)) <= 1e-6:
            raise StopIteration

    theirs = _scipy(objective, "BFGS", jac=objective.grad, callback=record, options={"gtol": 1e-6, "norm": 2})
    assert ours.status == "converged" and ours.iterations == len(path)
    assert (ours.nfev, ours.ngev) == (theirs.nfev, theirs.njev)
    np.testing.assert_allclose(ours.state.x, path[-1], rtol=1e-8)


# -- a property: every second-order and quasi-Newton method solves convex quadratics -----------------


@settings(max_examples=8, deadline=None)
@given(dim=st.integers(2, 6), cond=st.floats(1.0, 1e3), seed=st.integers(0, 1000))
@example(dim=5, cond=999.0, seed=697)  # cg lost conjugacy after one inexact step (135 iterations)
def test_newton_type_methods_solve_random_convex_quadratics(dim, cond, seed):
    objective = OBJECTIVES["quadratic"](dim=dim, cond=cond, seed=seed)
    for solver, options, budget in [("newton", {}, 1), ("newton", {"line_search": "wolfe"}, 1),
                                    ("newton_cg", {}, 40), ("trust_region", {}, 60),
                                    ("trust_region", {"subproblem": "exact"}, 60), ("bfgs", {}, 80),
                                    ("lbfgs", {}, 80), ("cg", {}, 120)]:
        out = run_set(objective, SOLVERS[solver](**options), None, Stop(max_iter=budget, gtol=1e-9))[0]
        assert out.status == "converged", (solver, options, out.message)
        np.testing.assert_allclose(out.state.x, 1.0, atol=1e-9 * cond)
