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
POWELL = 0.1  # Powell's restart test: |g_k . g_{k-1}| >= POWELL ||g_k||^2 (Nocedal and Wright, eq. 5.52)


def periodic(g: np.ndarray, state: CGState) -> bool:
    return state.k % max(g.size, RESTART_EVERY) == 0


def every_n(g: np.ndarray, state: CGState) -> bool:
    return state.k % g.size == 0


def powell(g: np.ndarray, state: CGState) -> bool:
    return abs(float(g @ state.g_previous)) >= POWELL * float(g @ g)


def never(g: np.ndarray, state: CGState) -> bool:
    return False


BETAS = {"polak_ribiere_plus": polak_ribiere_plus, "fletcher_reeves": fletcher_reeves}
#: When d_k = -g_k besides where d_k would not descend or the search finds no progress along it.
RESTARTS = {"periodic": periodic, "every_n": every_n, "powell": powell, "never": never}


class ConjugateGradient(DescentSolver):
    """Nonlinear conjugate gradient: d_k = -grad f(x_k) + beta_k d_{k-1}, x_{k+1} = x_k + alpha_k d_k.

    beta_k = ||g_k||^2 / ||g_{k-1}||^2 (``fletcher_reeves``) or max(0, g_k^T (g_k - g_{k-1}) /
    ||g_{k-1}||^2) (``polak_ribiere_plus``, the default: beta_k = 0 restarts along -g by
    itself when conjugacy is lost). The method restarts with d_k = -g_k where d_k would not
    descend, where the line search finds no progress along d_k, and by ``restart``:
    ``periodic`` (default) every max(n, 10) iterations (n: the dimension), ``every_n`` every n
    (Nocedal and Wright, Sec. 5.2), ``powell`` where |g_k^T g_{k-1}| >= 0.1 ||g_k||^2 (their eq.
    5.52), ``never`` (as scipy's CG). alpha_k satisfies the strong Wolfe conditions with
    ``c2`` = 0.05, a near-exact line search that keeps the directions nearly conjugate
    (Fletcher-Reeves needs c2 < 1/2 for descent). Both defaults are chosen by the study of
    benchmarks/vs_scipy.py (docs/scipy-comparison.md), every c2 of 0.05, 0.1 (Nocedal and
    Wright's), 0.2 and 0.4 (scipy's) with every restart rule, on the comparison's problems, on
    classic problems of Moré, Garbow and Hillstrom and on larger ones: the choice that solves the
    most problems, with the fewest evaluations among those (with it, scipy's 0.4 and Nocedal and Wright's
    0.1 stall on Brown's badly scaled function, which 0.05 solves; ``every_n`` makes small
    problems nearly steepest descent; ``powell`` takes fewer evaluations but stalls on Brown's
    badly scaled function). First trial min(1, 1.01 * 2 (f_k - f_{k-1}) / g_k^T d_k).
    Reference: Nocedal and Wright, *Numerical Optimization*,
    2nd ed., 2006, Sec. 5.2 (Algorithm 5.4, eq. 5.45).
    """

    name = "cg"
    state_type = CGState

    def __init__(self, beta: str = "polak_ribiere_plus", line_search: str = "wolfe", c1: float = 1e-4,
                 c2: float = 0.05, restart: str = "periodic") -> None:
        self.beta = check_choice("solver.beta", beta, BETAS)
        self.beta_rule = BETAS[beta]
        self.restart = check_choice("solver.restart", restart, RESTARTS)
        self.restarts = RESTARTS[restart]
        self._init_line_search(line_search, c1, c2, allowed=("wolfe", "armijo"))

    def direction(self, problem: Problem, state: CGState) -> np.ndarray:
        g = state.g
        if state.d_previous is None or self.restarts(g, state):
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
