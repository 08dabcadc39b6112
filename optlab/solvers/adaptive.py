"""Adaptive per-coordinate step sizes: Adagrad, RMSprop, Adam."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import check_number
from ..problem import Problem
from .base import Solver, State
from .options import check_fraction
from .schedules import ScheduledSolver


@dataclasses.dataclass
class AdaptiveState(State):
    """Adds the step index ``k`` and running statistics of the gradient: ``first`` (of g, Adam
    only) and ``second`` (of g^2)."""

    k: int = 0
    first: np.ndarray | None = None
    second: np.ndarray | None = None


class _AdaptiveMethod(ScheduledSolver, Solver):
    """x_{k+1} = x_k - lr_k u_k, u_k from g_k and the running statistics: the shared loop."""

    def _init_common(self, lr: object, eps: object, schedule: object, decay_rate: object,
                     decay_steps: object) -> None:
        self._init_schedule(lr, schedule, decay_rate, decay_steps)
        self.eps = check_number("solver.eps", eps, low=0)

    def init(self, problem: Problem, x0: np.ndarray) -> AdaptiveState:
        f, g = problem.value_and_grad(x0)
        return AdaptiveState(x=x0, f=f, g=g, first=np.zeros_like(x0), second=np.zeros_like(x0))

    def _statistics(self, state: AdaptiveState) -> tuple[np.ndarray, np.ndarray]:
        """(first, second) updated with g_k."""
        raise NotImplementedError

    def _direction(self, g: np.ndarray, first: np.ndarray, second: np.ndarray, t: int) -> np.ndarray:
        """u_k (t = k + 1, the number of gradients seen)."""
        return g / (np.sqrt(second) + self.eps)

    def update(self, problem: Problem, state: AdaptiveState) -> AdaptiveState:
        lr = self.lr_at(state.k)
        first, second = self._statistics(state)
        x = state.x - lr * self._direction(state.g, first, second, state.k + 1)
        f, g = problem.value_and_grad(x)
        return AdaptiveState(x=x, f=f, g=g, step_size=lr, k=state.k + 1, first=first, second=second)


class Adagrad(_AdaptiveMethod):
    """Adagrad: G_k = G_{k-1} + g_k^2, x_{k+1} = x_k - lr_k g_k / (sqrt(G_k) + eps), per coordinate.

    Reference: Duchi, Hazan and Singer, "Adaptive subgradient methods for online learning and
    stochastic optimization", JMLR 12, 2011.
    """

    name = "adagrad"

    def __init__(self, lr: float = 0.1, eps: float = 1e-10, schedule: str = "constant", decay_rate: float = 0.5,
                 decay_steps: int = 1000) -> None:
        self._init_common(lr, eps, schedule, decay_rate, decay_steps)

    def _statistics(self, state):
        return state.first, state.second + state.g * state.g


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

    def _statistics(self, state):
        return state.first, self.rho * state.second + (1.0 - self.rho) * state.g * state.g


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

    def _statistics(self, state):
        first = self.beta1 * state.first + (1.0 - self.beta1) * state.g
        second = self.beta2 * state.second + (1.0 - self.beta2) * state.g * state.g
        return first, second

    def _direction(self, g, first, second, t):
        corrected_first = first / (1.0 - self.beta1**t)
        corrected_second = second / (1.0 - self.beta2**t)
        return corrected_first / (np.sqrt(corrected_second) + self.eps)
