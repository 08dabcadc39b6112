"""The driver of one run: advances it, applies the stopping rules, hands every iterate to the log.

Each iteration is one ``solver.update`` (the generic path) or, where the plan says ``fused``, a
stretch of iterations of the run's fused loop (:mod:`optlab.engine.fused`), after which the
rules of :mod:`optlab.engine.stopping` are applied exactly where the loop stopped. Whatever
happens inside the run ends in an :class:`~optlab.engine.outcome.Outcome`: the driver raises
nothing but a :class:`~optlab.errors.ConfigError` found before the run starts.
"""

from __future__ import annotations

import collections
import contextlib
import math
import time
from typing import Any

import numpy as np

from ..errors import ConfigError, EndRun, NoProgress, SolverFailure
from ..interrupts import held, interrupt_deferred, requested
from ..norms import norm
from ..objectives.base import Objective
from ..solvers.base import Solver, State, StepState
from ..solvers.problem import Problem
from .fused import FusedRun
from .log import IterateLog
from .outcome import Clock, Outcome
from .plan import Plan
from .stopping import (
    FINISHED,
    Standing,
    Stop,
    active_rules,
    first_rule,
    holds_non_finite,
    interrupted_message,
    message,
    not_finite,
)

STRETCH = 50_000  # iterations per fused call (at least): progress bars update in between


def drive(objective: Objective, solver: Solver, x: np.ndarray, stop: Stop, rows: IterateLog, plan: Plan,
          log_grad_norm: bool = False, progress: Any = None, interrupted: bool = False) -> Outcome:
    """One run of ``solver`` on ``objective`` from the checked start ``x``, every iterate (the
    start included) appended to ``rows`` (its caller flushes the last ones). For a method that
    uses no gradient the log's ``grad_norm`` is NaN unless ``log_grad_norm`` (then each is a
    counted gradient evaluation); ``gtol`` does not apply to it.

    A run interrupted at any moment ends ``interrupted`` with one row per iteration it counted,
    the start's row at least (``interrupted``: Ctrl-C came before the run began)."""
    limit = stop.limit(objective.f_star)
    # f's target checked at every evaluation; a run with a step program evaluates only at its
    # iterates, once each, so there the rule after each iteration sees every evaluation and the
    # three paths end alike, the step's row whole
    problem = Problem(objective, stop.max_fev, limit if plan.program is None else -math.inf)
    setup = time.perf_counter()
    rules = active_rules(stop, solver.uses_gradient, limit)
    history: collections.deque = collections.deque(maxlen=stop.patience + 1)
    state: State | None = None
    clock: Clock | None = None
    k = 0
    status, text = "error", ""
    loop: FusedRun | None = None  # (Ctrl-C may come while it is being made)
    made: State | None = None  # the solver's last state, where an evaluation's point replaced it

    def record(s: State, it: int) -> float | None:
        if s.g is not None:
            gnorm = norm(s.g)
        elif log_grad_norm:
            gnorm = norm(problem.grad(s.x))
        else:
            gnorm = None
        rows.append(s.x, iter=it, f=s.f, grad_norm=math.nan if gnorm is None else gnorm, step_size=s.step_size,
                    nfev=problem.nfev, ngev=problem.ngev, nhev=problem.nhev, time_s=clock.now())
        return gnorm if solver.uses_gradient else None

    with np.errstate(all="ignore"):  # overflow is detected as divergence, not printed
        try:
            loop = _prepare(problem, solver, x, stop, plan, rows.n_coords)
            clock = Clock(stop.max_seconds)  # the run's time: set-up apart, in setup_s
            with interrupt_deferred() as caught:  # a started run has its start's row
                state = solver.init(problem, x)
                gnorm = record(state, 0)
            interrupted = interrupted or bool(caught)
            previous = None
            while True:
                if interrupted or rows.interrupted or requested():  # (held meanwhile, or swallowed by a library)
                    raise KeyboardInterrupt
                history.append(state.f)
                at = Standing(k, state.f, math.nan if gnorm is None else gnorm,
                              gnorm is not None and not_finite(gnorm), holds_non_finite(state.x),
                              *_step(state.x, previous, stop.xtol),
                              f_back=history[0] if len(history) > stop.patience else math.nan,
                              nfev=problem.nfev, late=clock.late(), done=state.done)
                name = first_rule(rules, at)
                if name is not None:
                    status, text = message(name, k, gnorm, stop, state.f, limit, solver.name, solver.done_message,
                                           problem.nfev)
                    break
                count, previous = 0, None
                if loop is not None:
                    k_end = min(stop.max_iter, k + loop.stretch(STRETCH))
                    if stop.max_fev is not None:  # a step is one evaluation
                        k_end = min(k_end, k + stop.max_fev - problem.nfev)
                    stretch = loop.advance(loop.program.carry_of(state.x, state.g, state.carry), state.f,
                                           state.step_size, state.k, k_end, limit, clock.deadline, clock.t0,
                                           (problem.nfev, problem.ngev, problem.nhev))
                    with interrupt_deferred() as caught:  # the steps are done: rows, state and count together
                        state, previous, count = _accept(loop, problem, state, stretch, rows)
                        k += count
                    interrupted = stretch.interrupted or bool(caught)
                    if interrupted:
                        raise KeyboardInterrupt
                if count == 0:  # the generic step (also after a fused loop's float error)
                    new = solver.update(problem, state)
                    with held():  # the row and the count together
                        previous, state, k, count = state.x, new, k + 1, 1
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
            at = getattr(exc, "x", None)
            if at is not None and state is not None:  # the evaluation that ended the run is its last row
                k += 1
                made, g = state, None if exc.g is None else exc.g.reshape(state.x.shape)
                state = State(x=np.asarray(at, dtype=float).reshape(state.x.shape), f=float(exc.f), g=g)
                rows.append(state.x, iter=k, f=state.f, grad_norm=math.nan if g is None else norm(g),
                            step_size=math.nan, nfev=problem.nfev,
                            ngev=problem.ngev, nhev=problem.nhev, time_s=clock.now())
            status, text = (exc.status, f"{exc} (at iteration {k})") if exc.status in FINISHED else (
                "error", f"EndRun with status {exc.status!r}; allowed: one of {', '.join(FINISHED)}: {exc}")
        except ConfigError:
            raise
        except KeyboardInterrupt:
            status, text = interrupted_message(k)
            if state is None:  # before the start's row: it is made (one evaluation), so the run has its row
                with interrupt_deferred(), contextlib.suppress(Exception):
                    clock = clock or Clock(None)
                    state = solver.init(problem, x)
                    record(state, 0)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a failing run is data, not a crash
            status, text = "error", f"{type(exc).__name__}: {exc} (at iteration {k})"
    if state is None:
        state = State(x=x, f=math.nan, g=None)
    else:
        with contextlib.suppress(Exception):  # (the outcome is recorded whatever the solver does here)
            solver.end(state if made is None else made)
    setup_s = (clock.t0 if clock is not None else time.perf_counter()) - setup
    return Outcome(status, text, state, k, problem.nfev, problem.ngev, problem.nhev,
                   clock.now() if clock is not None else 0.0, setup_s, "fused" if loop is not None else "generic",
                   loop is not None and loop.jit)


