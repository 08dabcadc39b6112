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
        self.width = (3 if self.constant else 4) + n_log  # f, grad_norm, time, [lr], x_0 .. x_{n_log-1}
        key = ("gd", n_log, xtol == 0.0, self.constant, timed)
        loops = compiled.__dict__.setdefault("fused_loops", {})
        if key not in loops:
            loops[key] = _gd_source(compiled, *key[1:])
        self.loop = loops[key]

    def advance(self, problem: Problem, state: State, k: int, k_end: int, log: IterateLog | None,
                t0: float, deadline: float) -> Advance:
        out: list[float] = []
        lr = float(self.solver.lr) if self.constant else math.nan
        code, k_new, x, f, g, previous, f_previous, lr_last = self.loop(
            tuple(state.x.ravel().tolist()), tuple(state.g.ravel().tolist()), state.f, k, k_end, lr,
            self.solver.lr_at, state.k - k, self.gate, self.xgate, deadline, out, time.perf_counter)
        count = k_new - k
        if count == 0:
            return Advance(state, None, 0, code == CODE_INTERRUPT)
        if log is not None:
            rows = np.fromiter(out, float, len(out)).reshape(-1, self.width)
            if len(rows) < count:  # Ctrl-C between a step and its row: the row is rebuilt
                last = [f, math.sqrt(sum(v * v for v in g)), time.perf_counter(), *([] if self.constant else [lr_last])]
                rows = np.vstack([rows, [*last, *x[: self.n_log]]])
            self._log(log, rows, problem, k, t0, lr)
        problem.nfev += count
        problem.ngev += count
        new = dataclasses.replace(state, x=np.array(x).reshape(self.shape), f=f, g=np.array(g).reshape(self.shape),
                                  step_size=lr_last, k=state.k + count, f_previous=f_previous)
        return Advance(new, np.array(previous).reshape(self.shape), count, code == CODE_INTERRUPT)

    def _log(self, log: IterateLog, rows: np.ndarray, problem: Problem, k: int, t0: float, lr: float) -> None:
        m = len(rows)
        steps = np.arange(1, m + 1, dtype=float)
        head = np.empty((m, 8))
        head[:, 0] = k + steps
        head[:, 1:3] = rows[:, 0:2]
        head[:, 3] = lr if self.constant else rows[:, 3]
        head[:, 4] = problem.nfev + steps
        head[:, 5] = problem.ngev + steps
        head[:, 6] = problem.nhev
        head[:, 7] = rows[:, 2] - t0
        log.append_block(head, rows[:, 3 if self.constant else 4:])


def _gd_source(compiled: Compiled, n_log: int, xtol_zero: bool, constant: bool, timed: bool) -> Callable:
    """The fused gradient-descent loop for ``compiled``'s scalar code (see the module docstring)."""
    n = compiled.size
    ys = [f"y_{i}" for i in range(n)]
    statements, ([value], grad), env = compiled.scalar_block("value_and_grad", [ys], "_")
    xs, gs, ps = ([f"{p}_{i}" for i in range(n)] for p in ("x", "g", "p"))
    logged = n_log >= 0
    lines = [
        f"{', '.join(xs)}, = x",
        f"{', '.join(gs)}, = g",
        f"{', '.join(ps)}, = x",
        "pf = f",
        "lr_last = lr",
        "put = out.extend",
        "code = 0",
        "try:",
        "    while k < k_end:",
    ]
    loop = ([] if constant else ["lr = lr_at(k + k_shift)"]) + [
        f"{y} = {x} - lr * {g}" for y, x, g in zip(ys, xs, gs)]
    loop += ["try:", *(f"    {s}" for s in statements), "except _errors:", f"    code = {CODE_FLOAT_ERROR}",
             "    break"]
    loop += [f"gn = sqrt({' + '.join(f'({v}) * ({v})' for v in grad)})"]
    loop += ["t = clock()" if (timed or logged) else "t = 0.0"]
    loop += [f"{', '.join([*ps, *xs, 'pf', 'f', *gs, 'lr_last', 'k'])} = "
             f"{', '.join([*xs, *ys, 'f', f'({value})', *(f'({v})' for v in grad), 'lr', 'k + 1'])}"]
    if logged:
        loop += [f"put((f, gn, t, {'' if constant else 'lr, '}{''.join(f'{x}, ' for x in xs[:n_log])}))"]
    dd = " + ".join(f"({x} - {p}) * ({x} - {p})" for x, p in zip(xs, ps))
    step_gate = f"{dd} <= {TINY!r}" if xtol_zero else \
        f"{dd} <= xgate * (1.0 + sqrt({' + '.join(f'{p} * {p}' for p in ps)})) ** 2 + {TINY!r}"
    total = " + ".join(["f", "gn", *xs])
    loop += [f"s = {total}",
             f"if not gn > gate or s - s != 0.0 or t > deadline or {step_gate}:",
             f"    code = {CODE_STOP}", "    break"]
    lines += [f"        {line}" for line in loop]
    lines += ["except KeyboardInterrupt:", f"    code = {CODE_INTERRUPT}",
              f"return code, k, ({', '.join(xs)},), f, ({', '.join(gs)},), ({', '.join(ps)},), pf, lr_last"]
    src = ("def gd_loop(x, g, f, k, k_end, lr, lr_at, k_shift, gate, xgate, deadline, out, clock):\n"
           + "".join(f"    {line}\n" for line in lines))
    namespace = {**env, "_errors": SCALAR_ERRORS, "sqrt": math.sqrt}
    exec(compile(src, "<optlab fused gradient descent>", "exec"), namespace)  # noqa: S102 - our own source
    fn = namespace["gd_loop"]
    fn.source = src
    return fn


def plain_gradient_descent(solver: Solver) -> bool:
    """Whether ``solver`` is gradient descent without a line search (any schedule)."""
    from .solvers.descent import DescentState
    from .solvers.gd import GradientDescent
    from .solvers.line_search import FixedStep

    return (type(solver) is GradientDescent and type(getattr(solver, "search", None)) is FixedStep
            and solver.state_type is DescentState)


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
