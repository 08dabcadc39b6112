"""Fused loops: a solver's step, the objective's compiled derivatives and the log in one function.

The runner advances any solver one ``solver.update`` at a time, and with compiled
derivatives (:mod:`optlab.autodiff.compile`) that generic path is already fast. What is
left per step is Python overhead: state objects, numpy calls on two-element arrays, the
log. For a solver that opts in here, and only when the objective has scalar code (small
dimension) and its value and gradient are those of ``f`` (not overridden), the runner
hands a stretch of iterations to a generated function in which the step and the value and
gradient (inlined scalar code) are a few lines of Python float arithmetic, unrolled in
blocks of :data:`UNROLL` steps.

The log costs little there: a block reads the clock once (its rows share that reading,
taken after its last step) and keeps only its last x. After the stretch, the blocks'
other iterates, and f and ||grad f|| at every iterate, are recomputed for all blocks at
once by the loop's own statements run on numpy rows: only arithmetic, correctly rounded
in numpy as in Python, so the same numbers (checked: each block must end on its kept x).
Objectives with other calls or conditionals keep f, ||grad f|| and x in every row.

The fused loop makes no decisions of its own: after each step it checks, conservatively,
whether any stopping rule *might* hold (the gradient norm near ``gtol``, a step near
``xtol``, a non-finite number, the deadline); a block where one might does not count and
is redone step by step, returning at that step, so that the runner applies its rules
exactly as on the generic path. It also returns on a Python float error (the runner then
takes one generic step, whose derivatives fall back to numpy's inf and nan) and on Ctrl-C
(with every counted step logged). The iterates are those of the generic path bit for bit
(tests/test_speed_paths.py).

Opted in: gradient descent without a line search (any learning-rate schedule).
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .autodiff.compile import SCALAR_ERRORS, Compiled, NotCompilable
from .log import IterateLog, interrupt_deferred, pool_array
from .objectives.base import Objective
from .problem import Problem
from .solvers.base import Solver, State

ROUNDING_SLACK = 1e-6  # relative margin of the conservative checks
TINY = 1e-300  # absolute margin: squares below ~1e-324 underflow to 0 in the exact rules
CODE_STOP, CODE_FLOAT_ERROR, CODE_INTERRUPT = 1, 2, 3


@dataclasses.dataclass
class Advance:
    """What a fused stretch did: ``count`` steps, ending at ``state`` reached from ``previous``."""

    state: State
    previous: np.ndarray | None
    count: int
    interrupted: bool


class GradientDescentLoop:
    """x_{k+1} = x_k - lr_k grad f(x_k), fused, for :class:`~optlab.solvers.gd.GradientDescent`."""

    def __init__(self, compiled: Compiled, solver: Solver, n_log: int, gtol: float, xtol: float,
                 timed: bool) -> None:
        self.solver = solver
        self.compiled = compiled
        self.n = compiled.size
        self.shape = compiled.shape
        self.gate = gtol * (1.0 + ROUNDING_SLACK) + TINY
        self.xgate = xtol * xtol * (1.0 + ROUNDING_SLACK)
        self.constant = getattr(solver, "schedule", "constant") == "constant"
        self.options = (n_log, xtol == 0.0, self.constant, timed)
        self.loop = self.made(checkpoints=True)

    def made(self, checkpoints: bool) -> Callable:
        """The loop's function, made once per compiled objective and options."""
        loops = self.compiled.__dict__.setdefault("fused_loops", {})
        key = ("gd", *self.options, checkpoints)
        if key not in loops:
            loops[key] = _gd_source(self.compiled, *key[1:])
        return loops[key]

    def advance(self, problem: Problem, state: State, k: int, k_end: int, log: IterateLog | None,
                t0: float, deadline: float, loop: Callable | None = None) -> Advance:
        out: list[float] = []
        loop = loop or self.loop
        lr = float(self.solver.lr) if self.constant else math.nan
        code, k_new, k_blocks, x, f, g, previous, f_previous, lr = loop(
            tuple(state.x.ravel().tolist()), tuple(state.g.ravel().tolist()), state.f, state.f_previous, k, k_end,
            lr, self.solver.lr_at, state.k - k, self.gate, self.xgate, deadline, out, time.perf_counter)
        count = k_new - k
        if count == 0:
            return Advance(state, None, 0, code == CODE_INTERRUPT)
        if log is not None:
            with interrupt_deferred() as interrupt:  # the steps are done: their rows all go in, or none
                rows = self._rows(loop, out, k_blocks - k, k_new - k_blocks, state.x, lr, t0)
                if rows is None:  # the replay missed the loop's checkpoints: run the stretch again, putting every x
                    return self.advance(problem, state, k, k_end, log, t0, deadline, self.made(checkpoints=False))
                self._log(log, rows, problem, k, count)
            code = CODE_INTERRUPT if interrupt else code
        problem.nfev += count
        problem.ngev += count
        new = dataclasses.replace(state, x=np.array(x).reshape(self.shape), f=f, g=np.array(g).reshape(self.shape),
                                  step_size=lr, k=state.k + count, f_previous=f_previous)
        # ``previous`` is None when the loop saw that no stopping rule can hold at the last step
        before = None if previous is None else np.array(previous).reshape(self.shape)
        return Advance(new, before, count, code == CODE_INTERRUPT)

    @staticmethod
    def _log(log: IterateLog, rows: tuple[np.ndarray, ...], problem: Problem, k: int, count: int) -> None:
        times, xs, fs, norms, lrs = rows
        counts = pool_array((3, count), np.int64)
        counts[0] = np.arange(1, count + 1)
        np.add(counts[0], problem.nfev, out=counts[1])
        np.add(counts[0], problem.ngev, out=counts[2])
        counts[0] += k
        log.append_columns([counts[0], fs, norms, lrs, counts[1], counts[2],
                            pool_array(count, np.int64, problem.nhev), times], xs)

    def _rows(self, loop: Callable, out: list[float], in_blocks: int, single: int, x: np.ndarray, lr: float,
              t0: float) -> tuple[np.ndarray, ...] | None:
        """Each step's time, x (a row per coordinate), f, ||grad f|| and learning rate, from
        what the loop put: a record per block (after one clock reading), then one per single
        step (a reading each). A block's record holds its rows or, with checkpoints, only its
        last x: the other steps are replayed (None if the replay does not end on the
        checkpoints). What was put for a step that did not count (Ctrl-C just after a put) is
        left out."""
        unroll, n, fields = loop.unroll, self.n, loop.fields
        width = len(fields) + (n if loop.recompute else loop.n_log)
        record = 1 + (n if loop.checkpoints else unroll * width)
        blocks = in_blocks // unroll
        size = blocks * record + single * (1 + width)
        values = np.fromiter(out, float, size) if len(out) == size else np.array(out[:size], dtype=float)
        head, tail = values[: blocks * record].reshape(blocks, record), values[blocks * record:].reshape(-1, 1 + width)
        times = pool_array(blocks * unroll + len(tail))
        times[: blocks * unroll].reshape(blocks, unroll)[:] = head[:, :1] - t0
        times[blocks * unroll:] = tail[:, 0] - t0
        rows = tail[:, 1:] if loop.checkpoints else np.concatenate([head[:, 1:].reshape(-1, width), tail[:, 1:]])
        coords = rows[:, len(fields):].T
        if loop.recompute:  # the same operations as in the loop, for all rows at once
            fs, norms = (np.broadcast_to(v, len(rows)) for v in loop.replay(coords, lr, 0, None, None, None))
        else:
            fs, norms = rows[:, fields.index("F")], rows[:, fields.index("gn")]
        if loop.checkpoints and blocks:
            replayed = self._replay(loop.replay, x.ravel(), head[:, 1:], lr, unroll)
            if replayed is None:
                return None
            coords, fs, norms = (np.concatenate([a, b], axis=-1) if len(rows) else a
                                 for a, b in zip(replayed, (coords, fs, norms)))
        lrs = pool_array(len(fs), fill=lr) if self.constant else rows[:, fields.index("lr")]
        return times, coords, fs, norms, lrs

    def _replay(self, replay: Callable, x: np.ndarray, ends: np.ndarray, lr: float, unroll: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """x (a row per coordinate), f and ||grad f|| at every step of the blocks that start at
        ``x`` and end at the rows of ``ends``, all blocks at once; None if they do not end there."""
        n, m = self.n, len(ends)
        xs, fs, norms = pool_array((n, m, unroll)), pool_array((m, unroll)), pool_array((m, unroll))
        starts = np.concatenate([x[:, None], ends[:-1].T], axis=1)
        replay(starts, lr, unroll, xs, fs, norms)  # step j of block b is iterate b * unroll + j
        if not np.array_equal(xs[:, :, -1], ends.T):
            return None
        return xs.reshape(n, -1), fs.ravel(), norms.ravel()


UNROLL = 16  # steps per block of the fused loop, which share a clock reading and a put
UNROLL_LINES = 200  # fewer steps per block where one step is long


@dataclasses.dataclass
class _Step:
    """The source of one fused step from x to y: names and lines (see :func:`_gd_source`)."""

    y: list[str]
    F: str
    G: list[str]
    gn: str
    lr: str
    schedule: list[str]  # lr_k, unless constant
    move: list[str]  # y = x - lr g
    derivatives: list[str]  # F and G at y; may raise a Python float error
    norm: str  # gn = ||G||
    change: list[str]  # dd = ||y - x||^2 and s = F + gn + dd, for the checks
    checks: list[str]  # any true: a stopping rule might hold


def _gd_source(compiled: Compiled, n_log: int, xtol_zero: bool, constant: bool, timed: bool, checkpoints: bool
               ) -> Callable:
    """The fused gradient-descent loop for ``compiled``'s scalar code (see the module docstring).

    A step: the new point y, its value F and gradient G (inlined scalar code), the gradient
    norm, the conservative checks; then y becomes x. Steps go in blocks of ``unroll``, with
    one clock reading and one ``put`` before the block counts: of the block's rows, or with
    ``checkpoints`` (constant rate, f and ||g|| recomputed) of its last x only, the caller
    replaying the others. A block in which a check trips or a float error occurs does not
    count: the single-step loop after the blocks redoes its steps one by one (and the
    stretch's last steps), each with its own clock reading and row, and returns where a
    check trips. Records are put before their steps count: after Ctrl-C there may be one
    too many, which the caller drops. Returns code, k, k where the blocks ended, x, f, g,
    the previous x (None when no rule can hold), its f, lr.
    """
    n = compiled.size
    logged = n_log >= 0
    xs, gs = [f"x_{i}" for i in range(n)], [f"g_{i}" for i in range(n)]
    statements, ([value], grad), env = compiled.scalar_block("value_and_grad", [[f"y_{i}" for i in range(n)]], "_")
    statements, outputs = _bind_outputs(statements, {"F": value, **{f"G_{i}": v for i, v in enumerate(grad)}})
    derivatives = [*statements, *(f"{name} = {v}" for name, v in outputs.items())]  # F and G at y
    renamed = re.compile(r"\b(?:(y|G)_(\d+)|F)\b")

    def step(tag: str, x_in: list[str], g_in: list[str], k_expr: str) -> _Step:
        ys, F, G = [f"y{tag}_{i}" for i in range(n)], f"F{tag}", [f"G{tag}_{i}" for i in range(n)]
        lr = "lr" if constant or not tag else f"lr{tag}"

        def rename(m: re.Match) -> str:  # this step's names for y_i, G_i and F
            return f"{m[1]}{tag}_{m[2]}" if m[1] else F

        # dd <= bound is a superset of the runner's ||y - x|| <= xtol (1 + ||x||); s catches inf and nan
        bound = repr(TINY) if xtol_zero else \
            f"xgate * (1.0 + sqrt({' + '.join(f'{x} * {x}' for x in x_in)})) ** 2 + {TINY!r}"
        return _Step(
            ys, F, G, f"gn{tag}", lr, [] if constant else [f"{lr} = lr_at({k_expr} + k_shift)"],
            [f"{y} = {x} - {lr} * {g}" for y, x, g in zip(ys, x_in, g_in)],
            [renamed.sub(rename, line) for line in derivatives],
            f"gn{tag} = sqrt({' + '.join(f'{g} * {g}' for g in G)})",
            [*(f"d_{i} = {y} - {x}" for i, (y, x) in enumerate(zip(ys, x_in))),
             f"dd = {' + '.join(f'd_{i} * d_{i}' for i in range(n))}", f"s = {F} + gn{tag} + dd"],
            [f"not gn{tag} > gate", "s - s != 0.0", f"dd <= {bound}"])

    one = step("", xs, gs, "k")
    # A row: the learning rate unless constant, x. Where the statements are only arithmetic,
    # abs and sqrt (correctly rounded in numpy too, and the same text works on numpy arrays)
    # f and ||g|| are recomputed for all rows at once later, by the same statements; otherwise
    # they go in the row.
    recompute = logged and not any(part in line for line in derivatives for part in _SCALAR_ONLY)
    fields = ([] if recompute else ["F", "gn"]) + ([] if constant else ["lr"])
    checkpoints = checkpoints and recompute and constant

    def row(s: _Step) -> list[str]:
        kept = s.y if recompute else s.y[:n_log]
        return [{"F": s.F, "gn": s.gn, "lr": s.lr}[name] for name in fields] + kept if logged else []

    def put(values: list[str]) -> list[str]:
        return [f"put(({''.join(f'{v}, ' for v in values)}))"] if logged else []

    clock = ["t = clock()"] if timed or logged else []
    unroll = max(1, min(UNROLL, UNROLL_LINES // len(one.derivatives + one.change)))
    blocks: list[str] = []
    if unroll > 1:
        block, x_in, g_in, values, parts = [], xs, gs, ["t"], []
        for j in range(unroll):
            s = step(str(j), x_in, g_in, f"k + {j}")
            block += [*s.schedule, *s.move, *s.derivatives, s.norm, *s.change, f"if {' or '.join(s.checks)}:",
                      "    break"]
            x_in, g_in, values, parts = s.y, s.G, values + row(s), parts + [s]
        last, before = parts[-1], parts[-2]
        values = ["t", *last.y] if checkpoints else values
        blocks = [f"while k + {unroll} <= k_end:", "    try:", *(f"        {line}" for line in block),
                  "    except _errors:", "        break", *(f"    {line}" for line in clock + put(values)),
                  f"    k += {unroll}", f"    pf = {before.F}",
                  f"    {', '.join([*xs, 'f', *gs] + ([] if constant else ['lr']))} = "
                  f"{', '.join([*last.y, last.F, *last.G] + ([] if constant else [last.lr]))}",
                  *(["    if t > deadline:", "        break"] if timed else [])]
    single = [*one.schedule, *one.move, "try:", *(f"    {line}" for line in one.derivatives),
              "except _errors:", f"    code = {CODE_FLOAT_ERROR}", "    break", one.norm, *clock,
              *put(["t", *row(one)]), "k += 1", *one.change,
              f"if {' or '.join(one.checks + (['t > deadline'] if timed else []))}:", f"    code = {CODE_STOP}",
              "    break", "pf = f", f"{', '.join([*xs, 'f', *gs])} = {', '.join([*one.y, one.F, *one.G])}"]
    returns = "code, k, k_blocks"
    lines = [f"{', '.join(xs)}, = x", f"{', '.join(gs)}, = g", "put = out.extend", "code = 0", "k_blocks = None",
             "try:", *(f"    {line}" for line in blocks), "    k_blocks = k",
             "    while k < k_end:", *(f"        {line}" for line in single),
             "except KeyboardInterrupt:", f"    code = {CODE_INTERRUPT}",
             "if k_blocks is None:", "    k_blocks = k",
             f"if code == {CODE_STOP}:",
             f"    return {returns}, ({', '.join(one.y)},), {one.F}, ({', '.join(one.G)},), ({', '.join(xs)},), f, lr",
             f"return {returns}, ({', '.join(xs)},), f, ({', '.join(gs)},), None, pf, lr"]
    src = ("def gd_loop(x, g, f, pf, k, k_end, lr, lr_at, k_shift, gate, xgate, deadline, out, clock):\n"
           + "".join(f"    {line}\n" for line in lines))
    namespace = {**env, "_errors": SCALAR_ERRORS, "sqrt": math.sqrt}
    exec(compile(src, "<optlab fused gradient descent>", "exec"), namespace)  # noqa: S102 - our own source
    fn = namespace["gd_loop"]
    for _ in range(WARM_UP_CALLS):  # an empty stretch: the calls only count towards specialisation
        fn((0.0,) * n, (0.0,) * n, 0.0, 0.0, 0, 0, 0.0, None, 0, 0.0, 0.0, 0.0, [], time.perf_counter)
    fn.source, fn.fields, fn.recompute, fn.unroll, fn.checkpoints, fn.n_log = (
        src, fields, recompute, unroll, checkpoints, n_log)
    fn.replay = _replay_code(n, derivatives, env) if recompute else None
    return fn


# CPython 3.11 specialises a function's bytecode only after it has been called a few times;
# a fused loop is called once per stretch, so a new one would run its first stretches slowly.
WARM_UP_CALLS = 8


# Library calls (rounded differently by numpy) and conditionals (not for arrays) in scalar code
_SCALAR_ONLY = ("sin(", "cos(", "tan(", "exp(", "log(", "tanh(", "pow(", " if ")


def batched_value_and_grad(compiled: Compiled) -> Callable:
    """``vg(X, f=None, g=None) -> (F, G)`` for points in the columns of X (shape
    ``compiled.shape + (B,)``), written into ``f`` (B,) and ``g`` (n, B) when given: the scalar
    code run on numpy rows where there is one, else the batched array code."""
    made = compiled.__dict__.setdefault("fused_loops", {})
    if "batch" not in made:
        made["batch"] = _vector_code(compiled) if compiled.scalar else _writing_into(compiled.batched("value_and_grad"))
    return made["batch"]


def _writing_into(vg: Callable) -> Callable:
    def value_and_grad(x: np.ndarray, f: np.ndarray | None = None, g: np.ndarray | None = None) -> tuple:
        values, grads = vg(x)
        if f is None:
            return values, grads
        f[...], g[...] = values, grads.reshape(g.shape)
        return f, grads
    return value_and_grad


def _vector_code(compiled: Compiled) -> Callable:
    """The scalar code of the value and gradient run on rows of X: one numpy call per operation,
    the last operation of each output writing straight into its place in ``f`` or ``g``."""
    n = compiled.size
    xs = [f"x_{i}" for i in range(n)]
    statements, ([value], grad), env = compiled.scalar_block("value_and_grad", [xs], "_", vector=True)
    places: dict[str, str] = {}
    for source, place in zip([value, *grad], ["f", *(f"g[{i}]" for i in range(n))]):
        places.setdefault(source, place)  # an output repeated elsewhere is copied there
    body = [f"{', '.join(xs)}, = x.reshape({n}, -1)", "if f is None:",
            f"    f, g = _empty(x.shape[-1]), _empty(({n}, x.shape[-1]))"]
    written = set()
    for line in statements:
        target, expression = line.split(" = ", 1)
        into = _into(expression, places[target]) if target in places else None
        body.append(line if into is None else f"{target} = {into}")
        written.update([target] if into else [])
    body += [f"{place}[...] = {source}" for source, place in zip([value, *grad], ["f", *(f"g[{i}]" for i in range(n))])
             if source not in written or places[source] != place]
    body.append(f"return f, g.reshape({compiled.shape + (-1,)})")
    src = "def value_and_grad(x, f=None, g=None):\n" + "".join(f"    {line}\n" for line in body)
    namespace = {**env, "_empty": np.empty, **{name: getattr(np, name[1:]) for name in _UFUNCS.values()}}
    exec(compile(src, "<optlab batched value and gradient>", "exec"), namespace)  # noqa: S102 - our own source
    fn = namespace["value_and_grad"]
    fn.source = src
    return fn


_UFUNCS = {ast.Add: "_add", ast.Sub: "_subtract", ast.Mult: "_multiply", ast.Div: "_true_divide"}


def _into(expression: str, place: str) -> str | None:
    """``expression`` (a binary operation) as one ufunc call writing into ``place``; else None."""
    node = ast.parse(expression, mode="eval").body
    if isinstance(node, ast.BinOp) and type(node.op) in _UFUNCS:
        return f"{_UFUNCS[type(node.op)]}({ast.unparse(node.left)}, {ast.unparse(node.right)}, out={place})"
    return None


def _replay_code(n: int, derivatives: list[str], env: dict) -> Callable:
    """``replay(x, lr, steps, xs, fs, norms) -> (f, ||g||)``: ``steps`` gradient steps
    y - lr grad f(y) from the points in the columns of x (n x m), all at once, with the fused
    loop's own statements (``derivatives``: F and G_i at y_i) run on numpy rows, so the same
    numbers; after step j, y, f and ||grad f|| go to xs[:, :, j], fs[:, j] and norms[:, j].
    Returns f and ||grad f|| at the last points (a number where it is constant)."""
    norm = f"sqrt({' + '.join(f'G_{i} * G_{i}' for i in range(n))})"  # in the loop's order
    body = [f"{', '.join(f'y_{i}' for i in range(n))}, = x", *derivatives, "for j in range(steps):",
            *(f"    y_{i} = y_{i} - lr * G_{i}" for i in range(n)), *(f"    {line}" for line in derivatives),
            *(f"    xs[{i}, :, j] = y_{i}" for i in range(n)), "    fs[:, j] = F", f"    norms[:, j] = {norm}",
            f"return F, {norm}"]
    src = "def replay(x, lr, steps, xs, fs, norms):\n" + "".join(f"    {line}\n" for line in body)
    namespace = {**env, "sqrt": np.sqrt}
    exec(compile(src, "<optlab gradient descent replayed>", "exec"), namespace)  # noqa: S102 - our own source
    fn = namespace["replay"]
    fn.source = src
    return fn


def _bind_outputs(statements: list[str], outputs: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Statements computing each output straight into its name where it is a local value;
    returns them and the outputs still to assign (literals, inputs, repeated values)."""
    targets = {line.split(" = ", 1)[0] for line in statements}
    left, renamed = {}, set()
    for name, source in outputs.items():
        if source in targets and source not in renamed:
            pattern = re.compile(rf"\b{re.escape(source)}\b")
            statements = [pattern.sub(name, line) for line in statements]
            renamed.add(source)
            outputs = {k: (name if v == source else v) for k, v in outputs.items()}
        else:
            left[name] = outputs[name]
    return statements, {k: v for k, v in left.items() if k != v}


def plain_gradient_descent(solver: Solver) -> bool:
    """Whether ``solver`` is gradient descent without a line search (any schedule)."""
    from .solvers.descent import DescentState
    from .solvers.gd import GradientDescent
    from .solvers.line_search import FixedStep

    return (type(solver) is GradientDescent and type(getattr(solver, "search", None)) is FixedStep
            and getattr(solver, "state_type", None) is DescentState)


def fused_loop(objective: Objective, solver: Solver, x0: np.ndarray, stop: Any, log: IterateLog | None
               ) -> GradientDescentLoop | None:
    """The fused loop for this run, or None when the generic path applies."""
    if not plain_gradient_descent(solver):
        return None
    if type(objective).value_and_grad is not Objective.value_and_grad:  # analytic derivatives: keep them
        return None
    compiled = objective._compiled_for(np.asarray(x0, dtype=float))
    if compiled is None or not compiled.scalar:
        return None
    try:
        return GradientDescentLoop(compiled, solver, -1 if log is None else log.n_coords, stop.gtol, stop.xtol,
                                   timed=stop.max_seconds is not None)
    except NotCompilable:
        return None
