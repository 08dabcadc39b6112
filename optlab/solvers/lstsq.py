from __future__ import annotations

import numpy as np

from ..errors import NotApplicable
from ..objectives.base import Objective
from .base import Solver, State
from .problem import Problem


class LeastSquaresSolver(Solver):
    """Closed-form least squares: x = (A^T A)^{-1} A^T z, the minimiser of ||z - A x||^2.

    Computed with an orthogonal factorisation (``numpy.linalg.lstsq``) rather than by
    forming A^T A, which squares the condition number. One step, from any start.
    Needs an objective that exposes ``linear_system() -> (A, z)``. The second source note's
    third way; Reference: Golub and Van Loan, *Matrix Computations*, 4th ed., 2013, Sec. 5.5.
    """

    name = "lstsq"
    done_message = "reached the closed-form solution"

    def check(self, objective: Objective) -> None:
        if not callable(getattr(objective, "linear_system", None)):
            raise NotApplicable(
                f"solver=lstsq needs a linear least-squares objective; objective={objective.name} "
                "is not one (allowed: least_squares, or any objective with linear_system())")

    def update(self, problem: Problem, state: State) -> State:
        A, z = problem.objective.linear_system()
        x, *_ = np.linalg.lstsq(A, z, rcond=None)
        f, g = problem.value_and_grad(x)
        return State(x=x, f=f, g=g, step_size=1.0, done=True)
