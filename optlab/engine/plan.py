"""The planner: which path runs a set of runs, decided once, with what it built to decide.

Three paths run a solver on an objective, and give the same bits:

* ``batched``: the runs of a :class:`~optlab.solvers.base.StepSolver` advance together, one
  array program step for all of them (:mod:`optlab.engine.batch`);
* ``fused``: one run at a time, many steps per call of its fused loop (:mod:`optlab.engine.fused`);
* ``generic``: one ``solver.update`` per iteration, any solver on any objective.

:func:`make_plan` returns the fastest that applies as a :class:`Plan` holding the step program
it built, or the generic plan with the reason the others do not apply. The batched and fused
paths need a step solver without a line search on an objective whose value and gradient come
from ``f`` through scalar code (:mod:`optlab.engine.program`); the fused loop keeps no window
of past values of f, so ``stop.ftol`` runs one at a time take the generic path.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..autodiff.compile import Compiled, NotCompilable
from ..errors import ConfigError
from ..objectives.base import Objective
from ..objectives.derivatives import derivatives_of
from ..solvers import SOLVERS
from ..solvers.base import Solver, StepSolver
from .program import StepProgram, program_for, traceable
from .stopping import Stop

BACKENDS = ("batched", "fused", "generic")


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a set of runs is run: ``backend`` (one of :data:`BACKENDS`), the step program for the
    batched and fused paths, and ``reason``: why a faster path does not apply ("" when none would)."""

    backend: str
    reason: str = ""
    program: StepProgram | None = None
    compiled: Compiled | None = None
    x: Any = None

    def program_of(self, solver: StepSolver) -> StepProgram:
        """The program for one run's solver: the plan's own when it takes the solver's traced
        options (its learning rate) as inputs, else the solver's own (made once per options)."""
        if self.program is None:
            raise ValueError("a generic plan has no step program")
        if set(self.program.traced) >= set(traceable(solver)):
            return self.program
        return program_for(solver, self.compiled, solver.init_carry(self.x), ())


def step_solver_names() -> list[str]:
    """The registered solvers written as a step (the ones that can run fused and batched)."""
    return sorted(name for name, cls in SOLVERS.items() if issubclass(cls, StepSolver))


def make_plan(objective: Objective, solvers: list[Solver], x: np.ndarray, stop: Stop,
              backend: str | None = None) -> Plan:
    """The plan for runs of ``solvers`` (one per run: the same method, maybe at different
    learning rates) on ``objective`` from starts shaped like ``x``; ``backend`` forces a path
    (:class:`ConfigError` when it does not apply)."""
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r} is unknown; allowed: {', '.join(BACKENDS)} or null (the planner's "
                          "choice)")
    solver = solvers[0]
    program, reason, compiled = _program(objective, solver, x)
    why_not = {"generic": ""}  # each path that does not apply, with why
    if program is None:
        why_not.update(batched=reason, fused=reason)
    else:
        rates = {tuple(float(getattr(s, name)) for name in traceable(s)) for s in solvers}
        together = len(rates) == 1 or set(program.traced) >= set(traceable(solver))
        why_not["batched"] = "" if together else "the step uses lr as a number: runs at other rates go one by one"
        why_not["fused"] = "stop.ftol keeps a window of past f, which the fused loop does not" if stop.ftol > 0 else ""
    if backend is None:
        if len(solvers) == 1 and not why_not["fused"]:  # one run: the fused loop without a batch's set-up
            return Plan("fused", "", program, compiled, x)
        backend = next(b for b in BACKENDS if not why_not[b])
        skipped = [why_not[b] for b in BACKENDS[: BACKENDS.index(backend)] if why_not[b]]
        return Plan(backend, "; ".join(dict.fromkeys(skipped)), program, compiled, x)
    if why_not[backend]:
        allowed = ", ".join(b for b in BACKENDS if not why_not[b])
        raise ConfigError(f"backend={backend!r} does not apply here ({why_not[backend]}); allowed: {allowed}")
    return Plan(backend, "asked for", program, compiled, x)


def _program(objective: Objective, solver: Solver, x: np.ndarray
             ) -> tuple[StepProgram | None, str, Compiled | None]:
    """The step program of ``solver`` on ``objective`` (its learning rate an input where the step
    allows), or None and why there is none; and the objective's compiled code."""
    derivatives = derivatives_of(objective)
    compiled = derivatives.compiled(x)
    if not isinstance(solver, StepSolver):
        return None, (f"solver {solver.name} is not written as a step (those written as steps: "
                      f"{', '.join(step_solver_names())})"), compiled
    if not solver.stepwise():
        return None, f"solver {solver.name} with a line search has no fused or batched form", compiled
    if "value_and_grad" in derivatives.analytic:
        return None, f"objective {objective.name} writes its gradient out; its analytic form runs as written", compiled
    if compiled is None:
        return None, f"objective {objective.name} has no compiled form: {derivatives.eager_reason or 'not compiled'}", \
            None
    problem = ""
    for traced in dict.fromkeys([traceable(solver), ()]):
        try:
            return program_for(solver, compiled, solver.init_carry(x), traced), "", compiled
        except NotCompilable as exc:
            problem = str(exc)
    return None, f"objective {objective.name} has no fused or batched form: {problem}", compiled
