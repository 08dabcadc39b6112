"""Every objective in the registry: derivatives, known minima, description, options.

Derivatives are checked against finite differences and pure autodiff, the known minima
against published values, Rosenbrock against scipy's own implementation.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math

import numpy as np
import pytest
import scipy.optimize
import yaml

import optlab
from optlab import autodiff as ad
from optlab.errors import ConfigError
from optlab.objectives import (
    OBJECTIVES,
    Ackley,
    CurveFit,
    Himmelblau,
    Objective,
    Quadratic,
    Rastrigin,
    Rosenbrock,
    SixHumpCamel,
    StyblinskiTang,
)

from ..conftest import REPO, run_cli

# Every registered objective at its defaults, and the n-dimensional ones also at dim 3
# (and other options), so that nothing is checked only in two dimensions.
VARIANTS: dict[str, Objective] = {name: cls() for name, cls in OBJECTIVES.items()}
VARIANTS |= {f"{name}-dim3": cls(dim=3) for name, cls in OBJECTIVES.items()
             if "dim" in inspect.signature(cls).parameters}
VARIANTS |= {
    "quadratic-dim6-cond1e4": Quadratic(dim=6, cond=1e4, seed=3),
    "curve_fit-m8-noisy": CurveFit(m=8, noise=0.2, seed=5, a_true=-1.5, b_true=0.3),
}
CASES = pytest.mark.parametrize("obj", list(VARIANTS.values()), ids=list(VARIANTS))


def points_in_box(obj: Objective, k: int = 4, seed: int = 0) -> np.ndarray:
    low, high = obj.box[:, 0], obj.box[:, 1]
    return np.random.default_rng(seed).uniform(low, high, size=(k, obj.dim))


def central_difference(fun, x: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Fourth-order central differences of ``fun`` (scalar or vector valued) along each axis."""
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((-fun(x + 2 * e) + 8 * fun(x + e) - 8 * fun(x - e) + fun(x - 2 * e)) / (12 * h))
    return np.stack(cols, axis=-1)


def assert_close_scaled(actual: np.ndarray, expected: np.ndarray, rel: float) -> None:
    scale = 1.0 + np.max(np.abs(expected))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rel * scale)


# -- registry and configs ------------------------------------------------------------------
# Configs that are not registered classes: forms built around a user's function (black_box) or
# an outside library's (bbob, COCO's functions through cocoex).
FORMS = {"black_box", "bbob"}


def test_registry_and_configs_agree():
    conf = REPO / "conf" / "objective"
    assert {p.stem for p in conf.glob("*.yaml")} == set(OBJECTIVES) | FORMS
    for name, cls in OBJECTIVES.items():
        assert cls.name == name
        options = yaml.safe_load((conf / f"{name}.yaml").read_text())
        module, _, attr = options.pop("_target_").rpartition(".")
        assert getattr(importlib.import_module(module), attr) is cls
        defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
        assert options == defaults, f"{name}: the config's options differ from the constructor's defaults"


@CASES
def test_description(obj):
    assert isinstance(obj.dim, int) and obj.dim >= 1
    assert obj.box.shape == (obj.dim, 2) and np.all(obj.box[:, 0] < obj.box[:, 1])
    assert obj.x0.shape == (obj.dim,) and np.all(np.isfinite(obj.x0))
    assert np.all((obj.box[:, 0] <= obj.x0) & (obj.x0 <= obj.box[:, 1]))
    assert obj.minimizers.ndim == 2 and obj.minimizers.shape[1] == obj.dim
    assert np.all((obj.box[:, 0] <= obj.minimizers) & (obj.minimizers <= obj.box[:, 1]))
    assert (obj.f_star is None) == (len(obj.minimizers) == 0)
    # the standard start is neither a minimiser nor any other stationary point
    assert np.min(np.linalg.norm(obj.minimizers - obj.x0, axis=1), initial=np.inf) > 1e-3
    assert np.linalg.norm(obj.grad(obj.x0)) > 1e-3
    assert obj.value(obj.x0) > (obj.f_star if obj.f_star is not None else -np.inf)
    assert "f" in (type(obj).__doc__ or "") and len(type(obj).__doc__) > 80


@CASES
def test_params_round_trip(obj):
    params = obj.params()
    json.dumps(params)  # recorded in run.json
    again = type(obj)(**params)
    assert again.params() == params
    x = points_in_box(obj, 1, seed=7)[0]
    assert again.value(x) == obj.value(x)
    np.testing.assert_array_equal(again.x0, obj.x0)
    np.testing.assert_array_equal(again.minimizers, obj.minimizers)
    np.testing.assert_array_equal(again.box, obj.box)
    assert again.f_star == obj.f_star


