"""Hessian modification: a positive definite B close to H, so that -B^{-1} g descends.

Newton's direction -H^{-1} g points uphill where H is indefinite. The modified Newton
method uses B = H + E instead (Nocedal and Wright, *Numerical Optimization*, 2006, Sec. 3.4):

- ``none``: B = H (pure Newton: fine near a minimiser, may ascend elsewhere).
- ``eigenvalue``: H = Q diag(lambda) Q^T, B = Q diag(max(|lambda_i|, delta)) Q^T with
  delta = n eps max |lambda|, the rounding level of the computed eigenvalues: negative
  curvature is flipped, curvature indistinguishable from zero floored (the absolute-value
  variant of Sec. 3.4, as in Gill, Murray and Wright), and a positive definite H, however
  ill-conditioned, is left as it is (its modification would change the Newton step).
- ``cholesky``: B = H + tau I with the smallest tau in 0, beta, 2 beta, 4 beta, ... for which a
  Cholesky factorisation succeeds (ibid., Algorithm 3.3, beta = 1e-3 scaled by max |H_ii|).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import SolverFailure

Modification = Callable[[np.ndarray], np.ndarray]


def unmodified(hessian: np.ndarray) -> np.ndarray:
    return hessian


def eigenvalue_modification(hessian: np.ndarray) -> np.ndarray:
    eigenvalues, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    largest = float(np.max(np.abs(eigenvalues)))
    floor = eigenvalues.size * np.finfo(float).eps * largest if largest > 0 else 1.0
    if np.all(eigenvalues >= floor):
        return hessian
    return (vectors * np.maximum(np.abs(eigenvalues), floor)) @ vectors.T


def cholesky_modification(hessian: np.ndarray, max_doublings: int = 100) -> np.ndarray:
    scale = max(1.0, float(np.max(np.abs(np.diag(hessian)))))
    beta = 1e-3 * scale
    smallest = float(np.min(np.diag(hessian)))
    tau = 0.0 if smallest > 0 else beta - smallest
    identity = np.eye(hessian.shape[0])
    for _ in range(max_doublings):
        shifted = hessian + tau * identity
        try:
            np.linalg.cholesky(shifted)
            return shifted
        except np.linalg.LinAlgError:
            tau = max(2.0 * tau, beta)
    raise SolverFailure("cholesky Hessian modification: no shift H + tau I is positive definite")


MODIFICATIONS: dict[str, Modification] = {
    "none": unmodified, "eigenvalue": eigenvalue_modification, "cholesky": cholesky_modification,
}
