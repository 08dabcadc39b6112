from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..errors import ConfigError, NoProgress, SolverFailure, check_number
from ..norms import norm
from .base import Solver, State
from .line_search import ROUNDING
from .options import check_choice, check_interval
from .problem import Problem
from .trust_subproblems import ExactSubproblem, TrialStep, gain_ratio, steihaug_cg

SUBPROBLEMS = ("steihaug", "exact")
MAX_REJECTIONS = 100  # radius shrinks 4x per rejection: 4^-100 of the start is far below rounding


@dataclasses.dataclass
class TrustRegionState(State):
    """Adds the trust ``radius`` and ``rejected``, the number of rejected trial steps so far."""

    radius: float = 1.0
    rejected: int = 0


class TrustRegion(Solver):
    """Trust-region Newton: x_{k+1} = x_k + p_k, p_k = argmin_{||p|| <= Delta_k} g_k^T p + 1/2 p^T H_k p.

    H_k = H(x_k) exact (autodiff). The step is accepted when rho = (f(x_k) - f(x_k + p)) /
    (m(0) - m(p)) > eta; Delta shrinks 4x when rho < 1/4 and doubles (up to ``max_radius``)
    when rho > 3/4 and p reached the boundary. ``subproblem``: ``steihaug`` (CG-Steihaug on
    Hessian-vector products H_k v: no n x n matrix is formed, so it scales to large n) or
    ``exact`` (Moré-Sorensen, the global minimiser of the model in the ball, from the dense
    H_k and its eigendecomposition: O(n^2) memory and O(n^3) time per iteration). One
    iteration is one accepted step: rejected trials (each one function evaluation) happen
    inside it and are counted in ``state.rejected``; ``step_size`` is ||p_k||. A rejected trial
    whose predicted decrease is already below f's rounding ends the run as stalled. Reference:
    Nocedal and Wright, *Numerical Optimization*, 2nd ed., 2006, Algorithm 4.1 with
    Algorithm 7.2 or Sec. 4.3.
    """

    name = "trust_region"

    def __init__(self, subproblem: str = "steihaug", initial_radius: float = 1.0, max_radius: float = 1000.0,
                 eta: float = 0.15) -> None:
        self.subproblem = check_choice("solver.subproblem", subproblem, SUBPROBLEMS)
        self.initial_radius = check_number("solver.initial_radius", initial_radius, low=0)
        self.max_radius = check_number("solver.max_radius", max_radius, low=0)
        if self.max_radius < self.initial_radius:
            raise ConfigError(f"solver.max_radius={max_radius} is out of range; allowed: a number >= "
                              f"solver.initial_radius = {self.initial_radius:g}")
        self.eta = check_interval("solver.eta", eta, 0.0, 0.25)
        # what the run compiles before its clock starts: the subproblem's kind of second derivative
        self.evaluates = ("value_and_grad", "hessian" if self.subproblem == "exact" else "hvp")

    def init(self, problem: Problem, x0: np.ndarray) -> TrustRegionState:
        f, g = problem.value_and_grad(x0)
        return TrustRegionState(x=x0, f=f, g=g, radius=self.initial_radius)

    def _subproblem(self, problem: Problem, x: np.ndarray) -> Callable[[np.ndarray, float], TrialStep]:
        """The model's minimiser in a ball of a given radius, for the model at x."""
        if self.subproblem == "exact":
            return ExactSubproblem(problem.hessian(x))
        return lambda g, radius: steihaug_cg(lambda v: problem.hvp(x, v), g, radius)

    def update(self, problem: Problem, state: TrustRegionState) -> TrustRegionState:
        solve = self._subproblem(problem, state.x)
        radius, rejected = state.radius, state.rejected
        for _ in range(MAX_REJECTIONS):
            p, on_boundary, predicted = solve(state.g, radius)
            if predicted < 0:
                raise SolverFailure(f"trust region: the model predicts an increase (m(0) - m(p) = {predicted:.3g})")
            x_trial = state.x + p
            f_trial = problem.value(x_trial)
            rho = gain_ratio(state.f, f_trial, predicted)
            if rho < 0.25:
                radius *= 0.25
            elif rho > 0.75 and on_boundary:
                radius = min(2.0 * radius, self.max_radius)
            if rho > self.eta:
                return TrustRegionState(x=x_trial, f=f_trial, g=problem.grad(x_trial),
                                        step_size=float(np.linalg.norm(p)), radius=radius, rejected=rejected)
            rejected += 1
            if radius <= np.finfo(float).eps * (1.0 + float(np.linalg.norm(state.x))):
                break  # steps this short no longer change x
            if predicted <= ROUNDING * abs(state.f):
                break  # a smaller region promises even less: below f's rounding, no trial can show a decrease
        raise NoProgress(f"trust region: no step decreases f (every trial down to radius {radius:.3g} rejected, "
                         f"||grad f|| = {norm(state.g):.3g})")
