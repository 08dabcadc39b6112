"""Fused loops: a solver's step, the objective's compiled derivatives and the log in one function.

The runner advances any solver one ``solver.update`` at a time, and with compiled
derivatives (:mod:`optlab.autodiff.compile`) that generic path is already fast. What is
left per step is Python overhead: state objects, numpy calls on two-element arrays, the
log. For a solver that opts in here, and only when the objective has scalar code (small
dimension) and its value and gradient are those of ``f`` (not overridden), the runner
hands a stretch of iterations to a generated function in which the step, the value and
gradient (inlined scalar code) and the log row are a few lines of Python float arithmetic.

The fused loop makes no decisions of its own: after each step it checks, conservatively,
whether any stopping rule *might* hold (the gradient norm near ``gtol``, a step near
``xtol``, a non-finite number, the deadline) and then returns, so that the runner applies
its rules exactly as on the generic path. It also returns at the end of every log chunk,
on a Python float error (the runner then takes one generic step, whose derivatives fall
back to numpy's inf and nan) and on Ctrl-C (with every finished step logged). The
iterates are those of the generic path bit for bit (tests/test_speed_paths.py).

Opted in: gradient descent without a line search (any learning-rate schedule).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .autodiff.compile import SCALAR_ERRORS, Compiled, NotCompilable
from .log import IterateLog
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
        self.n = compiled.size
        self.shape = compiled.shape
        self.n_log = n_log
        self.gate = gtol * (1.0 + ROUNDING_SLACK) + TINY
        self.xgate = xtol * xtol * (1.0 + ROUNDING_SLACK)
        self.constant = getattr(solver, "schedule", "constant") == "constant"
        key = ("gd", n_log, xtol == 0.0, self.constant, timed)
        loops = compiled.__dict__.setdefault("fused_loops", {})
        if key not in loops:
            loops[key] = _gd_source(compiled, *key[1:])
        self.loop = loops[key]
        self.width = len(self.loop.lead) + (self.n if self.loop.recompute else max(n_log, 0))
        self.vg = batched_value_and_grad(compiled) if self.loop.recompute else None

    def advance(self, problem: Problem, state: State, k: int, k_end: int, log: IterateLog | None,
                t0: float, deadline: float) -> Advance:
        out: list[float] = []
        lr = float(self.solver.lr) if self.constant else math.nan
        code, k_new, x, f, g, previous, f_previous, lr = self.loop(
            tuple(state.x.ravel().tolist()), tuple(state.g.ravel().tolist()), state.f, state.f_previous, k, k_end,
            lr, self.solver.lr_at, state.k - k, self.gate, self.xgate, deadline, out, time.perf_counter)
        count = k_new - k
        if log is not None:
            del out[count * self.width:]  # Ctrl-C between a row and its step: that row goes
            if count:
                self._log(log, np.fromiter(out, float, len(out)).reshape(-1, self.width), problem, k, t0, lr)
        if count == 0:
            return Advance(state, None, 0, code == CODE_INTERRUPT)
        problem.nfev += count
        problem.ngev += count
        new = dataclasses.replace(state, x=np.array(x).reshape(self.shape), f=f, g=np.array(g).reshape(self.shape),
                                  step_size=lr, k=state.k + count, f_previous=f_previous)
        # ``previous`` is None when the loop saw that no stopping rule can hold at the last step
        before = None if previous is None else np.array(previous).reshape(self.shape)
        return Advance(new, before, count, code == CODE_INTERRUPT)

    def _log(self, log: IterateLog, rows: np.ndarray, problem: Problem, k: int, t0: float, lr: float) -> None:
        m = len(rows)
        at = {name: i for i, name in enumerate(self.loop.lead)}
        xs = rows[:, len(self.loop.lead):]
        if self.loop.recompute:  # the same operations as in the loop, for all rows at once
            f, g = self.vg(np.ascontiguousarray(xs.T).reshape(self.shape + (m,)))
            g = g.reshape(self.n, m)
            squares = g[0] * g[0]
            for i in range(1, self.n):  # in the loop's order: (g0 g0 + g1 g1) + g2 g2 ...
                squares = squares + g[i] * g[i]
            gn = np.sqrt(squares)
        else:
            f, gn = rows[:, at["F"]], rows[:, at["gn"]]
        steps = np.arange(1, m + 1)
        fields = [k + steps, f, gn, np.full(m, lr) if self.constant else rows[:, at["lr"]], problem.nfev + steps,
                  problem.ngev + steps, np.full(m, problem.nhev), rows[:, at["t"]] - t0]
        log.append_columns(fields, xs)


def _gd_source(compiled: Compiled, n_log: int, xtol_zero: bool, constant: bool, timed: bool) -> Callable:
    """The fused gradient-descent loop for ``compiled``'s scalar code (see the module docstring).

    Each step: the new point y, its value F and gradient G (inlined scalar code), the gradient
    norm, the log row, then the conservative checks, then y becomes x. A row is logged before
    its step counts (``k += 1``): after Ctrl-C there may be one row too many, which the caller
    drops. Returns code, k, x, f, g, the previous x (None when no rule can hold), its f, lr.
    """
    n = compiled.size
    ys = [f"y_{i}" for i in range(n)]
    statements, ([value], grad), env = compiled.scalar_block("value_and_grad", [ys], "_")
    xs, gs, ds = ([f"{p}_{i}" for i in range(n)] for p in ("x", "g", "d"))
    logged = n_log >= 0
    loop = ([] if constant else ["lr = lr_at(k + k_shift)"]) + [
        f"{y} = {x} - lr * {g}" for y, x, g in zip(ys, xs, gs)]
    statements, outputs = _bind_outputs(statements, {"F": value, **{f"G_{i}": v for i, v in enumerate(grad)}})
    loop += ["try:", *(f"    {s}" for s in statements), *(f"    {name} = {v}" for name, v in outputs.items()),
             "except _errors:", f"    code = {CODE_FLOAT_ERROR}", "    break"]
    loop += [f"gn = sqrt({' + '.join(f'G_{i} * G_{i}' for i in range(n))})"]
    if timed or logged:
        loop += ["t = clock()"]
    # The row: time, the learning rate unless constant, x. With only arithmetic (and sqrt, both
    # correctly rounded in numpy too) f and ||g|| are recomputed for all rows at once later;
    # otherwise they go in the row.
    recompute = logged and not any(call in line for line in statements for call in _LIBRARY_CALLS)
    lead = ([] if recompute else ["F", "gn"]) + ["t"] + ([] if constant else ["lr"])
    if logged:
        logged_x = ys if recompute else ys[:n_log]
        loop += [f"put(({''.join(f'{v}, ' for v in lead + logged_x)}))"]
    loop += ["k += 1", *(f"{d} = {y} - {x}" for d, y, x in zip(ds, ys, xs)),
             f"dd = {' + '.join(f'{d} * {d}' for d in ds)}", "s = F + gn + dd"]
    # dd <= bound is a superset of the runner's ||y - x|| <= xtol (1 + ||x||); s catches inf and nan
    bound = repr(TINY) if xtol_zero else \
        f"xgate * (1.0 + sqrt({' + '.join(f'{x} * {x}' for x in xs)})) ** 2 + {TINY!r}"
    checks = ["not gn > gate", "s - s != 0.0", f"dd <= {bound}"] + (["t > deadline"] if timed else [])
    loop += [f"if {' or '.join(checks)}:", f"    code = {CODE_STOP}", "    break",
             "pf = f", f"{', '.join([*xs, 'f', *gs])} = {', '.join([*ys, 'F', *(f'G_{i}' for i in range(n))])}"]
    lines = [f"{', '.join(xs)}, = x", f"{', '.join(gs)}, = g", "put = out.extend", "code = 0",
             "try:", "    while k < k_end:", *(f"        {line}" for line in loop),
             "except KeyboardInterrupt:", f"    code = {CODE_INTERRUPT}",
             f"if code == {CODE_STOP}:",
             f"    return code, k, ({', '.join(ys)},), F, ({', '.join(f'G_{i}' for i in range(n))},), "
             f"({', '.join(xs)},), f, lr",
             f"return code, k, ({', '.join(xs)},), f, ({', '.join(gs)},), None, pf, lr"]
    src = ("def gd_loop(x, g, f, pf, k, k_end, lr, lr_at, k_shift, gate, xgate, deadline, out, clock):\n"
           + "".join(f"    {line}\n" for line in lines))
    namespace = {**env, "_errors": SCALAR_ERRORS, "sqrt": math.sqrt}
    exec(compile(src, "<optlab fused gradient descent>", "exec"), namespace)  # noqa: S102 - our own source
    fn = namespace["gd_loop"]
    fn.source, fn.lead, fn.recompute = src, lead, recompute
    return fn


_LIBRARY_CALLS = ("sin(", "cos(", "tan(", "exp(", "log(", "tanh(", "pow(")


def batched_value_and_grad(compiled: Compiled) -> Callable:
    """``vg(X) -> (F, G)`` for points in the columns of X (shape ``compiled.shape + (B,)``):
    the scalar code run on numpy rows where there is one, else the batched array code."""
    made = compiled.__dict__.setdefault("fused_loops", {})
    if "batch" not in made:
        made["batch"] = _vector_code(compiled) if compiled.scalar else compiled.batched("value_and_grad")
    return made["batch"]


def _vector_code(compiled: Compiled) -> Callable:
    """The scalar code of the value and gradient run on rows of X: one numpy call per operation."""
    n = compiled.size
    xs = [f"x_{i}" for i in range(n)]
    statements, ([value], grad), env = compiled.scalar_block("value_and_grad", [xs], "_", vector=True)
    body = [f"{', '.join(xs)}, = x.reshape({n}, -1)", *statements,
            "F = _empty(x.shape[-1])", f"F[:] = {value}", f"G = _empty(({n}, x.shape[-1]))",
            *(f"G[{i}] = {g}" for i, g in enumerate(grad)),
            f"return F, G.reshape({compiled.shape + (-1,)})"]
    src = "def value_and_grad(x):\n" + "".join(f"    {line}\n" for line in body)
    namespace = {**env, "_empty": np.empty}
    exec(compile(src, "<optlab batched value and gradient>", "exec"), namespace)  # noqa: S102 - our own source
    fn = namespace["value_and_grad"]
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
