from __future__ import annotations

import dataclasses

import numpy as np

from .descent import DescentSolver, DescentState
from .line_search import Step, interpolated_step
from .problem import Problem


@dataclasses.dataclass
class BFGSState(DescentState):
    """Adds ``inverse_hessian``, the approximation H_k of H(x_k)^{-1} (None: the identity)."""

    inverse_hessian: np.ndarray | None = None


def bfgs_update(inverse_hessian: np.ndarray | None, s: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """H_{k+1} = (I - rho s y^T) H_k (I - rho y s^T) + rho s s^T, rho = 1 / y^T s.

    Skipped (H_k kept) when y^T s <= 0, where the update would lose positive definiteness
    (only possible without the Wolfe curvature condition). ``None`` stands for H_0 = I.
    (The rescaling H_0 = (y^T s / y^T y) I of Nocedal and Wright, eq. 6.20, needed more
    iterations on the shipped objectives: see benchmarks/vs_scipy.py.)
    """
    ys = float(y @ s)
    if not ys > 0:
        return inverse_hessian
    if inverse_hessian is None:
        inverse_hessian = np.eye(s.size)
    rho = 1.0 / ys
    hy = inverse_hessian @ y
    # (I - rho s y^T) H (I - rho y s^T) expanded, H symmetric: fewer products, same result
    return (inverse_hessian - rho * (np.outer(s, hy) + np.outer(hy, s))
            + (rho * rho * float(y @ hy) + rho) * np.outer(s, s))


class BFGS(DescentSolver):
    """BFGS: x_{k+1} = x_k - alpha_k H_k grad f(x_k), H_k the BFGS inverse-Hessian approximation.

    With s_k = x_{k+1} - x_k and y_k = grad f(x_{k+1}) - grad f(x_k), H_{k+1} = (I - rho s y^T)
    H_k (I - rho y s^T) + rho s s^T, rho = 1 / y^T s (:func:`bfgs_update`). alpha_k satisfies
    the strong Wolfe conditions (c1 = 1e-4, c2 = 0.9) from the first trial alpha_k^0 = min(1,
    1.01 * 2 (f_k - f_{k-1}) / g_k^T d_k), the step that repeats the last decrease under a
    quadratic model (eq. 3.60; the cap and the factor 1.01 let the unit step be tried, and
    accepted, near the solution, keeping superlinear convergence). At k = 0 the previous
    value is taken as f_{-1} = f_0 + ||g_0|| / 2, a first trial of length 1.01 along -g_0 (as
    in scipy's BFGS). Where rounding has made H_k lose positive definiteness along g_k (on
    extremely ill-conditioned problems), H_k restarts from the identity. Reference: Nocedal and
    Wright, *Numerical Optimization*, 2nd ed., 2006, Algorithm 6.1 and Sec. 3.5.
    """

    name = "bfgs"
    state_type = BFGSState

    def __init__(self, line_search: str = "wolfe", c1: float = 1e-4, c2: float = 0.9) -> None:
        self._init_line_search(line_search, c1, c2, allowed=("wolfe", "armijo"))

    def update(self, problem: Problem, state: BFGSState) -> BFGSState:
        if state.inverse_hessian is not None and not float(state.g @ (state.inverse_hessian @ state.g)) > 0:
            # rounding has made H_k lose positive definiteness along g: -H_k g would not descend; restart from I
            state = dataclasses.replace(state, inverse_hessian=None)
        return super().update(problem, state)

    def forget(self, state: BFGSState) -> BFGSState | None:
        return None if state.inverse_hessian is None else dataclasses.replace(state, inverse_hessian=None)

    def direction(self, problem: Problem, state: BFGSState) -> np.ndarray:
        return -state.g if state.inverse_hessian is None else -(state.inverse_hessian @ state.g)

    def initial_step(self, state: BFGSState, d: np.ndarray) -> float:
        f_previous = state.f + 0.5 * float(np.linalg.norm(state.g)) if state.k == 0 else state.f_previous
        return interpolated_step(state.f, f_previous, float(state.g @ d))

    def advance(self, state: BFGSState, step: Step, d: np.ndarray) -> BFGSState:
        new = super().advance(state, step, d)
        return dataclasses.replace(new, inverse_hessian=bfgs_update(state.inverse_hessian, step.x - state.x,
                                                                    step.g - state.g))
