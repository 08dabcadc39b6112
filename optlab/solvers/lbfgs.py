from __future__ import annotations

import dataclasses

import numpy as np

from .descent import DescentSolver, DescentState
from .line_search import Step, first_step
from .options import check_count
from .problem import Problem


@dataclasses.dataclass
class LBFGSState(DescentState):
    """Adds the last m curvature pairs (s_i, y_i), oldest first."""

    pairs: tuple[tuple[np.ndarray, np.ndarray], ...] = ()


def two_loop(g: np.ndarray, pairs: tuple[tuple[np.ndarray, np.ndarray], ...]) -> np.ndarray:
    """H_k g by the two-loop recursion with H_k^0 = (s^T y / y^T y) I of the newest pair
    (Nocedal and Wright, Algorithm 7.4 and eq. 7.20)."""
    q = g.copy()
    alphas = []
    for s, y in reversed(pairs):
        a = float(s @ q) / float(y @ s)
        q -= a * y
        alphas.append(a)
    s, y = pairs[-1]
    r = (float(s @ y) / float(y @ y)) * q
    for (s, y), a in zip(pairs, reversed(alphas)):
        b = float(y @ r) / float(y @ s)
        r += (a - b) * s
    return r


class LBFGS(DescentSolver):
    """Limited-memory BFGS: x_{k+1} = x_k - alpha_k H_k grad f(x_k), H_k g from the last m pairs.

    H_k is the BFGS inverse-Hessian approximation built from the m most recent pairs s_i =
    x_{i+1} - x_i, y_i = grad f(x_{i+1}) - grad f(x_i), applied by the two-loop recursion
    (:func:`two_loop`) without forming a matrix: O(m n) work and memory per step. Pairs with
    y^T s <= 0 are not stored. alpha_k satisfies the strong Wolfe conditions, first trial 1
    (min(1, 1/||g||) on the first step). Reference: Nocedal and Wright, *Numerical
    Optimization*, 2nd ed., 2006, Algorithm 7.5; Liu and Nocedal, Math. Prog. 45, 1989.
    """

    name = "lbfgs"
    state_type = LBFGSState

    def __init__(self, m: int = 10, line_search: str = "wolfe", c1: float = 1e-4, c2: float = 0.9) -> None:
        self.m = check_count("solver.m", m)
        self._init_line_search(line_search, c1, c2, allowed=("wolfe", "armijo"))

    def direction(self, problem: Problem, state: LBFGSState) -> np.ndarray:
        if not state.pairs:
            return -state.g
        d = -two_loop(state.g, state.pairs)
        return d if float(state.g @ d) < 0 else -state.g  # rounding spoilt the pairs: steepest descent

    def forget(self, state: LBFGSState) -> LBFGSState | None:
        return dataclasses.replace(state, pairs=()) if state.pairs else None

    def initial_step(self, state: LBFGSState, d: np.ndarray) -> float:
        return first_step(state.g) if not state.pairs else 1.0

    def advance(self, state: LBFGSState, step: Step, d: np.ndarray) -> LBFGSState:
        new = super().advance(state, step, d)
        s, y = step.x - state.x, step.g - state.g
        pairs = state.pairs if not float(y @ s) > 0 else (state.pairs + ((s, y),))[-self.m:]
        return dataclasses.replace(new, pairs=pairs)
