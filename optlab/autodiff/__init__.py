"""optlab's define-by-run reverse-mode autodiff (see :mod:`optlab.autodiff.core`)."""

from .compile import Compiled, NotCompilable, compile_function, eager
from .core import Function, Lowering, Variable, as_variable, enable_grad, no_grad
from .elementwise import (
    abs,
    arccos,
    arcsin,
    arctan,
    arctan2,
    cos,
    cosh,
    exp,
    expm1,
    floor,
    log,
    log1p,
    maximum,
    minimum,
    sign,
    sin,
    sinh,
    sqrt,
    tan,
    tanh,
    where,
)
from .functional import grad, hessian, hvp, value_and_grad
from .shapes import broadcast_to, concatenate, dot, matmul, reshape, stack, sum, sum_to, transpose

__all__ = [
    "Compiled", "NotCompilable", "compile_function", "eager",
    "Function", "Lowering", "Variable", "as_variable", "enable_grad", "no_grad",
    "abs", "arccos", "arcsin", "arctan", "arctan2", "cos", "cosh", "exp", "expm1", "floor", "log", "log1p",
    "maximum", "minimum", "sign", "sin", "sinh", "sqrt", "tan", "tanh", "where",
    "broadcast_to", "concatenate", "dot", "matmul", "reshape", "stack", "sum", "sum_to", "transpose",
    "grad", "hessian", "hvp", "value_and_grad",
]
