"""Define-by-run reverse-mode autodiff on numpy.

Every operation is a :class:`Function` whose ``forward`` works on numpy arrays and
whose ``backward`` is written with the same operations on :class:`Variable`s. The
backward pass is therefore itself a recorded computation when ``create_graph=True``,
and differentiating it again gives second (and higher) derivatives.
"""

from __future__ import annotations

import contextlib
import heapq
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

_BACKPROP = [True]


@contextlib.contextmanager
def enable_grad(flag: bool) -> Iterator[None]:
    """Record operations (``True``) or only compute values (``False``) inside the block."""
    old, _BACKPROP[0] = _BACKPROP[0], flag
    try:
        yield
    finally:
        _BACKPROP[0] = old


def no_grad() -> contextlib.AbstractContextManager[None]:
    return enable_grad(False)


class Variable:
    """A numpy array that remembers the :class:`Function` that produced it."""

    __array_ufunc__ = None  # make ``ndarray op Variable`` defer to Variable's operators

    def __init__(self, data: Any, name: str | None = None) -> None:
        self.data = np.asarray(data, dtype=float)
        self.name = name
        self.grad: Variable | None = None
        self.creator: Function | None = None
        self.generation = 0

    # -- array-like surface -------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    T = property(lambda self: transpose(self))

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Variable({self.data!r})"

    # -- graph ------------------------------------------------------------------
    def cleargrad(self) -> None:
        self.grad = None

    def backward(self, create_graph: bool = False, retain_grad: bool = False) -> None:
        """Accumulate d self / d leaf into every leaf's ``grad``.

        With ``create_graph`` the backward pass is recorded, so the grads are
        differentiable Variables themselves.
        """
        if self.grad is None:
            self.grad = Variable(np.ones_like(self.data))
        heap: list[tuple[int, int, Function]] = []
        seen: set[int] = set()

        def push(fn: Function | None) -> None:
            if fn is not None and id(fn) not in seen:
                seen.add(id(fn))
                heapq.heappush(heap, (-fn.generation, id(fn), fn))

        push(self.creator)
        while heap:
            fn = heapq.heappop(heap)[2]
            out = fn.output()
            with enable_grad(create_graph):
                gxs = fn.backward(out.grad)
                if not isinstance(gxs, tuple):
                    gxs = (gxs,)
                for x, gx in zip(fn.inputs, gxs):
                    if gx is None:
                        continue
                    x.grad = gx if x.grad is None else x.grad + gx
                    push(x.creator)
            if not retain_grad:
                out.grad = None

    # -- operators ----------------------------------------------------------------
    def __add__(self, other): return add(self, other)
    def __radd__(self, other): return add(other, self)
    def __sub__(self, other): return sub(self, other)
    def __rsub__(self, other): return sub(other, self)
    def __mul__(self, other): return mul(self, other)
    def __rmul__(self, other): return mul(other, self)
    def __truediv__(self, other): return div(self, other)
    def __rtruediv__(self, other): return div(other, self)
    def __pow__(self, other): return power(self, other)
    def __rpow__(self, other): return power(other, self)
    def __neg__(self): return neg(self)
    def __matmul__(self, other): return matmul(self, other)
    def __rmatmul__(self, other): return matmul(other, self)
    def __getitem__(self, index): return GetItem(index)(self)

    def sum(self, axis=None, keepdims: bool = False) -> Variable:
        return sum(self, axis, keepdims)

    def reshape(self, *shape) -> Variable:
        return reshape(self, shape[0] if len(shape) == 1 else shape)


def as_variable(obj: Any) -> Variable:
    return obj if isinstance(obj, Variable) else Variable(obj)


