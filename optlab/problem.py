"""The objective as a solver sees it: every evaluation is counted."""

from __future__ import annotations

import numpy as np

from .objectives.base import Objective


class Problem:
    """Wraps an :class:`Objective` and counts function, gradient and Hessian evaluations.

    ``value_and_grad`` counts one of each; a Hessian-vector product counts as one Hessian
    evaluation, as scipy counts ``hessp`` calls.
    """

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.nfev = self.ngev = self.nhev = 0

    def value(self, x: np.ndarray) -> float:
        self.nfev += 1
        return self.objective.value(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        self.ngev += 1
        return self.objective.grad(x)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.nfev += 1
        self.ngev += 1
        return self.objective.value_and_grad(x)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        self.nhev += 1
        return self.objective.hessian(x)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        self.nhev += 1
        return self.objective.hvp(x, v)
