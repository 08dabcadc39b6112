"""Batched runs: many start points and learning rates of a first-order method as one array program.

A sweep over starts and learning rates repeats the same few operations per step in every
run. Here the runs advance together (:func:`run_many`): the solver's step program,
vectorised over the runs, takes one step of all of them per call. Every run still
ends as its own run: its own run id, ``run.json`` and ``iterates.parquet`` (the files of a
single run), the same stopping rules with the same messages, and the same iterates, bit for
bit, as a single run from the same start with the same learning rate.

* :func:`batchable` ``(objective, solver)`` -> None, or why the runs cannot be batched;
* :func:`run_batch` ``(objective, solver, starts, stop, lrs=...)`` -> one :class:`BatchRun`
  per start (outcome and iterate table, in memory);
* :func:`run_batch_to_dirs` ``(run_dirs, objective, solver, starts, stop, lrs=..., extras=...)``
  -> the final run records, one directory per start.

Both run the starts one after the other where they cannot be batched, so callers need one
code path. Batched: the methods written as steps (gd without a line search, momentum,
nesterov, adagrad, rmsprop, adam; any schedule) on objectives whose value and gradient come
from ``f`` with scalar code (up to 16 coordinates). Differences from single runs: a run's
``time_s``, ``wall_time_s`` and ``setup_s`` are its share of the batch's (each interval
divided among the runs going then), its record says ``batch: {"size": ...}``, and
``max_seconds`` is a budget for the batch (runs still going when it is spent end as
``max_seconds``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..autodiff.compile import NotCompilable
from ..errors import ConfigError
from ..interrupts import interrupt_deferred
from ..objectives.base import Objective
from ..solvers.base import Solver, StepSolver, StepState
from ..solvers.problem import Problem
from .driver import Clock, Outcome, interrupted_message, run
from .log import IterateLog, arrow_column, columns, pool_array
from .stopping import Stop, message, row_norms, rule_name, rules

MEMORY_BYTES = 512 * 2**20  # a batch's log buffers take at most about this much
BLOCK = 128  # steps between two checks of the stopping rules


@dataclasses.dataclass
class BatchRun:
    """One run of a batch: how it ended, and its iterate table (the columns of a single run's log)."""

    outcome: Outcome
    iterates: pa.Table | None


def batchable(objective: Objective, solver: Solver) -> str | None:
    """None when runs of ``solver`` on ``objective`` can be batched, else the reason they cannot."""
    from ..objectives.derivatives import derivatives_of
    from .program import program_for

    if not isinstance(solver, StepSolver):
        return f"solver {solver.name} is not written as a step (only gd, momentum, nesterov, adagrad, rmsprop, adam)"
    if not solver.stepwise():
        return f"solver {solver.name} with a line search has no batched form"
    derivatives = derivatives_of(objective)
    if "value_and_grad" in derivatives.analytic:
        return f"objective {objective.name} writes its gradient out; its analytic form is kept in single runs"
    x = np.asarray(objective.start(), dtype=float)
    compiled = derivatives.compiled(x)
    if compiled is None:
        return f"objective {objective.name} has no batched form: {derivatives.eager_reason or 'not compiled'}"
    try:
        program_for(solver, compiled, solver.init_carry(x))
    except NotCompilable as exc:
        return f"objective {objective.name} has no batched form: {exc}"
    return None


def _lrs(solver: Solver, lrs: Any, count: int) -> tuple[np.ndarray, list[Solver]]:
    """Per-run learning rates and solvers (one solver per distinct rate, checked as ``solver.lr`` is)."""
    if not hasattr(solver, "lr"):
        if lrs is not None:
            raise ConfigError(f"lrs={lrs!r} given for solver {solver.name}, which has no learning rate; "
                              "allowed: lrs only with a solver that has lr")
        return np.full(count, math.nan), [solver] * count
    values = np.broadcast_to(np.asarray(solver.lr if lrs is None else lrs, dtype=float), (count,))
    made: dict[float, Solver] = {float(solver.lr): solver}
    for lr in set(values.tolist()):
        if lr not in made:
            made[lr] = type(solver)(**{**solver.params(), "lr": lr})
    solvers = [made[lr] for lr in values.tolist()]
    return np.array([float(s.lr) for s in solvers]), solvers


def _starts(objective: Objective, starts: Any) -> np.ndarray:
    rows = np.asarray(starts, dtype=float)
    rows = rows.reshape(len(rows), -1) if rows.ndim != 2 else rows
    if len(rows) == 0:
        raise ConfigError("starts is empty; allowed: at least one start point")
    if rows.shape[1] != objective.dim or not np.isfinite(rows).all():
        for r in rows:
            objective.start(r)  # the one-line error of the first bad start
    return rows.copy()


def run_batch(objective: Objective, solver: Solver, starts: Any, stop: Stop | None = None, *,
              lrs: Sequence[float] | float | None = None, max_coords: int = 100,
              chunk_rows: int = 10_000, memory_bytes: int = MEMORY_BYTES) -> list[BatchRun]:
    """Run ``solver`` from every row of ``starts`` (with learning rate ``lrs[i]``, default the
    solver's), as one batch where :func:`batchable`; each run's iterates as an Arrow table."""
    stop = stop or Stop()
    points = _starts(objective, starts)
    rates, solvers = _lrs(solver, lrs, len(points))
    n_log = min(objective.dim, max_coords)
    if batchable(objective, solver) is not None:
        runs = []
        for s, p in zip(solvers, points):
            log = IterateLog(n_log, chunk_rows)
            runs.append(BatchRun(run(objective, s, p, stop, log=log), log.table()))
        return runs
    tables: list[list[pa.Table]] = [[] for _ in points]
    outcomes = run_many(objective, solvers[0], points, stop, rates, n_log, [t.append for t in tables], chunk_rows,
                        memory_bytes)
    return [BatchRun(o, pa.concat_tables(t) if t else pa.table({c: [] for c in columns(n_log)}))
            for o, t in zip(outcomes, tables)]


def run_batch_to_dirs(run_dirs: Sequence[str | Path], objective: Objective, solver: Solver, starts: Any,
                      stop: Stop | None = None, *, lrs: Sequence[float] | float | None = None,
                      extras: Sequence[dict[str, Any] | None] | None = None, max_coords: int = 100,
                      chunk_rows: int = 10_000, memory_bytes: int = MEMORY_BYTES) -> list[dict[str, Any]]:
    """Run from every row of ``starts`` into ``run_dirs[i]`` (``run.json`` + ``iterates.parquet``,
    as :func:`optlab.store.run_to_dir` writes them); ``extras[i]`` joins run i's record.

    Batched when :func:`batchable`, else one run after the other. Returns the final records.
    """
    from ..rundir.store import RunFiles, run_to_dir

    stop = stop or Stop()
    points = _starts(objective, starts)
    dirs = [Path(d) for d in run_dirs]
    if len(dirs) != len(points):
        raise ConfigError(f"{len(dirs)} run directories for {len(points)} starts; allowed: one per start")
    rates, solvers = _lrs(solver, lrs, len(points))
    extras = list(extras) if extras is not None else [None] * len(points)
    if batchable(objective, solver) is not None:
        return [run_to_dir(d, objective, s, p, stop, max_coords=max_coords, chunk_rows=chunk_rows, extra=e)
                for d, s, p, e in zip(dirs, solvers, points, extras)]
    extras = [{**(e or {}), "batch": {"size": len(points)}} for e in extras]
    files = [RunFiles(d, objective, s, p, stop, e, chunk_rows) for d, s, p, e in zip(dirs, solvers, points, extras)]
    n_log = min(objective.dim, max_coords)
    outcomes = run_many(objective, solvers[0], points, stop, rates, n_log, [f.sink for f in files], chunk_rows,
                        memory_bytes)
    return RunFiles.close_all(files, objective, outcomes)


def run_many(objective: Objective, solver: Solver, starts: np.ndarray, stop: Stop, lrs: np.ndarray, n_log: int,
             sinks: list, chunk_rows: int = 10_000, memory_bytes: int = MEMORY_BYTES) -> list[Outcome]:
    """Runs of a :class:`StepSolver` from the rows of ``starts`` (learning rates ``lrs``) as one
    array program: the step program vectorised over the runs (raises :class:`NotCompilable`
    where there is none). Each run's rows go to ``sinks[i]`` (Arrow tables of at most
    ``chunk_rows`` rows); each run ends as its single run would, with the same iterates.
    A run's ``time_s`` is its share of the batch's time (each interval divided among the runs
    going then) and its ``setup_s`` its share of the set-up; ``max_seconds`` is a budget for
    the batch.
    """
    from .program import program_for, traceable

    setup = time.perf_counter()
    compiled = Problem(objective).derivatives.compiled(np.array(starts[0], dtype=float))
    if compiled is None:
        raise NotCompilable("the objective's derivatives are not compiled")
    traced = traceable(solver) if not np.all(lrs == lrs[0]) else ()
    program = program_for(solver, compiled, solver.init_carry(starts[0]), traced)
    x = starts.reshape(len(starts), -1).T.copy()
    f, g = compiled.vectorised("value_and_grad")(x)
    leaves = np.array([[v for leaf in solver.init_carry(s) for v in np.ravel(leaf)] for s in starts], dtype=float)
    carry = np.concatenate([x, g, leaves.reshape(len(starts), -1).T])
    log_rows = max(1, min(chunk_rows, memory_bytes // (8 * len(starts) * (n_log + 3))))
    many = _Many(program, stop, lrs if traced else None, n_log, sinks, log_rows)
    return many.run(carry, f, (time.perf_counter() - setup) / len(starts))


class _Many:
    """The runs still going (``index``: their numbers) advance in lockstep, :data:`BLOCK` steps
    at a time into small step buffers (a row per step: the carry, f, ||grad f||, the step
    size), which are reused. After a block the stopping rules find the runs that end in it;
    the logged columns go, a row per run, into log buffers of ``log_rows`` rows, whose rows
    become each run's tables when they are full or the run ends."""

    def __init__(self, program: Any, stop: Stop, lrs: np.ndarray | None, n_log: int, sinks: list,
                 log_rows: int) -> None:
        self.program, self.stop, self.lrs, self.n_log, self.sinks = program, stop, lrs, n_log, sinks
        self.step = program.vector_step(batched_k=False, batched_params=program.traced if lrs is not None else ())
        self.log_rows, self.count = log_rows, len(sinks)
        self.outcomes: list[Outcome | None] = [None] * self.count
        self.buffer = pool_array((BLOCK + 1, program.width + 3, self.count))
        self.times = np.empty(BLOCK + 1)  # each run's share of the batch's time, at each row
        self.late = np.zeros(BLOCK + 1, dtype=bool)  # whether the batch's clock had run out

    def _tick(self, j: int, going: int) -> None:
        """Row j's clock: the time since the last row, divided among the runs going."""
        now = time.perf_counter()
        self.times[j] = self.share = self.share + (now - self.last) / going
        self.late[j], self.last = now > self.clock.deadline, now

    def run(self, carry: np.ndarray, f: np.ndarray, setup_s: float) -> list[Outcome]:
        self.clock, self.setup_s = Clock(self.stop.max_seconds), setup_s
        self.share, self.last = 0.0, self.clock.t0
        n, width = self.program.n, self.program.width
        self.index = np.arange(self.count)
        self._new_log(0)
        with np.errstate(all="ignore"):
            rows = self.buffer[:1]
            rows[0, :width], rows[0, width], rows[0, width + 1], rows[0, width + 2] = (
                carry, f, row_norms(carry[n:2 * n].T), math.nan)
            self._tick(0, self.count)
            k, interrupted = self._rules(rows, 0, first=0), False
            while len(self.index) and not interrupted:
                k, interrupted = self._block(k)
        return [o for o in self.outcomes if o is not None]

    def _block(self, k0: int) -> tuple[int, bool]:
        """Up to :data:`BLOCK` steps of the runs still going (row 0 holds where they stand)."""
        b, width = len(self.index), self.program.width
        steps = min(BLOCK, self.stop.max_iter - k0, self.log_rows - self.filled)
        rows = self.buffer[:, :, :b]
        params = [self.lrs[self.index]] if self.lrs is not None else []
        done, interrupted = steps, False
        try:
            for j in range(1, steps + 1):
                self.step(rows[j - 1, :width], np.float64(k0 + j - 1), params, rows[j])
                self._tick(j, b)
                if self.late[j]:
                    done = j
                    break
        except KeyboardInterrupt:  # the rows done so far count; the runs still going end as interrupted
            done, interrupted = j - 1, True
        with interrupt_deferred() as caught:  # the steps are done: their rules and rows all go in
            k = self._rules(rows[: done + 1], k0, first=1) if done else k0
        interrupted = interrupted or bool(caught)
        if interrupted:
            for col in range(len(self.index)):
                self._end(col, *interrupted_message(k), k, self.buffer[0, :, col])
            self._emit(range(len(self.index)), np.full(len(self.index), self.filled))
            self.index = self.index[:0]
        return k, interrupted

    def _rules(self, rows: np.ndarray, k0: int, first: int) -> int:
        """Apply the rules to rows ``first ..`` (iterations ``k0 + row``), log them, end the runs
        that stop, and move the others to row 0; returns the iteration reached."""
        n, width, last = self.program.n, self.program.width, len(rows) - 1
        span = rows[first:]
        late = self.late[first:len(rows)]
        codes = rules(self.stop, k0 + np.arange(first, len(rows)), span[:, width], span[:, width + 1],
                      span[:, :n], rows[first - 1:last, :n] if first else None, late)
        stopped = codes != 0
        ends = np.where(stopped.any(axis=0), stopped.argmax(axis=0), last - first) + first  # each run's last row
        self._log(rows[first:], self.times[first:len(rows)])
        code = codes[ends - first, np.arange(len(self.index))]
        ending = np.flatnonzero(code)
        for col in ending:
            r = int(ends[col])
            self._end(col, *message(rule_name(int(code[col])), k0 + r, float(rows[r, width + 1, col]), self.stop),
                      k0 + r, rows[r, :, col])
        self._emit(ending, self.filled - (last - ends[ending]))
        if self.filled == self.log_rows:
            going = np.flatnonzero(code == 0)
            self._emit(going, np.full(len(going), self.filled))
            self._new_log(k0 + last + 1)
        keep = code == 0
        self.buffer[0, :, : keep.sum()] = rows[last][:, keep]
        self.index, self.slot = self.index[keep], self.slot[keep]
        self.times[0], self.late[0] = self.times[last], self.late[last]
        return k0 + last

    def _end(self, col: int, status: str, text: str, k: int, row: np.ndarray) -> None:
        """Run ``col`` of those still going ends at iteration k, standing at ``row`` (carry, f, gn, step)."""
        width = self.program.width
        x, g, leaves = self.program.split(row[:width])
        state = StepState(x, float(row[width]), g, float(row[width + 2]), False, k, leaves)
        self.outcomes[int(self.index[col])] = Outcome(status, text, state, k, k + 1, k + 1, 0, self.share,
                                                      self.setup_s)

    # the log: a row of each buffer per run (``slot``), the rows of iterations ``k_log ...``
    def _new_log(self, k: int) -> None:
        b = len(self.index)
        self.log = {name: pool_array((b, self.log_rows)) for name in ("f", "grad_norm", "step_size")}
        self.coords = pool_array((self.n_log, b, self.log_rows))
        self.shared_times = np.empty(self.log_rows)
        self.k_log, self.filled, self.slot = k, 0, np.arange(b)

    def _log(self, rows: np.ndarray, times: np.ndarray) -> None:
        """Rows of the runs still going, with their times, into the next log rows."""
        m, width = len(rows), self.program.width
        at = slice(self.filled, self.filled + m)
        slot = self.slot if len(self.slot) < self.log["f"].shape[0] else slice(None)
        for i, name in enumerate(("f", "grad_norm", "step_size")):
            self.log[name][slot, at] = rows[:, width + i].T
        for i in range(self.n_log):
            self.coords[i][slot, at] = rows[:, i].T
        self.shared_times[at] = times
        self.filled += m

    def _emit(self, cols: Any, counts: np.ndarray) -> None:
        """The log rows so far of runs ``cols`` (of those going), ``counts[i]`` rows each, to their
        sinks: slices of one Arrow array per buffer, shared by the runs' tables."""
        if len(cols) == 0:
            return
        its = np.arange(self.k_log, self.k_log + self.filled, dtype=np.int64)
        shared = [arrow_column(a, integer, copy=False) for a, integer in
                  ((its, True), (its + 1, True), (np.zeros(self.filled, np.int64), True),
                   (self.shared_times[: self.filled].copy(), False))]
        own = [arrow_column(self.log[name].ravel(), False, copy=False) for name in ("f", "grad_norm", "step_size")]
        xs = [arrow_column(self.coords[i].ravel(), False, copy=False) for i in range(self.n_log)]
        names, width = columns(self.n_log), self.log_rows
        for col, count in zip(cols, counts):
            start, count = int(self.slot[col]) * width, int(count)
            its_, evals, zeros, times = (a.slice(0, count) for a in shared)
            table = pa.Table.from_arrays([its_, *(a.slice(start, count) for a in own), evals, evals, zeros, times,
                                          *(a.slice(start, count) for a in xs)], names=names)
            self.sinks[int(self.index[col])](table)


__all__ = ["BatchRun", "batchable", "run_batch", "run_batch_to_dirs", "run_many"]
