from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from ..errors import ConfigError, check_number
from .base import Objective, as_box, check_dim


class Quadratic(Objective):
    """A convex quadratic with a chosen condition number.

    f(x) = 1/2 x^T Q x - b^T x + c = 1/2 (x - x*)^T Q (x - x*), with x* = Q^{-1} b = (1, ..., 1)
    and c = 1/2 b^T Q^{-1} b, so that f* = 0 exactly and the gap f - f* keeps its precision
    down to the last iterates. Q = V diag(lambda) V^T: the eigenvalues lambda_i =
    cond^{i/(dim-1)}, i = 0..dim-1, are spaced log-uniformly between 1 and ``cond``, and V
    is a rotation drawn uniformly (Haar measure) from ``seed``: the QR factorisation of a
    Gaussian matrix with the signs of R's diagonal moved into Q (Mezzadri, "How to generate
    random matrices from the classical compact groups", Notices AMS 54, 2007).

    Domain R^dim; standard start 0; box x* +- 2. Gradient Q (x - x*), Hessian Q and
    Hessian-vector products are also written out analytically. Gradient descent with step
    1/L converges at the linear rate 1 - 1/cond (Nesterov, "Lectures on Convex
    Optimization", 2018, Thm 2.1.15), which makes ``cond`` the knob of solver comparisons.
    """

    name = "quadratic"

    def __init__(self, dim: int = 2, cond: float = 10.0, seed: int = 0) -> None:
        self.dim = check_dim(dim)
        self.cond = check_number("objective.cond", cond, low=1, strict=False)
        if not np.isfinite(self.cond):
            raise ConfigError(f"objective.cond={cond} is not finite; allowed: a finite number >= 1")
        if self.dim == 1 and self.cond != 1:
            raise ConfigError(f"objective.cond={cond} needs two or more eigenvalues; allowed: cond=1 when dim=1")
        self.seed = int(check_number("objective.seed", seed, low=0, strict=False, integer=True))
        self.eigenvalues = self.cond ** np.linspace(0.0, 1.0, self.dim)
        self.rotation = haar_rotation(self.dim, np.random.default_rng(self.seed))
        self.Q = (self.rotation * self.eigenvalues) @ self.rotation.T
        self.Q = 0.5 * (self.Q + self.Q.T)  # exactly symmetric despite rounding
        self.x_star = np.ones(self.dim)
        self.b = self.Q @ self.x_star
        self.x0 = np.zeros(self.dim)
        self.minimizers = self.x_star[None, :]
        self.f_star = 0.0
        self.box = as_box([-1.0, 3.0], self.dim)

    def f(self, x: ad.Variable) -> ad.Variable:
        d = x - self.x_star
        return 0.5 * ad.sum(d * ad.matmul(self.Q, d))

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        d = np.asarray(x, dtype=float) - self.x_star
        g = self.Q @ d
        return 0.5 * float(d @ g), g

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return self.Q.copy()

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.Q @ np.asarray(v, dtype=float)


def haar_rotation(n: int, rng: np.random.Generator) -> np.ndarray:
    """An n x n orthogonal matrix distributed uniformly (Haar), from a seeded generator."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)
