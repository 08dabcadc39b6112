"""The objective as a solver sees it: every evaluation is counted."""

from __future__ import annotations

import numpy as np

from ..errors import EndRun
from ..objectives.base import Objective
from ..objectives.derivatives import Derivatives, derivatives_of


class Problem:
    """An :class:`Objective` with its :class:`~optlab.objectives.derivatives.Derivatives`, counting
    function, gradient and Hessian evaluations, within a budget of function evaluations.

    Each call counts what the objective says it costs (:meth:`Objective.costs`): by default
    ``value_and_grad`` one function and one gradient evaluation, a Hessian-vector product one
    Hessian evaluation (as scipy counts ``hessp`` calls); a black box's finite differences
    count as function evaluations. A call that would take ``nfev`` past ``max_fev`` is not
    made: the run ends as ``max_fev`` where it stands.
    """

    def __init__(self, objective: Objective, max_fev: int | None = None) -> None:
        self.objective = objective
        self.derivatives: Derivatives = derivatives_of(objective)
        self.nfev = self.ngev = self.nhev = 0
        self.max_fev = max_fev
        self.costs = {name: objective.costs(name) for name in ("value", "grad", "value_and_grad", "hessian", "hvp",
                                                               "residual", "jacobian")}

    def count(self, name: str) -> None:
        """Count one call of ``name`` (or end the run as ``max_fev`` rather than make it)."""
        nfev, ngev, nhev = self.costs[name]
        if self.max_fev is not None and self.nfev + nfev > self.max_fev:
            raise EndRun(f"reached max_fev = {self.max_fev} function evaluations", "max_fev")
        self.nfev += nfev
        self.ngev += ngev
        self.nhev += nhev

    def value(self, x: np.ndarray) -> float:
        self.count("value")
        return self.derivatives.value(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        self.count("grad")
        return self.derivatives.grad(x)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.count("value_and_grad")
        return self.derivatives.value_and_grad(x)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        self.count("hessian")
        return self.derivatives.hessian(x)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        self.count("hvp")
        return self.derivatives.hvp(x, v)
