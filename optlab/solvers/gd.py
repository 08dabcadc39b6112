from __future__ import annotations

import numpy as np

from ..problem import Problem
from .descent import DescentSolver, DescentState
from .schedules import ScheduledSolver


class GradientDescent(ScheduledSolver, DescentSolver):
    """Gradient descent: x_{k+1} = x_k - alpha_k grad f(x_k).

    Without a line search alpha_k = lr_k, the learning rate of ``schedule`` (constant,
    exponential, inverse_time, step; see :mod:`optlab.solvers.schedules`). With
    ``line_search`` armijo or wolfe, lr_k is the first trial step and the search picks
    alpha_k (steepest descent, Nocedal and Wright, *Numerical Optimization*, 2006, Sec. 3.3).
    Reference: Cauchy (1847); the first source note's loop is the constant-lr case.
    """

    name = "gd"

    def __init__(self, lr: float = 0.001, schedule: str = "constant", decay_rate: float = 0.5,
                 decay_steps: int = 1000, line_search: str = "none", c1: float = 1e-4,
                 c2: float = 0.9) -> None:
        self._init_schedule(lr, schedule, decay_rate, decay_steps)
        self._init_line_search(line_search, c1, c2)

    def direction(self, problem: Problem, state: DescentState) -> np.ndarray:
        return -state.g

    def initial_step(self, state: DescentState, d: np.ndarray) -> float:
        return self.lr_at(state.k)
