from __future__ import annotations

import dataclasses

import numpy as np

from ..problem import Problem
from .base import Solver, State
from .options import check_fraction
from .schedules import ScheduledSolver


@dataclasses.dataclass
class MomentumState(State):
    """Adds the step index ``k`` and the ``velocity`` v_k (the last step taken)."""

    k: int = 0
    velocity: np.ndarray | None = None


class _MomentumMethod(ScheduledSolver, Solver):
    """Options and state shared by the momentum methods."""

    def __init__(self, lr: float = 0.001, beta: float = 0.9, schedule: str = "constant", decay_rate: float = 0.5,
                 decay_steps: int = 1000) -> None:
        self._init_schedule(lr, schedule, decay_rate, decay_steps)
        self.beta = check_fraction("solver.beta", beta)

    def init(self, problem: Problem, x0: np.ndarray) -> MomentumState:
        f, g = problem.value_and_grad(x0)
        return MomentumState(x=x0, f=f, g=g, velocity=np.zeros_like(x0))

    def _step(self, state: MomentumState, lr: float) -> tuple[np.ndarray, np.ndarray]:
        """(x_{k+1}, v_{k+1})."""
        raise NotImplementedError

    def update(self, problem: Problem, state: MomentumState) -> MomentumState:
        lr = self.lr_at(state.k)
        x, velocity = self._step(state, lr)
        f, g = problem.value_and_grad(x)
        return MomentumState(x=x, f=f, g=g, step_size=lr, k=state.k + 1, velocity=velocity)


class Momentum(_MomentumMethod):
    """Heavy-ball momentum: v_{k+1} = beta v_k - lr_k grad f(x_k), x_{k+1} = x_k + v_{k+1}.

    beta in [0, 1) (0 is gradient descent); lr_k from ``schedule``. Reference: Polyak, "Some
    methods of speeding up the convergence of iteration methods", USSR Comput. Math. Math.
    Phys. 4, 1964.
    """

    name = "momentum"

    def _step(self, state, lr):
        velocity = self.beta * state.velocity - lr * state.g
        return state.x + velocity, velocity


class Nesterov(_MomentumMethod):
    """Nesterov momentum: v_{k+1} = beta v_k - lr_k grad f(x_k + beta v_k), x_{k+1} = x_k + v_{k+1}.

    The gradient is taken at the look-ahead point. The iterate kept is the look-ahead point
    y_k = x_k + beta v_k itself, so one gradient per step serves both the update and the
    stopping test: y_{k+1} = y_k + beta v_{k+1} - lr_k grad f(y_k) (the same sequence, as in
    Bengio, Boulanger-Lewandowski and Pascanu, 2013). Reference: Nesterov, Soviet Math. Dokl.
    27, 1983; Sutskever, Martens, Dahl and Hinton, ICML 2013.
    """

    name = "nesterov"

    def _step(self, state, lr):
        velocity = self.beta * state.velocity - lr * state.g
        return state.x + self.beta * velocity - lr * state.g, velocity
