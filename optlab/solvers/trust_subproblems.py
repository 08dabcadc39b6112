"""Trust-region subproblems: min_p m(p) = g^T p + 1/2 p^T H p subject to ||p|| <= radius.

Each returns a :class:`TrialStep`: p, whether it lies on the boundary, and the model's
decrease m(0) - m(p) that the gain ratio compares with f's. Steihaug-CG needs only
Hessian-vector products (no n x n matrix: it scales to large n); the exact solution needs
H itself and its eigendecomposition (O(n^3) per solve). Reference: Nocedal and Wright,
*Numerical Optimization*, 2nd ed., 2006, Chapter 4 (exact: Sec. 4.3, Moré and Sorensen
1983) and Algorithm 7.2 (Steihaug).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .line_search import ROUNDING


class TrialStep(NamedTuple):
    """A subproblem's answer: the step, whether ||p|| = radius, and m(0) - m(p)."""

    p: np.ndarray
    on_boundary: bool
    decrease: float


def _boundary_roots(z: np.ndarray, d: np.ndarray, radius: float) -> tuple[float, float]:
    """The two tau with ||z + tau d|| = radius (z inside the region): one <= 0, one >= 0."""
    a, b, c = float(d @ d), 2.0 * float(z @ d), float(z @ z) - radius * radius
    root = math.sqrt(max(b * b - 4.0 * a * c, 0.0))
    return (-b - root) / (2.0 * a), (-b + root) / (2.0 * a)


def _to_boundary(z: np.ndarray, d: np.ndarray, radius: float) -> float:
    """tau >= 0 with ||z + tau d|| = radius (z inside the region)."""
    return _boundary_roots(z, d, radius)[1]


def _along(model: float, slope: float, curvature: float, t: float) -> float:
    """m(z + t d) from m(z), the slope r^T d and the curvature d^T H d."""
    return model + t * slope + 0.5 * t * t * curvature


def steihaug_cg(hvp: Callable[[np.ndarray], np.ndarray], g: np.ndarray, radius: float,
                max_iter: int | None = None) -> TrialStep:
    """CG-Steihaug: conjugate gradients on H p = -g from p = 0, stopped at residual
    min(0.5, sqrt(||g||)) ||g||, or on the boundary when the iterate leaves the region, or
    where it meets negative curvature, at whichever of the two boundary points along the
    direction has the lower model value (Nocedal and Wright, Algorithm 7.2).

    One Hessian-vector product per CG iteration and none more: the model along the path is
    kept as a number, m(z + t d) = m(z) + t r^T d + t^2/2 d^T H d with r = H z + g, from the
    products CG forms anyway.
    """
    gnorm = float(np.linalg.norm(g))
    tolerance = min(0.5, math.sqrt(gnorm)) * gnorm
    z = np.zeros_like(g)
    r = g.copy()
    d = -r
    rr = float(r @ r)
    model = 0.0  # m(z)
    for _ in range(max_iter if max_iter is not None else 20 * g.size):
        if math.sqrt(rr) <= tolerance:
            break
        hd = hvp(d)
        curvature = float(d @ hd)
        slope = float(r @ d)
        if curvature <= 0:
            back, ahead = _boundary_roots(z, d, radius)
            tau = back if _along(model, slope, curvature, back) < _along(model, slope, curvature, ahead) else ahead
            return TrialStep(z + tau * d, True, -_along(model, slope, curvature, tau))
        alpha = rr / curvature
        z_next = z + alpha * d
        if float(np.linalg.norm(z_next)) >= radius:
            tau = _to_boundary(z, d, radius)
            return TrialStep(z + tau * d, True, -_along(model, slope, curvature, tau))
        model = _along(model, slope, curvature, alpha)
        z = z_next
        r = r + alpha * hd
        rr_next = float(r @ r)
        d = -r + (rr_next / rr) * d
        rr = rr_next
    return TrialStep(z, False, -model)


