"""Compiled derivatives against the eager engine, the reference, on the same inputs.

Every engine operation is replayed as scalar code, array code and batched code; every shipped
objective's value, gradient, Hessian-vector product and Hessian agree with the eager engine to
1e-12 (relative to the largest entry, or absolute below 1). Functions whose recording depends
on the values of x stay eager, and that is checked too.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import optlab.autodiff as ad
from optlab.autodiff import compile as C
from optlab.objectives import OBJECTIVES
from optlab.objectives.base import Objective
from optlab.objectives.derivatives import derivatives_of

from ..conftest import Branching

TOL = 1e-12


def assert_agree(got, want, tol: float = TOL) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    scale = max(1.0, float(np.max(np.abs(want[finite]), initial=0.0)))
    assert np.all(np.abs(got[finite] - want[finite]) <= tol * scale), (got, want)


def eager(f, x, v):
    y = ad.value_and_grad(f)(x)
    return y[0], y[1], ad.hvp(f)(x, v), ad.hessian(f)(x)


def compiled(f, x, v, record_at=None):
    c = C.compile_function(f, x if record_at is None else record_at)
    fx, g = c.value_and_grad(x)
    assert_agree(c.value(x), fx, 0)
    assert_agree(c.grad(x), g, 0)
    return fx, g, c.hvp(x, v), c.hessian(x)


M = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])
W = np.array([1.0, -2.0, 0.5, 3.0, -1.5, 2.5])
MASK = np.array([True, False, True, True, False, True])

# f(x) for x of shape (6,), one or a few engine operations each
OPS = {
    "arithmetic": lambda x: ad.sum(x * x - 3.0 * x + x / (2.0 + x * x) - (1.0 - x) * 2.0),
    "pow_variable_exponent": lambda x: ad.sum((x * x + 1.0) ** (0.1 * x[0] + 1.0)),
    "pow_constants": lambda x: ad.sum(x**3 + (x * x + 1.0) ** 0.5 + (x * x + 1.0) ** -1 + x**1 + x**0 + x**4),
    "pow_array_exponent": lambda x: ad.sum((x * x + 1.0) ** np.linspace(0.5, 3.0, 6)),
    "neg": lambda x: ad.sum(-(x * -x)),
    "elementwise": lambda x: ad.sum(ad.sin(x) * ad.cos(x) + ad.tan(0.1 * x) + ad.exp(0.1 * x)
                                    + ad.log(x * x + 1.0) + ad.sqrt(x * x + 1.0) + ad.tanh(x)),
    "inverse_and_hyperbolic": lambda x: ad.sum(ad.arctan(x) * ad.arcsin(0.5 * ad.tanh(x)) + ad.arccos(0.3 * ad.sin(x))
                                               + ad.sinh(0.5 * x) * ad.cosh(x) + ad.log1p(x * x) + ad.expm1(0.2 * x)
                                               + ad.arctan2(x, x[::-1] + 3.0)),
    "piecewise": lambda x: ad.sum(ad.where(x < 0.0, x**3, 2.0 * x**2) + ad.sign(x) * x + ad.floor(3.0 * x) * x
                                  + (x >= 0.5) * x),
    "joining": lambda x: ad.sum(ad.stack([x[0] - 1.0, 10.0 * (x[1] - x[0] ** 2), x[2] * x[3]]) ** 2)
                         + ad.sum(ad.concatenate([x[:2] * x[4:], x[3:] ** 3]) ** 2),
    "abs": lambda x: ad.sum(ad.abs(x) * x + ad.abs(x - 0.3) ** 3),
    "maximum_minimum": lambda x: ad.sum(ad.maximum(x, 0.5) ** 2 + ad.minimum(x, x[::-1] * 0.5) * x
                                        + ad.maximum(0.1, x * x) ** 3),
    "reshape_transpose_matmul": lambda x: ad.sum(ad.matmul(x.reshape(2, 3), x.reshape(2, 3).T) ** 2),
    "matmul_constants": lambda x: ad.sum(ad.matmul(x.reshape(2, 3), M) ** 2) + ad.matmul(W, x) ** 2
                                  + ad.sum(ad.matmul(M.T, x[:3] * x[3:]) ** 3),
    "dot": lambda x: ad.dot(x, x) * ad.dot(x[:3], W[:3]),
    "vector_matrix": lambda x: ad.sum(ad.matmul(x[:3] * x[3:], M) ** 2),
    "sum_axes": lambda x: ad.sum(x.reshape(2, 3).sum(axis=0) ** 2) + ad.sum(
        x.reshape(2, 3).sum(axis=1, keepdims=True) * x.reshape(2, 3)) + ad.sum(x.reshape(3, 2).sum(axis=-1) ** 3),
    "broadcast_sum_to": lambda x: ad.sum(ad.broadcast_to(x[:3], (2, 3)) * x.reshape(2, 3) ** 2)
                                  + ad.sum(ad.sum_to(x.reshape(2, 3) ** 2, (1, 3)) ** 2),
    "broadcasting_binary": lambda x: ad.sum(x.reshape(2, 3) * x[:3]) + ad.sum(x.reshape(3, 2) / (x[4:] ** 2 + 1.0)),
    "getitem": lambda x: ad.sum(x[np.array([0, 0, 2, 5])] ** 2) + x[-1] * x[1] + ad.sum(x[1:4] ** 3)
                         + ad.sum(x.reshape(2, 3)[:, 1] ** 2) + ad.sum(x.reshape(2, 3)[..., 0] ** 3)
                         + ad.sum(x[MASK] ** 2),
    "constant_gradient": lambda x: ad.sum(W * x),
    "unused_input": lambda x: x[0] ** 2 * 0.0 + 3.0,
}
X = np.array([0.7, -1.3, 0.4, 1.1, -0.6, 0.9])
V = np.array([0.3, 1.0, -2.0, 0.5, 1.5, -0.7])


@pytest.fixture(params=["scalar", "array"])
def mode(request, monkeypatch):
    if request.param == "array":
        monkeypatch.setattr(C, "SCALAR_MAX_INPUT", 0)
    return request.param


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_operation_replays_as_the_eager_engine_computes(name, mode):
    f = OPS[name]
    for x in (X, -X[::-1], X * 0.5 + 0.1):
        for got, want in zip(compiled(f, x, V, record_at=X), eager(f, x, V)):
            assert_agree(got, want)
    assert C.compile_function(f, X).scalar == (mode == "scalar")


@pytest.mark.parametrize("name", sorted(OPS))
def test_batched_code_gives_each_point_its_own_result(name):
    c = C.compile_function(OPS[name], X)
    points = np.stack([X, -X[::-1], X * 0.5 + 0.1, X + 1.0], axis=1)
    dirs = np.stack([V, V[::-1], -V, V * 2.0], axis=1)
    f, g = c.batched("value_and_grad")(points)
    hv = c.batched("hvp")(points, dirs)
    assert f.shape == (4,) and g.shape == (6, 4) and hv.shape == (6, 4)
    for b in range(4):
        want = eager(OPS[name], points[:, b], dirs[:, b])
        assert_agree(f[b], want[0])
        assert_agree(g[:, b], want[1])
        assert_agree(hv[:, b], want[2])


@pytest.mark.parametrize("name", sorted(OPS))
def test_vectorised_code_gives_the_bits_of_scalar_code(name):
    """Batches and single runs share one lowering: the same numbers, bit for bit, on any CPU."""
    c = C.compile_function(OPS[name], X)
    points = np.stack([X, -X[::-1], X * 0.5 + 0.1, X + 1.0, X * 40.0, X * 4000.0, np.zeros(6)], axis=1)
    with np.errstate(all="ignore"):
        f, g = c.vectorised("value_and_grad")(points)
    for b in range(points.shape[1]):
        with np.errstate(all="ignore"):
            fb, gb = c.value_and_grad(points[:, b])
        np.testing.assert_array_equal(f[b], fb)
        np.testing.assert_array_equal(g[:, b], gb)


def test_matrix_input_keeps_its_shape():
    def f(x):
        return ad.sum(ad.matmul(x, x.T) ** 2) + ad.sum(x[:, 0] ** 3)

    x = X.reshape(2, 3)
    got, want = compiled(f, x, V.reshape(2, 3)), eager(f, x, V.reshape(2, 3))
    assert got[3].shape == (2, 3, 2, 3)
    for a, b in zip(got, want):
        assert_agree(a, b)


def objective_cases() -> list:
    cases = []
    for name, cls in sorted(OBJECTIVES.items()):
        cases.append(pytest.param(cls, {}, id=name))
        if "dim" in cls.__init__.__code__.co_varnames:
            cases.append(pytest.param(cls, {"dim": 7}, id=f"{name}-dim7"))
    return cases


@pytest.mark.parametrize("cls, options", objective_cases())
def test_every_shipped_objective_compiles_and_agrees_with_eager(cls, options):
    """The replay of f as written; analytic overrides (least squares, quadratic) are not involved."""
    obj = cls(**options)
    rng = np.random.default_rng(5)
    low, high = obj.box[:, 0], obj.box[:, 1]
    points = [obj.start()] + [low + (high - low) * rng.random(obj.dim) for _ in range(3)]
    f = derivatives_of(obj).f
    c = C.compile_function(f, points[0])
    assert c.scalar == (obj.dim <= C.SCALAR_MAX_INPUT)
    for x in points:
        v = rng.standard_normal(obj.dim)
        for got, want in zip((*c.value_and_grad(x), c.hvp(x, v), c.hessian(x)), eager(f, x, v)):
            assert_agree(got, want)


def test_objective_methods_use_the_compiled_code_and_eager_on_request():
    obj = OBJECTIVES["rosenbrock"](dim=3)
    x = np.array([0.5, -0.2, 1.3])
    g = obj.grad(x)
    assert isinstance(derivatives_of(obj).compiled(x), C.Compiled)
    with C.eager():
        assert_agree(g, obj.grad(x))
    assert_agree(obj.hessian(x), ad.hessian(derivatives_of(obj).f)(x))
    # lists and integer arrays go through the eager engine, with the same numbers
    assert_agree(obj.value_and_grad([1, 2, 3])[1], obj.value_and_grad(np.array([1.0, 2.0, 3.0]))[1])


def test_copies_and_pickles_keep_no_code_and_share_the_compiled_code():
    obj = OBJECTIVES["rosenbrock"](dim=3)
    obj.value(np.zeros(3))
    assert not any(isinstance(v, (C.Compiled, dict)) for v in vars(obj).values())
    for other in (copy.copy(obj), pickle.loads(pickle.dumps(obj)), OBJECTIVES["rosenbrock"](dim=3)):
        assert other.value(np.ones(3)) == obj.value(np.ones(3))
        assert derivatives_of(other).compiled(np.ones(3)) is derivatives_of(obj).compiled(np.ones(3))


def test_objectives_with_other_data_under_the_same_options_get_their_own_code():
    class Shifted(Objective):
        """sum (x - c)^2 with c a class attribute: equal options, different functions."""

        name, c = "shifted", 1.0

        def __init__(self) -> None:
            self.dim, self.x0, self.box = 2, np.zeros(2), np.array([[-2.0, 2.0]] * 2)

        def f(self, x):
            return ad.sum((x - self.c) ** 2)

    one, other = Shifted(), Shifted()
    other.c = 3.0
    x = np.array([0.5, 0.5])
    assert one.value(x) == 0.5 and other.value(x) == 12.5
    assert derivatives_of(one).compiled(x) is not derivatives_of(other).compiled(x)


class Noisy(Objective):
    """Draws a fresh random weight at every call."""

    name = "noisy"

    def __init__(self) -> None:
        self.dim, self.x0, self.box = 2, np.array([1.0, 1.0]), np.array([[-2.0, 2.0]] * 2)
        self.rng = np.random.default_rng(0)

    def f(self, x):
        return ad.sum(x * x) * (1.0 + self.rng.random())


def test_branch_on_values_stays_eager_and_takes_both_branches():
    obj = Branching()
    with pytest.raises(C.NotCompilable, match="reads the values"):
        C.compile_function(derivatives_of(obj).f, obj.x0)
    right, left = np.array([1.0, 2.0]), np.array([-1.0, 2.0])
    assert obj.value_and_grad(right)[1].tolist() == [2.0, 4.0]
    assert obj.value_and_grad(left)[1].tolist() == [-4.0, 32.0]
    assert obj.hessian(left).tolist() == [[12.0, 0.0], [0.0, 48.0]]
    assert derivatives_of(obj).compiled(right) is None
    assert "reads the values" in derivatives_of(obj).eager_reason


def test_random_objective_stays_eager():
    obj = Noisy()
    with pytest.raises(C.NotCompilable, match="random"):
        C.compile_function(derivatives_of(obj).f, obj.x0)
    obj.value(obj.x0)
    assert derivatives_of(obj).compiled(obj.x0) is None


def test_masks_of_abs_and_maximum_are_recomputed_on_the_other_side_of_the_kink():
    def f(x):
        return ad.sum(ad.abs(x) + ad.maximum(x, 0.0) * 3.0 + ad.minimum(x, 0.0) ** 2)

    c = C.compile_function(f, np.array([1.0, -1.0]))
    assert c.grad(np.array([-2.0, 3.0])).tolist() == [-1.0 - 4.0, 1.0 + 3.0]
    assert c.grad(np.array([2.0, -3.0])).tolist() == [1.0 + 3.0, -1.0 - 6.0]
    assert c.hessian(np.array([-2.0, 3.0])).tolist() == [[2.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize("f, x", [
    (lambda x: ad.sum(ad.log(x)), [-1.0, 2.0]),  # log of a negative number: nan
    (lambda x: ad.sum(1.0 / x), [0.0, 2.0]),  # division by zero: inf
    (lambda x: ad.sum(ad.exp(x)), [1000.0, 1.0]),  # overflow: inf
    (lambda x: ad.sum(ad.sqrt(x) * x), [-4.0, 4.0]),  # sqrt of a negative number: nan
    (lambda x: ad.sum(x ** 2.5), [-1.0, 3.0]),  # fractional power of a negative number: nan
    (lambda x: ad.sum(ad.sin(x)), [np.inf, 1.0]),  # sin(inf): nan
])
def test_floating_point_exceptions_give_numpys_inf_and_nan(f, x):
    x = np.array(x)
    c = C.compile_function(f, np.array([1.5, 2.5]))
    assert c.scalar
    with np.errstate(all="ignore"):
        for got, want in zip(compiled(f, x, np.ones(2), record_at=np.array([1.5, 2.5])), eager(f, x, np.ones(2))):
            assert_agree(got, want, 0)


def test_newton_on_the_double_well_reproduces_the_notes_iterates():
    obj = OBJECTIVES["double_well"]()
    x, seen = np.array([2.0]), []
    for _ in range(8):
        seen.append(float(x[0]))
        x = x - np.linalg.solve(obj.hessian(x), obj.grad(x))
    assert isinstance(derivatives_of(obj).compiled(x), C.Compiled)
    assert seen == [2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978,
                    1.0009084519430513, 1.0000012353089454, 1.000000000002289, 1.0]


def test_custom_function_is_replayed_through_its_forward():
    class Cube(ad.Function):
        def forward(self, x):
            return x**3

        def backward(self, gy):
            return gy * 3.0 * self.inputs[0] ** 2

    def f(x):
        return ad.sum(Cube()(x) * x)

    c = C.compile_function(f, X)
    assert not c.scalar
    for got, want in zip(compiled(f, X + 0.5, V), eager(f, X + 0.5, V)):
        assert_agree(got, want)
    with pytest.raises(C.NotCompilable, match="batched"):
        c.batched("value_and_grad")
