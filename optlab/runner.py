"""The runner: drives any solver on any objective, applies the stopping rules, logs every iterate.

It knows nothing of Hydra or of files; :mod:`optlab.store` gives it a sink on disk.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from .errors import ConfigError, SolverFailure, check_number
from .log import IterateLog
from .objectives.base import Objective
from .problem import Problem
from .solvers.base import Solver, State

STATUSES = ("converged", "max_iter", "max_seconds", "diverged", "failed", "error", "interrupted")


@dataclasses.dataclass
class Stop:
    """Stopping rules. ``gtol``: stop when ||grad f|| <= gtol; ``xtol``: when the step is
    at most ``xtol * (1 + ||x||)`` (0 stops only when x no longer changes at all)."""

    max_iter: int = 50_000
    gtol: float = 1e-12
    xtol: float = 0.0
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        self.max_iter = check_number("stop.max_iter", self.max_iter, low=0, strict=False, integer=True)
        self.gtol = check_number("stop.gtol", self.gtol, low=0, strict=False)
        self.xtol = check_number("stop.xtol", self.xtol, low=0, strict=False)
        self.max_seconds = check_number("stop.max_seconds", self.max_seconds, low=0, allow_none=True)


@dataclasses.dataclass
class Outcome:
    status: str
    message: str
    state: State
    iterations: int
    nfev: int
    ngev: int
    nhev: int
    wall_time_s: float


def _norm(v: np.ndarray) -> float:
    return math.sqrt(float(np.dot(v.ravel(), v.ravel())))


def run(objective: Objective, solver: Solver, x0: Any = None, stop: Stop | None = None,
        log: IterateLog | None = None, progress: Any = None) -> Outcome:
    """Minimise ``objective`` with ``solver`` from ``x0`` (default: the standard start).

    Every iterate, the start included, goes to ``log``. Whatever happens inside the run
    ends in an :class:`Outcome` with one of :data:`STATUSES`; only a bad configuration
    (:class:`ConfigError`) is raised, before anything runs.
    """
    stop = stop or Stop()
    solver.check(objective)
    x = objective.start(x0)
    problem = Problem(objective)
    t0 = time.perf_counter()
    deadline = math.inf if stop.max_seconds is None else t0 + stop.max_seconds
    state: State | None = None
    k = 0
    status, message = "error", ""

    def record(s: State) -> float:
        g = s.g if s.g is not None else objective.grad(s.x)  # for the log only: not counted
        gnorm = _norm(g)
        if log is not None:
            log.append(k, s.f, gnorm, s.step_size, problem.nfev, problem.ngev, problem.nhev,
                       time.perf_counter() - t0, s.x)
        return gnorm

    with np.errstate(all="ignore"):  # overflow is detected as divergence, not printed
        try:
            state = solver.init(problem, x)
            gnorm = record(state)
            while True:
                if not (math.isfinite(state.f) and math.isfinite(gnorm) and np.all(np.isfinite(state.x))):
                    status, message = "diverged", f"f or x is not finite at iteration {k}"
                    break
                if gnorm <= stop.gtol:
                    status, message = "converged", f"||grad f|| = {gnorm:.3g} <= gtol = {stop.gtol:g}"
                    break
                if state.done:
                    status, message = "converged", f"{solver.name} reached its exact solution"
                    break
                if k >= stop.max_iter:
                    status, message = "max_iter", f"reached max_iter = {stop.max_iter}"
                    break
                if time.perf_counter() > deadline:
                    status, message = "max_seconds", f"reached max_seconds = {stop.max_seconds:g}"
                    break
                previous = state.x
                state = solver.update(problem, state)
                k += 1
                gnorm = record(state)
                if progress is not None:
                    progress.update(1)
                if _norm(state.x - previous) <= stop.xtol * (1.0 + _norm(previous)):
                    status, message = "converged", f"step <= xtol * (1 + ||x||) with xtol = {stop.xtol:g}"
                    break
        except SolverFailure as exc:
            status, message = "failed", f"{exc} (at iteration {k})"
        except ConfigError:
            raise
        except KeyboardInterrupt:
            status, message = "interrupted", f"interrupted by the user at iteration {k}"
        except Exception as exc:  # noqa: BLE001 - a failing run is data, not a crash
            status, message = "error", f"{type(exc).__name__}: {exc} (at iteration {k})"
    if state is None:
        state = State(x=x, f=math.nan, g=None)
    return Outcome(status, message, state, k, problem.nfev, problem.ngev, problem.nhev,
                   time.perf_counter() - t0)
