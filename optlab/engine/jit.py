"""Machine code for step programs: one run, or many, advanced by a compiled loop (numba).

The third lowering of a :class:`~optlab.engine.program.StepProgram`, beside the Python fused
loop (:mod:`optlab.engine.fused`) and the vectorised step (batches): the same recorded
statements, written by :class:`~optlab.autodiff.scalar_code.ScalarWriter` in its native form
(each operation's :class:`~optlab.autodiff.core.Lowering`, with the same libm bindings), in a
loop compiled by numba (:mod:`optlab.autodiff.native`, an optional extra:
``pip install 'optlab[jit]'``). Each step writes its row (f, ||grad f||, the step size, the
clock, x) straight into preallocated columns and applies the stopping rules of
:mod:`optlab.engine.stopping` exactly, so the loop stops at the step where a rule holds.
Every logged number is bit for bit that of the Python lowering and of the generic path.

* :class:`JitRun` advances one run (the interface of :class:`~optlab.engine.fused.FusedRun`);
* :class:`~optlab.engine.jit_many.JitMany` advances a batch of starts and rates (the role of
  the batch's ``_Many``);
* :func:`use_jit` says whether a run should take this lowering: the setting ``OPTLAB_JIT``
  (``auto``, ``on``, ``off``) and, in ``auto``, :func:`worthwhile`.

The clock is read every :data:`~optlab.engine.jit_code.CLOCK_EVERY` steps; the rows in between share the reading
taken after their last step (as the Python lowering's blocks do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..autodiff import native
from ..autodiff.record import NotCompilable
from ..errors import ConfigError
from ..interrupts import interrupt_deferred
from .fused import Stretch
from .jit_code import CLOCK_EVERY, compiled_loop, function_source, rule_lines, written
from .log import MAX_CHUNK_BYTES, count_columns
from .program import StepProgram
from .recycle import pool_array
from .stopping import NAMES

COMPILE_SECONDS = native.COMPILE_SECONDS
#: Seconds machine code saves per operation of a step (measured on gd ... adam, 24 to 53
#: operations a step: the Python fused loop takes 13 to 17 ns an operation, a batch's vectorised
#: step 1.5 to 3 ns an operation per run; machine code 0.3 to 0.6 ns).
SAVED_PER_OPERATION = {"single": 15e-9, "batch": 1.5e-9}


setting = native.setting


def unavailable() -> str | None:
    """None when machine code can be made here, else why not."""
    return native.installed()


def use_jit(program: StepProgram, steps: int, runs: int = 1) -> bool:
    """Whether ``runs`` runs of ``program`` for ``steps`` steps each take machine code, by the
    setting: ``on`` always (a :class:`ConfigError` where numba is missing), ``off`` never,
    ``auto`` where numba is installed and :func:`worthwhile`."""
    mode = setting()
    if mode == "off":
        return False
    reason = unavailable()
    if mode == "on":
        if reason is not None:
            raise ConfigError(f"OPTLAB_JIT=on but {reason}; allowed: OPTLAB_JIT=auto or off without it")
        return True
    return reason is None and worthwhile(program, steps, runs)


def worthwhile(program: StepProgram, steps: int, runs: int = 1) -> bool:
    """The rule of ``auto``: machine code when its loop is already compiled (in this process or
    in the cache on disk), or when ``steps x runs`` steps are expected to save more than
    compiling costs (:data:`COMPILE_SECONDS`): each step saves about
    :data:`SAVED_PER_OPERATION` per operation of the step program (gd on 2-D Rosenbrock: 24
    operations, so about 8 million steps of one run, 80 million of a batch)."""
    try:
        if is_cached(program, batch=runs > 1):
            return True
    except NotCompilable:  # no loop can be written for it
        return False
    saved = SAVED_PER_OPERATION["batch" if runs > 1 else "single"] * written(program).operations
    return steps * runs * saved > COMPILE_SECONDS


def lowering(python: Callable, jit: bool, *args: Any) -> Any:
    """``python(*args)`` (a :class:`~optlab.engine.fused.FusedRun`, or a batch's ``_Many``), or
    its machine-code twin (:class:`JitRun`, :class:`~optlab.engine.jit_many.JitMany`) where
    ``jit`` asks for it and numba compiles the loop (else the Python one runs, the same bits)."""
    if jit:
        from .fused import FusedRun
        from .jit_many import JitMany

        try:
            return (JitRun if python is FusedRun else JitMany)(*args)
        except (NotCompilable, OSError):  # (a library that cannot be written or opened, too)
            pass
    return python(*args)


def is_cached(program: StepProgram, batch: bool = False) -> bool:
    """Whether the program's loop (one run, or a batch's) needs no compiling."""
    which = loop_source
    if batch:
        from .jit_many import batch_source as which
    name, source, env, args = which(program)
    key = program.lowered(("digest", which.__name__), lambda: native.digest(source, env, args))
    return native.is_cached(source, env, args, key)


#: A call of the loop of one run takes as many steps as fill this many bytes of columns (at least
#: the driver's stretch): each call has about 0.1 ms of Python around it, which 50,000 steps of
#: machine code (0.5 ms for gd) do not repay.
CALL_BYTES = MAX_CHUNK_BYTES
#: The rules the loop of one run applies at every step (the budgets end its stretch; the driver
#: applies every rule again where the loop stops).
RUN_RULES = ("diverged", "gtol", "target", "xtol")
LOOP_ARGS = "iiiiiiiiifffff"
#: The block's rows: these fields, then x (the iteration and count columns are not written: see
#: :func:`~optlab.engine.log.count_columns`).
WRITTEN = ("f", "grad_norm", "step_size", "time_s")
ROW = {name: j for j, name in enumerate(WRITTEN)}


def loop_source(program: StepProgram) -> tuple[str, str, dict[str, Any], str]:
    """(name, source, bindings, argument kinds) of the loop advancing one run.

    ``loop(carry, params, rows_at, stats, k, k_end, rows, logging, clocked, gtol, xtol, limit,
    deadline, t0)``: addresses of the carry (updated in place), the parameters, the columns
    (:data:`WRITTEN` in order, ``time_s`` in seconds since ``t0``, then x: ``4 + n`` rows of
    ``rows`` floats) and the stats (f and step size in, then out with the iteration reached, the
    rule's code and the x before the last step). Returns the number of steps taken.
    """
    def write() -> tuple[str, str, dict[str, Any], str]:
        lines, atoms, src, _ = written(program)
        n, width = program.n, program.width
        carry = [f"c_{i}" for i in range(width)]
        new = atoms.carry
        values = {"f": atoms.f, "grad_norm": atoms.gn, "step_size": atoms.step_size}
        stores = [f"out[{ROW[name]} * rows + r] = {value}" for name, value in values.items()]
        stores += [f"out[{len(WRITTEN) + j} * rows + r] = {a}" for j, a in enumerate(atoms.x)]
        body = [
            "carry, params, out, stats = pointer(carry_at), pointer(params_at), pointer(rows_at), pointer(stats_at)",
            *(f"c_{i} = carry[{i}]" for i in range(width)),
            *(f"p_{i} = params[{i}]" for i in range(len(program.traced))),
            "f_last, size_last = stats[0], stats[1]", "i = 0", "timed = 0", "code = 0",
            "while k < k_end:",
            *(["    k_0 = float(k)"] if program.uses_k else []),
            *(f"    {line}" for line in lines),
            "    r = i * logging", *(f"    {s}" for s in stores),
            *(f"    {line}" for line in rule_lines(atoms, carry[:n], RUN_RULES)),
            f"    f_last, size_last, k, i = {atoms.f}, {atoms.step_size}, k + 1, i + 1",
            f"    if clocked and (code != 0 or i % {CLOCK_EVERY} == 0 or k == k_end):",
            "        t = now()", "        for q in range(timed, r + 1):",
            f"            out[{ROW['time_s']} * rows + q] = t - t0",
            "        timed = r + 1",
            "        if code == 0 and t > deadline:", f"            code = {NAMES.index('max_seconds') + 1}",
            "    if code != 0:",
            *(f"        stats[{4 + j}] = c_{j}" for j in range(n)),
            f"    {', '.join(carry)} = {', '.join(new)}",
            "    if code != 0:", "        break",
            *(f"carry[{i}] = c_{i}" for i in range(width)),
            "stats[0], stats[1], stats[2], stats[3] = f_last, size_last, k, code",
            "return i",
        ]
        args = ("carry_at, params_at, rows_at, stats_at, k, k_end, rows, logging, clocked, gtol, xtol, limit, "
                "deadline, t0")
        return function_source("loop", args, body, src, LOOP_ARGS)
    return program.lowered(("native loop source",), write)


class JitRun:
    """Advances one run of ``program`` by its machine-code loop (the interface of
    :class:`~optlab.engine.fused.FusedRun`): every step's row is written by the loop itself."""

    jit = True

    def __init__(self, program: StepProgram, params: tuple[float, ...], n_log: int, gtol: float, xtol: float,
                 timed: bool) -> None:
        self.program, self.n_log, self.timed = program, n_log, timed
        self.params = np.array(params or (0.0,), dtype=float)
        self.gtol, self.xtol = gtol, xtol
        self.loop, self.compile_s = compiled_loop(program, loop_source)

    def stretch(self, steps: int) -> int:
        """Steps per call of :meth:`advance`: the driver's ``steps``, or more where their columns
        take less than :data:`CALL_BYTES`."""
        return max(steps, CALL_BYTES // (8 * (len(WRITTEN) + self.program.n)))

    def advance(self, carry: list, f: float, step_size: float, k: int, k_end: int, limit: float, deadline: float,
                t0: float, counts: tuple[int, int, int], unrolled: bool = True) -> Stretch:
        n, logging = self.program.n, self.n_log >= 0
        rows = max(1, k_end - k) if logging else 1
        out = pool_array((len(WRITTEN) + n, rows))  # fresh: the log may keep these columns without a copy
        state = np.array(carry, dtype=float)
        stats = np.empty(4 + n)
        stats[0], stats[1] = f, step_size
        with interrupt_deferred() as caught:  # the steps taken all count: Ctrl-C waits for the call to return
            count = self.loop(state.ctypes.data, self.params.ctypes.data, out.ctypes.data, stats.ctypes.data, k,
                              k_end, rows, int(logging), int(logging or self.timed), self.gtol, self.xtol, limit,
                              deadline, t0)
        code = int(stats[3])
        columns = None
        if logging and count:
            if count < rows // 4:  # a run that stopped early keeps its rows, not the whole block
                out = out[:, :count].copy()
            columns = ({**{name: out[j, :count] for j, name in enumerate(WRITTEN)}, **count_columns(k, count, counts)},
                       out[len(WRITTEN):len(WRITTEN) + self.n_log, :count])
        previous = tuple(stats[4:4 + n].tolist()) if code else None
        return Stretch(count, int(stats[2]), state, float(stats[0]), float(stats[1]), previous, False, bool(caught),
                       columns)
