from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import SolverFailure, check_number
from ..objectives.base import Objective
from ..problem import Problem
from .base import Solver
from .gauss_newton import ResidualState, residual_state
from .residuals import require_residual
from .trust_subproblems import gain_ratio

MAX_REJECTIONS = 100


@dataclasses.dataclass
class LevenbergMarquardtState(ResidualState):
    """Adds the damping ``mu`` (None before the first step), its growth factor ``nu`` and the
    number of ``rejected`` trial steps so far."""

    mu: float | None = None
    nu: float = 2.0
    rejected: int = 0


class LevenbergMarquardt(Solver):
    """Levenberg-Marquardt: x_{k+1} = x_k + p_k, (J^T J + mu_k I) p_k = -J^T r.

    Between Gauss-Newton (mu -> 0) and short gradient steps (mu large). mu_0 = tau max_i
    (J^T J)_ii with tau = ``initial_damping``; a trial is accepted when the gain ratio rho =
    (f(x) - f(x + p)) / (L(0) - L(p)), L(p) = ||r + J p||^2, is positive, and then mu *=
    max(1/3, 1 - (2 rho - 1)^3), nu = 2; otherwise mu *= nu, nu *= 2 and the trial is
    rejected (one function evaluation; counted in ``state.rejected``). One iteration is one
    accepted step; ``step_size`` is ||p_k||. J comes from autodiff on the objective's
    ``residual``. Reference: Madsen, Nielsen and Tingleff, *Methods for Non-Linear Least
    Squares Problems*, 2nd ed., 2004, Algorithm 3.16 (Nielsen's damping update);
    Levenberg (1944), Marquardt (1963).
    """

    name = "levenberg_marquardt"

    def __init__(self, initial_damping: float = 1e-3) -> None:
        self.initial_damping = check_number("solver.initial_damping", initial_damping, low=0)

    def check(self, objective: Objective) -> None:
        require_residual(objective, self.name)

    def init(self, problem: Problem, x0: np.ndarray) -> LevenbergMarquardtState:
        return residual_state(problem, x0, LevenbergMarquardtState)

    def update(self, problem: Problem, state: LevenbergMarquardtState) -> LevenbergMarquardtState:
        jtj = state.jacobian.T @ state.jacobian
        jtr = state.jacobian.T @ state.residual
        mu = state.mu if state.mu is not None else self.initial_damping * max(float(np.max(np.diag(jtj))), 1e-300)
        nu, rejected = state.nu, state.rejected
        identity = np.eye(state.x.size)
        for _ in range(MAX_REJECTIONS):
            p = np.linalg.solve(jtj + mu * identity, -jtr)
            predicted = mu * float(p @ p) - float(p @ jtr)  # L(0) - L(p) given (J^T J + mu I) p = -J^T r
            if predicted < 0:
                raise SolverFailure(f"levenberg_marquardt: the model predicts an increase ({predicted:.3g})")
            f_trial = problem.value(state.x + p)
            rho = gain_ratio(state.f, f_trial, predicted)
            if rho > 0:
                return residual_state(problem, state.x + p, LevenbergMarquardtState,
                                      step_size=float(np.linalg.norm(p)), k=state.k + 1, f_previous=state.f,
                                      mu=mu * max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), nu=2.0,
                                      rejected=rejected)
            mu, nu, rejected = mu * nu, 2.0 * nu, rejected + 1
        raise SolverFailure(f"levenberg_marquardt: {MAX_REJECTIONS} trial steps rejected in a row (mu = {mu:.3g})")
