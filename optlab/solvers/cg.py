from __future__ import annotations

import dataclasses

import numpy as np

from .descent import DescentSolver, DescentState
from .line_search import Step, first_step, interpolated_step
from .options import check_choice
from .problem import Problem


@dataclasses.dataclass
class CGState(DescentState):
    """Adds the previous direction d_{k-1} and gradient g_{k-1} (None before the first step)."""

    d_previous: np.ndarray | None = None
    g_previous: np.ndarray | None = None


def fletcher_reeves(g: np.ndarray, g_previous: np.ndarray) -> float:
    return float(g @ g) / float(g_previous @ g_previous)


def polak_ribiere_plus(g: np.ndarray, g_previous: np.ndarray) -> float:
    return max(0.0, float(g @ (g - g_previous)) / float(g_previous @ g_previous))


RESTART_EVERY = 10  # at least; n iterations for n > 10

BETAS = {"polak_ribiere_plus": polak_ribiere_plus, "fletcher_reeves": fletcher_reeves}


class ConjugateGradient(DescentSolver):
    """Nonlinear conjugate gradient: d_k = -grad f(x_k) + beta_k d_{k-1}, x_{k+1} = x_k + alpha_k d_k.

    beta_k = ||g_k||^2 / ||g_{k-1}||^2 (``fletcher_reeves``) or max(0, g_k^T (g_k - g_{k-1}) /
    ||g_{k-1}||^2) (``polak_ribiere_plus``, the default: beta_k = 0 restarts along -g by
    itself when conjugacy is lost). The method restarts with d_k = -g_k every max(n, 10)
    iterations (n: the dimension), when d_k would not descend, and when the line search finds
    no decrease of f along d_k. Without the periodic restart one inexact step (a first trial
    of 1 accepted within c2) can cost conjugacy for good: on a 5-D quadratic of condition 999,
    135 iterations against 17 with it; restarting every n alone (Nocedal and Wright, Sec. 5.2)
    makes small problems nearly steepest descent (2-D Rosenbrock: 65 evaluations against 48
    for max(n, 10) and scipy's 43). Powell's restart
    test (|g_k^T g_{k-1}| >= 0.1 ||g_k||^2, Nocedal and Wright eq. 5.52) is not used: on
    badly scaled problems it fires at almost every step and turns the method into steepest
    descent (on a quadratic of condition 1e10 it ran 10,000 iterations and 400,000
    evaluations; without it the method ends within 18); scipy's CG does not use it either.
    alpha_k satisfies the strong Wolfe conditions with c2 = 0.05: a near-exact line search
    keeps the directions nearly conjugate (Fletcher-Reeves needs c2 < 1/2 for descent), and on
    benchmarks/vs_scipy.py's problems 0.05 takes fewer evaluations than 0.1 or 0.4. First
    trial min(1, 1.01 * 2 (f_k - f_{k-1}) / g_k^T d_k). Reference: Nocedal and Wright,
    *Numerical Optimization*, 2nd ed., 2006, Sec. 5.2 (Algorithm 5.4, eq. 5.45).
    """

    name = "cg"
    state_type = CGState

    def __init__(self, beta: str = "polak_ribiere_plus", line_search: str = "wolfe", c1: float = 1e-4,
                 c2: float = 0.05) -> None:
        self.beta = check_choice("solver.beta", beta, BETAS)
        self.beta_rule = BETAS[beta]
        self._init_line_search(line_search, c1, c2, allowed=("wolfe", "armijo"))

    def direction(self, problem: Problem, state: CGState) -> np.ndarray:
        g = state.g
        if state.d_previous is None or state.k % max(g.size, RESTART_EVERY) == 0:
            return -g
        d = -g + self.beta_rule(g, state.g_previous) * state.d_previous
        return d if float(g @ d) < 0 else -g

    def forget(self, state: CGState) -> CGState | None:
        return None if state.d_previous is None else dataclasses.replace(state, d_previous=None)

    def initial_step(self, state: CGState, d: np.ndarray) -> float:
        if state.d_previous is None:
            return first_step(state.g)
        return interpolated_step(state.f, state.f_previous, float(state.g @ d))

    def advance(self, state: CGState, step: Step, d: np.ndarray) -> CGState:
        return dataclasses.replace(super().advance(state, step, d), d_previous=d, g_previous=state.g)
