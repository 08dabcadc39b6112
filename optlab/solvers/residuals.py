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
from ..problem import Problem


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
        return r.data.copy(), jacobian
    u = ad.Variable(np.zeros(m))
    ad.sum(r * u).backward(create_graph=True)
    jt_u = xv.grad.reshape(-1) if xv.grad is not None else ad.Variable(np.zeros(n))
    for j in range(n):
        u.cleargrad()
        jt_u[j].backward()
        jacobian[:, j] = _grad_of(u)
    return r.data.copy(), jacobian


def evaluate_residual(problem: Problem, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, J) at x, counted as one function and one gradient evaluation of ``problem``."""
    problem.nfev += 1
    problem.ngev += 1
    return residual_and_jacobian(problem.objective, x)
