from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective


class Beale(Objective):
    """f(x, y) = (1.5 - x + x y)^2 + (2.25 - x + x y^2)^2 + (2.625 - x + x y^3)^2.

    Domain [-4.5, 4.5]^2 (the box); one global minimum f* = 0 at (3, 0.5), in a flat,
    curved valley; standard start (1, 1). References: E. M. L. Beale, "On an iterative
    method for finding a local minimum of a function of more than one variable",
    Princeton Tech. Rep. 25, 1958; More, Garbow and Hillstrom, "Testing unconstrained
    optimization software", ACM TOMS 7 (1981), problem 5.
    """

    name = "beale"

    def __init__(self) -> None:
        self.dim = 2
        self.x0 = np.array([1.0, 1.0])
        self.minimizers = np.array([[3.0, 0.5]])
        self.f_star = 0.0
        self.box = np.array([[-4.5, 4.5], [-4.5, 4.5]])

    def residual(self, x: ad.Variable) -> ad.Variable:
        """The three terms before squaring: f = sum r^2 (for Gauss-Newton type solvers)."""
        u, v = x[0], x[1]
        return ad.stack([1.5 - u + u * v, 2.25 - u + u * v**2, 2.625 - u + u * v**3])

    def f(self, x: ad.Variable) -> ad.Variable:
        u, v = x[0], x[1]
        return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v**2) ** 2 + (2.625 - u + u * v**3) ** 2
