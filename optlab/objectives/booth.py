from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective


class Booth(Objective):
    """f(x, y) = (x + 2 y - 7)^2 + (2 x + y - 5)^2, a convex quadratic.

    Domain [-10, 10]^2 (the box); one minimum f* = 0 at (1, 3), where both terms vanish;
    Hessian [[10, 8], [8, 10]] everywhere (eigenvalues 2 and 18); standard start (0, 0).
    Reference: Jamil and Yang, "A literature survey of benchmark functions for global
    optimisation problems", Int. J. Math. Model. Numer. Optim. 4 (2013), function 24.
    """

    name = "booth"

    def __init__(self) -> None:
        self.dim = 2
        self.x0 = np.array([0.0, 0.0])
        self.minimizers = np.array([[1.0, 3.0]])
        self.f_star = 0.0
        self.box = np.array([[-10.0, 10.0], [-10.0, 10.0]])

    def residual(self, x: ad.Variable) -> ad.Variable:
        """The two linear terms before squaring: f = sum r^2 (for Gauss-Newton type solvers)."""
        u, v = x[0], x[1]
        return ad.stack([u + 2.0 * v - 7.0, 2.0 * u + v - 5.0])

    def f(self, x: ad.Variable) -> ad.Variable:
        u, v = x[0], x[1]
        return (u + 2.0 * v - 7.0) ** 2 + (2.0 * u + v - 5.0) ** 2
