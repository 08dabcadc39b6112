from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from ..errors import ConfigError, check_number
from .base import Objective

T_MAX = 4.0  # the samples are at t = 0 ... T_MAX
RATE_LIMIT = 25.0  # rates b in [-RATE_LIMIT, RATE_LIMIT] are searched for the minimiser
RATE_GRID = 4001


class CurveFit(Objective):
    """Nonlinear least squares: fit y = a exp(-b t) to data, f(a, b) = sum_i r_i^2.

    Residuals r_i = y_i - a exp(-b t_i) (:meth:`residual`, the protocol of Gauss-Newton type
    solvers); ``m`` samples at t_i = 0 ... 4 evenly spaced, y_i = a_true exp(-b_true t_i) +
    noise * eps_i with eps_i standard normal from ``seed``. Domain R^2; standard start
    (a, b) = (1, 1).

    The minimiser is computed at construction by variable projection (Golub and Pereyra,
    SIAM J. Numer. Anal. 10, 1973): for fixed b the best a is linear, a(b) = y.e / e.e with
    e_i = exp(-b t_i), leaving phi(b) = y.y - (y.e)^2 / e.e, which is minimised over a grid
    of 4001 rates in [-25, 25], refined by golden-section search, and then polished with
    Newton steps on (a, b). It is kept as ``minimizers`` / ``f_star`` only if it is
    certified: inside the searched range, gradient zero to rounding and Hessian positive
    definite. Otherwise (e.g. a_true = 0, where b is unidentifiable, or data so noisy that
    the best fit runs off to b = +-infinity) ``f_star`` is None and ``minimizers`` empty.
    The minimum is global among rates in [-25, 25] up to the grid's resolution.
    """

    name = "curve_fit"

    def __init__(self, m: int = 20, noise: float = 0.05, seed: int = 0, a_true: float = 2.0,
                 b_true: float = 0.7) -> None:
        self.m = int(check_number("objective.m", m, low=2, strict=False, integer=True))
        self.noise = check_number("objective.noise", noise, low=0, strict=False)
        self.seed = int(check_number("objective.seed", seed, low=0, strict=False, integer=True))
        self.a_true = finite_number("objective.a_true", a_true)
        self.b_true = finite_number("objective.b_true", b_true)
        rng = np.random.default_rng(self.seed)
        self.t = np.linspace(0.0, T_MAX, self.m)
        self.y = self.a_true * np.exp(-self.b_true * self.t) + self.noise * rng.standard_normal(self.m)
        self.dim = 2
        self.x0 = np.array([1.0, 1.0])
        x_star = self._fit()
        self.minimizers = np.empty((0, 2)) if x_star is None else x_star[None, :]
        self.f_star = None if x_star is None else self.value(x_star)
        corners = np.stack([self.x0, np.array([self.a_true, self.b_true]) if x_star is None else x_star])
        pad = np.maximum(1.0, 0.5 * np.ptp(corners, axis=0))
        self.box = np.stack([corners.min(axis=0) - pad, corners.max(axis=0) + pad], axis=1)

    def residual(self, x: ad.Variable) -> ad.Variable:
        return self.y - x[0] * ad.exp(-x[1] * self.t)

    def f(self, x: ad.Variable) -> ad.Variable:
        r = self.residual(x)
        return ad.sum(r * r)

    # -- the reference minimiser --------------------------------------------------------
    def _profile(self, b: np.ndarray) -> np.ndarray:
        """phi(b) = min_a f(a, b), for an array of rates."""
        e = np.exp(-np.multiply.outer(b, self.t))
        return self.y @ self.y - (e @ self.y) ** 2 / np.sum(e * e, axis=-1)

    def _best_amplitude(self, b: float) -> float:
        e = np.exp(-b * self.t)
        return float(e @ self.y / (e @ e))

    def _fit(self) -> np.ndarray | None:
        grid = np.linspace(-RATE_LIMIT, RATE_LIMIT, RATE_GRID)
        k = int(np.argmin(self._profile(grid)))
        if k in (0, RATE_GRID - 1):
            return None
        b = golden_section(lambda v: float(self._profile(np.array(v))), grid[k - 1], grid[k + 1])
        x = np.array([self._best_amplitude(b), b])
        for _ in range(8):
            _, g = self.value_and_grad(x)
            try:
                x = x - np.linalg.solve(self.hessian(x), g)
            except np.linalg.LinAlgError:
                return None
        _, g = self.value_and_grad(x)
        curvature = np.linalg.eigvalsh(self.hessian(x))
        scale = np.sqrt(self.y @ self.y) * (1.0 + np.abs(x).max())
        certified = (np.all(np.isfinite(x)) and abs(x[1]) < RATE_LIMIT and curvature[0] > 1e-8 * curvature[1]
                     and np.linalg.norm(g) <= 1e-9 * scale)
        return x if certified else None


def golden_section(phi, lo: float, hi: float, tol: float = 1e-12) -> float:
    """A minimiser of a unimodal ``phi`` on [lo, hi], to within ``tol`` (Kiefer, 1953)."""
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    u, v = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fu, fv = phi(u), phi(v)
    while hi - lo > tol * (1.0 + abs(lo) + abs(hi)):
        if fu < fv:
            hi, v, fv = v, u, fu
            u = hi - ratio * (hi - lo)
            fu = phi(u)
        else:
            lo, u, fu = u, v, fv
            v = lo + ratio * (hi - lo)
            fv = phi(v)
    return 0.5 * (lo + hi)


def finite_number(key: str, value: object) -> float:
    number = check_number(key, value)
    if not np.isfinite(number):
        raise ConfigError(f"{key}={value} is not finite; allowed: a finite number")
    return float(number)
