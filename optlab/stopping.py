"""How runs end: the statuses, the stopping rules and their messages, in one place.

A run ends with one status of :data:`STATUSES`. The stopping rules of :class:`Stop` are
checked after every iteration, in this order: the step was small (``xtol``), f, ||grad f||
or x is not finite (``diverged``), ||grad f|| <= gtol (``gtol``), the method's own test
(``done``), the iteration budget (``max_iter``) and the clock (``max_seconds``).
:func:`rule` applies them to one run, :func:`rules` to rows of many runs at once (batches,
replays); both compute the same norms in the same order (:func:`norm`), so they agree to the
bit, and tests check it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .errors import check_number

#: Every status a run can end with; ``running`` is only ever seen on disk (a killed process).
STATUSES = ("converged", "max_iter", "max_seconds", "diverged", "failed", "error", "interrupted")
#: Statuses of a run that has finished its work (a sweep that is resumed skips it).
FINISHED = ("converged", "max_iter", "max_seconds", "diverged", "failed", "error")
#: Statuses of sweep jobs that could not do their work: a sweep with any of them exits 1.
PROBLEMS = ("error", "invalid", "running", "unreadable")
#: Statuses counted as the method failing on the problem (a sweeper's score is inf for them).
FAILURES = ("diverged", "failed", "error", "invalid")

#: The stopping rules with their status and message ({k}: iteration, {gnorm}: ||grad f||,
#: {stop}: the Stop); the order is the order of checking, and a rule's code in :func:`rules`
#: is its position + 1.
RULES = {
    "xtol": ("converged", "step <= xtol * (1 + ||x||) with xtol = {stop.xtol:g}"),
    "diverged": ("diverged", "f or x is not finite at iteration {k}"),
    "gtol": ("converged", "||grad f|| = {gnorm:.3g} <= gtol = {stop.gtol:g}"),
    "max_iter": ("max_iter", "reached max_iter = {stop.max_iter}"),
    "max_seconds": ("max_seconds", "reached max_seconds = {stop.max_seconds:g}"),
}
CODES = {name: i + 1 for i, name in enumerate(RULES)}
SMALL = 16  # vectors up to this size are summed in Python, first to last


@dataclasses.dataclass
class Stop:
    """Stopping rules. ``gtol``: stop when ||grad f|| <= gtol; ``xtol``: when the step is
    at most ``xtol * (1 + ||x||)`` (0 stops only when x no longer changes at all)."""

    max_iter: int = 50_000
    gtol: float = 1e-12
    xtol: float = 0.0
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        self.max_iter = check_number("stop.max_iter", self.max_iter, low=0, strict=False, integer=True)
        self.gtol = check_number("stop.gtol", self.gtol, low=0, strict=False)
        self.xtol = check_number("stop.xtol", self.xtol, low=0, strict=False)
        self.max_seconds = check_number("stop.max_seconds", self.max_seconds, low=0, allow_none=True)


def message(rule_name: str, k: int, gnorm: float, stop: Stop) -> tuple[str, str]:
    """The status and message of stopping rule ``rule_name``."""
    status, template = RULES[rule_name]
    return status, template.format(k=k, gnorm=gnorm, stop=stop)


def norm(v: np.ndarray) -> float:
    """||v||: for small vectors sqrt(v_0 v_0 + v_1 v_1 + ...) summed first to last, as
    generated code and :func:`rules` sum (Python floats beat numpy's call overhead there)."""
    if v.size <= SMALL:
        total = 0.0
        for c in v.ravel().tolist():
            total += c * c
        return math.sqrt(total)
    v = v if v.ndim == 1 else v.ravel()
    return math.sqrt(float(np.dot(v, v)))


def finite(f: float, gnorm: float, x: np.ndarray) -> bool:
    if not (math.isfinite(f) and math.isfinite(gnorm)):
        return False
    if x.size <= SMALL:
        return all(map(math.isfinite, x.ravel().tolist()))
    v = x if x.ndim == 1 else x.ravel()
    # one dot product is finite when every entry is; only its overflow needs the full check
    return math.isfinite(float(np.dot(v, v))) or bool(np.isfinite(x).all())


def small_step(x: np.ndarray, previous: np.ndarray, xtol: float) -> bool:
    """||x - previous|| <= xtol (1 + ||previous||)."""
    step = norm(x - previous)
    return step <= 0.0 if xtol == 0.0 else step <= xtol * (1.0 + norm(previous))


def rule(stop: Stop, k: int, f: float, gnorm: float, x: np.ndarray, late: bool, done: bool = False) -> str | None:
    """The first rule that ends a run standing at iteration ``k`` (``late``: the clock has run
    out; ``done``: the method's own test held), checked before its next step; None to go on.
    ``xtol`` is checked right after each step (:func:`small_step`)."""
    if not finite(f, gnorm, x):
        return "diverged"
    if gnorm <= stop.gtol:
        return "gtol"
    if done:
        return "done"
    if k >= stop.max_iter:
        return "max_iter"
    return "max_seconds" if late else None


def rules(stop: Stop, k: np.ndarray, f: np.ndarray, gn: np.ndarray, x: np.ndarray, previous: np.ndarray | None,
          late: np.ndarray, block: int = 128) -> np.ndarray:
    """:func:`small_step` and :func:`rule` for rows of steps of many runs at once: the code
    (:data:`CODES`, 0 for none) of the first rule that holds after each step.

    ``k`` (rows,) is the iteration of each row, ``f`` and ``gn`` are (rows, runs), ``x``
    (rows, n, runs), ``previous`` the x of the rows before (None at the start), ``late``
    (rows,) whether the clock had run out. Done a block of rows at a time, so that the
    temporaries stay small.
    """
    if len(f) > block:
        return np.concatenate([
            rules(stop, k[i:i + block], f[i:i + block], gn[i:i + block], x[i:i + block],
                  None if previous is None else previous[i:i + block], late[i:i + block], block)
            for i in range(0, len(f), block)])
    code = np.zeros(f.shape, dtype=np.int8)
    total = f + gn
    for i in range(x.shape[1]):
        total += x[:, i]
    if not np.isfinite(total).all():  # a sum is finite when every term is
        look = ~np.isfinite(total)
        code[look] = np.where(np.isfinite(f[look]) & np.isfinite(gn[look])
                              & np.all(np.isfinite(np.moveaxis(x, 1, -1)[look]), axis=-1), 0, CODES["diverged"])
    converged = gn <= stop.gtol
    if converged.any():
        code[converged & (code == 0)] = CODES["gtol"]
    for rows, name in ((k >= stop.max_iter, "max_iter"), (late, "max_seconds")):  # rules of whole rows
        if rows.any():
            code[(code == 0) & np.broadcast_to(rows[:, None], code.shape)] = CODES[name]
    if previous is not None:
        if stop.xtol == 0.0:
            # ||d|| <= 0 needs |d_i| below ~1.5e-162 (d_i^2 underflows) for every i, so for i = 0 first
            look = np.abs(x[:, 0] - previous[:, 0]) < 1e-150
        else:
            look = np.ones(f.shape, dtype=bool)
        if look.any():
            d = np.moveaxis(x, 1, -1)[look] - np.moveaxis(previous, 1, -1)[look]
            bound = 0.0 if stop.xtol == 0.0 else stop.xtol * (1.0 + row_norms(np.moveaxis(previous, 1, -1)[look]))
            small = np.zeros(f.shape, dtype=bool)
            small[look] = row_norms(d) <= bound
            code[small] = CODES["xtol"]
    return code


def row_norms(a: np.ndarray) -> np.ndarray:
    """||a[..., :]|| along the last axis, summed first to last as :func:`norm`."""
    total = a[..., 0] * a[..., 0]
    for i in range(1, a.shape[-1]):
        total = total + a[..., i] * a[..., i]
    return np.sqrt(total)


def rule_name(code: int) -> str:
    return list(RULES)[code - 1]
