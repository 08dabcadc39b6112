from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective, as_box, check_dim

RADIUS_FLOOR = 1e-100  # small enough to change nothing, large enough that 1 / floor^3 is finite


class Ackley(Objective):
    """f(x) = -a exp(-b sqrt(1/n sum x_i^2)) - exp(1/n sum cos(c x_i)) + a + e.

    With a = 20, b = 0.2, c = 2 pi and n = ``dim``. Domain [-32.768, 32.768]^n; the box is
    [-5, 5]^n, where the structure shows. One global minimum f* = 0 at x = 0 amid many
    local minima near the integer points; standard start (2.5, ..., 2.5), away from 0.

    At 0, the term r = sqrt(1/n sum x_i^2) = ||x|| / sqrt(n) is a cone: f is not
    differentiable there (the directional derivatives are a b / sqrt(n) in every direction,
    the curvature grows like 1 / r). optlab floors r at 1e-100, so for r < 1e-100 the cone
    term is constant: grad f(0) = 0, the least-norm subgradient, and the Hessian at 0 is
    that of the smooth cosine term, (e c^2 / n) I. f itself is unchanged (exp(-b r) rounds
    to 1 for r < 1e-16), and for r >= 1e-100 the derivatives are exact.
    Reference: D. H. Ackley, "A connectionist machine for genetic hillclimbing", Kluwer,
    1987; Baeck, "Evolutionary Algorithms in Theory and Practice", 1996, for the n-D form.
    """

    name = "ackley"
    a, b, c = 20.0, 0.2, 2.0 * np.pi

    def __init__(self, dim: int = 2) -> None:
        self.dim = check_dim(dim)
        self.x0 = np.full(self.dim, 2.5)
        self.minimizers = np.zeros((1, self.dim))
        self.f_star = 0.0
        self.box = as_box([-5.0, 5.0], self.dim)

    def f(self, x: ad.Variable) -> ad.Variable:
        # The floor keeps sqrt's derivatives finite: below it the radius is a constant.
        radius = ad.sqrt(ad.maximum(ad.sum(x**2) / self.dim, RADIUS_FLOOR**2))
        waves = ad.sum(ad.cos(self.c * x)) / self.dim
        # grouped so that both brackets, and f, are exactly 0 at x = 0
        return self.a * (1.0 - ad.exp(-self.b * radius)) + (np.e - ad.exp(waves))
