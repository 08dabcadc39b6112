"""Residuals r(x) and their Jacobian J(x) for objectives f = sum_i r_i(x)^2.

The protocol: such an objective defines ``residual(x: Variable) -> Variable``, the vector r
with f(x) = sum_i r_i^2. J comes from autodiff on the residual graph: one forward pass,
then either one reverse sweep per residual row (m <= n) or, for tall J (m > n), one sweep
of the differentiable vector-Jacobian product J^T u followed by one reverse sweep per
column (d (J^T u)_j / du = J[:, j]), n + 1 sweeps instead of m.
"""

from __future__ import annotations

import numpy as np

from .. import autodiff as ad
from ..errors import NotApplicable
from ..objectives.base import Objective
from .problem import Problem


def has_residual(objective: Objective) -> bool:
    return callable(getattr(objective, "residual", None))


def require_residual(objective: Objective, solver: str) -> None:
    """A one-line NotApplicable (a ConfigError) unless ``objective`` exposes the residual protocol."""
    if has_residual(objective):
        return
    from ..objectives import OBJECTIVES  # the registry imports every objective: only on this error path

    with_residual = sorted(name for name, cls in OBJECTIVES.items() if callable(getattr(cls, "residual", None)))
    raise NotApplicable(f"solver={solver} needs a sum-of-squares objective with residual(x); objective="
                      f"{objective.name} has none; allowed: {', '.join(with_residual)}")


def _residual_graph(objective: Objective, x: np.ndarray) -> tuple[ad.Variable, ad.Variable]:
    xv = ad.Variable(np.array(x, dtype=float))
    r = ad.as_variable(objective.residual(xv)).reshape(-1)
    return xv, r


def _grad_of(v: ad.Variable) -> np.ndarray:
    return np.zeros_like(v.data) if v.grad is None else v.grad.data


def residual_and_jacobian(objective: Objective, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r(x), J(x)) with J[i, j] = d r_i / d x_j, by reverse-mode autodiff."""
    xv, r = _residual_graph(objective, x)
    return r.data.copy(), _jacobian(xv, r)


def _jacobian(xv: ad.Variable, r: ad.Variable) -> np.ndarray:
    """J from a recorded residual graph (reverse sweeps only: the forward pass is done)."""
    m, n = r.size, xv.size
    jacobian = np.empty((m, n))
    if m <= n:
        for i in range(m):
            xv.cleargrad()
            seed = np.zeros(m)
            seed[i] = 1.0
            r.grad = ad.Variable(seed)
            r.backward()
            jacobian[i] = _grad_of(xv).reshape(-1)
        return jacobian
    u = ad.Variable(np.zeros(m))
    xv.cleargrad()
    ad.sum(r * u).backward(create_graph=True)
    jt_u = xv.grad.reshape(-1) if xv.grad is not None else ad.Variable(np.zeros(n))
    for j in range(n):
        u.cleargrad()
        jt_u[j].backward()
        jacobian[:, j] = _grad_of(u)
    return jacobian


def evaluate_residual(problem: Problem, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, J) at x, counted as one function and one gradient evaluation of ``problem``."""
    problem.count("residual")
    problem.count("jacobian")
    return residual_and_jacobian(problem.objective, x)


class ResidualTrials:
    """Points evaluated once: r at a trial (one function evaluation), its recording kept, so
    that the Jacobian of the point a method accepts takes only reverse sweeps (one gradient
    evaluation). ``value(x) = r^T r`` makes it the ``problem`` of a line search."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.x: np.ndarray | None = None
        self.graph: tuple[ad.Variable, ad.Variable] | None = None

    def residual_at(self, x: np.ndarray) -> np.ndarray:
        if self.x is None or not np.array_equal(self.x, x):
            self.problem.count("residual")
            self.x, self.graph = np.array(x, dtype=float), _residual_graph(self.problem.objective, x)
        return self.graph[1].data.copy()

    def value(self, x: np.ndarray) -> float:
        r = self.residual_at(x)
        return float(r @ r)

    def jacobian_at(self, x: np.ndarray) -> np.ndarray:
        self.residual_at(x)
        self.problem.count("jacobian")
        return _jacobian(*self.graph)
