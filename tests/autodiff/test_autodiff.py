"""The autodiff engine against finite differences: every op, first and second order.

Each op is checked through a scalar test function ``F(x) = sum(W * y) + sum(U * y * y) / 2`` of its
output ``y``, where the op's operands are unpacked from one flat vector ``x`` (so the Hessian also
covers the cross terms between two operands). The quadratic head makes the Hessian non-zero even
for linear ops, so their backward pass must itself be differentiable. References:

- gradient: central differences of F, step 1e-6 * max(1, |x_i|);
- Hessian and Hessian-vector products: central differences of the autodiff gradient, and the
  Hessian also from second central differences of F alone (independent of the backward pass).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from types import FunctionType

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import optlab.autodiff as ad
from optlab.autodiff import Variable, grad, hessian, hvp, no_grad, value_and_grad

# -- finite-difference references --------------------------------------------------------------

FD_STEP = 1e-6  # first differences of F (and of the autodiff gradient)
FD2_STEP = 2e-4  # second differences of F: rounding grows like eps / h**2, so a larger step


def steps(x: np.ndarray, h: float) -> np.ndarray:
    return h * np.maximum(1.0, np.abs(x))


def fd_gradient(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    h = steps(x, FD_STEP)
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h[i]
        g[i] = (f(x + e) - f(x - e)) / (2 * h[i])
    return g


def fd_jacobian(g: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Columns ``d g / d x_j`` by central differences (the Hessian when ``g`` is a gradient)."""
    h = steps(x, FD_STEP)
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h[j]
        cols.append((g(x + e) - g(x - e)) / (2 * h[j]))
    return np.stack(cols, axis=1)


