"""Learning-rate schedules lr_k, k = 0, 1, ... the index of the step being taken.

The second note's remedy for a hard-to-choose step: start large and shrink it at every
step. The decaying forms follow the usual definitions (e.g. TensorFlow's
``ExponentialDecay`` with and without ``staircase`` and ``InverseTimeDecay``):

- ``constant``:     lr_k = lr
- ``exponential``:  lr_k = lr * decay_rate^(k / decay_steps)
- ``step``:         lr_k = lr * decay_rate^floor(k / decay_steps)
- ``inverse_time``: lr_k = lr / (1 + decay_rate * k / decay_steps)
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..errors import ConfigError, check_number, describe
from .options import check_choice

Schedule = Callable[[float, float, int, int], float]  # (lr, decay_rate, decay_steps, k) -> lr_k


def constant(lr, rate, steps, k):
    return lr


def exponential(lr, rate, steps, k):
    return lr * rate ** (k / steps)


def step(lr, rate, steps, k):
    return lr * rate ** (k // steps)


def inverse_time(lr, rate, steps, k):
    return lr / (1.0 + rate * k / steps)


# Written with ordinary arithmetic, so that they also run on Variables (a traced step).
SCHEDULES: dict[str, Schedule] = {
    "constant": constant, "exponential": exponential, "inverse_time": inverse_time, "step": step,
}
SHRINKING = ("exponential", "step")  # decay_rate is a factor per decay_steps: in (0, 1]


class ScheduledSolver:
    """Mixin for solvers with a learning-rate schedule: options lr, schedule, decay_rate,
    decay_steps kept under their names (checked), and ``lr_at(k)``."""

    lr: float
    schedule: str
    decay_rate: float
    decay_steps: int

    def _init_schedule(self, lr: object, schedule: object, decay_rate: object, decay_steps: object) -> None:
        """Check and keep the options (keys ``solver.schedule``, ``solver.lr``, ...).

        Every schedule keeps ``lr``, ``decay_rate`` and ``decay_steps``; ``constant`` ignores
        the last two.
        """
        self.schedule = check_choice("solver.schedule", schedule, SCHEDULES)
        self.lr = check_number("solver.lr", lr, low=0)
        if not math.isfinite(self.lr):
            raise ConfigError(f"solver.lr={describe(lr)} is out of range; allowed: a finite number > 0")
        self.decay_rate = check_number("solver.decay_rate", decay_rate, low=0)
        if self.schedule in SHRINKING and self.decay_rate > 1:
            raise ConfigError(f"solver.decay_rate={describe(decay_rate)} is out of range for "
                              f"schedule={self.schedule}; allowed: a number in (0, 1]")
        self.decay_steps = check_number("solver.decay_steps", decay_steps, low=1, strict=False, integer=True)

    def lr_at(self, k):
        """lr_k, the learning rate of step k (k = 0, 1, ...)."""
        return SCHEDULES[self.schedule](self.lr, self.decay_rate, self.decay_steps, k)
