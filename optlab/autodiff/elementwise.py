"""Elementwise functions: forward, derivative and lowering side by side.

Adding an operation is one class here (``forward``, ``backward``, ``lowering``) plus its
function, which accepts Variables (recorded) and plain numbers or arrays (numpy's result).
"""

from __future__ import annotations

import math

import numpy as np

from .core import Binary, Function, Lowering, apply


def _floor(v: float) -> float:
    return float(math.floor(v))  # raises on inf and nan: generated code then takes numpy's answer


def _at_least(a, b):
    return np.greater_equal(a, b).astype(float)


def _less(a, b):
    return np.less(a, b).astype(float)


def _less_equal(a, b):
    return np.less_equal(a, b).astype(float)


class Sin(Function):
    lowering = Lowering(np.sin, libm=math.sin, exact=False)
    def forward(self, x): return np.sin(x)
    def backward(self, gy): return gy * cos(self.inputs[0])


class Cos(Function):
    lowering = Lowering(np.cos, libm=math.cos, exact=False)
    def forward(self, x): return np.cos(x)
    def backward(self, gy): return -gy * sin(self.inputs[0])


class Tan(Function):
    lowering = Lowering(np.tan, libm=math.tan, exact=False)
    def forward(self, x): return np.tan(x)
    def backward(self, gy): return gy * (1 + self.output() ** 2)


class Arcsin(Function):
    lowering = Lowering(np.arcsin, libm=math.asin, exact=False)
    def forward(self, x): return np.arcsin(x)
    def backward(self, gy): return gy / sqrt(1 - self.inputs[0] ** 2)


class Arccos(Function):
    lowering = Lowering(np.arccos, libm=math.acos, exact=False)
    def forward(self, x): return np.arccos(x)
    def backward(self, gy): return -gy / sqrt(1 - self.inputs[0] ** 2)


class Arctan(Function):
    lowering = Lowering(np.arctan, libm=math.atan, exact=False)
    def forward(self, x): return np.arctan(x)
    def backward(self, gy): return gy / (1 + self.inputs[0] ** 2)


class Arctan2(Binary):
    """The angle of the point (b, a): arctan(a / b) in the right quadrant."""

    lowering = Lowering(np.arctan2, libm=math.atan2, exact=False)
    def forward(self, a, b): return np.arctan2(a, b)

    def backward(self, gy):
        a, b = self.inputs
        r2 = a * a + b * b
        return self.unbroadcast(gy * b / r2, -gy * a / r2)


class Sinh(Function):
    lowering = Lowering(np.sinh, libm=math.sinh, exact=False)
    def forward(self, x): return np.sinh(x)
    def backward(self, gy): return gy * cosh(self.inputs[0])


class Cosh(Function):
    lowering = Lowering(np.cosh, libm=math.cosh, exact=False)
    def forward(self, x): return np.cosh(x)
    def backward(self, gy): return gy * sinh(self.inputs[0])


class Tanh(Function):
    lowering = Lowering(np.tanh, libm=math.tanh, exact=False)
    def forward(self, x): return np.tanh(x)
    def backward(self, gy): return gy * (1 - self.output() ** 2)


class Exp(Function):
    lowering = Lowering(np.exp, libm=math.exp, exact=False)
    def forward(self, x): return np.exp(x)
    def backward(self, gy): return gy * self.output()


class Expm1(Function):
    """exp(x) - 1, accurate near 0."""

    lowering = Lowering(np.expm1, libm=math.expm1, exact=False)
    def forward(self, x): return np.expm1(x)
    def backward(self, gy): return gy * (self.output() + 1)


class Log(Function):
    lowering = Lowering(np.log, libm=math.log, exact=False)
    def forward(self, x): return np.log(x)
    def backward(self, gy): return gy / self.inputs[0]


class Log1p(Function):
    """log(1 + x), accurate near 0."""

    lowering = Lowering(np.log1p, libm=math.log1p, exact=False)
    def forward(self, x): return np.log1p(x)
    def backward(self, gy): return gy / (1 + self.inputs[0])


