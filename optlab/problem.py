"""The objective as a solver sees it: every evaluation is counted."""

from __future__ import annotations

import numpy as np

from .derivatives import Derivatives, derivatives_of
from .objectives.base import Objective


class Problem:
    """An :class:`Objective` with its :class:`~optlab.derivatives.Derivatives`, counting
    function, gradient and Hessian evaluations.

    ``value_and_grad`` counts one of each; a Hessian-vector product counts as one Hessian
    evaluation, as scipy counts ``hessp`` calls.
    """

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.derivatives: Derivatives = derivatives_of(objective)
        self.nfev = self.ngev = self.nhev = 0

    def value(self, x: np.ndarray) -> float:
        self.nfev += 1
        return self.derivatives.value(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        self.ngev += 1
        return self.derivatives.grad(x)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.nfev += 1
        self.ngev += 1
        return self.derivatives.value_and_grad(x)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        self.nhev += 1
        return self.derivatives.hessian(x)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        self.nhev += 1
        return self.derivatives.hvp(x, v)
