from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from .base import Objective, as_box, check_dim

# The negative root t* of f'(t) = 2 t^3 - 16 t + 5/2 and the value 1/2 (t^4 - 16 t^2 + 5 t) there,
# correctly rounded from a 50-digit computation (t* = -2.9035340277711770..., -39.1661657037714154...).
COORDINATE_MINIMIZER = -2.903534027771177
COORDINATE_MINIMUM = -39.16616570377141


class StyblinskiTang(Objective):
    """f(x) = 1/2 sum_i (x_i^4 - 16 x_i^2 + 5 x_i), n = ``dim``.

    Domain [-5, 5]^n (the box). Separable: each coordinate has a global minimum at
    t* = -2.903534027771177 and a local one near 2.7468, so f has 2^n local minima and one
    global minimum at x* = (t*, ..., t*) with f* = -39.16616570377141546 n. Standard start 0
    (not a stationary point: the gradient there is 2.5 in every coordinate).
    Reference: Styblinski and Tang, "Experiments in nonconvex optimization: stochastic
    approximation with function smoothing and simulated annealing", Neural Networks 3
    (1990) 467-483.
    """

    name = "styblinski_tang"

    def __init__(self, dim: int = 2) -> None:
        self.dim = check_dim(dim)
        self.x0 = np.zeros(self.dim)
        self.minimizers = np.full((1, self.dim), COORDINATE_MINIMIZER)
        self.f_star = COORDINATE_MINIMUM * self.dim
        self.box = as_box([-5.0, 5.0], self.dim)

    def f(self, x: ad.Variable) -> ad.Variable:
        return 0.5 * ad.sum(x**4 - 16.0 * x**2 + 5.0 * x)
