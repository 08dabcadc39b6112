"""The driver: advances runs, applies the stopping rules, hands every iterate to the log.

:func:`run` drives one run of any solver on any objective. It knows nothing of Hydra or of
files (:mod:`optlab.store` gives it a sink on disk). Each iteration is one ``solver.update``,
or, for a :class:`~optlab.solvers.base.StepSolver` on an objective with scalar code, a
stretch of iterations of its fused loop (:mod:`optlab.fused`); :func:`run_many` advances many
runs of such a solver at once, a chunk of steps at a time (:mod:`optlab.batch` is its API).
Either way the rules of :mod:`optlab.stopping` decide, with the same numbers: the paths
share one step program, and tests check that their logs agree bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from .errors import ConfigError, SolverFailure
from .log import IterateLog
from .objectives.base import Objective
from .problem import Problem
from .solvers.base import Solver, State, StepSolver, StepState
from .stopping import STATUSES, Stop, message, norm, rule, rule_name, rules, small_step

__all__ = ["STATUSES", "Clock", "Outcome", "Stop", "run"]

STRETCH = 50_000  # iterations per fused call: progress bars update in between


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


def fused_run(problem: Problem, solver: Solver, state: State, stop: Stop, log: IterateLog | None) -> Any:
    """The fused loop for this run, or None where the generic path applies: the solver is no
    :class:`StepSolver` (or adds a line search), the objective writes its value and gradient
    out, or they have no scalar code."""
    from .autodiff.compile import NotCompilable
    from .fused import FusedRun
    from .program import program_for

    if not isinstance(state, StepState) or not solver.stepwise() or "value_and_grad" in problem.derivatives.analytic:
        return None
    compiled = problem.derivatives.compiled(state.x)
    if compiled is None:
        return None
    try:
        program = program_for(solver, compiled, state.carry)
        n_log = -1 if log is None else log.n_coords
        return FusedRun(program, n_log, stop.gtol, stop.xtol, stop.max_seconds is not None)
    except NotCompilable:
        return None


def run(objective: Objective, solver: Solver, x0: Any = None, stop: Stop | None = None,
        log: IterateLog | None = None, progress: Any = None, *, fused: bool = True) -> Outcome:
    """Minimise ``objective`` with ``solver`` from ``x0`` (default: the standard start).

    Every iterate, the start included, goes to ``log``. Whatever happens inside the run
    ends in an :class:`Outcome` with one of :data:`STATUSES`; only a bad configuration
    (:class:`ConfigError`) is raised, before anything runs. ``fused=False`` keeps to the
    generic path (one ``solver.update`` per iteration) even where a fused loop applies.
    """
    stop = stop or Stop()
    solver.check(objective)
    x = objective.start(x0)
    problem = Problem(objective)
    clock = Clock(stop.max_seconds)
    state: State | None = None
    k = 0
    status, text = "error", ""

    def record(s: State, it: int) -> float:
        g = s.g if s.g is not None else problem.derivatives.grad(s.x)  # for the log only: not counted
        gnorm = norm(g)
        if log is not None:
            log.append(s.x, iter=it, f=s.f, grad_norm=gnorm, step_size=s.step_size, nfev=problem.nfev,
                       ngev=problem.ngev, nhev=problem.nhev, time_s=clock.now())
        return gnorm

    with np.errstate(all="ignore"):  # overflow is detected as divergence, not printed
        try:
            state = solver.init(problem, x)
            gnorm = record(state, 0)
            loop = fused_run(problem, solver, state, stop, log) if fused else None
            while True:
                if log is not None and log.interrupted:  # held while the log handed over a chunk
                    raise KeyboardInterrupt
                name = rule(stop, k, state.f, gnorm, state.x, clock.late(), state.done)
                if name == "done":
                    status, text = "converged", f"{solver.name} {solver.done_message}"
                    break
                if name is not None:
                    status, text = message(name, k, gnorm, stop)
                    break
                count, previous = 0, None
                if loop is not None:
                    state, previous, count, interrupted = _advance(loop, problem, state,
                                                                   min(stop.max_iter, k + STRETCH), clock, log)
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
                if previous is not None and small_step(state.x, previous, stop.xtol):
                    status, text = message("xtol", k, gnorm, stop)
                    break
        except SolverFailure as exc:
            status, text = "failed", f"{exc} (at iteration {k})"
        except ConfigError:
            raise
        except KeyboardInterrupt:
            status, text = interrupted_message(k)
        except Exception as exc:  # noqa: BLE001 - a failing run is data, not a crash
            status, text = "error", f"{type(exc).__name__}: {exc} (at iteration {k})"
    if state is None:
        state = State(x=x, f=math.nan, g=None)
    return Outcome(status, text, state, k, problem.nfev, problem.ngev, problem.nhev, clock.now())


def _advance(loop: Any, problem: Problem, state: StepState, k_end: int, clock: Clock, log: IterateLog | None
             ) -> tuple[StepState, np.ndarray | None, int, bool]:
    """A fused stretch from ``state``: the new state, the x before the last step where a
    stopping rule might hold (else None), the number of steps (0: take a generic step) and
    whether Ctrl-C came (every counted step is logged)."""
    from .log import interrupt_deferred

    program = loop.program
    stretch = loop.advance(program.carry_of(state.x, state.g, state.carry), state.f, state.step_size, state.k,
                           k_end, clock.deadline, clock.t0)
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


# -- many runs at once -------------------------------------------------------------------------
MEMORY_BYTES = 512 * 2**20  # the chunk buffers of a batch take at most about this much


def run_many(objective: Objective, solver: Solver, starts: np.ndarray, stop: Stop, lrs: np.ndarray, n_log: int,
             sinks: list, chunk_rows: int = 10_000, memory_bytes: int = MEMORY_BYTES) -> list[Outcome]:
    """Runs of a :class:`StepSolver` from the rows of ``starts`` (learning rates ``lrs``) as one
    array program: the step program vectorised over the runs (raises
    :class:`~optlab.autodiff.NotCompilable` where there is none). Each run's rows go to
    ``sinks[i]`` (an Arrow table per chunk); each run ends as its single run would, with the
    same iterates. ``time_s`` and ``max_seconds`` count the batch's time.
    """
    from .program import program_for

    compiled = Problem(objective).derivatives.compiled(np.array(starts[0], dtype=float))
    if compiled is None:
        from .autodiff.compile import NotCompilable

        raise NotCompilable("the objective's derivatives are not compiled")
    carry0 = solver.init_carry(starts[0])
    traced = ("lr",) if hasattr(solver, "lr") and not np.all(lrs == lrs[0]) else ()
    program = program_for(solver, compiled, carry0, traced)
    return _Batch(program, compiled, solver, starts, stop, lrs, traced, n_log, sinks, chunk_rows, memory_bytes).run()


class _Batch:
    """The runs still going (``index``: their numbers), advanced a chunk of steps at a time.

    A chunk's buffers hold a row per step: the carry (x, g and the solver's state, a row per
    number, a column per run), f, ||grad f||, the step size and the time. After a chunk the
    stopping rules find each run's last row; the rows go to the sinks and ended runs leave.
    """

    def __init__(self, program: Any, compiled: Any, solver: StepSolver, starts: np.ndarray, stop: Stop,
                 lrs: np.ndarray, traced: tuple, n_log: int, sinks: list, chunk_rows: int, memory_bytes: int) -> None:
        self.program, self.stop, self.lrs, self.traced = program, stop, lrs, traced
        self.n, self.n_log, self.sinks, self.shape = program.n, n_log, sinks, starts.shape[1:]
        self.step = program.vector_step(batched_k=False, batched_params=traced)
        x = starts.reshape(len(starts), -1).T.copy()
        f, g = compiled.vectorised("value_and_grad")(x)
        leaves = np.array([[v for leaf in solver.init_carry(s) for v in np.ravel(leaf)] for s in starts], dtype=float)
        self.carry = np.concatenate([x, g, leaves.reshape(len(starts), -1).T])
        self.f, self.index = f, np.arange(len(starts))
        per_step = 8 * len(starts) * (2 * program.width + 6)  # a chunk's arrays and the tables' copies
        self.chunk = max(1, min(chunk_rows, memory_bytes // per_step))
        self.outcomes: list[Outcome | None] = [None] * len(starts)
        self.interrupted = False

    def run(self) -> list[Outcome]:
        self.clock = Clock(self.stop.max_seconds)
        with np.errstate(all="ignore"):
            n, b = self.n, len(self.index)
            gn = _norms(self.carry[n:2 * n])
            rows = self._buffers(1, b)
            for buffer, value in zip(rows, (self.carry, self.f, gn, math.nan, self.clock.now())):
                buffer[0] = value
            self._end_rows(rows, 0, 1, first=0)
            k = 0
            while len(self.index):
                k = self._chunk(k)
        return [o for o in self.outcomes if o is not None]

    def _buffers(self, rows: int, b: int) -> tuple[np.ndarray, ...]:
        """The chunk's arrays (carry, f, ||grad f||, step size, time), reused as views."""
        from .log import pool_array

        width, size = self.program.width, len(self.outcomes)
        if getattr(self, "_memory", None) is None or self._memory[0].shape[0] < rows:
            self._memory = (pool_array((rows, width * size)), *(pool_array((rows, size)) for _ in range(3)),
                            pool_array(rows))
        cs, fs, gns, sizes, ts = self._memory
        return (cs[:rows, : width * b].reshape(rows, width, b), fs[:rows, :b], gns[:rows, :b], sizes[:rows, :b],
                ts[:rows])

    def _chunk(self, k0: int) -> int:
        """Up to ``chunk`` steps of every run still going; returns the iteration reached.
        Row 0 of the buffers is where the runs stand."""
        b = len(self.index)
        steps = min(self.chunk, self.stop.max_iter - k0)
        rows = self._buffers(steps + 1, b)
        cs, fs, gns, sizes, ts = rows
        cs[0], fs[0] = self.carry, self.f
        params = [self.lrs[self.index]] if self.traced else []
        done = steps
        try:
            carry = list(cs[0])
            for j in range(1, steps + 1):
                carry, fs[j], gns[j], sizes[j] = self.step(carry, np.float64(k0 + j - 1), params)
                for i, row in enumerate(carry):
                    cs[j, i] = row
                ts[j] = self.clock.now()
                if ts[j] + self.clock.t0 > self.clock.deadline:
                    done = j
                    break
        except KeyboardInterrupt:  # the rows done so far count; the runs still going end as interrupted
            done, self.interrupted = j - 1, True
        if done:
            self._end_rows(rows, k0, done + 1, first=1)
        if self.interrupted:
            self._interrupt(k0 + done)
        return k0 + done

    def _end_rows(self, rows: tuple, k0: int, count: int, first: int) -> None:
        """Apply the rules to rows ``first .. count - 1`` (iterations ``k0 + row``), log every run's
        rows up to its end, finish the runs that ended and keep the others at the last row."""
        cs, fs, gns, sizes, ts = rows
        n, b, last = self.n, len(self.index), count - 1
        span = slice(first, count)
        previous = cs[first - 1:count - 1, :n] if first else None
        codes = rules(self.stop, k0 + np.arange(first, count), fs[span], gns[span], cs[span, :n], previous,
                      ts[span] + self.clock.t0 > self.clock.deadline)
        stopped = codes != 0
        ends = np.where(stopped.any(axis=0), stopped.argmax(axis=0), last - first) + first  # each run's last row
        self._log(rows, k0, first, count, ends)
        code = codes[ends - first, np.arange(b)]
        for col in np.flatnonzero(code):
            r = int(ends[col])
            self._finish(col, rule_name(int(code[col])), k0 + r, cs[r, :, col], fs[r, col], gns[r, col],
                         sizes[r, col])
        going = code == 0
        self.carry, self.f = cs[last][:, going].copy(), fs[last][going].copy()
        self.steps_sizes = sizes[last][going].copy()
        self.index = self.index[going]

    def _state(self, carry: np.ndarray, f: float, step_size: float, k: int) -> StepState:
        x, g, leaves = self.program.split(carry)
        return StepState(x, float(f), g, float(step_size), False, k, leaves)

    def _finish(self, col: int, name: str, k: int, carry: np.ndarray, f: float, gn: float, step_size: float) -> None:
        status, text = message(name, k, float(gn), self.stop)
        self.outcomes[int(self.index[col])] = Outcome(status, text, self._state(carry, f, step_size, k), k, k + 1,
                                                      k + 1, 0, self.clock.now())

    def _interrupt(self, k: int) -> None:
        status, text = interrupted_message(k)
        sizes = getattr(self, "steps_sizes", np.full(len(self.index), math.nan))
        for col, run_number in enumerate(self.index.tolist()):
            self.outcomes[run_number] = Outcome(status, text, self._state(self.carry[:, col], self.f[col],
                                                                          sizes[col], k),
                                                k, k + 1, k + 1, 0, self.clock.now())
        self.index = self.index[:0]

    def _log(self, rows: tuple, k0: int, first: int, count: int, ends: np.ndarray) -> None:
        """Rows ``first .. ends[c]`` of each run c to its sink. The chunk's values are
        transposed once, so that every run's rows are contiguous and its columns slices."""
        import pyarrow as pa

        from .log import arrow_column, columns

        cs, fs, gns, sizes, ts = (a[first:count] for a in rows)
        m = count - first
        blocks = (fs, gns, sizes, *cs[:, : self.n_log].swapaxes(0, 1))
        f_runs, gn_runs, size_runs, *x_runs = (arrow_column(_transposed(block).ravel(), False, copy=False)
                                               for block in blocks)
        it = np.arange(k0 + first, k0 + count, dtype=np.int64)
        shared = [arrow_column(a, i < 3, copy=False)
                  for i, a in enumerate((it, it + 1, np.zeros(m, np.int64), ts.copy()))]
        names = columns(self.n_log)

        for c, run_number in enumerate(self.index.tolist()):
            r = int(ends[c]) + 1 - first
            its, evals, zeros, times = (a.slice(0, r) for a in shared)
            cols = [its, f_runs.slice(c * m, r), gn_runs.slice(c * m, r), size_runs.slice(c * m, r), evals, evals,
                    zeros, times, *(x.slice(c * m, r) for x in x_runs)]
            self.sinks[run_number](pa.Table.from_arrays(cols, names=names))


def _norms(g: np.ndarray) -> np.ndarray:
    """||column|| of each column, summed first to last as :func:`optlab.stopping.norm`."""
    total = g[0] * g[0]
    for row in g[1:]:
        total = total + row * row
    return np.sqrt(total)


def _transposed(a: np.ndarray, block: int = 1024) -> np.ndarray:
    """``a.T`` as a C-ordered copy, a block of rows at a time (cache-friendly)."""
    from .log import pool_array

    out = pool_array(a.shape[::-1])
    for i in range(0, a.shape[0], block):
        out[:, i:i + block] = a[i:i + block].T
    return out
