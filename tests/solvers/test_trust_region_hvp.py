"""trust_region with Steihaug-CG works from Hessian-vector products alone; the exact
subproblem takes the dense Hessian. Both against scipy's trust-ncg / the model written out."""

from __future__ import annotations

import numpy as np
import pytest

from optlab import autodiff as ad
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.objectives import OBJECTIVES
from optlab.objectives.base import Objective
from optlab.solvers import SOLVERS
from optlab.solvers.trust_subproblems import exact_step, steihaug_cg

from ..least_squares_problems import ResidualProblem


class Watched(Objective):
    """Rosenbrock in n dimensions, counting Hessian-vector products and refusing the n x n Hessian."""

    def __init__(self, dim: int) -> None:
        self.inner = OBJECTIVES["rosenbrock"](dim=dim)
        self.name, self.dim, self.x0, self.box = "watched", dim, self.inner.x0, self.inner.box
        self.products = 0

    def f(self, x):
        return self.inner.f(x)

    def hvp(self, x, v):
        self.products += 1
        return self.inner.hvp(x, v)

    def hessian(self, x):
        raise AssertionError("trust_region (steihaug) asked for the n x n Hessian")


def test_steihaug_trust_region_takes_no_dense_hessian_and_follows_scipys_trust_ncg():
    from scipy.optimize import minimize

    objective = Watched(200)
    out = run_set(objective, SOLVERS["trust_region"](), None, Stop(gtol=1e-6))[0]
    assert out.status == "converged", out.message
    assert out.nhev == objective.products > out.iterations  # several products per step, each counted
    np.testing.assert_allclose(out.state.x, 1.0, atol=1e-6)
    inner = objective.inner
    theirs = minimize(inner.value, inner.start(), jac=inner.grad, hessp=inner.hvp, method="trust-ncg",
                      options={"gtol": 1e-6})
    assert theirs.success
    # the same algorithm (Nocedal and Wright 4.1 with 7.2, the same constants): the same trials
    assert (out.nfev, out.ngev) == (theirs.nfev, theirs.njev)
    # scipy takes one more product per trial for the model's value (two more where CG meets negative
    # curvature); optlab keeps the model along the CG path
    assert out.nhev <= theirs.nhev - (theirs.nfev - 1)


def _scipy_steihaug(h, g, radius):
    from scipy.optimize._trustregion_ncg import CGSteihaugSubproblem  # test-only reference

    return CGSteihaugSubproblem(np.zeros(g.size), lambda x: 0.0, lambda x: g, hessp=lambda x, v: h @ v).solve(radius)


def _random_model(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((6, 6))
    return a + a.T, rng.standard_normal(6) * 10.0 ** rng.uniform(-3, 1)  # indefinite


def test_steihaug_steps_are_scipys_on_indefinite_models():
    for seed in range(200):
        h, g = _random_model(seed)
        for radius in (0.05, 0.5, 5.0):
            p, on_boundary, _ = steihaug_cg(lambda v, h=h: h @ v, g, radius)
            q, hits_boundary = _scipy_steihaug(h, g, radius)
            np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-12)
            assert on_boundary == hits_boundary


def test_at_negative_curvature_steihaug_takes_the_boundary_point_with_the_lower_model(monkeypatch):
    import optlab.solvers.trust_subproblems as subproblems

    h, g = _random_model(53)  # CG meets negative curvature; the point behind is the lower one
    p, on_boundary, decrease = steihaug_cg(lambda v: h @ v, g, 0.5)
    np.testing.assert_allclose(p, _scipy_steihaug(h, g, 0.5)[0], rtol=1e-10)
    roots = subproblems._boundary_roots
    monkeypatch.setattr(subproblems, "_boundary_roots", lambda z, d, r: (roots(z, d, r)[1],) * 2)
    ahead, _, decrease_ahead = steihaug_cg(lambda v: h @ v, g, 0.5)
    assert on_boundary and not np.allclose(ahead, p) and decrease > decrease_ahead
    assert decrease_ahead == pytest.approx(-float(g @ ahead + 0.5 * ahead @ h @ ahead), rel=1e-10)


def test_the_exact_subproblem_takes_the_dense_hessian_and_each_names_what_it_compiles():
    assert SOLVERS["trust_region"]().evaluates == ("value_and_grad", "hvp")
    assert SOLVERS["trust_region"](subproblem="exact").evaluates == ("value_and_grad", "hessian")
    out = run_set(Watched(5), SOLVERS["trust_region"](subproblem="exact"), None, Stop())[0]
    assert out.status == "error" and "asked for the n x n Hessian" in out.message


@pytest.mark.parametrize("seed", range(12))
def test_steihaug_model_decrease_is_the_model_written_out(seed):
    rng = np.random.default_rng(seed)
    n = 6
    a = rng.standard_normal((n, n))
    h = a @ a.T + 0.1 * np.eye(n) if seed % 3 else a + a.T  # positive definite, or indefinite
    g = rng.standard_normal(n)
    for radius in (0.01, 0.3, 100.0):
        p, on_boundary, decrease = steihaug_cg(lambda v, h=h: h @ v, g, radius)
        model = float(g @ p + 0.5 * p @ h @ p)
        assert decrease == pytest.approx(-model, rel=1e-10, abs=1e-14)
        assert decrease > 0 and np.linalg.norm(p) <= radius * (1 + 1e-12)
        assert on_boundary == (abs(np.linalg.norm(p) - radius) <= 1e-9 * radius)
        p, _, decrease = exact_step(h, g, radius)
        assert decrease == pytest.approx(-float(g @ p + 0.5 * p @ h @ p), rel=1e-12)


class Offset(Objective):
    """f = 1e8 + (x - 1)^2: near x = 1 no step can show a decrease above f's rounding."""

    name, dim, x0, box = "offset", 1, np.array([1.0 + 1e-5]), np.array([[0.0, 2.0]])

    def f(self, x):
        return 1e8 + ad.sum((x - 1.0) ** 2)


@pytest.mark.parametrize(("solver", "objective"), [
    ("trust_region", Offset()), ("trust_region", Offset()),
    ("levenberg_marquardt", ResidualProblem("offset", lambda x: ad.concatenate([x - 1.0, ad.stack([1e4])]),
                                            [1.0 + 1e-5]))])
def test_a_trial_predicting_less_than_fs_rounding_ends_the_run_stalled_at_once(solver, objective):
    out = run_set(objective, SOLVERS[solver](), None, Stop(gtol=1e-12))[0]
    # the Newton / Gauss-Newton step predicts 1e-10 < 8 eps 1e8: rejected once, then stalled
    assert out.status == "stalled" and out.nfev == 2, out.message
    assert "||grad f|| = 2e-05" in out.message
