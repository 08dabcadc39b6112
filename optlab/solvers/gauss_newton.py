from __future__ import annotations

import dataclasses

import numpy as np

from ..objectives.base import Objective
from .descent import DescentSolver, DescentState
from .problem import Problem
from .residuals import ResidualTrials, require_residual


@dataclasses.dataclass
class ResidualState(DescentState):
    """Adds the residual vector r(x) and its Jacobian J(x)."""

    residual: np.ndarray | None = None
    jacobian: np.ndarray | None = None


def residual_state(trials: ResidualTrials, x: np.ndarray, state_type: type[ResidualState] = ResidualState,
                   **fields) -> ResidualState:
    """The state at x: f = r^T r, grad f = 2 J^T r, from r and J there (r evaluated once)."""
    r, jac = trials.residual_at(x), trials.jacobian_at(x)
    return state_type(x=x, f=float(r @ r), g=2.0 * (jac.T @ r), residual=r, jacobian=jac, **fields)


class GaussNewton(DescentSolver):
    """Gauss-Newton: x_{k+1} = x_k + alpha_k d_k, d_k = argmin_d ||r(x_k) + J(x_k) d||.

    For f = sum_i r_i(x)^2: the Newton step with the Hessian replaced by 2 J^T J, i.e.
    d_k = -(J^T J)^{-1} J^T r, solved by orthogonal factorisation (``numpy.linalg.lstsq``),
    which also gives the minimum-norm d when J is rank deficient. J comes from autodiff on
    the objective's ``residual``. alpha_k = 1 (``line_search: none``) or Armijo backtracking
    from 1. Each point is evaluated once: r at the trials, J only at the accepted one. On a
    linear residual one step lands on the least-squares solution. Reference:
    Nocedal and Wright, *Numerical Optimization*, 2nd ed., 2006, Sec. 10.3.
    """

    name = "gauss_newton"
    state_type = ResidualState
    evaluates = ()  # r and J come from the residual's own compiled code (residuals.py), not from f's

    def __init__(self, line_search: str = "armijo", c1: float = 1e-4) -> None:
        self._init_line_search(line_search, c1, 0.9, allowed=("none", "armijo"))

    def check(self, objective: Objective) -> None:
        require_residual(objective, self.name)

    def init(self, problem: Problem, x0: np.ndarray) -> ResidualState:
        return residual_state(ResidualTrials(problem), x0)

    def direction(self, problem: Problem, state: ResidualState) -> np.ndarray:
        d, *_ = np.linalg.lstsq(state.jacobian, -state.residual, rcond=None)
        return d

    def update(self, problem: Problem, state: ResidualState) -> ResidualState:
        d = self.direction(problem, state)
        # r only along the line; the accepted point's r is kept, and only J is evaluated there
        trials = ResidualTrials(problem)
        step = self.search.search(trials, state.x, state.f, state.g, d, 1.0, want_grad=False)
        return residual_state(trials, step.x, step_size=step.alpha, k=state.k + 1, f_previous=state.f)
