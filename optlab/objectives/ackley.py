from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective, as_box, check_dim


class Ackley(Objective):
    """f(x) = -a exp(-b sqrt(1/n sum x_i^2)) - exp(1/n sum cos(c x_i)) + a + e.

    With a = 20, b = 0.2, c = 2 pi and n = ``dim``. Domain [-32.768, 32.768]^n; the box is
    [-5, 5]^n, where the structure shows. One global minimum f* = 0 at x = 0 amid many
    local minima near the integer points; standard start (2.5, ..., 2.5), away from 0.

    At 0, the term sqrt(mean x_i^2) = ||x|| / sqrt(n) is a cone: f is not differentiable
    there (the directional derivatives are a b / sqrt(n) in every direction, the curvature
    grows like 1 / ||x||). optlab takes that term's gradient and Hessian at exactly 0 to be
    0, so grad f(0) = 0, the least-norm subgradient, and the Hessian at 0 is that of the
    smooth cosine term, (e c^2 / n) I. Everywhere else the derivatives are exact.
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
        radius = euclidean_norm(x) / np.sqrt(self.dim)
        waves = ad.sum(ad.cos(self.c * x)) / self.dim
        # grouped so that both brackets, and f, are exactly 0 at x = 0
        return self.a * (1.0 - ad.exp(-self.b * radius)) + (np.e - ad.exp(waves))


def euclidean_norm(x: ad.Variable) -> ad.Variable:
    """||x||, with derivatives of every order taken as 0 at exactly x = 0.

    Plain sqrt(sum x_i^2) has an infinite derivative at 0 (and 0 * inf = nan in the chain
    rule), and its squares underflow for tiny x. Dividing by the constant m = max |x_i|
    first keeps the squares in range without changing the value or any derivative; at
    x = 0 the result is 0 * x, which is 0 with zero derivatives.
    """
    m = float(np.max(np.abs(x.data)))
    if m == 0.0:
        return ad.sum(x * 0.0)
    return m * ad.sqrt(ad.sum((x * (1.0 / m)) ** 2))
