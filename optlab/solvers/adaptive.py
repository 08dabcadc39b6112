"""Adaptive per-coordinate step sizes: Adagrad, RMSprop, Adam."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..autodiff import sqrt
from ..errors import check_number
from .base import StepSolver
from .options import check_fraction
from .schedules import ScheduledSolver


class Moments(NamedTuple):
    first: np.ndarray  # running mean of g (Adam)
    second: np.ndarray  # running sum or mean of g^2


class _AdaptiveMethod(ScheduledSolver, StepSolver):
    """x_{k+1} = x_k - lr_k u_k, u_k from g_k and running statistics of the gradient."""

    def _init_common(self, lr: object, eps: object, schedule: object, decay_rate: object,
                     decay_steps: object) -> None:
        self._init_schedule(lr, schedule, decay_rate, decay_steps)
        self.eps = check_number("solver.eps", eps, low=0)

    def init_carry(self, x):
        return Moments(np.zeros_like(x), np.zeros_like(x))


class Adagrad(_AdaptiveMethod):
    """Adagrad: G_k = G_{k-1} + g_k^2, x_{k+1} = x_k - lr_k g_k / (sqrt(G_k) + eps), per coordinate.

    Reference: Duchi, Hazan and Singer, "Adaptive subgradient methods for online learning and
    stochastic optimization", JMLR 12, 2011.
    """

    name = "adagrad"

    def __init__(self, lr: float = 0.1, eps: float = 1e-10, schedule: str = "constant", decay_rate: float = 0.5,
                 decay_steps: int = 1000) -> None:
        self._init_common(lr, eps, schedule, decay_rate, decay_steps)

    def step(self, x, g, carry, k):
        lr = self.lr_at(k)
        second = carry.second + g * g
        return x - lr * (g / (sqrt(second) + self.eps)), Moments(carry.first, second), lr


class RMSprop(_AdaptiveMethod):
    """RMSprop: v_k = rho v_{k-1} + (1 - rho) g_k^2, x_{k+1} = x_k - lr_k g_k / (sqrt(v_k) + eps).

    rho in [0, 1). Reference: Tieleman and Hinton, COURSERA: Neural Networks for Machine
    Learning, Lecture 6.5, 2012.
    """

    name = "rmsprop"

    def __init__(self, lr: float = 0.001, rho: float = 0.9, eps: float = 1e-8, schedule: str = "constant",
                 decay_rate: float = 0.5, decay_steps: int = 1000) -> None:
        self._init_common(lr, eps, schedule, decay_rate, decay_steps)
        self.rho = check_fraction("solver.rho", rho)

    def step(self, x, g, carry, k):
        lr = self.lr_at(k)
        second = self.rho * carry.second + (1.0 - self.rho) * g * g
        return x - lr * (g / (sqrt(second) + self.eps)), Moments(carry.first, second), lr


class Adam(_AdaptiveMethod):
    """Adam: m_k = b1 m_{k-1} + (1 - b1) g_k, v_k = b2 v_{k-1} + (1 - b2) g_k^2,
    x_{k+1} = x_k - lr_k m^_k / (sqrt(v^_k) + eps), m^_k = m_k / (1 - b1^t), v^_k = v_k / (1 - b2^t).

    t = k + 1 (bias correction of the zero initialisation); beta1, beta2 in [0, 1).
    Reference: Kingma and Ba, "Adam: A method for stochastic optimization", ICLR 2015, Algorithm 1.
    """

    name = "adam"

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 schedule: str = "constant", decay_rate: float = 0.5, decay_steps: int = 1000) -> None:
        self._init_common(lr, eps, schedule, decay_rate, decay_steps)
        self.beta1 = check_fraction("solver.beta1", beta1)
        self.beta2 = check_fraction("solver.beta2", beta2)

    def step(self, x, g, carry, k):
        lr, t = self.lr_at(k), k + 1
        first = self.beta1 * carry.first + (1.0 - self.beta1) * g
        second = self.beta2 * carry.second + (1.0 - self.beta2) * g * g
        corrected_first = first / (1.0 - self.beta1**t)
        corrected_second = second / (1.0 - self.beta2**t)
        return x - lr * (corrected_first / (sqrt(corrected_second) + self.eps)), Moments(first, second), lr
