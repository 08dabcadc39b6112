"""The driver: advances runs, applies the stopping rules, hands every iterate to the log.

:func:`run` drives one run of any solver on any objective. It knows nothing of Hydra or of
files (:mod:`optlab.store` gives it a sink on disk). Each iteration is one ``solver.update``,
or, for a :class:`~optlab.solvers.base.StepSolver` on an objective with scalar code, a
stretch of iterations of its fused loop (:mod:`optlab.fused`); :mod:`optlab.batch` advances
many runs of such a solver at once, on the same clock and with the same rules.
Either way the rules of :mod:`optlab.stopping` decide, with the same numbers: the paths
share one step program, and tests check that their logs agree bit for bit.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from typing import Any

import numpy as np

from ..errors import ConfigError, EndRun, NoProgress, SolverFailure
from ..objectives.base import Objective
from ..solvers.base import Solver, State, StepSolver, StepState
from ..solvers.problem import Problem
from .log import IterateLog
from .stopping import FINISHED, STATUSES, Stop, message, norm, rule

__all__ = ["STATUSES", "Clock", "Outcome", "Stop", "run"]

STRETCH = 50_000  # iterations per fused call: progress bars update in between


@dataclasses.dataclass
class Outcome:
    """How a run ended: its status and message, where it stands, its counts, its time (from
    its first evaluation on) and the one-off set-up before (compiling the objective's code)."""

    status: str
    message: str
    state: State
    iterations: int
    nfev: int
    ngev: int
    nhev: int
    wall_time_s: float
    setup_s: float = 0.0


class Clock:
    """The run's clock: seconds since the start and the deadline of ``max_seconds``."""

    def __init__(self, max_seconds: float | None) -> None:
        self.t0 = time.perf_counter()
        self.deadline = math.inf if max_seconds is None else self.t0 + max_seconds

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def late(self) -> bool:
        return self.deadline < math.inf and time.perf_counter() > self.deadline


def interrupted_message(k: int) -> tuple[str, str]:
    return "interrupted", f"interrupted by the user at iteration {k}"


def prepare(problem: Problem, solver: Solver, x: np.ndarray, stop: Stop, log: IterateLog | None,
            fused: bool) -> Any:
    """One-off set-up before the clock starts: the objective's compiled code for what the
    solver evaluates, and the fused loop for this run, or None where the generic path applies
    (the solver is no :class:`StepSolver` or adds a line search, the objective writes its value
    and gradient out, or they have no scalar code)."""
    from ..autodiff.compile import NotCompilable
    from .fused import FusedRun
    from .program import program_for, traceable

    compiled = problem.derivatives.compiled(x)
    if compiled is not None:
        compiled.prepare([name for name in solver.evaluates if name not in problem.derivatives.analytic])
    if not (fused and isinstance(solver, StepSolver) and solver.stepwise()) or compiled is None:
        return None
    if "value_and_grad" in problem.derivatives.analytic or stop.ftol > 0.0:  # (the loop keeps no history of f)
        return None
    n_log = -1 if log is None else log.n_coords
    for traced in dict.fromkeys([traceable(solver), ()]):  # (a step that branches on lr: a constant)
        try:
            program = program_for(solver, compiled, solver.init_carry(x), traced)
        except NotCompilable:
            continue
        params = tuple(float(getattr(solver, name)) for name in traced)
        return FusedRun(program, params, n_log, stop.gtol, stop.xtol, stop.max_seconds is not None)
    return None


def run(objective: Objective, solver: Solver, x0: Any = None, stop: Stop | None = None,
        log: IterateLog | None = None, progress: Any = None, *, fused: bool = True,
        log_grad_norm: bool = False) -> Outcome:
    """Minimise ``objective`` with ``solver`` from ``x0`` (default: the standard start).

    Every iterate, the start included, goes to ``log``. Whatever happens inside the run
    ends in an :class:`Outcome` with one of :data:`STATUSES`; only a bad configuration
    (:class:`ConfigError`) is raised, before anything runs. ``fused=False`` keeps to the
    generic path (one ``solver.update`` per iteration) even where a fused loop applies. For a
    method that uses no gradient the log's ``grad_norm`` is NaN unless ``log_grad_norm``
    (then each is a counted gradient evaluation); ``gtol`` does not apply to it.
    """
    stop = stop or Stop()
    solver.check(objective)
    x = objective.start(x0)
    problem = Problem(objective, stop.max_fev)
    setup = time.perf_counter()
    limit = stop.limit(objective.f_star)
    history: collections.deque = collections.deque(maxlen=stop.patience + 1)
    state: State | None = None
    clock: Clock | None = None
    k = 0
    status, text = "error", ""

    def record(s: State, it: int) -> float | None:
        if s.g is not None:
            gnorm = norm(s.g)
        elif log_grad_norm:
            gnorm = norm(problem.grad(s.x))
        else:
            gnorm = None
        if log is not None:
            log.append(s.x, iter=it, f=s.f, grad_norm=math.nan if gnorm is None else gnorm,
                       step_size=s.step_size, nfev=problem.nfev, ngev=problem.ngev, nhev=problem.nhev,
                       time_s=clock.now())
        return gnorm if solver.uses_gradient else None

    with np.errstate(all="ignore"):  # overflow is detected as divergence, not printed
        try:
            loop = prepare(problem, solver, x, stop, log, fused)
            clock = Clock(stop.max_seconds)  # the run's time: set-up apart, in setup_s
            state = solver.init(problem, x)
            gnorm = record(state, 0)
            previous = None
            while True:
                if log is not None and log.interrupted:  # held while the log handed over a chunk
                    raise KeyboardInterrupt
                history.append(state.f)
                f_back = history[0] if len(history) > stop.patience else None
                name = rule(stop, k, state.f, gnorm, state.x, previous=previous, f_back=f_back, limit=limit,
                            nfev=problem.nfev, late=clock.late(), done=state.done)
                if name == "done":
                    status, text = "converged", f"{solver.name} {solver.done_message}"
                    break
                if name is not None:
                    status, text = message(name, k, gnorm, stop, state.f, limit)
                    break
                count, previous = 0, None
                if loop is not None:
                    k_end = min(stop.max_iter, k + STRETCH)
                    if stop.max_fev is not None:  # a step is one evaluation
                        k_end = min(k_end, k + stop.max_fev - problem.nfev)
                    state, previous, count, interrupted = _advance(loop, problem, state, k_end, limit, clock, log)
                    k += count
                    if interrupted:
                        raise KeyboardInterrupt
                if count == 0:  # the generic step (also after a fused loop's float error)
                    previous = state.x
                    state = solver.update(problem, state)
                    k, count = k + 1, 1
                    gnorm = record(state, k)
                else:
                    gnorm = norm(state.g)
                if progress is not None:
                    progress.update(count)
        except NoProgress as exc:
            status, text = "stalled", f"{exc} (at iteration {k})"
        except SolverFailure as exc:
            status, text = "failed", f"{exc} (at iteration {k})"
        except EndRun as exc:
            status, text = (exc.status, f"{exc} (at iteration {k})") if exc.status in FINISHED else (
                "error", f"EndRun with status {exc.status!r}; allowed: one of {', '.join(FINISHED)}: {exc}")
        except ConfigError:
            raise
        except KeyboardInterrupt:
            status, text = interrupted_message(k)
        except Exception as exc:  # noqa: BLE001 - a failing run is data, not a crash
            status, text = "error", f"{type(exc).__name__}: {exc} (at iteration {k})"
    if state is None:
        state = State(x=x, f=math.nan, g=None)
    setup_s = (clock.t0 if clock is not None else time.perf_counter()) - setup
    return Outcome(status, text, state, k, problem.nfev, problem.ngev, problem.nhev,
                   clock.now() if clock is not None else 0.0, setup_s)


def _advance(loop: Any, problem: Problem, state: StepState, k_end: int, limit: float, clock: Clock,
             log: IterateLog | None) -> tuple[StepState, np.ndarray | None, int, bool]:
    """A fused stretch from ``state``: the new state, the x before the last step where a
    stopping rule might hold (else None), the number of steps (0: take a generic step) and
    whether Ctrl-C came (every counted step is logged)."""
    from ..interrupts import interrupt_deferred

    program = loop.program
    stretch = loop.advance(program.carry_of(state.x, state.g, state.carry), state.f, state.step_size, state.k,
                           k_end, limit, clock.deadline, clock.t0)
    count, interrupted = stretch.count, stretch.interrupted
    if count == 0:
        return state, None, 0, interrupted
    if log is not None:
        with interrupt_deferred() as caught:  # the steps are done: their rows all go in, or none
            columns, coords = stretch.rows
            its = np.arange(state.k + 1, stretch.k + 1, dtype=np.int64)
            log.append_columns({**columns, "iter": its, "nfev": its - state.k + problem.nfev,
                                "ngev": its - state.k + problem.ngev, "nhev": problem.nhev}, coords)
        interrupted = interrupted or bool(caught)
    problem.nfev += count
    problem.ngev += count
    x, g, carry = program.split(stretch.carry)
    new = StepState(x, stretch.f, g, stretch.step_size, False, stretch.k, carry)
    previous = None if stretch.previous is None else np.array(stretch.previous).reshape(x.shape)
    return new, previous, count, interrupted