# -- derivatives -----------------------------------------------------------------------------
@CASES
def test_gradient_and_hessian_match_finite_differences(obj):
    for x in points_in_box(obj):
        f, g = obj.value_and_grad(x)
        assert f == pytest.approx(obj.value(x), rel=1e-14, abs=1e-14)
        assert_close_scaled(g, central_difference(obj.value, x), rel=1e-7)
        H = obj.hessian(x)
        np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12 * (1 + np.abs(H).max()))
        assert_close_scaled(H, central_difference(obj.grad, x), rel=1e-7)
        v = np.random.default_rng(1).standard_normal(obj.dim)
        assert_close_scaled(obj.hvp(x, v), H @ v, rel=1e-12)


@CASES
def test_methods_agree_with_pure_autodiff(obj):
    """Analytic forms written by a class (quadratic, least_squares) against autodiff of its f."""
    f = lambda v: obj.f(v)  # noqa: E731
    for x in points_in_box(obj, 3, seed=2):
        value, g = ad.value_and_grad(f)(x)
        assert obj.value_and_grad(x)[0] == pytest.approx(value, rel=1e-12, abs=1e-12)
        assert_close_scaled(obj.grad(x), g, rel=1e-12)
        assert_close_scaled(obj.hessian(x), ad.hessian(f)(x), rel=1e-12)
        v = np.arange(1.0, obj.dim + 1)
        assert_close_scaled(obj.hvp(x, v), ad.hvp(f)(x, v), rel=1e-12)


# -- known minima ------------------------------------------------------------------------------
@CASES
def test_known_minimizers_are_minima(obj):
    for x_star in obj.minimizers:
        scale = 1.0 + abs(obj.f_star)
        assert obj.value(x_star) == pytest.approx(obj.f_star, rel=0, abs=1e-14 * scale)
        g = obj.grad(x_star)
        H = obj.hessian(x_star)
        # zero up to rounding: a minimiser off by one part in 1e12 fails this
        assert np.linalg.norm(g) <= 1e-14 * (1.0 + np.abs(H).max() * (1.0 + np.abs(x_star).max()))
        eig = np.linalg.eigvalsh(H)
        assert eig[0] >= -1e-12 * max(1.0, eig[-1])
        # and nothing nearby is lower: f(x* + d) >= f* for small random steps
        steps = 1e-4 * np.random.default_rng(3).standard_normal((20, obj.dim))
        assert min(obj.value(x_star + d) for d in steps) >= obj.f_star - 1e-14 * scale


def test_published_minima():
    # Himmelblau (1972): four minima, six decimals
    published = [[3.0, 2.0], [-2.805118, 3.131312], [-3.779310, -3.283186], [3.584428, -1.848126]]
    np.testing.assert_allclose(Himmelblau().minimizers, published, rtol=0, atol=1e-6)
    # six-hump camel: +-(0.0898, -0.7126), f* = -1.031628453...
    camel = SixHumpCamel()
    np.testing.assert_allclose(camel.minimizers, [[0.0898, -0.7126], [-0.0898, 0.7126]], rtol=0, atol=1e-4)
    assert camel.f_star == pytest.approx(-1.031628453, abs=1e-9)
    assert {round(camel.value(x), 12) for x in camel.minimizers} == {round(camel.f_star, 12)}
    # Styblinski-Tang: -2.903534 in each coordinate, f* = -39.16616570377142 n
    for n in (1, 2, 5):
        st = StyblinskiTang(dim=n)
        np.testing.assert_allclose(st.minimizers, np.full((1, n), -2.903534), atol=1e-6)
        assert st.f_star == pytest.approx(-39.16616570377142 * n, rel=1e-15)
        assert st.value(st.minimizers[0]) == pytest.approx(-39.16616570377142 * n, rel=1e-15)
    # the coordinate minimiser is the negative root of f'(t) = 2 t^3 - 16 t + 5/2
    roots = np.roots([2.0, 0.0, -16.0, 2.5])
    assert StyblinskiTang().minimizers[0, 0] == pytest.approx(roots.real.min(), rel=1e-14)


def test_multimodal_functions_have_lower_points_than_their_standard_start_basin():
    # a local method started at x0 stops in a local minimum: the global one is elsewhere
    for obj in (Rastrigin(dim=3), Ackley(dim=3)):
        out = optlab.minimize(obj, "newton", max_iter=50)
        assert out.status == "converged" and out.f > obj.f_star + 1.0