class Function:
    """One recorded operation: ``forward`` on arrays, ``backward`` on Variables."""

    inputs: tuple[Variable, ...]

    def __call__(self, *inputs: Any) -> Variable:
        xs = tuple(as_variable(x) for x in inputs)
        y = Variable(self.forward(*(x.data for x in xs)))
        if _BACKPROP[0]:
            self.inputs = xs
            self.generation = max(x.generation for x in xs)
            y.creator, y.generation = self, self.generation + 1
            self.output = weakref.ref(y)
        return y

    def forward(self, *xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, gy: Variable) -> Variable | tuple[Variable | None, ...]:
        raise NotImplementedError


# -- broadcasting arithmetic ------------------------------------------------------
class _Binary(Function):
    def __call__(self, a: Any, b: Any) -> Variable:
        a, b = as_variable(a), as_variable(b)
        self.shapes = (a.shape, b.shape)
        return super().__call__(a, b)

    def unbroadcast(self, ga: Variable, gb: Variable) -> tuple[Variable, Variable]:
        sa, sb = self.shapes
        return sum_to(ga, sa), sum_to(gb, sb)


class Add(_Binary):
    def forward(self, a, b): return a + b
    def backward(self, gy): return self.unbroadcast(gy, gy)


class Sub(_Binary):
    def forward(self, a, b): return a - b
    def backward(self, gy): return self.unbroadcast(gy, -gy)


class Mul(_Binary):
    def forward(self, a, b): return a * b

    def backward(self, gy):
        a, b = self.inputs
        return self.unbroadcast(gy * b, gy * a)


class Div(_Binary):
    def forward(self, a, b): return a / b

    def backward(self, gy):
        a, b = self.inputs
        return self.unbroadcast(gy / b, -gy * a / b**2)


class Pow(_Binary):
    """a ** b with both sides differentiable; see :class:`PowConst` for a fixed exponent."""

    def forward(self, a, b): return a**b

    def backward(self, gy):
        a, b = self.inputs
        return self.unbroadcast(gy * b * a ** (b - 1), gy * self.output() * log(a))


class PowConst(Function):
    """x ** c for a constant c: no log(x), so negative bases keep finite derivatives."""

    def __init__(self, c):
        self.c = c

    def forward(self, x): return x**self.c

    def backward(self, gy):
        # where c == 0 the derivative is 0; as 0 * x**-1 it would be nan at x = 0
        c = np.asarray(self.c, dtype=float)
        return gy * c * self.inputs[0] ** np.where(c == 0, 1.0, c - 1)


class Neg(Function):
    def forward(self, x): return -x
    def backward(self, gy): return -gy


def add(a, b) -> Variable: return Add()(a, b)
def sub(a, b) -> Variable: return Sub()(a, b)
def mul(a, b) -> Variable: return Mul()(a, b)
def div(a, b) -> Variable: return Div()(a, b)
def power(a, b) -> Variable:
    return Pow()(a, b) if isinstance(b, Variable) else PowConst(b)(a)
def neg(x) -> Variable: return Neg()(x)


# -- elementwise functions ----------------------------------------------------------
class Sin(Function):
    def forward(self, x): return np.sin(x)
    def backward(self, gy): return gy * cos(self.inputs[0])


class Cos(Function):
    def forward(self, x): return np.cos(x)
    def backward(self, gy): return -gy * sin(self.inputs[0])


class Tan(Function):
    def forward(self, x): return np.tan(x)
    def backward(self, gy): return gy * (1 + self.output() ** 2)


class Exp(Function):
    def forward(self, x): return np.exp(x)
    def backward(self, gy): return gy * self.output()


class Log(Function):
    def forward(self, x): return np.log(x)
    def backward(self, gy): return gy / self.inputs[0]


class Sqrt(Function):
    def forward(self, x): return np.sqrt(x)
    def backward(self, gy): return gy / (2 * self.output())


class Tanh(Function):
    def forward(self, x): return np.tanh(x)
    def backward(self, gy): return gy * (1 - self.output() ** 2)


class Abs(Function):
    """|x|, with derivative sign(x) (0 at the kink)."""

    def forward(self, x): return np.abs(x)
    def backward(self, gy): return gy * np.sign(self.inputs[0].data)