def fd_hessian(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """The Hessian from values of f alone: the four-point second central difference."""
    h = steps(x, FD2_STEP)
    n = x.size
    H = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.zeros(n), np.zeros(n)
            ei[i], ej[j] = h[i], h[j]
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
    return H


def fd_bilinear(f: Callable[[np.ndarray], float], x: np.ndarray, v: np.ndarray, w: np.ndarray) -> float:
    """``v^T H w`` from four values of f (the second central difference along v and w)."""
    h = FD2_STEP
    return (f(x + h * (v + w)) - f(x + h * (v - w)) - f(x - h * (v - w)) + f(x - h * (v + w))) / (4 * h * h)


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    """Elementwise relative error ``rtol``, with an absolute floor of ``rtol`` times the largest entry."""
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# -- input strategies ---------------------------------------------------------------------------

def interval(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def away_from_zero(lo: float = 0.1, hi: float = 2.0) -> st.SearchStrategy[float]:
    return st.one_of(interval(lo, hi), interval(-hi, -lo))


ANY = interval(-2.0, 2.0)
POSITIVE = interval(0.2, 5.0)
# Two interleaved, disjoint sets of intervals: a value from one never ties with one from the other,
# so maximum/minimum stay at least 0.1 from their kink while both orderings occur.
LOW_BANDS = st.one_of(interval(-3.0, -2.1), interval(-1.0, -0.1), interval(1.0, 1.9))
HIGH_BANDS = st.one_of(interval(-2.0, -1.1), interval(0.0, 0.9), interval(2.0, 2.9))
WEIGHT = interval(-1.0, 1.0)


@dataclass(frozen=True)
class Case:
    """An op applied to operands of given shapes, each drawn from its element strategy."""

    id: str
    fn: Callable[..., Variable]
    shapes: tuple[tuple[int, ...], ...]
    elements: tuple[st.SearchStrategy[float], ...] = (ANY,)

    def element(self, k: int) -> st.SearchStrategy[float]:
        return self.elements[k] if k < len(self.elements) else self.elements[-1]


def unary(id_, fn, shape=(2, 3), elements=ANY) -> Case:
    return Case(id_, fn, (shape,), (elements,))


def binary(id_, fn, sa, sb, ea=ANY, eb=ANY) -> Case:
    return Case(id_, fn, (sa, sb), (ea, eb))


# Shape pairs for the binary ops: equal shapes, a column against a row (both operands stretched),
# a scalar on the left, and a shorter right operand that gains a leading axis and is stretched.
PAIRS = [((2, 3), (2, 3)), ((2, 1), (1, 3)), ((), (2, 3)), ((2, 1, 3), (2, 1))]

BINARY_OPS = [
    ("add", lambda a, b: a + b, ANY, ANY),
    ("sub", lambda a, b: a - b, ANY, ANY),
    ("mul", lambda a, b: a * b, ANY, ANY),
    ("div", lambda a, b: a / b, ANY, away_from_zero(0.5)),
    ("pow", lambda a, b: a**b, interval(0.5, 2.0), ANY),
    ("maximum", ad.maximum, LOW_BANDS, HIGH_BANDS),
    ("minimum", ad.minimum, HIGH_BANDS, LOW_BANDS),
    ("arctan2", ad.arctan2, away_from_zero(0.3), away_from_zero(0.3)),
]

CONST = np.array([[0.7, -1.3, 2.1], [-0.4, 1.6, 0.9]])
CONST_VEC = np.array([0.5, -1.5, 1.2])
FANCY = np.array([0, 4, 4, 1, 0, 5])  # repeats: the adjoint must add, not overwrite

CASES = [
    *(binary(f"{name}-{sa}-{sb}", fn, sa, sb, ea, eb) for name, fn, ea, eb in BINARY_OPS for sa, sb in PAIRS),
    # one operand a constant, on either side (numpy arrays and Python floats)
    unary("const*var", lambda x: CONST * x),
    unary("var-const", lambda x: x - CONST_VEC),
    unary("const-var", lambda x: 1.5 - x),
    unary("const/var", lambda x: CONST / x, elements=away_from_zero(0.5)),
    unary("var/const", lambda x: x / CONST),
    unary("const**var", lambda x: 2.0**x),
    unary("array**var", lambda x: np.abs(CONST) ** x),
    unary("neg", lambda x: -x),
    # constant exponents: no log(x) term, so negative bases are fine for integer powers
    unary("pow2", lambda x: x**2),
    unary("pow3", lambda x: x**3),
    unary("pow0.5", lambda x: x**0.5, elements=POSITIVE),
    unary("pow-1.5", lambda x: x**-1.5, elements=POSITIVE),
    unary("pow-array", lambda x: x ** np.array([1.0, 2.0, 3.0])),
    # elementwise functions, away from poles and kinks
    unary("sin", ad.sin, elements=interval(-3.0, 3.0)),
    unary("cos", ad.cos, elements=interval(-3.0, 3.0)),
    unary("tan", ad.tan, elements=interval(-1.3, 1.3)),
    unary("exp", ad.exp),
    unary("log", ad.log, elements=POSITIVE),
    unary("sqrt", ad.sqrt, elements=POSITIVE),
    unary("tanh", ad.tanh),
    unary("abs", ad.abs, elements=away_from_zero()),
    unary("arctan", ad.arctan, elements=interval(-3.0, 3.0)),
    unary("arcsin", ad.arcsin, elements=interval(-0.9, 0.9)),
    unary("arccos", ad.arccos, elements=interval(-0.9, 0.9)),
    unary("sinh", ad.sinh),
    unary("cosh", ad.cosh),
    unary("log1p", ad.log1p, elements=interval(-0.8, 3.0)),
    unary("expm1", ad.expm1),
    # piecewise: comparisons and what is built on them (their own derivatives are zero)
    unary("sign", lambda x: ad.sign(x) * x * x, elements=away_from_zero()),
    unary("floor", lambda x: ad.floor(x) * x + x * x, elements=st.one_of(*(interval(k + 0.1, k + 0.9)
                                                                          for k in range(-2, 2)))),
    unary("where", lambda x: ad.where(x < 0.0, x**3, 2.0 * x**2), elements=away_from_zero()),
    binary("where-compare", lambda a, b: ad.where(a <= b, a * b, a - b) + ad.where(a > b, a, b) * (a >= b),
           (2, 3), (2, 3), LOW_BANDS, HIGH_BANDS),
    # joining
    binary("stack", lambda a, b: ad.stack([a * b, a - b]), (2,), (2,)),
    binary("stack-scalars", lambda a, b: ad.stack([a[0] * b[1], a[1] - b[0], 1.5]), (2,), (2,)),
    binary("stack-axis1", lambda a, b: ad.stack([a, b * b], axis=1), (3,), (3,)),
    binary("concatenate", lambda a, b: ad.concatenate([a * a, b, a[:1]]), (2,), (3,)),
    # products
    binary("matmul-vec-vec", lambda a, b: a @ b, (3,), (3,)),
    binary("matmul-mat-vec", lambda a, b: a @ b, (2, 3), (3,)),
    binary("matmul-vec-mat", lambda a, b: a @ b, (3,), (3, 2)),
    binary("matmul-mat-mat", lambda a, b: a @ b, (2, 3), (3, 2)),
    binary("matmul-fn", ad.matmul, (3, 2), (2, 2)),
    binary("dot-vec-vec", ad.dot, (4,), (4,)),
    binary("dot-mat-vec", ad.dot, (3, 2), (2,)),
    binary("dot-vec-mat", ad.dot, (2,), (2, 3)),
    binary("dot-mat-mat", ad.dot, (2, 2), (2, 3)),
    unary("const@var", lambda x: CONST @ x, shape=(3, 2)),
    unary("var@const", lambda x: x @ CONST_VEC),
    unary("vec@var", lambda x: CONST_VEC @ x, shape=(3,)),
    # a composite that reuses its input: every use must add into the same gradient
    unary("composite", lambda x: ad.sin(x) * ad.exp(x) + x * x / (1 + x**2) - ad.tanh(x).sum(axis=0)),
]

# Linear in their input: the derivatives do not depend on the point, so fewer examples suffice.
LINEAR_CASES = [
    # indexing and slicing
    unary("index-int", lambda x: x[1]),
    unary("index-negative-int", lambda x: x[-1, -2]),
    unary("slice", lambda x: x[:, 1:3], shape=(2, 4)),
    unary("slice-negative-step", lambda x: x[::-1, ::-2], shape=(2, 4)),
    unary("slice-reverse-range", lambda x: x[4:0:-2], shape=(6,)),
    unary("fancy-repeats", lambda x: x[FANCY], shape=(6,)),
    unary("fancy-2d-repeats", lambda x: x[np.array([0, 1, 1, 0]), np.array([2, 0, 0, 2])]),
    unary("fancy-rows-and-slice", lambda x: x[np.array([1, 1, 0]), ::-1]),
    unary("fancy-list", lambda x: x[[2, 2, 0]], shape=(3,)),
    unary("boolean-mask", lambda x: x[np.array([[True, False, True], [False, True, True]])]),
    # reductions
    unary("sum-all", ad.sum, shape=(2, 3)),
    unary("sum-method", lambda x: x.sum(), shape=(2, 3)),
    *(unary(f"sum-axis{axis}-keepdims{keep}", lambda x, axis=axis, keep=keep: ad.sum(x, axis, keep),
            shape=(2, 3, 2))
      for axis in (None, 1, -1, (-1, 0)) for keep in (False, True)),
    unary("sum-0d", ad.sum, shape=()),
    # shapes
    unary("reshape", lambda x: ad.reshape(x, (3, 2))),
    unary("reshape-infer", lambda x: ad.reshape(x, (-1,))),
    unary("reshape-method-args", lambda x: x.reshape(3, 1, 2)),
    unary("reshape-int", lambda x: ad.reshape(x, 6)),
    unary("broadcast-row", lambda x: ad.broadcast_to(x, (2, 3)), shape=(3,)),
    unary("broadcast-column", lambda x: ad.broadcast_to(x, (2, 3)), shape=(2, 1)),
    unary("broadcast-scalar", lambda x: ad.broadcast_to(x, (2, 2)), shape=()),
    unary("broadcast-leading", lambda x: ad.broadcast_to(x, (2, 2, 3)), shape=(1, 3)),
    unary("sum_to-row", lambda x: ad.sum_to(x, (3,)), shape=(2, 3)),
    unary("sum_to-column", lambda x: ad.sum_to(x, (2, 1)), shape=(2, 3)),
    unary("sum_to-leading", lambda x: ad.sum_to(x, (1, 3)), shape=(2, 2, 3)),
    unary("sum_to-scalar", lambda x: ad.sum_to(x, ()), shape=(2, 3)),
    unary("transpose", ad.transpose),
    unary("transpose-T", lambda x: x.T),
    unary("transpose-1d", ad.transpose, shape=(3,)),
    unary("transpose-3d", ad.transpose, shape=(2, 1, 3)),
]


def unpack(x: Variable, shapes: tuple[tuple[int, ...], ...]) -> list[Variable]:
    out, start = [], 0
    for shape in shapes:
        n = math.prod(shape)
        out.append(x[start:start + n].reshape(shape))
        start += n
    return out


@st.composite
def case_inputs(draw, case: Case):
    """The flat input vector and the head's weights W, U (shaped like the op's output)."""
    parts = [draw(arrays(np.float64, shape, elements=case.element(k))).ravel()
             for k, shape in enumerate(case.shapes)]
    x = np.concatenate(parts) if parts else np.empty(0)
    with no_grad():
        out_shape = case.fn(*unpack(Variable(x), case.shapes)).shape
    w = draw(arrays(np.float64, out_shape, elements=WEIGHT))
    u = draw(arrays(np.float64, out_shape, elements=WEIGHT))
    return x, w, u


def scalar_head(case: Case, w: np.ndarray, u: np.ndarray) -> Callable[[Variable], Variable]:
    def F(x: Variable) -> Variable:
        y = case.fn(*unpack(x, case.shapes))
        return ad.sum(w * y) + ad.sum(u * y * y) / 2

    return F


def values_of(F: Callable[[Variable], Variable]) -> Callable[[np.ndarray], float]:
    def f(x: np.ndarray) -> float:
        with no_grad():
            return float(F(Variable(x)).data)

    return f


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@settings(deadline=None, max_examples=25)
@given(data=st.data())
def test_op_first_and_second_order(case: Case, data) -> None:
    check_first_and_second_order(case, data)


@pytest.mark.parametrize("case", LINEAR_CASES, ids=lambda c: c.id)
@settings(deadline=None, max_examples=12)
@given(data=st.data())
def test_linear_op_first_and_second_order(case: Case, data) -> None:
    check_first_and_second_order(case, data)


def check_first_and_second_order(case: Case, data) -> None:
    x, w, u = data.draw(case_inputs(case))
    F = scalar_head(case, w, u)
    f = values_of(F)

    value, g = value_and_grad(F)(x)
    assert value == f(x)
    assert_close(g, fd_gradient(f, x), rtol=1e-6)

    H = hessian(F)(x)
    assert_close(H, fd_jacobian(grad(F), x), rtol=1e-5)
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(H).max()))

    # directions scaled like the steps, max(1, |x_i|) per coordinate
    v, w2 = (np.maximum(1.0, np.abs(x)) * data.draw(arrays(np.float64, x.shape, elements=WEIGHT)) for _ in range(2))
    # the Hessian from values of f alone: in full where that is cheap, else along two directions
    if x.size <= 4:
        assert_close(H, fd_hessian(f, x), rtol=1e-4)
    assert_close(v @ H @ w2, fd_bilinear(f, x, v, w2), rtol=1e-4)

    grad_f = grad(F)
    hv_fd = (grad_f(x + FD_STEP * v) - grad_f(x - FD_STEP * v)) / (2 * FD_STEP)
    Hv = hvp(F)(x, v)
    assert_close(Hv, hv_fd, rtol=1e-5)
    assert_close(Hv, H @ v, rtol=1e-10)


