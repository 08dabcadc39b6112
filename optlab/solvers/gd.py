from __future__ import annotations

from .base import StepSolver, StepState
from .line_search import FixedStep, make_line_search
from .problem import Problem
from .schedules import ScheduledSolver


class GradientDescent(ScheduledSolver, StepSolver):
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
        self.search = make_line_search(line_search, c1, c2)
        self.line_search, self.c1, self.c2 = line_search, self.search.c1, self.search.c2

    def step(self, x, g, carry, k):
        lr = self.lr_at(k)
        return x - lr * g, carry, lr

    def stepwise(self) -> bool:
        return isinstance(self.search, FixedStep)

    def update(self, problem: Problem, state: StepState) -> StepState:
        if self.stepwise():
            return super().update(problem, state)
        step = self.search.search(problem, state.x, state.f, state.g, -state.g, self.lr_at(state.k))
        return StepState(step.x, step.f, step.g, step.alpha, False, state.k + 1, state.carry)
