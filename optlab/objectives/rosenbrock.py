from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from ..errors import ConfigError
from .base import Objective, as_box, check_dim


class Rosenbrock(Objective):
    """f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimum 0 at (1, ..., 1).

    The standard start is (0, 2, 2, ...), the first note's (0, 2) in two dimensions.
    Domain R^n (dim >= 2); the box is [-2, 2] x [-1, 3] in two dimensions, [-2, 2]^n above.
    Reference: H. H. Rosenbrock, "An automatic method for finding the greatest or least
    value of a function", The Computer Journal 3 (1960) 175-184; the n-dimensional sum is
    the form of scipy.optimize.rosen.
    """

    name = "rosenbrock"

    def __init__(self, dim: int = 2) -> None:
        self.dim = check_dim(dim)
        if self.dim < 2:
            raise ConfigError(f"objective.dim={dim} is too small; allowed: a whole number >= 2")
        self.x0 = np.r_[0.0, np.full(self.dim - 1, 2.0)]
        self.minimizers = np.ones((1, self.dim))
        self.f_star = 0.0
        self.box = as_box([-2.0, 2.0], self.dim) if self.dim > 2 else np.array([[-2.0, 2.0], [-1.0, 3.0]])

    def residual(self, x: ad.Variable) -> ad.Variable:
        """r = (10 (x_{i+1} - x_i^2), 1 - x_i) for each i: f = sum r^2 (for Gauss-Newton type solvers)."""
        head, tail = x[:-1], x[1:]
        return ad.concatenate([10.0 * (tail - head**2), 1.0 - head])

    def f(self, x: ad.Variable) -> ad.Variable:
        head, tail = x[:-1], x[1:]
        return ad.sum(100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2)
