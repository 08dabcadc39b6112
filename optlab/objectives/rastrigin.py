from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective, as_box, check_dim


class Rastrigin(Objective):
    """f(x) = 10 n + sum_i (x_i^2 - 10 cos(2 pi x_i)), n = ``dim``.

    Domain [-5.12, 5.12]^n (the box); one global minimum f* = 0 at x = 0 amid a lattice
    of local minima near the integer points. Standard start (2.2, ..., 2.2): inside the
    convex basin of the local minimum near (2, ..., 2), so local methods stop there
    (f about 4 n) while the global minimum is elsewhere.
    Reference: L. A. Rastrigin, "Systems of extremal control", Nauka, 1974; Muehlenbein,
    Schomisch and Born, Parallel Computing 17 (1991), for the n-dimensional form.
    """

    name = "rastrigin"

    def __init__(self, dim: int = 2) -> None:
        self.dim = check_dim(dim)
        self.x0 = np.full(self.dim, 2.2)
        self.minimizers = np.zeros((1, self.dim))
        self.f_star = 0.0
        self.box = as_box([-5.12, 5.12], self.dim)

    def f(self, x: ad.Variable) -> ad.Variable:
        return 10.0 * self.dim + ad.sum(x**2 - 10.0 * ad.cos(2.0 * np.pi * x))
