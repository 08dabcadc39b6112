"""How runs end: the statuses, the stopping rules and their messages, in one place.

A run ends with one status of :data:`STATUSES`. ``converged`` means the method's own
optimality test held: ||grad f|| <= gtol, or a method's own test (Nelder-Mead's simplex, a
closed form). ``stalled`` means the method can no longer make progress while that test
fails: x stopped changing (``xtol``), f stopped decreasing over ``patience`` iterations
(``ftol``), or no step decreases f (a line search, reported by the solver). The rules of
:class:`Stop` are checked after every iteration, in the order of :data:`RULES`; the method's
own test (``done``) comes right after ``gtol``.

:func:`rule` applies them to one run, :func:`rules` to rows of many runs at once (batches,
replays); both compute the same norms in the same order (:func:`norm`), so they agree to the
bit, and tests check it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import check_number

#: Every status a run can end with; ``running`` is only ever seen on disk (a killed process).
STATUSES = ("converged", "stalled", "target", "max_iter", "max_fev", "max_seconds", "diverged", "failed", "error",
            "interrupted")
#: Statuses of a run that has finished its work (a sweep that is resumed skips it).
FINISHED = STATUSES[:-1]
#: Statuses of a run that did what was asked: the method's optimality test held, or f reached the target.
SUCCESSES = ("converged", "target")
#: Statuses of sweep jobs that could not do their work: a sweep with any of them exits 1.
PROBLEMS = ("error", "invalid", "running", "unreadable")
#: Statuses counted as the method failing on the problem (a sweeper's score is inf for them).
FAILURES = ("diverged", "failed", "error", "invalid")

#: The stopping rules in the order they are checked, with their status and message ({k}:
#: iteration, {gnorm}: ||grad f||, {f}: f, {stop}: the Stop, {limit}: f's target); a rule's
#: code in :func:`rules` is its position + 1.
RULES = {
    "diverged": ("diverged", "f or x is not finite at iteration {k}"),
    "gtol": ("converged", "||grad f|| = {gnorm:.3g} <= gtol = {stop.gtol:g}"),
    "target": ("target", "f = {f:.10g} <= {limit:.10g} (stop.target = {stop.target:g}) at iteration {k}"),
    "xtol": ("stalled", "{step} at iteration {k}, while ||grad f|| = {gnorm:.3g} > gtol = {stop.gtol:g}"),
    "ftol": ("stalled", "f decreased by at most ftol = {stop.ftol:g} (relative) over the last {stop.patience} "
                        "iterations, at iteration {k}, while ||grad f|| = {gnorm:.3g} > gtol = {stop.gtol:g}"),
    "max_fev": ("max_fev", "reached max_fev = {stop.max_fev} function evaluations at iteration {k}"),
    "max_iter": ("max_iter", "reached max_iter = {stop.max_iter}"),
    "max_seconds": ("max_seconds", "reached max_seconds = {stop.max_seconds:g}"),
}
CODES = {name: i + 1 for i, name in enumerate(RULES)}
SMALL = 16  # vectors up to this size are summed in Python, first to last
#: What a converged run's point is, by the Hessian's eigenvalues there (:func:`point_kind`).
POINTS = ("minimum", "saddle", "maximum", "unknown")
POINT_TOLERANCE = 1e-8  # eigenvalues within this times max(1, max |eigenvalue|) of 0 are taken as 0
POINT_MAX_DIM = 200  # above, the Hessian's eigenvalues are not computed: the point is "unknown"


@dataclasses.dataclass
class Stop:
    """Stopping rules.

    ``gtol``: converged when ||grad f|| <= gtol. ``xtol``: stalled when the step is at most
    ``xtol * (1 + ||x||)`` (0: when x no longer changes at all). ``ftol`` (0: off): stalled
    when f decreased by at most ``ftol * max(1, |f|)`` over the last ``patience`` iterations.
    ``target``: the run ends as ``target`` once f <= target, or f - f* <= target when the
    objective knows f* (a fixed-target run, as COCO defines it). ``max_iter``, ``max_fev``
    (function evaluations, finite-difference ones included) and ``max_seconds`` are budgets.
    """

    max_iter: int = 50_000
    gtol: float = 1e-12
    xtol: float = 0.0
    max_seconds: float | None = None
    max_fev: int | None = None
    target: float | None = None
    ftol: float = 0.0
    patience: int = 10

    def __post_init__(self) -> None:
        for budget in ("max_seconds", "max_fev"):  # an infinite budget is no budget, as on the command line
            if isinstance(getattr(self, budget), float) and getattr(self, budget) == math.inf:
                setattr(self, budget, None)
        self.max_iter = check_number("stop.max_iter", self.max_iter, low=0, strict=False, integer=True)
        self.gtol = check_number("stop.gtol", self.gtol, low=0, strict=False)
        self.xtol = check_number("stop.xtol", self.xtol, low=0, strict=False)
        self.max_seconds = check_number("stop.max_seconds", self.max_seconds, low=0, allow_none=True)
        self.max_fev = check_number("stop.max_fev", self.max_fev, low=1, strict=False, integer=True, allow_none=True)
        self.target = check_number("stop.target", self.target, allow_none=True)
        self.ftol = check_number("stop.ftol", self.ftol, low=0, strict=False)
        self.patience = check_number("stop.patience", self.patience, low=1, strict=False, integer=True)

    def limit(self, f_star: float | None) -> float:
        """The value of f at which a run has reached ``target`` (-inf without a target)."""
        if self.target is None:
            return -math.inf
        return self.target + (f_star if f_star is not None else 0.0)


def message(rule_name: str, k: int, gnorm: float | None, stop: Stop, f: float = math.nan,
            limit: float = -math.inf) -> tuple[str, str]:
    """The status and message of stopping rule ``rule_name``."""
    status, template = RULES[rule_name]
    step = ("x stopped changing" if stop.xtol == 0.0 else f"step <= xtol * (1 + ||x||) with xtol = {stop.xtol:g}")
    text = template.format(k=k, gnorm=math.nan if gnorm is None else gnorm, stop=stop, f=f, limit=limit, step=step)
    if gnorm is None:  # a method without gradients: its stalls say nothing of ||grad f||
        text = text.split(", while ||grad f||")[0]
    return status, text


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


def rule(stop: Stop, k: int, f: float, gnorm: float | None, x: np.ndarray, *, previous: np.ndarray | None = None,
         f_back: float | None = None, limit: float = -math.inf, nfev: int = 0, late: bool = False,
         done: bool = False) -> str | None:
    """The first rule that ends a run standing at iteration ``k``, or None to go on.

    ``gnorm`` is None for a method that uses no gradient (no ``gtol``); ``previous`` the x
    before the last step (None: no step to judge); ``f_back`` f ``patience`` iterations ago;
    ``limit`` f's target (:meth:`Stop.limit`); ``late``: the clock has run out; ``done``: the
    method's own test held (it ends the run as ``converged``, as rule ``done``).
    """
    if not finite(f, 0.0 if gnorm is None else gnorm, x):
        return "diverged"
    if gnorm is not None and gnorm <= stop.gtol:
        return "gtol"
    if done:
        return "done"
    if f <= limit:
        return "target"
    if previous is not None and small_step(x, previous, stop.xtol):
        return "xtol"
    if stop.ftol > 0.0 and f_back is not None and f_back - f <= stop.ftol * max(1.0, abs(f_back)):
        return "ftol"
    if stop.max_fev is not None and nfev >= stop.max_fev:
        return "max_fev"
    if k >= stop.max_iter:
        return "max_iter"
    return "max_seconds" if late else None


def rules(stop: Stop, k: np.ndarray, f: np.ndarray, gn: np.ndarray, x: np.ndarray, previous: np.ndarray | None,
          late: np.ndarray, limit: float = -math.inf, block: int = 128) -> np.ndarray:
    """:func:`rule` for rows of steps of many runs at once (one gradient and one function
    evaluation per step, so nfev = k + 1; no ``ftol``): the code (:data:`CODES`, 0 for none)
    of the first rule that holds after each step.

    ``k`` (rows,) is the iteration of each row, ``f`` and ``gn`` are (rows, runs), ``x``
    (rows, n, runs), ``previous`` the x of the rows before (None at the start), ``late``
    (rows,) whether the clock had run out. Done a block of rows at a time, so that the
    temporaries stay small.
    """
    if len(f) > block:
        return np.concatenate([
            rules(stop, k[i:i + block], f[i:i + block], gn[i:i + block], x[i:i + block],
                  None if previous is None else previous[i:i + block], late[i:i + block], limit, block)
            for i in range(0, len(f), block)])
    code = np.zeros(f.shape, dtype=np.int8)

    def mark(where: np.ndarray, name: str) -> None:
        if where.any():
            code[where & (code == 0)] = CODES[name]

    total = f + gn
    for i in range(x.shape[1]):
        total += x[:, i]
    if not np.isfinite(total).all():  # a sum is finite when every term is
        look = ~np.isfinite(total)
        code[look] = np.where(np.isfinite(f[look]) & np.isfinite(gn[look])
                              & np.all(np.isfinite(np.moveaxis(x, 1, -1)[look]), axis=-1), 0, CODES["diverged"])
    mark(gn <= stop.gtol, "gtol")
    mark(f <= limit, "target")
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
            mark(small, "xtol")
    whole_rows = ((k + 1 >= stop.max_fev) if stop.max_fev is not None else np.zeros(len(k), bool), "max_fev"), \
        (k >= stop.max_iter, "max_iter"), (late, "max_seconds")
    for rows, name in whole_rows:  # rules of whole rows: mostly none holds
        if rows.any():
            mark(np.broadcast_to(rows[:, None], code.shape), name)
    return code


def row_norms(a: np.ndarray) -> np.ndarray:
    """||a[..., :]|| along the last axis, summed first to last as :func:`norm`."""
    total = a[..., 0] * a[..., 0]
    for i in range(1, a.shape[-1]):
        total = total + a[..., i] * a[..., i]
    return np.sqrt(total)


def point_kind(eigenvalues: np.ndarray | None) -> str:
    """``minimum`` (every eigenvalue of the Hessian positive), ``maximum`` (every one negative),
    ``saddle`` (both signs), or ``unknown`` (a zero eigenvalue, so the second-order test says
    nothing; or no Hessian)."""
    if eigenvalues is None or len(eigenvalues) == 0 or not np.all(np.isfinite(eigenvalues)):
        return "unknown"
    tol = POINT_TOLERANCE * max(1.0, float(np.max(np.abs(eigenvalues))))
    low, high = float(np.min(eigenvalues)), float(np.max(eigenvalues))
    if low > tol:
        return "minimum"
    if high < -tol:
        return "maximum"
    return "saddle" if low < -tol and high > tol else "unknown"


def verdict(record: dict) -> str:
    """How a run record is counted in summaries: its status, with ``converged`` split by the
    kind of point (``converged at a saddle``, ``converged at a maximum``) and invalid jobs whose
    solver does not apply to the objective as ``not applicable``."""
    status = record.get("status", "unreadable")
    if not isinstance(status, str):
        return "unreadable"
    if status == "converged" and record.get("point") in ("saddle", "maximum"):
        return f"converged at a {record['point']}"
    if status == "invalid" and record.get("not_applicable"):
        return "not applicable"
    return status


def rule_name(code: int) -> str:
    return list(RULES)[code - 1]
