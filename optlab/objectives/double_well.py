from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective


class DoubleWell(Objective):
    """f(x) = x^4 - 2 x^2; minima f = -1 at x = -1 and x = 1, a local maximum at 0.

    The notes' Newton example, started from x = 2. Domain R; the box is [-2.2, 2.2].
    Minima from f'(x) = 4 x (x^2 - 1) = 0 with f''(+-1) = 8 > 0.
    """

    name = "double_well"

    def __init__(self) -> None:
        self.dim = 1
        self.x0 = np.array([2.0])
        self.minimizers = np.array([[-1.0], [1.0]])
        self.f_star = -1.0
        self.box = np.array([[-2.2, 2.2]])

    def params(self) -> dict:
        return {}

    def f(self, x: ad.Variable) -> ad.Variable:
        return ad.sum(x**4 - 2.0 * x**2)