# -- Rosenbrock against scipy ------------------------------------------------------------------
def test_rosenbrock_matches_scipy():
    x = 0.1 * np.arange(9)
    expected = [-2.0, 10.6, 15.6, 13.4, 6.4, -3.0, -12.4, -19.4, 62.0]  # scipy.optimize.rosen_der docstring
    np.testing.assert_allclose(ad.grad(Rosenbrock(dim=9).f)(x), expected, rtol=1e-13, atol=1e-13)
    rng = np.random.default_rng(0)
    for n in (2, 3, 6):
        obj = Rosenbrock(dim=n)
        for x in rng.uniform(-2, 2, size=(3, n)):
            assert obj.value(x) == pytest.approx(scipy.optimize.rosen(x), rel=1e-14)
            np.testing.assert_allclose(obj.grad(x), scipy.optimize.rosen_der(x), rtol=1e-13, atol=1e-12)
            np.testing.assert_allclose(obj.hessian(x), scipy.optimize.rosen_hess(x), rtol=1e-13, atol=1e-12)


# -- particular objectives ---------------------------------------------------------------------
@pytest.mark.parametrize("dim, cond", [(2, 10.0), (5, 1e3), (8, 1e6), (1, 1.0)])
def test_quadratic_spectrum_and_minimizer(dim, cond):
    obj = Quadratic(dim=dim, cond=cond, seed=4)
    np.testing.assert_array_equal(obj.Q, obj.Q.T)
    eig = np.linalg.eigvalsh(obj.Q)
    np.testing.assert_allclose(eig, np.logspace(0.0, math.log10(cond), dim), rtol=1e-9)
    assert np.linalg.cond(obj.Q) == pytest.approx(cond, rel=1e-8)
    np.testing.assert_allclose(obj.rotation.T @ obj.rotation, np.eye(dim), atol=1e-13)
    np.testing.assert_allclose(np.linalg.solve(obj.Q, obj.b), obj.minimizers[0], rtol=1e-12 * cond)
    # the centred form equals 1/2 x^T Q x - b^T x + 1/2 b^T Q^-1 b
    x = np.random.default_rng(0).standard_normal(dim)
    expanded = 0.5 * x @ obj.Q @ x - obj.b @ x + 0.5 * obj.b @ obj.minimizers[0]
    assert obj.value(x) == pytest.approx(expanded, rel=1e-10, abs=1e-10 * cond)


def test_quadratic_seed_chooses_the_rotation():
    a, b, c = Quadratic(dim=4, cond=50, seed=0), Quadratic(dim=4, cond=50, seed=0), Quadratic(dim=4, cond=50, seed=1)
    np.testing.assert_array_equal(a.Q, b.Q)
    assert not np.allclose(a.Q, c.Q)
    np.testing.assert_allclose(np.linalg.eigvalsh(a.Q), np.linalg.eigvalsh(c.Q), rtol=1e-12)


def test_quadratic_newton_lands_in_one_step_and_gd_meets_its_rate():
    obj = Quadratic(dim=5, cond=100.0, seed=2)
    newton = optlab.minimize(obj, "newton", max_iter=5)
    assert newton.status == "converged" and newton.gap < 1e-25
    np.testing.assert_allclose(newton.x, obj.minimizers[0], atol=1e-12)
    # gradient descent with lr = 1 / L contracts f - f* at least by (1 - 1/cond)^2 per step
    gd = optlab.minimize(obj, "gd", solver_options={"lr": 1.0 / obj.cond}, max_iter=200, gtol=0)
    gaps = gd.iterates.f.to_numpy() - obj.f_star
    k = np.arange(len(gaps))
    assert np.all(gaps <= gaps[0] * (1 - 1 / obj.cond) ** (2 * k) * (1 + 1e-9))


def test_ackley_at_and_near_its_kink():
    for n in (1, 2, 5):
        obj = Ackley(dim=n)
        assert obj.value(np.zeros(n)) == 0.0
        np.testing.assert_array_equal(obj.grad(np.zeros(n)), np.zeros(n))
        np.testing.assert_allclose(obj.hessian(np.zeros(n)), np.e * obj.c**2 / n * np.eye(n), rtol=1e-14)
        # just off 0 the gradient has the cone's norm a b / sqrt(n), not 0 and not infinite,
        # down to radius 1e-100, below which the cone term is taken as constant
        direction = np.random.default_rng(n).standard_normal(n)
        direction /= np.linalg.norm(direction)
        for t in (1e-8, 1e-90):
            g = obj.grad(t * direction)
            assert np.linalg.norm(g) == pytest.approx(obj.a * obj.b / math.sqrt(n), rel=1e-6)
            assert np.all(np.isfinite(obj.hessian(t * direction)))
        assert np.linalg.norm(obj.grad(1e-120 * direction)) < 1e-100  # only the cosine term's e c^2 / n x
        assert obj.value(1e-120 * direction) == 0.0


