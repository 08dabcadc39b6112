"""Machine code for a batch: many starts and rates of one step program, every iterate kept.

:class:`JitMany` takes the role of the batch's ``_Many`` (:mod:`optlab.engine.batch`): the
same constructor, ``start(carry, f, setup_s)`` (the start rows) and ``run(k, interrupted) ->
list[Outcome]``, the same rows to the same sinks (Arrow tables of at most ``log_rows`` rows per
run), the same outcomes and, bit for bit, the same iterates. Its loop (:func:`batch_source`)
takes the runs one after another for a stretch of steps each, every step written straight into
the log's columns and judged by the stopping rules at once; the runs still going after a stretch all stand at the same
iteration, so the log's iteration columns are shared as in ``_Many``.

Differences from ``_Many``: a run's ``time_s`` and ``wall_time_s`` are its own time (the
clock read every :data:`~optlab.engine.jit_code.CLOCK_EVERY` steps while it runs), not a share of
the batch's; ``max_seconds`` is still a budget for the batch, and the runs taken after it is
spent end as ``max_seconds`` after one step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ..interrupts import interrupt_deferred, requested
from ..solvers.base import StepState
from .jit_code import CLOCK_EVERY, compiled_loop, function_source, rule_lines, written
from .log import chunk_rows_from, chunk_table
from .outcome import Clock, Outcome
from .program import StepAtoms, StepProgram
from .recycle import pool_array
from .stopping import NAMES, Stop, interrupted_message, message

CALL_STEPS = 1 << 20  # run-steps per call of the loop: Ctrl-C waits at most this long (a few ms to 0.1 s)
NO_LIMIT = 1 << 62  # max_fev when there is none
BATCH_ARGS = "i" * 18 + "ffff"
BATCH_RULES = ("diverged", "gtol", "target", "xtol", "max_fev", "max_iter")  # (then the clock's)


def batch_source(program: StepProgram) -> tuple[str, str, dict[str, Any], str]:
    """(name, source, bindings, argument kinds) of the loop advancing a batch (see :class:`JitMany`)."""
    def write() -> tuple[str, str, dict[str, Any], str]:
        lines, atoms, src, _ = written(program)
        n, width, m = program.n, program.width, len(program.traced)
        carry = [f"c_{i}" for i in range(width)]
        start = StepAtoms(carry[:n], carry[n:2 * n], [], "_nan", "f0[col]",
                          f"_sqrt({' + '.join(f'{g} * {g}' for g in carry[n:2 * n])})")
        stores = [f"out[{j} * plane + at] = {a}" for j, a in enumerate((atoms.f, atoms.gn, atoms.step_size))]
        stores += [f"out[{4 + j} * plane + at] = {a}" for j, a in enumerate(atoms.x)]
        first_row = [f"out[{j} * plane + base] = {a}" for j, a in enumerate((start.f, start.gn, start.step_size))]
        first_row += [f"out[{4 + j} * plane + base] = c_{j}" for j in range(n)]
        late = ["if code == 0 and t > deadline:", f"    code = {NAMES.index('max_seconds') + 1}"]
        clock = ["t = now()", "spent += t - last", "last = t", "for q in range(timed, i):",
                 "    out[3 * plane + base + q] = spent", "timed = i"]
        body = [
            "carry, params, f0, out = pointer(carry_at), pointer(params_at), pointer(f0_at), pointer(out_at)",
            "idx, slot, stats, own = int_pointer(idx_at), int_pointer(slot_at), int_pointer(stats_at), pointer(own_at)",
            "for run in range(b):",
            "    col = idx[run]", "    base = slot[run] * rows + offset",
            *(f"    c_{i} = carry[{i} * count + col]" for i in range(width)),
            *(f"    p_{i} = params[{i} * count + col]" for i in range(m)),
            "    spent, last, i, timed, k = own[col], now(), 0, 0, k_start",
            "    code = 0",
            "    if first:",
            *(f"        {s}" for s in first_row),
            *(f"        {line}" for line in rule_lines(start, None, BATCH_RULES)),
            "        t = last", *(f"        {line}" for line in late),
            "        i = 1",
            "    while code == 0 and i < steps + first:",
            *(["        k_0 = float(k)"] if program.uses_k else []),
            *(f"        {line}" for line in lines),
            "        k += 1", "        at = base + i", *(f"        {s}" for s in stores),
            *(f"        {line}" for line in rule_lines(atoms, carry[:n], BATCH_RULES)),
            "        i += 1",
            f"        if i % {CLOCK_EVERY} == 0:",
            *(f"            {line}" for line in clock + late),
            f"        {', '.join(carry)} = {', '.join(atoms.carry)}",
            "    if timed < i:", *(f"        {line}" for line in clock + late),
            *(f"    carry[{i} * count + col] = c_{i}" for i in range(width)),
            "    own[col] = spent", "    stats[2 * run] = code", "    stats[2 * run + 1] = i",
            "return b",
        ]
        args = ("carry_at, count, params_at, f0_at, idx_at, slot_at, out_at, stats_at, own_at, b, k_start, steps, "
                "first, rows, plane, offset, max_fev, max_iter, gtol, xtol, limit, deadline")
        return function_source("many", args, body, src, BATCH_ARGS)
    return program.lowered(("native batch source",), write)


class JitMany:
    """Runs of one step program from the columns of ``carry`` (the rows of ``rates``: each traced
    option's value per run), advanced by machine code; see the module docstring. ``limit`` is
    f's target (:meth:`Stop.limit`)."""


    def __init__(self, program: StepProgram, stop: Stop, limit: float, rates: np.ndarray, n_log: int, sinks: list,
                 log_rows: int) -> None:
        self.program, self.stop, self.limit, self.n_log, self.sinks, self.chunk_rows = \
            program, stop, limit, n_log, sinks, log_rows
        self.params = np.ascontiguousarray(rates, dtype=float) if len(program.traced) else np.zeros((1, 1))
        self.loop, self.compile_s = compiled_loop(program, batch_source)

    def start(self, carry: np.ndarray, f: np.ndarray, setup_s: float) -> int:
        """The runs' first rows (where they start), judged and logged; the iteration reached (0)."""
        count = len(self.sinks)
        self.carry = np.ascontiguousarray(carry, dtype=float)
        self.f0 = np.ascontiguousarray(f, dtype=float)
        self.own = np.zeros(count)
        self.outcomes: list[Outcome | None] = [None] * count
        self.setup_s, self.clock = setup_s, Clock(self.stop.max_seconds)
        self.going = np.arange(count, dtype=np.int64)
        self._new_chunk(0)
        self._advance(0, 0, first=1)
        return 0

    def run(self, k: int, interrupted: bool) -> list[Outcome]:
        """Calls of the loop until every run has ended (``interrupted``: they end where they stand)."""
        with interrupt_deferred() as caught:
            while self.going.size and not (interrupted or caught or requested()):
                if self.filled == self.log_rows:  # the chunk is full: the runs going hand it over
                    for r, col in enumerate(self.going):
                        self.sinks[int(col)](self.chunk.table(int(self.slot[r]), self.filled))
                    self._new_chunk(k + 1)
                steps = min(self.log_rows - self.filled, self.stop.max_iter - k, max(1, CALL_STEPS // self.going.size))
                self._advance(k, steps, first=0)
                k += steps
            for r, col in enumerate(self.going):  # (Ctrl-C: they end where they stand, their rows logged)
                self._end(int(col), -1, int(self.slot[r]), self.filled)
        return [o for o in self.outcomes if o is not None]

    def _new_chunk(self, k_log: int) -> None:
        self.log_rows = chunk_rows_from(k_log, self.chunk_rows, self.stop.max_iter)
        self.chunk = _Chunk(self.program.n, self.n_log, self.going.size, self.log_rows, k_log)
        self.slot, self.filled = np.arange(self.going.size, dtype=np.int64), 0

    def _advance(self, k: int, steps: int, first: int) -> None:
        """One call of the loop: ``steps`` steps of the runs going (after their start rows, if
        ``first``); the runs that a rule ends leave."""
        stats = np.zeros((self.going.size, 2), dtype=np.int64)
        self._call(self.going, self.slot, self.chunk.rows, stats, k, steps, first, self.filled)
        codes, written = stats[:, 0], self.filled + stats[:, 1]  # each run's rows in the chunk
        self.filled += steps + first
        for r in np.flatnonzero(codes):
            self._end(int(self.going[r]), int(codes[r]), int(self.slot[r]), int(written[r]))
        keep = codes == 0
        self.going, self.slot = self.going[keep], self.slot[keep]

    def _call(self, going: np.ndarray, slot: np.ndarray, rows: np.ndarray, stats: np.ndarray, k: int, steps: int,
              first: int, offset: int) -> None:
        stop = self.stop
        self.loop(self.carry.ctypes.data, self.carry.shape[1], self.params.ctypes.data, self.f0.ctypes.data,
                  going.ctypes.data, slot.ctypes.data, rows.ctypes.data, stats.ctypes.data, self.own.ctypes.data,
                  going.size, k, steps, first, self.log_rows, rows.shape[1] * self.log_rows, offset,
                  NO_LIMIT if stop.max_fev is None else stop.max_fev, stop.max_iter, stop.gtol, stop.xtol, self.limit,
                  self.clock.deadline)

    def _end(self, col: int, code: int, slot: int, rows: int) -> None:
        """Run ``col`` ends after ``rows`` rows of the chunk by rule ``code`` (-1: Ctrl-C)."""
        chunk = self.chunk
        width, k = self.program.width, chunk.k_log + rows - 1
        f, gn, step = (float(chunk.rows[i, slot, rows - 1]) for i in range(3))
        status, text = interrupted_message(k) if code < 0 else message(NAMES[code - 1], k, gn, self.stop, f,
                                                                        self.limit, nfev=k + 1)
        x, g, leaves = self.program.split(self.carry[:width, col])
        state = StepState(x, f, g, step, False, k, leaves)
        self.outcomes[col] = Outcome(status, text, state, k, k + 1, k + 1, 0, float(self.own[col]), self.setup_s,
                                     "batched", jit=True)
        self.sinks[col](chunk.table(slot, rows))


class _Chunk:
    """The log rows of the runs going, iterations ``k_log ...``: a row of columns (f, ||grad f||,
    step size, clock, x) per run, written by the loop; each run's table is a slice of one table
    over the chunk, made once (the runs' tables keep the memory: fresh per chunk)."""

    def __init__(self, n: int, n_log: int, runs: int, log_rows: int, k_log: int) -> None:
        self.rows = pool_array((4 + n, runs, log_rows))
        self.n_log, self.log_rows, self.k_log = n_log, log_rows, k_log
        self.whole: pa.Table | None = None  # (made at the first run's table)

    def table(self, slot: int, count: int) -> pa.Table:
        """The first ``count`` rows of the run in ``slot``."""
        if self.whole is None:
            rows = self.rows.reshape(len(self.rows), -1)
            fields = dict(zip(("f", "grad_norm", "step_size", "time_s"), rows[:4]))
            self.whole = chunk_table(self.k_log, self.log_rows, self.rows.shape[1], fields,
                                     list(rows[4:4 + self.n_log]))
        return self.whole.slice(slot * self.log_rows, count)
