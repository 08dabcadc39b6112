"""Define-by-run reverse-mode autodiff on numpy: Variables, Functions and the arithmetic.

Every operation is a :class:`Function` whose ``forward`` works on numpy arrays and whose
``backward`` is written with the same operations on :class:`Variable`s. The backward pass is
therefore itself a recorded computation when ``create_graph=True``, and differentiating it
again gives second (and higher) derivatives. An elementwise operation also carries its
:class:`Lowering`: how generated code computes it (:mod:`optlab.autodiff.scalar_code`).
The other operations live in :mod:`.elementwise` and :mod:`.shapes`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import math
import weakref
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

_BACKPROP = [True]
_SERIAL = itertools.count()  # creation order of recorded operations: ties in backward go by it


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


@dataclasses.dataclass(frozen=True)
class Lowering:
    """How generated code computes an elementwise operation.

    ``ufunc`` is numpy's function for arrays. On Python floats the code is ``scalar``, an
    expression of the operands ``{0}``, ``{1}``, or, where that is None, a call of ``libm``,
    the C library's function (``math.exp``). ``exact`` says that numpy gives the scalar form's
    bits on every CPU (IEEE arithmetic, sqrt, comparisons); where it does not (exp, pow, ...,
    whose SIMD versions differ in the last bit), batched code applies the scalar form element
    by element, so that one run and a batch of runs compute the same numbers.

    Machine code (:mod:`optlab.autodiff.native`, numba) uses the scalar form with the same
    libm binding, and ``native`` where that form has none: an expression of the operands that
    numba compiles to the same bits.
    """

    ufunc: Callable
    scalar: str | None = None
    libm: Callable | None = None
    exact: bool = True
    native: str | None = None


class Variable:
    """A numpy array that remembers the :class:`Function` that produced it."""

    __array_ufunc__ = None  # make ``ndarray op Variable`` defer to Variable's operators
    __array_priority__ = 100

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
    T = property(lambda self: shapes.transpose(self))

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Variable({self.data!r})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError("a numpy array cannot hold optlab Variables (np.array([x[0], x[1]]) or similar); "
                        "use optlab.autodiff.stack or concatenate instead")

    def __bool__(self) -> bool:
        raise TypeError("the truth value of a Variable is not defined (a Python branch on x); "
                        "use optlab.autodiff.where, maximum or minimum instead")

    # -- graph ------------------------------------------------------------------
    def cleargrad(self) -> None:
        self.grad = None

    def backward(self, create_graph: bool = False, retain_grad: bool = False) -> None:
        """Accumulate d self / d leaf into every leaf's ``grad``.

        Functions run latest generation first, ties in reverse order of creation, so the
        gradient's sums are taken in the same order in every process. With ``create_graph``
        the backward pass is recorded, so the grads are differentiable Variables themselves.
        """
        if self.grad is None:
            self.grad = Variable(np.ones_like(self.data))
        heap: list[tuple[int, int, Function]] = []
        seen: set[int] = set()

        def push(fn: Function | None) -> None:
            if fn is not None and fn.serial not in seen:
                seen.add(fn.serial)
                heapq.heappush(heap, (-fn.generation, -fn.serial, fn))

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
    def __floordiv__(self, other): return elementwise.floor(div(self, other))
    def __rfloordiv__(self, other): return elementwise.floor(div(other, self))
    def __neg__(self): return neg(self)
    def __matmul__(self, other): return shapes.matmul(self, other)
    def __rmatmul__(self, other): return shapes.matmul(other, self)
    def __getitem__(self, index): return shapes.GetItem(index)(self)
    def __lt__(self, other): return elementwise.less(self, other)
    def __le__(self, other): return elementwise.less_equal(self, other)
    def __gt__(self, other): return elementwise.less(other, self)
    def __ge__(self, other): return elementwise.less_equal(other, self)
    __hash__ = object.__hash__  # comparisons give Variables, so == stays identity

    def sum(self, axis=None, keepdims: bool = False) -> Variable:
        return shapes.sum(self, axis, keepdims)

    def reshape(self, *shape) -> Variable:
        return shapes.reshape(self, shape[0] if len(shape) == 1 else shape)


def as_variable(obj: Any) -> Variable:
    return obj if isinstance(obj, Variable) else Variable(obj)


class Function:
    """One recorded operation: ``forward`` on arrays, ``backward`` on Variables."""

    inputs: tuple[Variable, ...]
    serial = -1
    lowering: ClassVar[Lowering | None] = None  # elementwise operations: see Lowering

    def __call__(self, *inputs: Any) -> Variable:
        xs = tuple(as_variable(x) for x in inputs)
        y = Variable(self.forward(*(x.data for x in xs)))
        if _BACKPROP[0]:
            self.inputs = xs
            self.generation = max(x.generation for x in xs)
            self.serial = next(_SERIAL)
            y.creator, y.generation = self, self.generation + 1
            self.output = weakref.ref(y)
        return y

    def forward(self, *xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, gy: Variable) -> Variable | tuple[Variable | None, ...]:
        raise NotImplementedError


def apply(op: type[Function], *args: Any) -> Any:
    """``op`` on Variables, recorded; on plain numbers and arrays, numpy's result (so code
    written with these functions also runs on arrays, as the solvers' steps do)."""
    if any(isinstance(a, Variable) for a in args):
        return op()(*args)
    return op.lowering.ufunc(*args)