def test_every_op_in_the_package_is_covered() -> None:
    """A new op exported from optlab.autodiff must get a case above."""
    not_ops = {"as_variable", "enable_grad", "no_grad"}
    modules = {"optlab.autodiff.core", "optlab.autodiff.elementwise", "optlab.autodiff.shapes"}
    ops = {name for name in ad.__all__ if name not in not_ops and isinstance(getattr(ad, name), FunctionType)
           and getattr(ad, name).__module__ in modules}
    covered = {c.id.split("-")[0] for c in CASES + LINEAR_CASES} | {"sum_to", "broadcast_to"}
    assert ops <= covered, sorted(ops - covered)


# -- higher order through backward(create_graph=True) --------------------------------------------

def derivatives(fn: Callable[[Variable], Variable], x0: float, order: int) -> list[float]:
    """d^k fn / dx^k at x0 for k = 1..order by repeated differentiable backward passes."""
    x = Variable(np.array(x0))
    y = fn(x)
    out = []
    for k in range(order):
        x.cleargrad()
        y.backward(create_graph=k < order - 1)
        y = x.grad
        out.append(float(y.data))
    return out


@settings(deadline=None, max_examples=50)
@given(x0=interval(-3.0, 3.0))
def test_third_derivative_of_x4(x0: float) -> None:
    d1, d2, d3 = derivatives(lambda x: x**4, x0, 3)
    assert d1 == pytest.approx(4 * x0**3, rel=1e-14, abs=1e-14)
    assert d2 == pytest.approx(12 * x0**2, rel=1e-14, abs=1e-14)
    assert d3 == pytest.approx(24 * x0, rel=1e-14, abs=1e-14)