def test_curve_fit_residual_protocol_and_minimizer_against_scipy():
    for obj in (CurveFit(), VARIANTS["curve_fit-m8-noisy"], CurveFit(m=40, noise=0.01, seed=9, b_true=2.5)):
        x = np.array([1.3, 0.4])
        r = obj.residual(ad.Variable(x)).data
        assert r.shape == (obj.m,)
        np.testing.assert_allclose(r, obj.y - 1.3 * np.exp(-0.4 * obj.t), rtol=1e-15)
        assert obj.value(x) == pytest.approx(np.sum(r**2), rel=1e-14)
        ref = scipy.optimize.least_squares(lambda p, t=obj.t, y=obj.y: y - p[0] * np.exp(-p[1] * t), obj.x0,
                                           method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
        np.testing.assert_allclose(obj.minimizers[0], ref.x, rtol=1e-7)
        assert obj.f_star == pytest.approx(2 * ref.cost, rel=1e-10)  # scipy's cost is 1/2 sum r^2
        assert obj.f_star <= 2 * ref.cost * (1 + 1e-12)


def test_curve_fit_exact_data_and_an_unidentifiable_fit():
    exact = CurveFit(noise=0.0, a_true=3.0, b_true=1.2)
    np.testing.assert_allclose(exact.minimizers, [[3.0, 1.2]], rtol=1e-12)
    assert exact.f_star < 1e-25
    # all-zero data: every rate fits equally well, so no minimiser is claimed
    flat = CurveFit(noise=0.0, a_true=0.0)
    assert flat.f_star is None and flat.minimizers.shape == (0, 2)


# -- bad options -------------------------------------------------------------------------------
@pytest.mark.parametrize("make, key, value", [
    *[(lambda c=cls: c(dim=0), "objective.dim", "0") for name, cls in OBJECTIVES.items()
      if "dim" in inspect.signature(cls).parameters],
    (lambda: Rastrigin(dim=2.5), "objective.dim", "2.5"),
    (lambda: Ackley(dim="two"), "objective.dim", "'two'"),
    (lambda: Quadratic(cond=0.5), "objective.cond", "0.5"),
    (lambda: Quadratic(cond=float("inf")), "objective.cond", "inf"),
    (lambda: Quadratic(dim=1, cond=10), "objective.cond", "10"),
    (lambda: Quadratic(seed=-1), "objective.seed", "-1"),
    (lambda: CurveFit(m=1), "objective.m", "1"),
    (lambda: CurveFit(noise=-0.1), "objective.noise", "-0.1"),
    (lambda: CurveFit(a_true=float("nan")), "objective.a_true", "nan"),
])
def test_bad_options_are_one_line_config_errors(make, key, value):
    with pytest.raises(ConfigError) as info:
        make()
    message = str(info.value)
    assert "\n" not in message and f"{key}={value}" in message and "allowed:" in message


def test_cli_rejects_unknown_and_bad_objective_options(tmp_path):
    for args, expected in [
        (["objective=quadratic", "objective.colour=red"], "objective.colour is not an option"),
        (["objective=quadratic", "+objective.colour=red"], "objective.colour is not an option of objective"),
        (["objective=quadratic", "objective.cond=0.5"], "objective.cond=0.5 is out of range"),
    ]:
        out = run_cli(*args, f"hydra.run.dir={tmp_path / 'run'}")
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("optlab: error: ") and expected in lines[0], out.stderr


def test_cli_runs_a_new_objective_and_help_lists_them_all(tmp_path):
    out = run_cli("objective=six_hump_camel", "solver=newton", "stop.max_iter=30", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    runs, iterates = optlab.load(tmp_path)
    assert runs.objective[0] == "six_hump_camel" and runs.f_star[0] == SixHumpCamel().f_star
    assert len(iterates) == runs.iterations[0] + 1
    listed = next(ln for ln in run_cli("--help").stdout.splitlines() if ln.startswith("objective: "))
    assert set(listed.removeprefix("objective: ").split(", ")) == set(OBJECTIVES) | FORMS


def test_a_data_file_is_recorded_by_its_absolute_path(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", A=rng.standard_normal((6, 2)), z=rng.standard_normal(6))
    monkeypatch.chdir(tmp_path)
    objective = OBJECTIVES["least_squares"](data="data.npz")
    assert objective.params()["data"] == str(tmp_path / "data.npz")
    monkeypatch.chdir("/")
    assert type(objective)(**objective.params()).f_star == objective.f_star  # rebuilt from anywhere
