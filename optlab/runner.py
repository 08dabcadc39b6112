"""The runner: drives any solver on any objective, applies the stopping rules, logs every iterate.

It knows nothing of Hydra or of files; :mod:`optlab.store` gives it a sink on disk. Where a
fused loop applies (:mod:`optlab.fastpath`) it advances stretches of iterations at once; the
stopping rules are applied here either way.
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
# The stopping rules' statuses and messages ({k}: iteration, {gnorm}: ||grad f||, {stop}: the Stop).
STOP_MESSAGES = {
    "xtol": ("converged", "step <= xtol * (1 + ||x||) with xtol = {stop.xtol:g}"),
    "diverged": ("diverged", "f or x is not finite at iteration {k}"),
    "gtol": ("converged", "||grad f|| = {gnorm:.3g} <= gtol = {stop.gtol:g}"),
    "max_iter": ("max_iter", "reached max_iter = {stop.max_iter}"),
    "max_seconds": ("max_seconds", "reached max_seconds = {stop.max_seconds:g}"),
}
SMALL = 8  # vectors up to this size are summed in Python
# Iterations per fused stretch: progress bars update in between; its log rows are kept until its end.
FUSED_STRETCH = 50_000


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


def stop_message(rule: str, k: int, gnorm: float, stop: Stop) -> tuple[str, str]:
    """The status and message of stopping rule ``rule`` (a key of :data:`STOP_MESSAGES`)."""
    status, template = STOP_MESSAGES[rule]
    return status, template.format(k=k, gnorm=gnorm, stop=stop)


def _norm(v: np.ndarray) -> float:
    if v.size <= SMALL:  # Python floats beat numpy's call overhead; same sum as np.dot up to 8 terms
        total = 0.0
        for c in v.ravel().tolist():
            total += c * c
        return math.sqrt(total)
    v = v if v.ndim == 1 else v.ravel()
    return math.sqrt(float(np.dot(v, v)))


def _finite(f: float, gnorm: float, x: np.ndarray) -> bool:
    if not (math.isfinite(f) and math.isfinite(gnorm)):
        return False
    if x.size <= SMALL:
        return all(map(math.isfinite, x.ravel().tolist()))
    v = x if x.ndim == 1 else x.ravel()
    # one dot product is finite when every entry is; only its overflow needs the full check
    return math.isfinite(float(np.dot(v, v))) or bool(np.isfinite(x).all())


def _small_step(x: np.ndarray, previous: np.ndarray, xtol: float) -> bool:
    """||x - previous|| <= xtol (1 + ||previous||)."""
    step = _norm(x - previous)
    return step <= 0.0 if xtol == 0.0 else step <= xtol * (1.0 + _norm(previous))


def run(objective: Objective, solver: Solver, x0: Any = None, stop: Stop | None = None,
        log: IterateLog | None = None, progress: Any = None, *, fused: bool = True) -> Outcome:
    """Minimise ``objective`` with ``solver`` from ``x0`` (default: the standard start).

    Every iterate, the start included, goes to ``log``. Whatever happens inside the run
    ends in an :class:`Outcome` with one of :data:`STATUSES`; only a bad configuration
    (:class:`ConfigError`) is raised, before anything runs. ``fused=False`` keeps to the
    generic path (one ``solver.update`` per iteration) even where a fused loop applies.
    """
    from .fastpath import fused_loop

    stop = stop or Stop()
    solver.check(objective)
    x = objective.start(x0)
    problem = Problem(objective)
    t0 = time.perf_counter()
    deadline = math.inf if stop.max_seconds is None else t0 + stop.max_seconds
    state: State | None = None
    k = 0
    status, message = "error", ""

    def record(s: State, it: int) -> float:
        g = s.g if s.g is not None else objective.grad(s.x)  # for the log only: not counted
        gnorm = _norm(g)
        if log is not None:
            log.append(it, s.f, gnorm, s.step_size, problem.nfev, problem.ngev, problem.nhev,
                       time.perf_counter() - t0, s.x)
        return gnorm

    with np.errstate(all="ignore"):  # overflow is detected as divergence, not printed
        try:
            state = solver.init(problem, x)
            gnorm = record(state, 0)
            loop = fused_loop(objective, solver, state.x, stop, log) if fused else None
            while True:
                if log is not None and log.interrupted:  # held while the log handed over a chunk
                    raise KeyboardInterrupt
                rule = ("diverged" if not _finite(state.f, gnorm, state.x) else "gtol" if gnorm <= stop.gtol
                        else "done" if state.done else "max_iter" if k >= stop.max_iter
                        else "max_seconds" if deadline < math.inf and time.perf_counter() > deadline else None)
                if rule == "done":
                    status, message = "converged", f"{solver.name} {solver.done_message}"
                    break
                if rule is not None:
                    status, message = stop_message(rule, k, gnorm, stop)
                    break
                count = 0
                if loop is not None:
                    ahead = loop.advance(problem, state, k, min(stop.max_iter, k + FUSED_STRETCH), log, t0, deadline)
                    state, previous, count = ahead.state, ahead.previous, ahead.count
                    k += count
                    if ahead.interrupted:
                        raise KeyboardInterrupt
                if count == 0:  # the generic step (also after a fused loop's float error)
                    previous = state.x
                    new = solver.update(problem, state)
                    gnorm = record(new, k + 1)
                    state, k, count = new, k + 1, 1
                else:
                    gnorm = _norm(state.g)
                if progress is not None:
                    progress.update(count)
                if previous is not None and _small_step(state.x, previous, stop.xtol):
                    status, message = stop_message("xtol", k, gnorm, stop)
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
