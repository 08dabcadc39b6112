from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .base import StepSolver
from .options import check_fraction
from .schedules import ScheduledSolver


class Velocity(NamedTuple):
    velocity: np.ndarray  # v_k, the last step taken


class _MomentumMethod(ScheduledSolver, StepSolver):
    """Options and state shared by the momentum methods."""

    def __init__(self, lr: float = 0.001, beta: float = 0.9, schedule: str = "constant", decay_rate: float = 0.5,
                 decay_steps: int = 1000) -> None:
        self._init_schedule(lr, schedule, decay_rate, decay_steps)
        self.beta = check_fraction("solver.beta", beta)

    def init_carry(self, x):
        return Velocity(np.zeros_like(x))


class Momentum(_MomentumMethod):
    """Heavy-ball momentum: v_{k+1} = beta v_k - lr_k grad f(x_k), x_{k+1} = x_k + v_{k+1}.

    beta in [0, 1) (0 is gradient descent); lr_k from ``schedule``. Reference: Polyak, "Some
    methods of speeding up the convergence of iteration methods", USSR Comput. Math. Math.
    Phys. 4, 1964.
    """

    name = "momentum"

    def step(self, x, g, carry, k):
        lr = self.lr_at(k)
        velocity = self.beta * carry.velocity - lr * g
        return x + velocity, Velocity(velocity), lr


class Nesterov(_MomentumMethod):
    """Nesterov momentum: v_{k+1} = beta v_k - lr_k grad f(x_k + beta v_k), x_{k+1} = x_k + v_{k+1}.

    The gradient is taken at the look-ahead point. The iterate kept is the look-ahead point
    y_k = x_k + beta v_k itself, so one gradient per step serves both the update and the
    stopping test: y_{k+1} = y_k + beta v_{k+1} - lr_k grad f(y_k) (the same sequence, as in
    Bengio, Boulanger-Lewandowski and Pascanu, 2013). Reference: Nesterov, Soviet Math. Dokl.
    27, 1983; Sutskever, Martens, Dahl and Hinton, ICML 2013.
    """

    name = "nesterov"

    def step(self, x, g, carry, k):
        lr = self.lr_at(k)
        velocity = self.beta * carry.velocity - lr * g
        return x + self.beta * velocity - lr * g, Velocity(velocity), lr
