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

import dataclasses
import math
from collections.abc import Callable

from ..errors import ConfigError, check_number, describe
from .options import check_choice

Schedule = Callable[[int], float]


@dataclasses.dataclass(frozen=True)
class _Schedule:
    """The options every schedule keeps; a subclass gives lr_k as ``__call__(k)``."""

    lr: float
    decay_rate: float
    decay_steps: int


class Constant(_Schedule):
    def __call__(self, k: int) -> float:
        return self.lr


class Exponential(_Schedule):
    def __call__(self, k: int) -> float:
        return self.lr * self.decay_rate ** (k / self.decay_steps)


class Step(_Schedule):
    def __call__(self, k: int) -> float:
        return self.lr * self.decay_rate ** (k // self.decay_steps)


class InverseTime(_Schedule):
    def __call__(self, k: int) -> float:
        return self.lr / (1.0 + self.decay_rate * k / self.decay_steps)


SCHEDULES: dict[str, type] = {
    "constant": Constant, "exponential": Exponential, "inverse_time": InverseTime, "step": Step,
}
SHRINKING = ("exponential", "step")  # decay_rate is a factor per decay_steps: in (0, 1]


def make_schedule(name: object, lr: object, decay_rate: object = 0.5, decay_steps: object = 1000) -> Schedule:
    """The schedule ``name`` with its options checked (keys ``solver.schedule``, ``solver.lr``, ...).

    Every schedule keeps ``lr``, ``decay_rate`` and ``decay_steps`` (checked, as numbers);
    ``constant`` ignores the last two.
    """
    name = check_choice("solver.schedule", name, SCHEDULES)
    lr = check_number("solver.lr", lr, low=0)
    if not math.isfinite(lr):
        raise ConfigError(f"solver.lr={describe(lr)} is out of range; allowed: a finite number > 0")
    rate = check_number("solver.decay_rate", decay_rate, low=0)
    if name in SHRINKING and rate > 1:
        raise ConfigError(f"solver.decay_rate={describe(decay_rate)} is out of range for schedule={name}; "
                          "allowed: a number in (0, 1]")
    steps = check_number("solver.decay_steps", decay_steps, low=1, strict=False, integer=True)
    return SCHEDULES[name](lr, rate, steps)


class ScheduledSolver:
    """Mixin for solvers with a learning-rate schedule: options lr, schedule, decay_rate,
    decay_steps kept under their names (checked), and ``lr_at(k)``."""

    lr_at: Schedule

    def _init_schedule(self, lr: object, schedule: object, decay_rate: object, decay_steps: object) -> None:
        self.lr_at = make_schedule(schedule, lr, decay_rate, decay_steps)
        self.schedule = schedule
        self.lr, self.decay_rate, self.decay_steps = self.lr_at.lr, self.lr_at.decay_rate, self.lr_at.decay_steps