# -- broadcasting arithmetic ------------------------------------------------------
class Binary(Function):
    """A binary elementwise operation; gradients are summed back to each operand's shape."""

    def __call__(self, a: Any, b: Any) -> Variable:
        a, b = as_variable(a), as_variable(b)
        self.shapes = (a.shape, b.shape)
        return super().__call__(a, b)

    def unbroadcast(self, ga: Variable | None, gb: Variable | None) -> tuple[Variable | None, Variable | None]:
        sa, sb = self.shapes
        return (None if ga is None else shapes.sum_to(ga, sa)), (None if gb is None else shapes.sum_to(gb, sb))


class Add(Binary):
    lowering = Lowering(np.add, "{0} + {1}")
    def forward(self, a, b): return a + b
    def backward(self, gy): return self.unbroadcast(gy, gy)


class Sub(Binary):
    lowering = Lowering(np.subtract, "{0} - {1}")
    def forward(self, a, b): return a - b
    def backward(self, gy): return self.unbroadcast(gy, -gy)


class Mul(Binary):
    lowering = Lowering(np.multiply, "{0} * {1}")
    def forward(self, a, b): return a * b

    def backward(self, gy):
        a, b = self.inputs
        return self.unbroadcast(gy * b, gy * a)


class Div(Binary):
    lowering = Lowering(np.divide, "{0} / {1}")
    def forward(self, a, b): return a / b

    def backward(self, gy):
        a, b = self.inputs
        return self.unbroadcast(gy / b, -gy * a / b**2)


class Pow(Binary):
    """a ** b with both sides differentiable; see :class:`PowConst` for a fixed exponent."""

    lowering = Lowering(np.power, libm=math.pow, exact=False)
    def forward(self, a, b): return a**b

    def backward(self, gy):
        a, b = self.inputs
        return self.unbroadcast(gy * b * a ** (b - 1), gy * self.output() * elementwise.log(a))


class PowConst(Function):
    """x ** c for a constant c: no log(x), so negative bases keep finite derivatives.

    Lowered like numpy's ``**``: x * x for c = 2, sqrt, 1 / x, else the C library's pow.
    """

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        self.in_shape = x.shape
        return x**self.c

    def backward(self, gy):
        # where c == 0 the derivative is 0; as 0 * x**-1 it would be nan at x = 0
        c = np.asarray(self.c, dtype=float)
        return shapes.sum_to(gy * c * self.inputs[0] ** np.where(c == 0, 1.0, c - 1), self.in_shape)


class Neg(Function):
    lowering = Lowering(np.negative, "-{0}")
    def forward(self, x): return -x
    def backward(self, gy): return -gy


def add(a, b) -> Variable: return Add()(a, b)
def sub(a, b) -> Variable: return Sub()(a, b)
def mul(a, b) -> Variable: return Mul()(a, b)
def div(a, b) -> Variable: return Div()(a, b)
def neg(x) -> Variable: return Neg()(x)


def power(a, b) -> Variable:
    return Pow()(a, b) if isinstance(b, Variable) else PowConst(b)(a)


from . import elementwise, shapes  # noqa: E402 - they build on the classes above