@settings(deadline=None, max_examples=50)
@given(x0=interval(-3.0, 3.0))
def test_higher_derivatives_of_sin(x0: float) -> None:
    d = derivatives(ad.sin, x0, 4)
    np.testing.assert_allclose(d, [math.cos(x0), -math.sin(x0), -math.cos(x0), math.sin(x0)], rtol=1e-14, atol=1e-15)


@settings(deadline=None, max_examples=25)
@given(x0=interval(-1.0, 1.0))
def test_third_derivative_of_tan_through_its_output(x0: float) -> None:
    # tan' = 1 + tan^2 is written with the op's own output, so this differentiates through it
    t = math.tan(x0)
    d = derivatives(ad.tan, x0, 3)
    np.testing.assert_allclose(d, [1 + t**2, 2 * t * (1 + t**2), 2 * (1 + t**2) * (1 + 3 * t**2)], rtol=1e-13)


@pytest.mark.parametrize("x0", [0.0, 1.5, -2.0])
def test_derivatives_of_integer_powers_run_out_to_zero(x0: float) -> None:
    # the power rule reaches x**0 and then 0 * x**-1, which must be 0 (not nan) even at x = 0
    assert derivatives(lambda x: x**2, x0, 4) == [2 * x0, 2.0, 0.0, 0.0]
    assert derivatives(lambda x: x**4, x0, 5) == pytest.approx([4 * x0**3, 12 * x0**2, 24 * x0, 24.0, 0.0], rel=1e-15)
    np.testing.assert_array_equal(hessian(lambda v: (v**1).sum() + v[0] ** 2)(np.full(2, x0)), [[2, 0], [0, 0]])


