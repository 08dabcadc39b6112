from __future__ import annotations

import math

import numpy as np

from ..errors import SolverFailure
from ..norms import SMALL
from .descent import DescentSolver, DescentState
from .hessian_modification import MODIFICATIONS
from .options import check_choice
from .problem import Problem


def newton_direction(hessian: np.ndarray, g: np.ndarray) -> np.ndarray:
    """d = -H^{-1} g, or :class:`SolverFailure` when H is singular."""
    try:
        d = -np.linalg.solve(hessian, g)
    except np.linalg.LinAlgError:
        raise SolverFailure("singular Hessian: the Newton step H^-1 grad f is undefined") from None
    if not _finite(d):
        raise SolverFailure("singular Hessian: the Newton step H^-1 grad f is not finite")
    return d


def _finite(d: np.ndarray) -> bool:
    """Whether every entry of ``d`` is finite (a few are looked at as Python floats: numpy's call
    overhead was a tenth of a small system's Newton step)."""
    if d.size <= SMALL:
        return all(map(math.isfinite, d.ravel().tolist()))
    return bool(np.all(np.isfinite(d)))


class Newton(DescentSolver):
    """Newton's method: x_{k+1} = x_k - alpha_k B_k^{-1} grad f(x_k), B_k = H(x_k) + E_k.

    The default is the notes' pure Newton: E_k = 0 and alpha_k = 1, x_{k+1} = x_k -
    H(x_k)^{-1} grad f(x_k). ``hessian_modification`` (eigenvalue, cholesky; see
    :mod:`optlab.solvers.hessian_modification`) makes B_k positive definite so the direction
    descends on non-convex regions; ``line_search`` (armijo, wolfe) picks alpha_k starting
    from 1. Reference: Nocedal and Wright, *Numerical Optimization*, 2nd ed., 2006, Sec. 3.3-3.4.
    The Hessian comes from the objective (autodiff unless it writes one out).
    """

    name = "newton"
    evaluates = ("value_and_grad", "hessian")

    def __init__(self, line_search: str = "none", hessian_modification: str = "none", c1: float = 1e-4,
                 c2: float = 0.9) -> None:
        self._init_line_search(line_search, c1, c2)
        self.hessian_modification = check_choice("solver.hessian_modification", hessian_modification,
                                                 MODIFICATIONS)
        self.modify = MODIFICATIONS[hessian_modification]

    def direction(self, problem: Problem, state: DescentState) -> np.ndarray:
        return newton_direction(self.modify(problem.hessian(state.x)), state.g)
