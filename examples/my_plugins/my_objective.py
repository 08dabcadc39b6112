"""An objective plugin written outside optlab; select it with ``objective=my_objective``."""

from __future__ import annotations

import numpy as np

from optlab import Objective
from optlab import autodiff as ad
from optlab.objectives.base import as_box, check_dim


class WeightedBowl(Objective):
    """f(x) = sum_i i (x_i - c)^2, i = 1..dim: minimum 0 at (c, ..., c); start 0."""

    name = "my_objective"

    def __init__(self, dim: int = 3, center: float = 1.0) -> None:
        self.dim = check_dim(dim)  # a one-line error for objective.dim=0
        self.center = float(center)
        self.x0 = np.zeros(self.dim)
        self.minimizers = np.full((1, self.dim), self.center)
        self.f_star = 0.0
        self.box = as_box([self.center - 2.0, self.center + 2.0], self.dim)

    def f(self, x: ad.Variable) -> ad.Variable:
        weights = np.arange(1.0, self.dim + 1.0)
        return ad.sum(weights * (x - self.center) ** 2)
