from __future__ import annotations

import numpy as np

from ..errors import SolverFailure
from ..problem import Problem
from .base import Solver, State


def newton_direction(hessian: np.ndarray, g: np.ndarray) -> np.ndarray:
    """d = -H^{-1} g, or :class:`SolverFailure` when H is singular."""
    try:
        d = -np.linalg.solve(hessian, g)
    except np.linalg.LinAlgError:
        raise SolverFailure("singular Hessian: the Newton step H^-1 grad f is undefined") from None
    if not np.all(np.isfinite(d)):
        raise SolverFailure("singular Hessian: the Newton step H^-1 grad f is not finite")
    return d


class Newton(Solver):
    """Newton's method, pure: x_{k+1} = x_k - H(x_k)^{-1} grad f(x_k).

    The Hessian comes from the objective (autodiff unless it writes one out).
    """

    name = "newton"

    def update(self, problem: Problem, state: State) -> State:
        x = state.x + newton_direction(problem.hessian(state.x), state.g)
        f, g = problem.value_and_grad(x)
        return State(x=x, f=f, g=g, step_size=1.0)
