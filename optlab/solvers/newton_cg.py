from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .descent import DescentSolver, DescentState
from .options import check_count
from .problem import Problem


def truncated_cg(hvp: Callable[[np.ndarray], np.ndarray], g: np.ndarray, tolerance: float,
                 max_iter: int) -> np.ndarray:
    """An approximate solution of H d = -g by conjugate gradients, stopped when ||H d + g||_1 <=
    ``tolerance`` or at non-positive curvature: then the last iterate, or at the first step
    steepest descent -g scaled by ||g||^2 / |g^T H g| (Nocedal and Wright, Algorithm 7.1; the
    scaling gives the line search a first trial of the length the curvature suggests).
    One Hessian-vector product per CG iteration."""
    d = np.zeros_like(g)
    r = g.copy()  # residual H d + g
    p = -r
    rr = float(r @ r)
    for i in range(max_iter):
        if float(np.sum(np.abs(r))) <= tolerance:
            break
        hp = hvp(p)
        curvature = float(p @ hp)
        if curvature <= 0:
            if i > 0:
                return d
            return -g * (rr / -curvature if curvature < 0 else 1.0)
        alpha = rr / curvature
        d = d + alpha * p
        r = r + alpha * hp
        rr_next = float(r @ r)
        p = -r + (rr_next / rr) * p
        rr = rr_next
    return d


def forcing_tolerance(g: np.ndarray) -> float:
    """eta ||g||_1 with the forcing term eta = min(0.5, sqrt(||g||_1)): the residual CG must reach."""
    gnorm = float(np.sum(np.abs(g)))
    return min(0.5, math.sqrt(gnorm)) * gnorm


class NewtonCG(DescentSolver):
    """Newton-CG (truncated, Hessian-free Newton): x_{k+1} = x_k + alpha_k d_k, H(x_k) d_k ~ -grad f(x_k).

    d_k comes from conjugate gradients on the Newton equation using only Hessian-vector
    products H v from autodiff (reverse over reverse: no n x n matrix), stopped at relative
    residual ||H d + g_k||_1 <= eta_k ||g_k||_1, eta_k = min(0.5, sqrt(||g_k||_1)), or at
    negative curvature (:func:`truncated_cg`); alpha_k satisfies the strong Wolfe conditions
    from 1. A forcing term eta_k -> 0 like sqrt(||g_k||) gives superlinear convergence in any
    norm (Dembo, Eisenstat and Steihaug); the 1-norm is the one scipy's Newton-CG measures in.
    For large n. Reference: Nocedal and Wright, *Numerical Optimization*, 2nd ed., 2006,
    Algorithm 7.1; Dembo, Eisenstat and Steihaug, SIAM J. Numer. Anal. 19, 1982; Dembo and
    Steihaug, Math. Prog. 26, 1983.
    """

    name = "newton_cg"
    evaluates = ("value_and_grad", "hvp")

    def __init__(self, max_cg_iter: int | None = None, line_search: str = "wolfe", c1: float = 1e-4,
                 c2: float = 0.9) -> None:
        self.max_cg_iter = check_count("solver.max_cg_iter", max_cg_iter, allow_none=True)
        self._init_line_search(line_search, c1, c2)

    def direction(self, problem: Problem, state: DescentState) -> np.ndarray:
        max_iter = self.max_cg_iter if self.max_cg_iter is not None else 20 * state.x.size
        return truncated_cg(lambda v: problem.hvp(state.x, v), state.g, forcing_tolerance(state.g), max_iter)