def test_create_graph_grads_are_differentiable_and_plain_grads_are_not() -> None:
    x = Variable(np.array([0.5, -1.0]))
    (x**3).sum().backward(create_graph=True)
    assert x.grad.creator is not None
    gx = x.grad
    x.cleargrad()
    gx.sum().backward()
    np.testing.assert_array_equal(x.grad.data, 6 * x.data)

    x.cleargrad()
    (x**3).sum().backward()
    assert x.grad.creator is None
    np.testing.assert_array_equal(x.grad.data, 3 * x.data**2)


def test_newton_with_autodiff_second_derivative_reproduces_the_note() -> None:
    """The first note's double well x**4 - 2x**2 from x = 2, with y'' from the engine instead of by hand."""
    expected = [1.4545454545454546, 1.1510467893775467, 1.0253259289766978, 1.0009084519430513,
                1.0000012353089454, 1.000000000002289, 1.0]
    x = Variable(np.array(2.0))
    seen = []
    for _ in expected:
        y = x**4 - 2 * x**2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        x = Variable(x.data - gx.data / x.grad.data)
        seen.append(float(x.data))
    np.testing.assert_allclose(seen, expected, rtol=0, atol=1e-15)


# -- gradient bookkeeping -----------------------------------------------------------------------

def test_gradient_accumulates_over_every_use() -> None:
    x = Variable(np.array([1.5, -2.0, 0.5]))
    y = (x * x * x + x - x.sum()).sum() + ad.broadcast_to(x, (2, 3)).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2 + 1 - 3 + 2, rtol=1e-15)


def test_same_variable_as_both_operands() -> None:
    x = Variable(np.array(3.0))
    for op, expected in [(lambda a: a + a, 2.0), (lambda a: a * a, 6.0), (lambda a: a - a, 0.0),
                         (lambda a: a / a, 0.0), (lambda a: a**a, 27.0 * (math.log(3.0) + 1))]:
        x.cleargrad()
        op(x).backward()
        assert float(x.grad.data) == pytest.approx(expected, abs=1e-15)


def test_backward_twice_adds_up_until_cleargrad() -> None:
    x = Variable(np.array([1.0, 2.0]))
    f = lambda: (x**2).sum()  # noqa: E731
    f().backward()
    f().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * 2 * x.data)
    x.cleargrad()
    assert x.grad is None
    f().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * x.data)


def test_grads_of_intermediates_are_freed_unless_retained() -> None:
    x = Variable(np.array([1.0, 2.0]))
    h = x * 3
    (h * h).sum().backward()
    assert h.grad is None
    h2 = x * 3
    (h2 * h2).sum().backward(retain_grad=True)
    np.testing.assert_array_equal(h2.grad.data, 2 * h2.data)