class ExactSubproblem:
    """The global minimiser of the model in the ball, from H = Q diag(lambda) Q^T, for any radius.

    p(mu) = -(H + mu I)^{-1} g with mu >= max(0, -lambda_min) and mu (||p(mu)|| - radius) = 0.
    The interior Newton step when H is positive definite and short enough; otherwise the
    secular equation 1/||p(mu)|| = 1/radius is solved by safeguarded Newton iterations in mu
    (Moré and Sorensen, SIAM J. Sci. Stat. Comput. 4, 1983), with the hard case (g orthogonal
    to the lowest eigenvectors) completed along the lowest eigenvector. H is decomposed once
    (O(n^3)), when the subproblem is made: the trials of one iteration, at shrinking radii,
    share it.
    """

    def __init__(self, hessian: np.ndarray) -> None:
        self.hessian = hessian
        self.eigenvalues, self.vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))

    def __call__(self, g: np.ndarray, radius: float, rtol: float = 1e-10) -> TrialStep:
        eigenvalues, vectors, hessian = self.eigenvalues, self.vectors, self.hessian
        coeffs = vectors.T @ g
        lowest = float(eigenvalues[0])
        scale = max(1.0, float(np.max(np.abs(eigenvalues))))

        def step(mu: float) -> np.ndarray:
            return -(vectors @ (coeffs / (eigenvalues + mu)))

        def answer(p: np.ndarray, on_boundary: bool) -> TrialStep:
            return TrialStep(p, on_boundary, -(float(g @ p) + 0.5 * float(p @ (hessian @ p))))

        if lowest > 0:
            p = step(0.0)
            if float(np.linalg.norm(p)) <= radius:
                return answer(p, False)
        floor = max(0.0, -lowest)
        # hard case: the components along the lowest eigenspace vanish and the shifted step is short
        degenerate = np.abs(eigenvalues - lowest) <= 1e-12 * scale
        if float(np.linalg.norm(coeffs[degenerate])) <= 1e-12 * max(1.0, float(np.linalg.norm(g))):
            safe = ~degenerate
            p = -(vectors[:, safe] @ (coeffs[safe] / (eigenvalues[safe] + floor)))
            length = float(np.linalg.norm(p))
            if length <= radius:
                u = vectors[:, 0]
                return answer(p + _to_boundary(p, u, radius) * u, True)
        # ||p(mu)|| decreases from +inf (at mu = floor) to 0: bracket, then Newton on 1/||p|| - 1/radius
        lo, hi = floor, floor + float(np.linalg.norm(g)) / radius + scale  # ||p(hi)|| <= ||g|| / (hi - floor)
        mu = floor + 1e-12 * scale
        for _ in range(100):
            p = step(mu)
            length = float(np.linalg.norm(p))
            if abs(length - radius) <= rtol * radius:
                break
            if length > radius:
                lo = mu
            else:
                hi = mu
            # d||p||/dmu = -sum c_i^2 / (lambda_i + mu)^3 / ||p||
            dlength = -float(np.sum(coeffs**2 / (eigenvalues + mu) ** 3)) / length
            # Newton on phi(mu) = 1/||p|| - 1/radius, nearly linear in mu (Nocedal and Wright, eq. 4.44)
            newton = mu + (length - radius) / radius * length / -dlength
            mu = newton if lo < newton < hi else 0.5 * (lo + hi)
        return answer(step(mu), True)


def exact_step(hessian: np.ndarray, g: np.ndarray, radius: float, rtol: float = 1e-10) -> TrialStep:
    """:class:`ExactSubproblem` of ``hessian`` at one radius."""
    return ExactSubproblem(hessian)(g, radius, rtol)


def gain_ratio(f: float, f_trial: float, predicted: float) -> float:
    """rho = (f - f_trial) / predicted, the actual over the model's decrease.

    Where the predicted decrease is below the rounding of f, rho is noise: a step that
    decreases f is then taken (rho = 1). A step that does not decrease f never is (rho <= 0).
    Non-finite f_trial: -inf.
    """
    if not math.isfinite(f_trial):
        return -math.inf
    if f_trial >= f:
        return min(0.0, (f - f_trial) / predicted) if predicted > 0 else 0.0
    if predicted <= ROUNDING * abs(f):
        return 1.0
    return (f - f_trial) / predicted