def _step(x: np.ndarray, previous: np.ndarray | None, xtol: float) -> tuple[float, float]:
    """||x - previous|| and ||previous|| (NaN without a previous x; the norm only where xtol needs it)."""
    if previous is None:
        return math.nan, math.nan
    return norm(x - previous), (norm(previous) if xtol else math.nan)


def _prepare(problem: Problem, solver: Solver, x: np.ndarray, stop: Stop, plan: Plan, n_log: int
             ) -> FusedRun | None:
    """One-off set-up before the clock starts: the objective's compiled code for what the solver
    evaluates, and the run's fused loop where the plan says ``fused``."""
    if plan.compiled is not None:
        plan.compiled.prepare([name for name in solver.evaluates if name not in problem.derivatives.analytic])
    return fused_run(plan, solver, stop, n_log) if plan.backend == "fused" else None


def fused_run(plan: Plan, solver: Solver, stop: Stop, n_log: int) -> FusedRun:
    """The fused loop of one run of ``solver`` under a fused plan, logging ``n_log`` coordinates."""
    program = plan.program_of(solver)
    params = tuple(float(getattr(solver, name)) for name in program.traced)
    from .jit import lowering  # (machine code where the plan says jit: the same bits)

    return lowering(FusedRun, plan.jit, program, params, n_log, stop.gtol, stop.xtol, stop.max_seconds is not None)


def _accept(loop: FusedRun, problem: Problem, state: StepState, stretch: Any, log: IterateLog
            ) -> tuple[StepState, np.ndarray | None, int]:
    """The steps of a fused stretch from ``state``, logged: the new state, the x before the last step
    where a stopping rule might hold (else None), and the number of steps (0: take a generic step)."""
    program, count = loop.program, stretch.count
    if count == 0:
        return state, None, 0
    log.append_columns(*stretch.rows)
    problem.nfev += count
    problem.ngev += count
    x, g, carry = program.split(stretch.carry)
    new = StepState(x, stretch.f, g, stretch.step_size, False, stretch.k, carry)
    previous = None if stretch.previous is None else np.array(stretch.previous).reshape(x.shape)
    return new, previous, count
