from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective


class SixHumpCamel(Objective):
    """f(x, y) = (4 - 2.1 x^2 + x^4 / 3) x^2 + x y + (4 y^2 - 4) y^2.

    Domain x in [-3, 3], y in [-2, 2] (the box). Six local minima; the two global ones,
    symmetric through the origin, are at +-(0.0898420131, -0.7126564030) with
    f* = -1.0316284534898774 (solutions of grad f = 0, computed to full precision).
    The origin is a saddle point, so the standard start is (-1, -1), not 0.
    Reference: Dixon and Szego (eds.), "Towards Global Optimisation 2", North-Holland,
    1978; Molga and Smutnicki, "Test functions for optimization needs", 2005.
    """

    name = "six_hump_camel"

    def __init__(self) -> None:
        self.dim = 2
        self.x0 = np.array([-1.0, -1.0])
        x_star = np.array([0.08984201310031806, -0.7126564030207396])
        self.minimizers = np.stack([x_star, -x_star])
        self.f_star = -1.0316284534898774
        self.box = np.array([[-3.0, 3.0], [-2.0, 2.0]])

    def f(self, x: ad.Variable) -> ad.Variable:
        u, v = x[0], x[1]
        return (4.0 - 2.1 * u**2 + u**4 / 3.0) * u**2 + u * v + (4.0 * v**2 - 4.0) * v**2
