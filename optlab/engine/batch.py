"""Batched runs: many starts and learning rates of a step solver advanced as one array program.

A set of runs of the same first-order method repeats the same few operations per step in every
run. Here the runs advance together: the solver's step program
(:meth:`~optlab.engine.program.StepProgram.vector_step`) takes one step of all of them per call,
and the stopping rules of :mod:`optlab.engine.stopping` judge them after each block of steps, the
same predicates that judge a single run. Every run still ends as its own run, with the same
status, iterates and bits as a single run from the same start at the same learning rate.

Differences from single runs: a run's ``time_s``, ``wall_time_s`` and ``setup_s`` are its share
of the batch's (each interval divided among the runs going then), and ``max_seconds`` is a budget
for the batch (runs still going when it is spent end as ``max_seconds``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..interrupts import interrupt_deferred, requested
from ..solvers.base import Solver, StepState
from .log import LogOptions, chunk_rows_from, chunk_table
from .outcome import Clock, Outcome
from .plan import Plan
from .recycle import pool_array
from .stopping import (
    NAMES,
    Standing,
    Stop,
    active_rules,
    holds_non_finite,
    interrupted_message,
    message,
    not_finite,
    row_norms,
    rule_codes,
    step_lengths,
)

BLOCK = 128  # steps between two checks of the stopping rules


def drive_batch(solvers: list[Solver], points: np.ndarray, stop: Stop, limit: float, plan: Plan, sinks: list,
                log: LogOptions, n_log: int, interrupted: bool = False) -> list[Outcome]:
    """Runs of ``solvers[i]`` (one step solver at different learning rates) from the rows of
    ``points``, as one array program. Each run's rows go to ``sinks[i]`` (Arrow tables of at most
    ``log.chunk_rows`` rows); each run ends as its single run would, with the same iterates, and
    every run has its start's row (``interrupted``: Ctrl-C came before the runs began)."""
    setup = time.perf_counter()
    program, solver = plan.program, solvers[0]
    rates = np.array([[float(getattr(s, name)) for s in solvers] for name in program.traced])
    log_rows = max(1, min(log.chunk_rows, log.memory_bytes // (8 * len(points) * (n_log + 3))))
    from .jit import lowering  # (machine code where the plan says jit: the same bits)

    batch = lowering(_Many, plan.jit, program, stop, limit, rates, n_log, sinks, log_rows)
    with interrupt_deferred() as caught:  # the starts' rows, whole
        x = points.reshape(len(points), -1).T.copy()
        f, g = plan.compiled.vectorised("value_and_grad")(x)
        leaves = np.array([[v for leaf in solver.init_carry(s) for v in np.ravel(leaf)] for s in points], dtype=float)
        carry = np.concatenate([x, g, leaves.reshape(len(points), -1).T])
        k = batch.start(carry, f, (time.perf_counter() - setup) / len(points))
    return batch.run(k, interrupted or bool(caught))


class _Many:
    """The runs still going (``index``: their numbers) advance in lockstep, :data:`BLOCK` steps
    at a time into small step buffers (a row per step: the carry, f, ||grad f||, the step
    size), which are reused. After a block the stopping rules find the runs that end in it;
    the logged columns go, a row per run, into log buffers of ``log_rows`` rows, whose rows
    become each run's tables when they are full or the run ends."""

    def __init__(self, program: Any, stop: Stop, limit: float, rates: np.ndarray, n_log: int, sinks: list,
                 log_rows: int) -> None:
        self.program, self.stop, self.limit, self.rates, self.n_log, self.sinks = \
            program, stop, limit, rates, n_log, sinks
        self.rules = active_rules(stop, True, limit)
        self.step = program.vector_step(batched_k=False, batched_params=program.traced)
        self.chunk_rows, self.count = log_rows, len(sinks)
        self.outcomes: list[Outcome | None] = [None] * self.count
        self.buffer = pool_array((BLOCK + 1, program.width + 3, self.count))
        self.times = np.empty(BLOCK + 1)  # each run's share of the batch's time, at each row
        self.late = np.zeros(BLOCK + 1, dtype=bool)  # whether the batch's clock had run out
        # f over the last ``patience`` iterations before row 0, for ftol (NaN: before the start)
        self.f_past = np.full((stop.patience, self.count), math.nan) if stop.ftol > 0 else None

    def _tick(self, j: int, going: int) -> None:
        """Row j's clock: the time since the last row, divided among the runs going."""
        now = time.perf_counter()
        self.times[j] = self.share = self.share + (now - self.last) / going
        self.late[j], self.last = now > self.clock.deadline, now

    def start(self, carry: np.ndarray, f: np.ndarray, setup_s: float) -> int:
        """The runs' first rows (where they start), judged and logged; the iteration reached (0)."""
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
            return self._rules(rows, 0, first=0)

    def run(self, k: int, interrupted: bool) -> list[Outcome]:
        """Blocks of steps until every run has ended (``interrupted``: they end where they stand)."""
        with np.errstate(all="ignore"):
            if interrupted:
                self._interrupt(k)
            while len(self.index) and not interrupted:
                k, interrupted = self._block(k)
        return [o for o in self.outcomes if o is not None]

    def _block(self, k0: int) -> tuple[int, bool]:
        """Up to :data:`BLOCK` steps of the runs still going (row 0 holds where they stand)."""
        b, width = len(self.index), self.program.width
        steps = min(BLOCK, self.stop.max_iter - k0, self.log_rows - self.filled)
        rows = self.buffer[:, :, :b]
        params = [rate[self.index] for rate in self.rates]
        interrupted = requested()  # (a signal a library swallowed: the runs end where they stand)
        done = steps = 0 if interrupted else steps
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
            self._interrupt(k)
        return k, interrupted

    def _interrupt(self, k: int) -> None:
        """The runs still going end as interrupted where they stand (row 0), their rows logged."""
        for col in range(len(self.index)):
            self._end(col, *interrupted_message(k), k, self.buffer[0, :, col])
        self._emit(range(len(self.index)), np.full(len(self.index), self.filled))
        self.index = self.index[:0]

    def _rules(self, rows: np.ndarray, k0: int, first: int) -> int:
        """Apply the rules to rows ``first ..`` (iterations ``k0 + row``), log them, end the runs
        that stop, and move the others to row 0; returns the iteration reached."""
        n, width, last = self.program.n, self.program.width, len(rows) - 1
        span = rows[first:]
        k = (k0 + np.arange(first, len(rows)))[:, None]
        x, f = span[:, :n], span[:, width]
        step = previous_norm = f_back = math.nan
        if first:
            step, previous_norm = step_lengths(x, rows[first - 1:last, :n], axis=1, exact=self.stop.xtol == 0.0)
        if self.f_past is not None:
            window = np.concatenate([self.f_past, rows[:, width]])  # f from iteration k0 - patience on
            f_back = window[first:last + 1]
        gn = span[:, width + 1]
        at = Standing(k, f, gn, not_finite(gn), holds_non_finite(x, axis=1), step, previous_norm, f_back, k + 1,
                      self.late[first:len(rows)][:, None])
        codes = rule_codes(self.rules, at, f.shape)
        stopped = codes != 0
        ends = np.where(stopped.any(axis=0), stopped.argmax(axis=0), last - first) + first  # each run's last row
        self._log(rows[first:], self.times[first:len(rows)])
        code = codes[ends - first, np.arange(len(self.index))]
        ending = np.flatnonzero(code)
        for col in ending:
            r = int(ends[col])
            self._end(col, *message(NAMES[int(code[col]) - 1], k0 + r, float(rows[r, width + 1, col]), self.stop,
                                    float(rows[r, width, col]), self.limit, nfev=k0 + r + 1), k0 + r,
                      rows[r, :, col])
        self._emit(ending, self.filled - (last - ends[ending]))
        if self.filled == self.log_rows:
            going = np.flatnonzero(code == 0)
            self._emit(going, np.full(len(going), self.filled))
            self._new_log(k0 + last + 1)
        keep = code == 0
        self.buffer[0, :, : keep.sum()] = rows[last][:, keep]
        self.index, self.slot = self.index[keep], self.slot[keep]
        if self.f_past is not None:
            kept = window[last:last + self.stop.patience][:, keep]
            self.f_past = self.f_past[:, : keep.sum()]
            self.f_past[...] = kept
        self.times[0], self.late[0] = self.times[last], self.late[last]
        return k0 + last

    def _end(self, col: int, status: str, text: str, k: int, row: np.ndarray) -> None:
        """Run ``col`` of those still going ends at iteration k, standing at ``row`` (carry, f, gn, step)."""
        width = self.program.width
        x, g, leaves = self.program.split(row[:width])
        state = StepState(x, float(row[width]), g, float(row[width + 2]), False, k, leaves)
        self.outcomes[int(self.index[col])] = Outcome(status, text, state, k, k + 1, k + 1, 0, self.share,
                                                      self.setup_s, "batched")

    # the log: a row of each buffer per run (``slot``), the rows of iterations ``k_log ...``
    def _new_log(self, k: int) -> None:
        b = len(self.index)
        self.log_rows = chunk_rows_from(k, self.chunk_rows, self.stop.max_iter)
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
        sinks: slices of one table over the chunk (:func:`~optlab.engine.log.chunk_table`)."""
        if len(cols) == 0:
            return
        fields = {name: self.log[name].ravel() for name in ("f", "grad_norm", "step_size")}
        whole = chunk_table(self.k_log, self.log_rows, self.log["f"].shape[0],
                            {**fields, "time_s": self.shared_times.copy()}, [c.ravel() for c in self.coords])
        for col, count in zip(cols, counts):
            table = whole.slice(int(self.slot[col]) * self.log_rows, int(count))
            self.sinks[int(self.index[col])](table)
