from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import NoProgress, check_number
from ..norms import norm
from ..objectives.base import Objective
from .base import Solver
from .gauss_newton import ResidualState, residual_state
from .line_search import ROUNDING
from .problem import Problem
from .residuals import ResidualTrials, require_residual
from .trust_subproblems import ExactSubproblem, gain_ratio

MAX_REJECTIONS = 100


@dataclasses.dataclass
class LevenbergMarquardtState(ResidualState):
    """Adds the trust radius (None before the first step), Marquardt's scaling D and the
    number of ``rejected`` trial steps so far."""

    radius: float | None = None
    scale: np.ndarray | None = None
    rejected: int = 0


class LevenbergMarquardt(Solver):
    """Levenberg-Marquardt as MINPACK does it: x_{k+1} = x_k + p_k, p_k = argmin ||r + J p||^2
    over ||D p|| <= Delta_k, i.e. (J^T J + mu D^2) p = -J^T r with the damping mu >= 0 that fits
    the scaled step in the trust region (mu = 0, the Gauss-Newton step, whenever it fits).

    D is diagonal with D_ii the largest norm of column i of J seen so far, so the trust region
    treats every variable alike, however badly scaled; Delta_0 = ``factor`` ||D x_0|| (``factor``
    where that is 0). The step is accepted when the gain ratio rho = (f(x) - f(x + p)) /
    (L(0) - L(p)), L(p) = ||r + J p||^2, exceeds 1e-4 (f decreases). When rho < 1/4, Delta
    shrinks as MINPACK's ``lmder`` shrinks it (:func:`shrink_factor`: by half, or after an
    increase of f to the minimiser of the quadratic that fits f along the step, within a tenth
    and a half); it becomes 2 ||D p|| when rho > 3/4 or the step was the Gauss-Newton one.
    A rejected trial whose predicted decrease is already below f's rounding ends the run as
    stalled (a smaller region promises less). Each point is evaluated once: r at a trial (one
    function evaluation), J only once it is accepted (one gradient evaluation). One iteration
    is one accepted step; rejected trials are counted in ``state.rejected``; ``step_size`` is
    ||p_k||. r and J come from compiled autodiff of the objective's ``residual``
    (:mod:`optlab.solvers.residuals`). The model's minimiser in the scaled ball is computed
    exactly (Moré and Sorensen, as the ``exact`` trust-region subproblem). Reference:
    Moré, "The Levenberg-Marquardt algorithm: implementation and theory", Lecture Notes in
    Mathematics 630, 1978 (MINPACK ``lmder``); Levenberg (1944), Marquardt (1963).
    """

    name = "levenberg_marquardt"
    evaluates = ()  # r and J come from the residual's own compiled code (residuals.py), not from f's

    def __init__(self, factor: float = 100.0) -> None:
        self.factor = check_number("solver.factor", factor, low=0)

    def check(self, objective: Objective) -> None:
        require_residual(objective, self.name)

    def init(self, problem: Problem, x0: np.ndarray) -> LevenbergMarquardtState:
        return residual_state(ResidualTrials(problem), x0, LevenbergMarquardtState)

    def update(self, problem: Problem, state: LevenbergMarquardtState) -> LevenbergMarquardtState:
        columns = np.linalg.norm(state.jacobian, axis=0)
        scale = np.where(columns > 0, columns, 1.0) if state.scale is None else np.maximum(state.scale, columns)
        radius = state.radius
        if radius is None:
            radius = self.factor * float(np.linalg.norm(scale * state.x)) or self.factor
        scaled = state.jacobian / scale  # J D^-1: the problem in q = D p
        hessian, gradient = 2.0 * scaled.T @ scaled, 2.0 * scaled.T @ state.residual
        rejected, trials, subproblem = state.rejected, ResidualTrials(problem), ExactSubproblem(hessian)
        for _ in range(MAX_REJECTIONS):
            q, on_boundary, predicted = subproblem(gradient, radius)  # predicted: L(0) - L(p)
            p = q / scale
            x_trial = state.x + p
            if predicted <= 0 or np.array_equal(x_trial, state.x):
                break  # the model promises no decrease, or the step no longer changes x
            f_trial = trials.value(x_trial)
            rho = gain_ratio(state.f, f_trial, predicted)
            length = float(np.linalg.norm(q))
            if state.radius is None:  # the first step: the bound starts from the step taken (as MINPACK)
                radius = min(radius, length)
            if rho < 0.25:
                radius = shrink_factor(state.f, f_trial, 0.5 * float(gradient @ q)) * min(radius, 10.0 * length)
            elif rho > 0.75 or not on_boundary:
                radius = 2.0 * length
            if rho > 1e-4:
                return residual_state(trials, x_trial, LevenbergMarquardtState,
                                      step_size=float(np.linalg.norm(p)), k=state.k + 1, f_previous=state.f,
                                      radius=radius, scale=scale, rejected=rejected)
            rejected += 1
            if predicted <= ROUNDING * state.f:
                break  # a smaller region promises even less: below f's rounding, no trial can show a decrease
        raise NoProgress(f"levenberg_marquardt: no step decreases f (trust radius {radius:.3g}, "
                         f"||grad f|| = {norm(state.g):.3g})")


def shrink_factor(f: float, f_trial: float, slope: float) -> float:
    """MINPACK's factor for the trust radius after a poor step: 1/2 where f did not increase,
    else the minimiser of the quadratic through f, the slope r^T J p and f_trial along the
    step, kept within [0.1, 0.5]; 0.1 where ||r|| grew tenfold or more (Moré 1978, Sec. 7)."""
    if f_trial <= f:
        return 0.5
    if not f_trial < 100.0 * f:  # (also a non-finite f_trial)
        return 0.1
    return min(0.5, max(0.1, slope / (2.0 * slope + f - f_trial)))
