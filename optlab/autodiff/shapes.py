"""Shapes, reductions, indexing and matrix products; each forward next to its adjoint."""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import Function, Variable, as_variable, mul


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


def summed_axes(in_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of ``in_shape`` that broadcasting to it from ``shape`` added or stretched."""
    lead = len(in_shape) - len(shape)
    return tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and in_shape[lead + i] != 1)


class SumTo(Function):
    """Sum over the axes that broadcasting added or stretched (its adjoint)."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        y = x.sum(axis=summed_axes(x.shape, self.shape), keepdims=True)
        return y.reshape(self.shape)

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


class Concatenate(Function):
    """Inputs joined along ``axis`` (``stack`` first gives each a new axis)."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return np.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        bounds = np.cumsum([0, *self.sizes])
        axis = self.axis % gy.ndim
        return tuple(gy[(slice(None),) * axis + (slice(int(lo), int(hi)),)] for lo, hi in zip(bounds, bounds[1:]))


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


def concatenate(xs: Any, axis: int = 0) -> Variable:
    """Variables (or arrays) joined along an existing axis, as numpy.concatenate."""
    return Concatenate(axis)(*xs)


def stack(xs: Any, axis: int = 0) -> Variable:
    """Variables (or numbers) joined along a new axis, as numpy.stack: e.g. a residual vector
    ``stack([x[0] - 1, 10 * (x[1] - x[0] ** 2)])``."""
    parts = [as_variable(x) for x in xs]
    if not parts:
        raise ValueError("stack needs at least one array")
    axis = axis % (parts[0].ndim + 1)
    return concatenate([reshape(p, p.shape[:axis] + (1,) + p.shape[axis:]) for p in parts], axis)
