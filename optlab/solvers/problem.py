"""The objective as a solver sees it: every evaluation is counted, and checked against the target."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import EndRun
from ..objectives.base import Objective
from ..objectives.black_box import watching
from ..objectives.derivatives import NAMES, Derivatives, derivatives_of

#: The end of a run at the evaluation that reached the target, in the words of the driver's rule
#: ``target`` (:data:`optlab.engine.stopping.RULES`), counted in evaluations rather than iterations.
TARGET_MESSAGE = "f = {f:.10g} <= {limit:.10g} (stop.target = {target:g}) at function evaluation {nfev}"


def answers(objective: Objective) -> frozenset[str]:
    """What ``objective`` can evaluate (of value, grad, value_and_grad, hessian, hvp): with an
    ``f(x)`` of its own, everything (autodiff derives what it does not write out); without,
    only what it writes out, and the gradient of a ``value_and_grad`` it writes out."""
    if type(objective).f is not Objective.f:
        return frozenset(NAMES)
    analytic = derivatives_of(objective).analytic
    return analytic | ({"grad"} if "value_and_grad" in analytic else frozenset())


def missing(objective: Objective, name: str, solver: str | None = None) -> str:
    """The one-line complaint that ``solver`` (None: the run's) needs ``name(x)``, which
    ``objective`` cannot evaluate."""
    given = sorted(derivatives_of(objective).analytic)
    who = "the solver" if solver is None else f"solver={solver}"
    return (f"{who} needs {name}(x), which objective={objective.name} cannot evaluate: it writes out "
            f"{', '.join(given) or 'none of value, grad, value_and_grad, hessian, hvp'} and has no f(x) to derive "
            f"the rest from; allowed: an objective with f(x), or with {name}(x) written out")


class Problem:
    """An :class:`Objective` with its :class:`~optlab.objectives.derivatives.Derivatives`, counting
    function, gradient and Hessian evaluations, within a budget of function evaluations, up
    to the first evaluation that reaches f's target.

    Each call counts what the objective says it costs (:meth:`Objective.costs`): by default
    ``value_and_grad`` one function and one gradient evaluation, a Hessian-vector product one
    Hessian evaluation (as scipy counts ``hessp`` calls); a black box's finite differences
    count as function evaluations. A call that would take ``nfev`` past ``max_fev`` is not
    made: the run ends as ``max_fev`` where it stands.

    ``limit`` is f's target (:meth:`~optlab.engine.stopping.Stop.limit`). Every value of f an
    evaluation makes is checked against it as it is made, as COCO counts a fixed-target run:
    the first with f <= limit ends the run (:class:`EndRun` with status ``target`` and that
    evaluation's x and f), with ``nfev`` counting the evaluations up to and including it. A
    black box shows each value of its finite differences too (:func:`~optlab.objectives.
    black_box.watching`), so a hit inside a gradient ends the run there, the rest of that
    gradient not evaluated (nor counted). A method that computes f itself from counted
    pieces (a residual) calls :meth:`reached`.
    """

    def __init__(self, objective: Objective, max_fev: int | None = None, limit: float = -math.inf) -> None:
        self.objective = objective
        self.derivatives: Derivatives = derivatives_of(objective)
        self.nfev = self.ngev = self.nhev = 0
        self.max_fev = max_fev
        self.limit = float(limit)
        self.answers = answers(objective)
        self.costs = {name: objective.costs(name) for name in ("value", "grad", "value_and_grad", "hessian", "hvp",
                                                               "residual", "jacobian")}

    def count(self, name: str) -> None:
        """Count one call of ``name`` (or end the run as ``max_fev`` rather than make it)."""
        if name not in self.answers and name in NAMES:  # (the solver's check names what it always needs)
            raise NotImplementedError(missing(self.objective, name))
        nfev, ngev, nhev = self.costs[name]
        if self.max_fev is not None and self.nfev + nfev > self.max_fev:
            raise EndRun(f"reached max_fev = {self.max_fev} function evaluations", "max_fev")
        self.nfev += nfev
        self.ngev += ngev
        self.nhev += nhev

    def reached(self, x: np.ndarray, f: float) -> None:
        """End the run as ``target`` if ``f``, the value at ``x`` of an evaluation already
        counted, reaches the limit."""
        if f <= self.limit:
            text = TARGET_MESSAGE.format(f=f, limit=self.limit, target=self._target(), nfev=self.nfev)
            raise EndRun(text, "target", x=np.array(x, dtype=float), f=float(f))

    def _target(self) -> float:
        """stop.target as given: the shortest decimal t with t + f* == limit (limit - f* itself
        carries the rounding of f*, 9.99999e-09 for 1e-08 above f* = 79.48)."""
        f_star = self.objective.f_star if self.objective.f_star is not None else 0.0
        target = self.limit - f_star
        for digits in range(1, 18):
            shortest = float(f"{target:.{digits}g}")
            if shortest + f_star == self.limit:
                return shortest
        return target

    def watched(self, name: str, compute: Callable[..., Any], x: np.ndarray, *args: Any) -> Any:
        """``compute(x, *args)``, a call of ``name`` already counted, with every value of f it
        makes checked against the limit (see the class docstring)."""
        if self.limit == -math.inf:
            return compute(x, *args)
        before = (self.nfev - self.costs[name][0], self.ngev - self.costs[name][1], self.nhev - self.costs[name][2])
        made = 0

        def observe(point: np.ndarray, f: float) -> None:
            nonlocal made
            made += 1
            if f <= self.limit:  # the call ends here: what it would have evaluated after is not counted
                self.nfev, self.ngev, self.nhev = min(before[0] + made, self.nfev), *before[1:]
                self.reached(point, f)

        with watching(observe):
            out = compute(x, *args)
        if made == 0 and name in ("value", "value_and_grad"):  # no value seen inside: check the result
            self.reached(x, out if name == "value" else out[0])
        return out

    def value(self, x: np.ndarray) -> float:
        self.count("value")
        return self.watched("value", self.derivatives.value, x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        self.count("grad")
        return self.watched("grad", self.derivatives.grad, x)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.count("value_and_grad")
        return self.watched("value_and_grad", self.derivatives.value_and_grad, x)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        self.count("hessian")
        return self.watched("hessian", self.derivatives.hessian, x)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        self.count("hvp")
        return self.watched("hvp", self.derivatives.hvp, x, v)
