from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective

# The minimiser of Powell's badly scaled function: x_1 x_2 = 1e-4 and exp(-x_1) + exp(-x_2) = 1.0001,
# solved to full precision from the published (1.098e-5, 9.106) (both residuals are 0 in floating point).
X_STAR = np.array([1.0981593296997374e-05, 9.106146739867187])


class PowellBadlyScaled(Objective):
    """Powell's badly scaled function: f(x) = (1e4 x_1 x_2 - 1)^2 + (exp(-x_1) + exp(-x_2) - 1.0001)^2.

    A sum of squares whose minimiser (1.098e-5, 9.106), f* = 0, sits on a narrow curved valley
    with coordinates six orders of magnitude apart. Standard start (0, 1). Reference: Moré,
    Garbow and Hillstrom, "Testing unconstrained optimization software", ACM TOMS 7 (1981),
    problem 3.
    """

    name = "powell_badly_scaled"

    def __init__(self) -> None:
        self.dim = 2
        self.x0 = np.array([0.0, 1.0])
        self.minimizers = X_STAR[None, :]
        self.f_star = 0.0
        self.box = np.array([[-2e-5, 4e-5], [0.0, 12.0]])

    def residual(self, x: ad.Variable) -> ad.Variable:
        return ad.stack([1e4 * x[0] * x[1] - 1.0, ad.exp(-x[0]) + ad.exp(-x[1]) - 1.0001])

    def f(self, x: ad.Variable) -> ad.Variable:
        r = self.residual(x)
        return ad.sum(r * r)