def test_functions_that_ignore_an_input_give_zero_grad() -> None:
    x, unused = Variable(np.array([1.0, 2.0])), Variable(np.array(5.0))
    (x * 2).sum().backward()
    assert unused.grad is None

    np.testing.assert_array_equal(grad(lambda v: v[0] ** 2)(np.array([3.0, 4.0])), [6.0, 0.0])
    np.testing.assert_array_equal(grad(lambda v: Variable(7.0))(np.ones((2, 2))), np.zeros((2, 2)))
    np.testing.assert_array_equal(hessian(lambda v: Variable(7.0))(np.ones(3)), np.zeros((3, 3)))
    np.testing.assert_array_equal(hessian(lambda v: (v * 3.0).sum())(np.ones(3)), np.zeros((3, 3)))
    np.testing.assert_array_equal(hessian(lambda v: v[0] ** 3)(np.array([2.0, 1.0])), [[12.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(hvp(lambda v: (v * 3.0).sum())(np.ones(3), np.ones(3)), np.zeros(3))


def test_no_grad_records_nothing() -> None:
    x = Variable(np.array(2.0))
    with no_grad():
        y = ad.sin(x) * x
    assert y.creator is None
    y = ad.sin(x) * x
    assert y.creator is not None


@pytest.mark.parametrize("fn", [value_and_grad, grad, hessian, hvp])
def test_non_scalar_output_is_a_clear_value_error(fn) -> None:
    args = (np.ones(3),) * (2 if fn is hvp else 1)
    with pytest.raises(ValueError, match=r"must return a scalar, got shape \(3,\)"):
        fn(lambda v: v * 2)(*args)


@pytest.mark.parametrize("keep_shape", [lambda y: ad.sum(y, keepdims=True), lambda y: ad.reshape(ad.sum(y), (1, 1))])
def test_size_one_outputs_count_as_scalar(keep_shape) -> None:
    F = lambda v: keep_shape(v**2)  # noqa: E731
    x = np.array([1.0, -2.0])
    value, g = value_and_grad(F)(x)
    assert value == 5.0 and isinstance(value, float)
    np.testing.assert_array_equal(g, 2 * x)
    np.testing.assert_array_equal(hessian(F)(x), 2 * np.eye(2))


def test_hessian_of_a_matrix_input_has_shape_x_by_x() -> None:
    a = np.array([[1.0, 2.0], [0.5, -1.0]])
    H = hessian(lambda m: (m * m * m).sum())(a)
    assert H.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(H.reshape(4, 4), np.diag(6 * a.ravel()))


# -- numpy arrays on the left -------------------------------------------------------------------

@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow,
                                operator.matmul], ids=lambda op: op.__name__)
def test_numpy_array_on_the_left_defers_to_variable(op) -> None:
    a = np.array([[1.5, 2.0], [0.5, 3.0]])
    xv = np.array([0.7, 1.3])
    expr = op(a, Variable(xv))  # ndarray's operator must hand over to Variable's reflected one
    assert isinstance(expr, Variable)
    np.testing.assert_array_equal(expr.data, op(a, xv))
    F = lambda v: ad.sum(op(a, v))  # noqa: E731
    assert_close(grad(F)(xv), fd_gradient(values_of(F), xv), rtol=1e-6)


def test_numpy_scalar_on_the_left_defers_to_variable() -> None:
    y = np.float64(2.0) * Variable(np.array([1.0, 3.0]))
    assert isinstance(y, Variable)
    np.testing.assert_array_equal(y.data, [2.0, 6.0])


# -- the source notes' numbers and scipy's Rosenbrock ------------------------------------------

def rosenbrock(x0, x1):
    return 100 * (x1 - x0**2) ** 2 + (1 - x0) ** 2


def test_rosenbrock_gradient_at_0_2_is_exactly_minus2_400() -> None:
    x0, x1 = Variable(np.array(0.0)), Variable(np.array(2.0))
    rosenbrock(x0, x1).backward()
    assert (float(x0.grad.data), float(x1.grad.data)) == (-2.0, 400.0)
    np.testing.assert_array_equal(grad(lambda x: rosenbrock(x[0], x[1]))(np.array([0.0, 2.0])), [-2.0, 400.0])


def test_second_derivative_of_double_well_at_2_is_44() -> None:
    assert derivatives(lambda x: x**4 - 2 * x**2, 2.0, 2) == [24.0, 44.0]
    assert hessian(lambda x: (x**4 - 2 * x**2).sum())(np.array([2.0])).item() == 44.0


@settings(deadline=None, max_examples=50)
@given(x=arrays(np.float64, st.integers(2, 6), elements=ANY))
def test_rosenbrock_chain_matches_scipy(x: np.ndarray) -> None:
    F = lambda v: ad.sum(100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2)  # noqa: E731
    value, g = value_and_grad(F)(x)
    assert value == pytest.approx(scipy.optimize.rosen(x), rel=1e-14)
    np.testing.assert_allclose(g, scipy.optimize.rosen_der(x), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(hessian(F)(x), scipy.optimize.rosen_hess(x), rtol=1e-13, atol=1e-12)
    v = np.arange(1.0, x.size + 1)
    np.testing.assert_allclose(hvp(F)(x, v), scipy.optimize.rosen_hess_prod(x, v), rtol=1e-13, atol=1e-11)


GRADIENT_IN_A_FRESH_PROCESS = """
import numpy as np, optlab.autodiff as ad
rng = np.random.default_rng(3)
w = rng.standard_normal((40, 40))
def f(x):  # many uses of each coordinate at the same depth: the order of their sum is a tie
    y = ad.tanh(ad.matmul(w, x)) * x + ad.sin(x[::-1] * x) + ad.exp(0.1 * x) * x[0]
    return ad.sum(y * y) + ad.sum(ad.stack([x[i] * x[j] for i in range(0, 40, 3) for j in range(1, 40, 7)]))
x = rng.standard_normal(40)
junk = [object() for _ in range(int.from_bytes(__import__("os").urandom(2), "little"))]  # other addresses
print(ad.grad(f)(x).tobytes().hex(), ad.hvp(f)(x, np.ones(40)).tobytes().hex())
"""


def test_a_gradient_is_the_same_bits_in_two_fresh_processes():
    import subprocess
    import sys

    outputs = {subprocess.run([sys.executable, "-c", GRADIENT_IN_A_FRESH_PROCESS], capture_output=True, text=True,
                              check=True, env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout for seed in (1, 2)}
    assert len(outputs) == 1


# -- broadcasting: every binary op reduces its gradients to its operands' shapes ------------------

from hypothesis.extra.numpy import mutually_broadcastable_shapes  # noqa: E402

BROADCAST_OPS = {name: (fn, ea, eb) for name, fn, ea, eb in BINARY_OPS}


@pytest.mark.parametrize("name", sorted(BROADCAST_OPS))
@settings(deadline=None, max_examples=12)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), data=st.data())
def test_binary_ops_on_any_broadcastable_shapes(name, shapes, data):
    fn, ea, eb = BROADCAST_OPS[name]
    check_first_and_second_order(Case(f"{name}-{shapes.input_shapes}", fn, tuple(shapes.input_shapes), (ea, eb)),
                                 data)


@settings(deadline=None, max_examples=20)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), data=st.data())
def test_a_constant_array_exponent_broadcasts_like_any_operand(shapes, data):
    base_shape, exponent_shape = shapes.input_shapes
    exponent = data.draw(arrays(np.float64, exponent_shape, elements=st.sampled_from([0.0, 1.0, 2.0, 3.0, 0.5])))
    check_first_and_second_order(Case("pow-const-array", lambda x: x ** exponent, (base_shape,), (POSITIVE,)), data)


def test_a_scalar_to_an_array_of_powers_sums_its_gradient():
    value, g = value_and_grad(lambda x: ad.sum(x ** np.array([1.0, 2.0, 3.0])))(np.array(2.0))
    assert value == 14.0 and g.shape == () and float(g) == 17.0  # 1 + 2 x + 3 x^2 at 2


def test_misused_variables_are_one_line_errors_that_name_the_remedy():
    x = Variable(np.array([1.0, -2.0]))
    with pytest.raises(TypeError, match="cannot hold optlab Variables.*stack"):
        np.array([x[0], x[1]])
    with pytest.raises(TypeError, match="truth value of a Variable.*where"):
        if x[0] < 0:
            pass
    y = ad.where(x < 0.0, -x, x * x)  # the branch written as an operation
    np.testing.assert_array_equal(y.data, [1.0, 2.0])
