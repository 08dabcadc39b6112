from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective


class BrownBadlyScaled(Objective):
    """Brown's badly scaled function: f(x) = (x_1 - 1e6)^2 + (x_2 - 2e-6)^2 + (x_1 x_2 - 2)^2.

    A sum of squares (residuals r = (x_1 - 1e6, x_2 - 2e-6, x_1 x_2 - 2)) whose minimiser
    (1e6, 2e-6), f* = 0, differs in scale by twelve orders of magnitude between coordinates:
    the Hessian there has eigenvalues near 2 and 2e12. Standard start (1, 1). Reference:
    Moré, Garbow and Hillstrom, "Testing unconstrained optimization software", ACM TOMS 7
    (1981), problem 4.
    """

    name = "brown_badly_scaled"

    def __init__(self) -> None:
        self.dim = 2
        self.x0 = np.array([1.0, 1.0])
        self.minimizers = np.array([[1e6, 2e-6]])
        self.f_star = 0.0
        self.box = np.array([[-1e5, 1.1e6], [-0.25, 1.25]])  # the start and the minimiser (x_2 = 2e-6 ~ 0)

    def residual(self, x: ad.Variable) -> ad.Variable:
        return ad.stack([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2.0])

    def f(self, x: ad.Variable) -> ad.Variable:
        r = self.residual(x)
        return ad.sum(r * r)