class Sqrt(Function):
    lowering = Lowering(np.sqrt, libm=math.sqrt)  # correctly rounded everywhere
    def forward(self, x): return np.sqrt(x)
    def backward(self, gy): return gy / (2 * self.output())


class Abs(Function):
    """|x|, with derivative sign(x) (0 at the kink)."""

    lowering = Lowering(np.abs, "abs({0})")
    def forward(self, x): return np.abs(x)
    def backward(self, gy): return gy * sign(self.inputs[0])


class Sign(Function):
    """sign(x): -1, 0 or 1 (nan for nan); its derivative is zero (piecewise constant)."""

    lowering = Lowering(np.sign, "(1.0 if {0} > 0.0 else -1.0 if {0} < 0.0 else {0})")
    def forward(self, x): return np.sign(x)
    def backward(self, gy): return None


class Floor(Function):
    """The largest integer <= x; derivative zero."""

    lowering = Lowering(np.floor, libm=_floor, native="np.floor({0})")  # (math.floor gives an int in numba)
    def forward(self, x): return np.floor(x)
    def backward(self, gy): return None


class AtLeast(Binary):
    """1.0 where a >= b, else 0.0 (also where either is nan); derivative zero."""

    lowering = Lowering(_at_least, "(1.0 if {0} >= {1} else 0.0)")
    def forward(self, a, b): return _at_least(a, b)
    def backward(self, gy): return None, None


class Less(Binary):
    """1.0 where a < b, else 0.0 (``a < b`` on Variables); derivative zero."""

    lowering = Lowering(_less, "(1.0 if {0} < {1} else 0.0)")
    def forward(self, a, b): return _less(a, b)
    def backward(self, gy): return None, None


class LessEqual(Binary):
    """1.0 where a <= b, else 0.0 (``a <= b`` on Variables); derivative zero."""

    lowering = Lowering(_less_equal, "(1.0 if {0} <= {1} else 0.0)")
    def forward(self, a, b): return _less_equal(a, b)
    def backward(self, gy): return None, None


class Maximum(Binary):
    """Elementwise max; a tie sends the gradient to the first argument."""

    lowering = Lowering(np.maximum, "({0} if {0} >= {1} or {0} != {0} else {1})")
    def forward(self, a, b): return np.maximum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        first = at_least(a, b)
        return self.unbroadcast(gy * first, gy * (1.0 - first))


class Minimum(Binary):
    lowering = Lowering(np.minimum, "({0} if {0} <= {1} or {0} != {0} else {1})")
    def forward(self, a, b): return np.minimum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        first = at_least(b, a)
        return self.unbroadcast(gy * first, gy * (1.0 - first))


def sin(x): return apply(Sin, x)
def cos(x): return apply(Cos, x)
def tan(x): return apply(Tan, x)
def arcsin(x): return apply(Arcsin, x)
def arccos(x): return apply(Arccos, x)
def arctan(x): return apply(Arctan, x)
def arctan2(a, b): return apply(Arctan2, a, b)
def sinh(x): return apply(Sinh, x)
def cosh(x): return apply(Cosh, x)
def tanh(x): return apply(Tanh, x)
def exp(x): return apply(Exp, x)
def expm1(x): return apply(Expm1, x)
def log(x): return apply(Log, x)
def log1p(x): return apply(Log1p, x)
def sqrt(x): return apply(Sqrt, x)
def abs(x): return apply(Abs, x)  # noqa: A001 - mirrors numpy's name
def sign(x): return apply(Sign, x)
def floor(x): return apply(Floor, x)
def at_least(a, b): return apply(AtLeast, a, b)
def less(a, b): return apply(Less, a, b)
def less_equal(a, b): return apply(LessEqual, a, b)
def maximum(a, b): return apply(Maximum, a, b)
def minimum(a, b): return apply(Minimum, a, b)


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b``; ``condition`` is a comparison such as
    ``x < 0`` (1.0 or 0.0; its own derivative is zero). Both branches are computed, so keep
    them finite everywhere (as with numpy.where)."""
    return condition * a + (1.0 - condition) * b
