"""Fused loops: one run of a step program advanced many steps per call, every iterate logged.

:func:`write_loop` lowers a :class:`~optlab.engine.program.StepProgram` to one Python function in
which a step (the solver's update, the objective's value and gradient, ||grad f||) is a few
lines of float arithmetic, unrolled in blocks of :data:`UNROLL` steps. A block reads the
clock once and puts only the carry it ends with (x, g and the solver's state); after the
stretch, :class:`FusedRun` recomputes every step of every block at once with the same
program vectorised (:meth:`~optlab.engine.program.StepProgram.vector_step`), which gives the same
bits, and checks that each block ends on its checkpoint.

The loop makes no decisions: after each step it checks, conservatively, whether a stopping
rule of :mod:`optlab.engine.stopping` *might* hold (||grad f|| near gtol, a step near xtol, f at
its target, a number that is not finite, the deadline). A block where one might does not count; its steps
are redone one at a time, each with its own clock reading and log row, and the loop returns
at the step where the check trips, so that the driver applies the rules exactly. A Python
float error (a division by zero, an overflow in exp) also returns: the driver takes that
step on the generic path, whose derivatives answer with numpy's inf and nan.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np

from ..autodiff.codegen import Source
from ..autodiff.compile import SCALAR_ERRORS
from ..autodiff.scalar_code import ScalarWriter
from .log import count_columns
from .program import StepProgram

UNROLL = 16  # steps per block, which share a clock reading
UNROLL_LINES = 240  # fewer steps per block where one step is long
ROUNDING_SLACK = 1e-6  # relative margin of the conservative checks
TINY = 1e-300  # absolute margin: squares below ~1e-324 underflow to 0 in the exact rules
WARM_UP_CALLS = 8  # CPython specialises a function's bytecode after a few calls; a loop is called once per stretch
STOP, FLOAT_ERROR = 1, 2


def write_loop(program: StepProgram, n_log: int, timed: bool, xtol_zero: bool) -> Callable:
    """``loop(carry, params, f, step, k, k_end, unrolled, gate, xgate, limit, deadline, out, clock)`` ->
    ``(code, interrupted, k, k_blocks, carry, f, step, previous_x)`` (see the module docstring);
    ``params`` are the values of the program's traced options (its learning rate).

    ``out`` receives, per block, the clock reading and the carry the block ends with, then,
    per single step, the clock reading, f, ||grad f||, the step size and the first ``n_log``
    coordinates of x (``n_log`` < 0: no log). A block starting at k counts once ``k``
    passes it; a put for a step that did not count (Ctrl-C in between) is dropped by the caller.
    """
    n, width = program.n, program.width
    params = [f"p_{i}" for i in range(len(program.traced))]
    src = Source()
    logged = n_log >= 0
    clock = ["t = clock()"] if logged or timed else []
    carry = [f"c_{i}" for i in range(width)]

    def step(writer: ScalarWriter, inputs: list, k: str) -> tuple[list[str], list[str], object]:
        """One step's lines, its trigger (a stopping rule might hold) and its atoms."""
        writer.common.clear()
        writer.negated.clear()
        mark = len(writer.statements)
        out = program.write(writer, inputs, k, params)
        lines = writer.body([*out.carry, out.f, out.gn, out.step_size], since=mark)
        x_in, x_new = [writer.text(a) for a in inputs[:n]], [writer.text(a) for a in out.x]
        diff = " + ".join(f"({y} - {x}) * ({y} - {x})" for y, x in zip(x_new, x_in))
        bound = repr(TINY) if xtol_zero else \
            f"xgate * (1.0 + _sqrt({' + '.join(f'{x} * {x}' for x in x_in)})) ** 2 + {TINY!r}"
        f, gn = writer.text(out.f), writer.text(out.gn)
        lines += [f"dd = {diff}", f"s = {f} + {gn} + dd"]
        return lines, [f"not {gn} > gate", "s - s != 0.0", f"dd <= {bound}", f"{f} <= limit"], out

    writer = ScalarWriter(src)
    one, one_checks, last = step(writer, carry, "k")
    unroll = max(1, min(UNROLL, UNROLL_LINES // max(1, len(one))))
    text = writer.text

    block_writer, inputs, block = ScalarWriter(src, prefix="b"), carry, []
    for j in range(unroll):
        k_name = f"k_{j}"
        if program.uses_k:
            block.append(f"{k_name} = k + {j}")
        lines, checks, out = step(block_writer, inputs, k_name)
        block += [*lines, f"if {' or '.join(checks)}:", "    break"]
        inputs = out.carry
    end = [block_writer.text(a) for a in inputs]
    commit = f"k, f, step, {', '.join(carry)} = k + {unroll}, {block_writer.text(out.f)}, " \
             f"{block_writer.text(out.step_size)}, {', '.join(end)}"
    put_block = [f"put((t, {', '.join(end)},))"] if logged else []
    row = [text(last.f), text(last.gn), text(last.step_size), *(text(a) for a in last.x[:n_log])]
    put_row = [f"put((t, {', '.join(row)},))"] if logged else []
    new = [text(a) for a in last.carry]
    lines = [f"{', '.join(carry)}, = carry", *([f"{', '.join(params)}, = params"] if params else []),
             "put = out.extend", "code = 0", "interrupted = False",
             "k_blocks = None", "try:",
             f"    while unrolled and k + {unroll} <= k_end:",
             "        try:", *(f"            {line}" for line in block),
             "        except _errors:", "            break",
             *(f"        {line}" for line in clock + put_block), f"        {commit}",
             *(["        if t > deadline:", "            break"] if timed else []),
             "    k_blocks = k",
             "    while k < k_end:",
             *(["        k_0 = k"] if program.uses_k else []),
             "        try:", *(f"            {line}" for line in one),
             "        except _errors:", f"            code = {FLOAT_ERROR}", "            break",
             *(f"        {line}" for line in clock + put_row),
             f"        if {' or '.join(one_checks + (['t > deadline'] if timed else []))}:",
             f"            code, k = {STOP}, k + 1", "            break",
             f"        k, f, step, {', '.join(carry)} = k + 1, {text(last.f)}, {text(last.step_size)}, "
             f"{', '.join(new)}",
             "except KeyboardInterrupt:", "    interrupted = True",
             "if k_blocks is None:", "    k_blocks = k",
             f"if code == {STOP}:",
             f"    return code, interrupted, k, k_blocks, ({', '.join(new)},), {text(last.f)}, "
             f"{text(last.step_size)}, ({', '.join(carry[:n])},)",
             f"return code, interrupted, k, k_blocks, ({', '.join(carry)},), f, step, None"]
    src.env.update(_errors=SCALAR_ERRORS, _sqrt=math.sqrt)
    loop = src.function("loop", "carry, params, f, step, k, k_end, unrolled, gate, xgate, limit, deadline, out, clock",
                        lines, "a fused stretch of steps (see optlab.engine.fused)")
    for _ in range(WARM_UP_CALLS):  # an empty stretch: the calls only count towards specialisation
        loop((0.0,) * width, (0.0,) * len(params), 0.0, 0.0, 0, 0, True, 0.0, 0.0, 0.0, 0.0, [], time.perf_counter)
    loop.unroll = unroll
    return loop


@dataclasses.dataclass
class Stretch:
    """What a fused call did: ``count`` steps to iteration ``k``, ending on ``carry`` (flat), f
    and the last step size; ``previous`` is the x before the last step where a stopping rule
    might hold (else None); ``rows`` the log's columns by name and the coordinates."""

    count: int
    k: int
    carry: tuple
    f: float
    step_size: float
    previous: tuple | None
    float_error: bool
    interrupted: bool
    rows: tuple[dict[str, np.ndarray], np.ndarray] | None


class FusedRun:
    """Advances one run of ``program`` with its fused loop and recovers every step's log row."""

    jit = False  # (optlab.engine.jit.JitRun: machine code)

    def __init__(self, program: StepProgram, params: tuple[float, ...], n_log: int, gtol: float, xtol: float,
                 timed: bool) -> None:
        self.program, self.params, self.n_log = program, params, n_log
        xtol_zero = xtol == 0.0
        self.loop = program.lowered(("loop", n_log, timed, xtol_zero),
                                    lambda: write_loop(program, n_log, timed, xtol_zero))
        self.gate = gtol * (1.0 + ROUNDING_SLACK) + TINY
        self.xgate = xtol * xtol * (1.0 + ROUNDING_SLACK)
        self.clock = time.perf_counter  # tests stand in a clock that presses Ctrl-C

    def stretch(self, steps: int) -> int:
        """Steps per call of :meth:`advance`, given the driver's ``steps``."""
        return steps

    def advance(self, carry: list, f: float, step_size: float, k: int, k_end: int, limit: float, deadline: float,
                t0: float, counts: tuple[int, int, int], unrolled: bool = True) -> Stretch:
        out: list[float] = []
        code, interrupted, k_new, k_blocks, end, f_new, step_new, previous = self.loop(
            tuple(carry), self.params, f, step_size, k, k_end, unrolled, self.gate, self.xgate, limit, deadline, out,
            self.clock)
        rows = None
        if self.n_log >= 0 and k_new > k:
            rows = self._rows(out, carry, k, k_blocks, k_new, t0, counts)
            if rows is None:  # the replay missed a checkpoint: the stretch again, a row per step
                return self.advance(carry, f, step_size, k, k_end, limit, deadline, t0, counts, unrolled=False)
        return Stretch(k_new - k, k_new, end, f_new, step_new, previous, code == FLOAT_ERROR, interrupted, rows)

    def _rows(self, out: list[float], carry: list, k: int, k_blocks: int, k_new: int, t0: float,
              counts: tuple[int, int, int]) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """Each step's columns (the log's fields, ``counts`` the evaluations before the stretch) and
        coordinates (a row per coordinate) from what the loop put, the blocks replayed; None if a
        replayed block does not end on its checkpoint."""
        unroll, width, n_log = self.loop.unroll, self.program.width, self.n_log
        blocks, single = (k_blocks - k) // unroll, k_new - k_blocks
        size = blocks * (1 + width) + single * (4 + n_log)  # what was put for a step that did not count is dropped
        values = np.fromiter(out, float, size) if len(out) == size else np.array(out[:size], dtype=float)
        head = values[: blocks * (1 + width)].reshape(blocks, 1 + width)
        tail = values[blocks * (1 + width):].reshape(single, 4 + n_log)
        columns = {"time_s": np.concatenate([np.repeat(head[:, 0], unroll), tail[:, 0]]) - t0}
        replayed = self._replay(np.asarray(carry, dtype=float), head[:, 1:], k) if blocks else None
        if blocks and replayed is None:
            return None
        parts = [replayed] if blocks else []
        parts.append((tail[:, 1], tail[:, 2], tail[:, 3], tail[:, 4:].T))
        for name, i in (("f", 0), ("grad_norm", 1), ("step_size", 2)):
            columns[name] = np.concatenate([p[i] for p in parts])
        columns.update(count_columns(k, k_new - k, counts))
        return columns, np.concatenate([p[3] for p in parts], axis=1)

    def _replay(self, start: np.ndarray, ends: np.ndarray, k: int) -> tuple | None:
        """f, ||grad f||, step size and x (a row per logged coordinate) at every step of the
        blocks that start at ``start`` and end at the rows of ``ends``, all blocks at once."""
        blocks, unroll, n_log = len(ends), self.loop.unroll, self.n_log
        step, width = self.program.vector_step(batched_k=True), self.program.width
        rows = np.empty((unroll + 1, width + 3, blocks))  # per step: the carry, f, ||grad f||, step size
        rows[0, :width] = np.concatenate([start[:, None], ends[:-1].T], axis=1)
        ks = k + unroll * np.arange(blocks, dtype=float)
        for j in range(unroll):
            step(rows[j, :width], ks + j, self.params, rows[j + 1])
        if not np.array_equal(rows[unroll, :width], ends.T):
            return None
        fs, norms, sizes = (rows[1:, width + i].T.ravel() for i in range(3))
        return fs, norms, sizes, rows[1:, :n_log].transpose(1, 2, 0).reshape(n_log, -1)
