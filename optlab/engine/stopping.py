"""How runs end: the statuses, the stopping rules and their messages, in one place.

A run ends with one status of :data:`STATUSES`. ``converged`` means the method's own
optimality test held: ||grad f|| <= gtol, or a method's own test (Nelder-Mead's simplex, a
closed form). ``stalled`` means the method can no longer make progress while that test
fails: x stopped changing (``xtol``), f stopped decreasing over ``patience`` iterations
(``ftol``), or no step decreases f (a line search, reported by the solver). The rules of
:class:`Stop` are checked after every iteration, in the order of :data:`RULES`; the method's
own test (``done``) comes right after ``gtol``.

Each rule is written once, as a predicate on a :class:`Standing`; :func:`first_rule` applies
them to one run, :func:`rule_codes` to rows of many runs at once (batches), and the inputs
(norms, finiteness) are computed by the same helpers summing in the same order, so every path
stops at the same iteration with the same status, and tests check it.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..errors import check_number
from ..norms import SMALL

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


# -- the rules -----------------------------------------------------------------------------
# Each rule is one predicate written with ordinary arithmetic and comparisons, so the same
# function judges one run (Python floats), many runs at once (numpy arrays: rows of steps x
# runs) and compiles unchanged (numba). The drivers compute its inputs (norms, finiteness) with
# the helpers below, which sum in the same order on every path.


def not_finite(v: Any) -> Any:
    """Whether ``v`` is inf or NaN (elementwise): inf - inf and NaN - NaN are NaN."""
    return v - v != 0.0


def diverged(f: Any, g_bad: Any, x_bad: Any) -> Any:
    return not_finite(f) | g_bad | x_bad


def gtol(gn: Any, bound: float) -> Any:
    return gn <= bound


def target(f: Any, limit: float) -> Any:
    return f <= limit


def xtol(step: Any, previous_norm: Any, bound: float) -> Any:
    """The step is at most ``bound * (1 + ||previous x||)``; with bound 0, x did not change at
    all (NaN when there is no step to judge: never holds)."""
    return step <= (bound * (1.0 + previous_norm) if bound else 0.0)


def ftol(f: Any, f_back: Any, bound: float) -> Any:
    """f decreased by at most ``bound * max(1, |f_back|)`` since ``f_back`` (NaN: no window yet)."""
    return f_back - f <= bound * np.maximum(1.0, abs(f_back))


def max_fev(nfev: Any, budget: float) -> Any:
    return nfev >= budget


def max_iter(k: Any, budget: float) -> Any:
    return k >= budget


@dataclasses.dataclass(frozen=True)
class Rule:
    """A stopping rule: the status it ends a run with, its message, its predicate and which of
    the :class:`Standing` fields it reads, after the option of :class:`Stop` it takes."""

    status: str
    template: str
    holds: Callable[..., Any] | None
    reads: tuple[str, ...]
    option: str | None = None


#: The stopping rules in the order they are checked. In a message, {k} is the iteration,
#: {gnorm} ||grad f||, {f} f, {stop} the Stop, {limit} f's target.
RULES = {
    "diverged": Rule("diverged", "f or x is not finite at iteration {k}", diverged, ("f", "g_bad", "x_bad")),
    "gtol": Rule("converged", "||grad f|| = {gnorm:.3g} <= gtol = {stop.gtol:g}", gtol, ("gn",), "gtol"),
    "done": Rule("converged", "{solver} {done}", None, ("done",)),
    "target": Rule("target", "f = {f:.10g} <= {limit:.10g} (stop.target = {stop.target:g}) at function "
                             "evaluation {nfev} (at iteration {k})",
                   target, ("f",), "limit"),
    "xtol": Rule("stalled", "{step} at iteration {k}, while ||grad f|| = {gnorm:.3g} > gtol = {stop.gtol:g}",
                 xtol, ("step", "previous_norm"), "xtol"),
    "ftol": Rule("stalled", "f decreased by at most ftol = {stop.ftol:g} (relative) over the last {stop.patience} "
                            "iterations, at iteration {k}, while ||grad f|| = {gnorm:.3g} > gtol = {stop.gtol:g}",
                 ftol, ("f", "f_back"), "ftol"),
    "max_fev": Rule("max_fev", "reached max_fev = {stop.max_fev} function evaluations at iteration {k}",
                    max_fev, ("nfev",), "max_fev"),
    "max_iter": Rule("max_iter", "reached max_iter = {stop.max_iter}", max_iter, ("k",), "max_iter"),
    "max_seconds": Rule("max_seconds", "reached max_seconds = {stop.max_seconds:g}", None, ("late",)),
}
NAMES = tuple(RULES)
#: What a converged run's point is, by the Hessian's eigenvalues there (:func:`point_kind`).
POINTS = ("minimum", "saddle", "maximum", "unknown")
POINT_TOLERANCE = 1e-8  # eigenvalues within this times max(1, max |eigenvalue|) of 0 are taken as 0
POINT_MAX_DIM = 200  # above, the Hessian's eigenvalues are not computed: the point is "unknown"


class Standing(NamedTuple):
    """Where runs stand after a step, as the rules read it: floats for one run, arrays (rows of
    steps x runs, or broadcastable to it) for many. ``gn`` is ||grad f|| (NaN where the method has
    none), ``g_bad`` whether it is inf or NaN though the method has one, ``x_bad`` whether x holds inf
    or NaN; ``step`` is ||x - previous x|| and ``previous_norm`` ||previous x|| (NaN without a
    previous x); ``f_back`` is f ``patience`` iterations before (NaN before then)."""

    k: Any
    f: Any
    gn: Any
    g_bad: Any
    x_bad: Any
    step: Any = math.nan
    previous_norm: Any = math.nan
    f_back: Any = math.nan
    nfev: Any = 0
    late: Any = False
    done: Any = False


def active_rules(stop: Stop, uses_gradient: bool, limit: float) -> list[tuple[str, Callable[[Standing], Any]]]:
    """The rules that can end a run under ``stop``, in order, each as a function of a
    :class:`Standing` (a rule whose option is off is left out: no ``ftol`` at 0, no budget of
    evaluations without one, no ``gtol`` for a method that uses no gradient)."""
    options = {"gtol": stop.gtol if uses_gradient else None, "limit": limit if limit > -math.inf else None,
               "xtol": stop.xtol, "ftol": stop.ftol or None, "max_fev": stop.max_fev, "max_iter": stop.max_iter}
    found = []
    for name, r in RULES.items():
        if r.option is not None and options[r.option] is None:
            continue
        if r.holds is None:  # a flag the driver sets: the method's own test, the clock
            found.append((name, operator.attrgetter(r.reads[0])))
        else:
            found.append((name, _bind(r, options.get(r.option))))
    return found


def _bind(r: Rule, option: Any) -> Callable[[Standing], Any]:
    fields = operator.attrgetter(*r.reads)

    def holds(at: Standing) -> Any:
        values = fields(at)
        args = values if len(r.reads) > 1 else (values,)
        return r.holds(*args, option) if r.option is not None else r.holds(*args)

    return holds


def first_rule(rules: list[tuple[str, Callable[[Standing], Any]]], at: Standing) -> str | None:
    """The first rule that ends one run standing at ``at`` (floats), or None to go on."""
    for name, holds in rules:
        if holds(at):
            return name
    return None


def rule_codes(rules: list[tuple[str, Callable[[Standing], Any]]], at: Standing, shape: tuple[int, ...]) -> np.ndarray:
    """For many runs (``at`` holds arrays of ``shape``): the code (1 + position in :data:`NAMES`)
    of the first rule that holds for each entry, 0 for none."""
    code = np.zeros(shape, dtype=np.int8)
    for name, holds in rules:
        hit = holds(at)
        if np.any(hit):
            code[np.broadcast_to(hit, shape) & (code == 0)] = NAMES.index(name) + 1
    return code


def message(rule_name: str, k: int, gnorm: float | None, stop: Stop, f: float = math.nan,
            limit: float = -math.inf, solver: str = "", done: str = "", nfev: int = 0) -> tuple[str, str]:
    """The status and message of stopping rule ``rule_name``."""
    r = RULES[rule_name]
    step = ("x stopped changing" if stop.xtol == 0.0 else f"step <= xtol * (1 + ||x||) with xtol = {stop.xtol:g}")
    text = r.template.format(k=k, gnorm=math.nan if gnorm is None else gnorm, stop=stop, f=f, limit=limit,
                             step=step, solver=solver, done=done, nfev=nfev)
    if gnorm is None:  # a method without gradients: its stalls say nothing of ||grad f||
        text = text.split(", while ||grad f||")[0]
    return r.status, text


def interrupted_message(k: int) -> tuple[str, str]:
    """The status and message of a run that Ctrl-C (or SIGTERM) ended at iteration ``k``."""
    return "interrupted", f"interrupted by the user at iteration {k}"


# -- the rules' inputs, computed alike on every path -----------------------------------------
def row_norms(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """||a|| along ``axis``, summed first to last as :func:`norm` sums."""
    a = np.moveaxis(a, axis, 0)
    total = a[0] * a[0]
    for i in range(1, len(a)):
        total = total + a[i] * a[i]
    return np.sqrt(total)


def holds_non_finite(x: np.ndarray, axis: int | None = None) -> Any:
    """Whether x holds inf or NaN: one bool for a vector, or one per run along ``axis``."""
    if axis is None:
        if x.size <= SMALL:
            return not all(map(math.isfinite, x.ravel().tolist()))  # (no Python call per entry)
        v = x if x.ndim == 1 else x.ravel()
        # one dot product is finite when every entry is; only its overflow needs the full check
        return not (math.isfinite(float(np.dot(v, v))) or bool(np.isfinite(x).all()))
    total = np.sum(x, axis=axis)
    bad = not_finite(total)  # a sum is finite when every term is; an overflowing one is looked at again
    if bad.any():
        bad[bad] = ~np.all(np.isfinite(np.moveaxis(x, axis, -1)[bad]), axis=-1)
    return bad


def step_lengths(x: np.ndarray, previous: np.ndarray, axis: int, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """||x - previous|| and ||previous|| along ``axis`` for many runs. With ``exact`` (xtol = 0:
    only a step of exactly 0 counts), only entries whose first coordinate did not change are
    measured (a square below ~1.5e-162 underflows to 0), the others get inf."""
    d = np.moveaxis(x, axis, 0) - np.moveaxis(previous, axis, 0)
    if exact:
        look = np.abs(d[0]) < 1e-150
        step = np.full(look.shape, math.inf)
        if look.any():
            step[look] = row_norms(d[:, look], axis=0)
        return step, np.zeros(look.shape)
    return row_norms(d, axis=0), row_norms(previous, axis=axis)


def point_kind(eigenvalues: np.ndarray | None) -> str:
    """``minimum`` (every eigenvalue of the Hessian positive), ``maximum`` (every one negative),
    ``saddle`` (both signs), or ``unknown`` (a zero eigenvalue, so the second-order test says
    nothing; or no Hessian)."""
    if eigenvalues is None or len(eigenvalues) == 0:
        return "unknown"
    if eigenvalues.size <= SMALL:  # (Python floats beat numpy's call overhead on a few values)
        values = eigenvalues.ravel().tolist()
        if not all(map(math.isfinite, values)):
            return "unknown"
        low, high = min(values), max(values)
        return _kind(low, high, max(high, -low))
    if not np.all(np.isfinite(eigenvalues)):
        return "unknown"
    return _kind(float(np.min(eigenvalues)), float(np.max(eigenvalues)), float(np.max(np.abs(eigenvalues))))


def _kind(low: float, high: float, largest: float) -> str:
    """The kind of point whose finite eigenvalues range from ``low`` to ``high``, the largest
    in size being ``largest``: those within :data:`POINT_TOLERANCE` of 0 count as 0."""
    tol = POINT_TOLERANCE * max(1.0, largest)
    if low > tol:
        return "minimum"
    if high < -tol:
        return "maximum"
    return "saddle" if low < -tol and high > tol else "unknown"


#: Every value of :func:`verdict` but "unreadable", in the order summaries list them: successes first.
VERDICTS = ("converged", *(f"converged at a {p}" for p in ("saddle", "maximum")), "target",
            *(s for s in STATUSES if s not in SUCCESSES), "invalid", "not applicable")


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
