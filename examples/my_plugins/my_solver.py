"""A solver plugin written outside optlab; select it with ``solver=my_solver``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from optlab import StepSolver
from optlab.errors import check_number


class Velocity(NamedTuple):
    velocity: np.ndarray


class HeavyBall(StepSolver):
    """Polyak's heavy ball: v_{k+1} = beta v_k - lr grad f(x_k), x_{k+1} = x_k + v_{k+1}.

    Reference: B. T. Polyak, "Some methods of speeding up the convergence of iteration
    methods", USSR Comput. Math. Math. Phys. 4 (1964).
    """

    name = "my_solver"

    def __init__(self, lr: float = 0.01, beta: float = 0.9) -> None:
        self.lr = check_number("solver.lr", lr, low=0)  # one-line errors for bad values
        self.beta = check_number("solver.beta", beta, low=0, strict=False)

    def init_carry(self, x):
        return Velocity(np.zeros_like(x))

    def step(self, x, g, carry, k):
        velocity = self.beta * carry.velocity - self.lr * g
        return x + velocity, Velocity(velocity), self.lr
