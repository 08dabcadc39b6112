from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective


class Himmelblau(Objective):
    """f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2, four global minima with f* = 0.

    Domain [-5, 5]^2 (the box); standard start (0, 0), a point with nonzero gradient
    from which the minimum reached depends on the method. The minima are the four real
    solutions of x^2 + y = 11, x + y^2 = 7, i.e. y = 11 - x^2 with x a root of
    x^4 - 22 x^2 + x + 114 = 0 (computed to full precision):
    (3, 2), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126).
    Reference: D. M. Himmelblau, "Applied Nonlinear Programming", McGraw-Hill, 1972.
    """

    name = "himmelblau"

    def __init__(self) -> None:
        self.dim = 2
        self.x0 = np.array([0.0, 0.0])
        self.minimizers = np.array([
            [3.0, 2.0],
            [-2.805118086952745, 3.131312518250573],
            [-3.779310253377747, -3.2831859912861696],
            [3.5844283403304917, -1.8481265269644036],
        ])
        self.f_star = 0.0
        self.box = np.array([[-5.0, 5.0], [-5.0, 5.0]])

    def residual(self, x: ad.Variable) -> ad.Variable:
        """The two terms before squaring: f = sum r^2 (for Gauss-Newton type solvers)."""
        u, v = x[0], x[1]
        return ad.stack([u**2 + v - 11.0, u + v**2 - 7.0])

    def f(self, x: ad.Variable) -> ad.Variable:
        u, v = x[0], x[1]
        return (u**2 + v - 11.0) ** 2 + (u + v**2 - 7.0) ** 2