class Maximum(_Binary):
    """Elementwise max; a tie sends the gradient to the first argument."""

    def forward(self, a, b): return np.maximum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        first = a.data >= b.data
        return self.unbroadcast(gy * first, gy * ~first)


class Minimum(_Binary):
    def forward(self, a, b): return np.minimum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        first = a.data <= b.data
        return self.unbroadcast(gy * first, gy * ~first)


def sin(x) -> Variable: return Sin()(x)
def cos(x) -> Variable: return Cos()(x)
def tan(x) -> Variable: return Tan()(x)
def exp(x) -> Variable: return Exp()(x)
def log(x) -> Variable: return Log()(x)
def sqrt(x) -> Variable: return Sqrt()(x)
def tanh(x) -> Variable: return Tanh()(x)
def abs(x) -> Variable: return Abs()(x)  # noqa: A001 - mirrors numpy's name
def maximum(a, b) -> Variable: return Maximum()(a, b)
def minimum(a, b) -> Variable: return Minimum()(a, b)


# -- shapes and reductions ---------------------------------------------------------
class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy): return reshape(gy, self.in_shape)


class Transpose(Function):
    def forward(self, x): return np.transpose(x)
    def backward(self, gy): return transpose(gy)


class Sum(Function):
    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.in_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        if not self.keepdims and self.axis is not None:
            axes = (self.axis,) if np.isscalar(self.axis) else self.axis
            axes = sorted(a % len(self.in_shape) for a in axes)
            shape = list(gy.shape)
            for a in axes:
                shape.insert(a, 1)
            gy = reshape(gy, tuple(shape))
        return broadcast_to(gy, self.in_shape)


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return np.broadcast_to(x, self.shape).copy()

    def backward(self, gy): return sum_to(gy, self.in_shape)


class SumTo(Function):
    """Sum over the axes that broadcasting added or stretched (its adjoint)."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(self.shape) if n == 1 and x.shape[lead + i] != 1
        )
        y = x.sum(axis=axes, keepdims=True)
        return y.reshape(self.shape) if lead else y

    def backward(self, gy): return broadcast_to(gy, self.in_shape)


class MatMul(Function):
    def forward(self, a, b): return a @ b

    def backward(self, gy):
        a, b = self.inputs
        if a.ndim == 1 and b.ndim == 1:  # inner product
            return gy * b, gy * a
        if b.ndim == 1:  # matrix @ vector
            return outer(gy, b), matmul(transpose(a), gy)
        if a.ndim == 1:  # vector @ matrix
            return matmul(b, gy), outer(a, gy)
        return matmul(gy, transpose(b)), matmul(transpose(a), gy)


class GetItem(Function):
    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.in_shape = x.shape
        return x[self.index]

    def backward(self, gy): return ScatterAdd(self.index, self.in_shape)(gy)


class ScatterAdd(Function):
    """Adjoint of indexing: put ``gy`` back at ``index`` in zeros of ``shape``."""

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, gy):
        gx = np.zeros(self.shape)
        np.add.at(gx, self.index, gy)
        return gx

    def backward(self, ggx): return ggx[self.index]


def reshape(x, shape) -> Variable:
    x = as_variable(x)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return x if x.shape == shape else Reshape(shape)(x)


def transpose(x) -> Variable: return Transpose()(x)
def sum(x, axis=None, keepdims: bool = False) -> Variable: return Sum(axis, keepdims)(x)  # noqa: A001


def broadcast_to(x, shape) -> Variable:
    x = as_variable(x)
    return x if x.shape == tuple(shape) else BroadcastTo(tuple(shape))(x)


def sum_to(x, shape) -> Variable:
    x = as_variable(x)
    return x if x.shape == tuple(shape) else SumTo(tuple(shape))(x)


def matmul(a, b) -> Variable: return MatMul()(a, b)


def dot(a, b) -> Variable:
    return matmul(a, b)


def outer(a, b) -> Variable:
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))
