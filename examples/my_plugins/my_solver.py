"""A solver plugin written outside optlab; select it with ``solver=my_solver``."""

from __future__ import annotations

import dataclasses

import numpy as np

from optlab.errors import check_number
from optlab.problem import Problem
from optlab.solvers import Solver, State


@dataclasses.dataclass
class MomentumState(State):
    velocity: np.ndarray | None = None


class HeavyBall(Solver):
    """Polyak's heavy ball: v_{k+1} = beta v_k - lr grad f(x_k), x_{k+1} = x_k + v_{k+1}.

    Reference: B. T. Polyak, "Some methods of speeding up the convergence of iteration
    methods", USSR Comput. Math. Math. Phys. 4 (1964).
    """

    name = "my_solver"

    def __init__(self, lr: float = 0.01, beta: float = 0.9) -> None:
        self.lr = check_number("solver.lr", lr, low=0)  # one-line errors for bad values
        self.beta = check_number("solver.beta", beta, low=0, strict=False)

    def init(self, problem: Problem, x0: np.ndarray) -> MomentumState:
        f, g = problem.value_and_grad(x0)
        return MomentumState(x=x0, f=f, g=g, velocity=np.zeros_like(x0))

    def update(self, problem: Problem, state: MomentumState) -> MomentumState:
        velocity = self.beta * state.velocity - self.lr * state.g
        x = state.x + velocity
        f, g = problem.value_and_grad(x)
        return MomentumState(x=x, f=f, g=g, step_size=self.lr, velocity=velocity)
