"""optlab's define-by-run reverse-mode autodiff (see :mod:`optlab.autodiff.core`)."""

from .compile import Compiled, NotCompilable, compile_function, eager
from .core import (
    Function,
    Variable,
    abs,
    as_variable,
    broadcast_to,
    cos,
    dot,
    enable_grad,
    exp,
    log,
    matmul,
    maximum,
    minimum,
    no_grad,
    reshape,
    sin,
    sqrt,
    sum,
    sum_to,
    tan,
    tanh,
    transpose,
)
from .functional import grad, hessian, hvp, value_and_grad

__all__ = [
    "Compiled", "NotCompilable", "compile_function", "eager",
    "Function", "Variable", "abs", "as_variable", "broadcast_to", "cos", "dot", "enable_grad",
    "exp", "grad", "hessian", "hvp", "log", "matmul", "maximum", "minimum", "no_grad", "reshape",
    "sin", "sqrt", "sum", "sum_to", "tan", "tanh", "transpose", "value_and_grad",
]
