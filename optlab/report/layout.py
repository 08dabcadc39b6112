"""Which runs go in which panel, and how each is drawn: the decisions behind the curve figures,
made on the data alone (no drawing), so that they can be checked.

- **Overlay or small multiples.** Up to ``OVERLAY_MAX_SETTINGS`` solver settings with at most
  ``OVERLAY_MAX_LINES`` series per panel share one panel per problem. More become small
  multiples with shared axes: a panel per setting (a figure per problem when there would be
  more than ``MAX_PANELS`` panels). When the settings of each solver differ only in their
  learning rate, there is a panel per solver and the colour is the rate.
- **Series.** Runs with every recorded option equal (one multi-start specification, say)
  pool into a median band once ``BAND_MIN`` of them did not diverge; all other runs are lines,
  their starts told apart by line style. Runs that differ in any option are never pooled, and
  diverged runs never are: each is a line of its own up to where it leaves the axis.
- **Grid.** Panels wrap into rows of at most ``MAX_COLS``; a figure with a row per problem
  becomes a figure per problem when its settings would not fit in one row.
- **Floor.** Gaps (and gradient norms) <= 0 are drawn at one floor shared by all panels of a
  figure: below ``1e-16 max(1, |f*|)`` and a decade below the smallest positive value drawn,
  rounded down to a power of ten; its tick reads "<= 0".
- **x axis.** Iterations, evaluations and seconds on a symlog axis (linear near 0, log beyond)
  where the runs' lengths span ``SPAN_FOR_LOG`` or more, else linear.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .data import ReportData, Trace
from .style import LrColors, natural_key, start_style

OVERLAY_MAX_SETTINGS = 6
OVERLAY_MAX_LINES = 16
MAX_PANELS = 24
MAX_COLS = 4
BAND_MIN = 5
SPAN_FOR_LOG = 20.0
EPS = 1e-16
COINCIDE_DECADES = 0.01  # lines this close (log10 y) wherever both are drawn look like one
HALO = 2.4  # a line that others lie on is drawn this many points wider per line on it

X_KINDS = {"iter": "iteration", "evals": "evaluations", "time": "time"}


@dataclasses.dataclass
class Series:
    """One legend-level item of a panel: a median band, or lines (one per run)."""

    label: str
    setting: str
    run_ids: list[str]
    band: bool
    color: Any
    ls: str
    diverged: int


@dataclasses.dataclass
class Panel:
    title: str
    problem: str
    key: str | None  # the setting (multiples) or solver (learning-rate mode); None when overlaid
    series: list[Series]
    row: int = 0


@dataclasses.dataclass
class FigureSpec:
    mode: str  # "overlay", "lr" or "multiples"
    suffix: str  # "" or the problem's label, when there is a figure per problem
    panels: list[Panel]
    nrows: int
    ncols: int
    starts: list[tuple[str, str]]  # (start label, line style) when starts are told apart by style
    colors: LrColors | None = None


def pooled_sizes(runs: Any) -> Any:
    """For each run: how many runs that did not diverge share its group (every recorded option);
    0 for a diverged run, which is never pooled."""
    alive = runs.status != "diverged"
    sizes = runs[alive].group.value_counts()
    return runs.group.map(sizes).where(alive, 0).fillna(0).astype(int)


def _series_count(runs: Any) -> int:
    sizes = pooled_sizes(runs)
    return int((sizes < BAND_MIN).sum() + runs[sizes >= BAND_MIN].group.nunique())


def mode_of(data: ReportData) -> str:
    valid = data.valid
    if data.lr_mode:
        return "lr"
    settings = valid.solver_label.unique()
    busiest = max((_series_count(g) for _, g in valid.groupby("problem")), default=0)
    return "overlay" if len(settings) <= OVERLAY_MAX_SETTINGS and busiest <= OVERLAY_MAX_LINES else "multiples"


def _start_styles(runs: Any) -> dict[str, str]:
    """A line style per start of the runs drawn as lines (numeric order), when there are at most four."""
    single = runs[pooled_sizes(runs) < BAND_MIN]
    starts = sorted(set(zip(single.start_key, single.start_label)))
    if not 2 <= len(starts) <= 4:
        return {}
    return {label: start_style(k) for k, (_, label) in enumerate(starts)}


def _series(data: ReportData, runs: Any, mode: str, colors: LrColors | None, styles: dict[str, str]
            ) -> list[Series]:
    """Bands of the groups of ``BAND_MIN`` runs or more that did not diverge, lines of the others (every
    diverged run among them): best setting first, then by learning rate and start."""
    sizes = pooled_sizes(runs).to_numpy()
    rows = list(zip(runs.run_id, runs.solver_label, runs.lr.astype(float), runs.start_key, runs.start_label,
                    runs.status, runs.group, sizes))
    rank = {s: data.rank(s) for s in set(runs.solver_label)}
    rows.sort(key=lambda r: (rank[r[1]], r[2] if math.isfinite(r[2]) else math.inf, r[3]))
    out: list[Series] = []
    bands: dict[str, Series] = {}
    for run_id, label, lr, _, start, status, group, size in rows:
        color = colors(lr) if mode == "lr" and colors is not None else data.style(label)["color"]
        diverged = int(status == "diverged")
        if size < BAND_MIN:
            out.append(Series(label, label, [run_id], False, color, styles.get(start, "-"), diverged))
        elif group in bands:
            bands[group].run_ids.append(run_id)
        else:
            bands[group] = Series(f"{label}: median of {size} starts", label, [run_id], True, color, "-", 0)
            out.append(bands[group])
    return out


def _title(label: str, runs: Any) -> str:
    n_div = int((runs.status == "diverged").sum())
    return label + (f" ({n_div} of {len(runs)} runs diverged)" if n_div else "")


def not_applicable_here(data: ReportData, problem: str) -> list[str]:
    """Solvers recorded as not applicable to the objective of ``problem`` (and that did not run on it)."""
    runs = data.runs
    name = data.problems[problem].name
    na = runs[runs.not_applicable & (runs.objective == name)]
    ran = set(data.valid[data.valid.problem == problem].solver_name)
    return sorted({str(s) for s in na.solver if s not in ran}, key=natural_key)


def _styled(runs: Any) -> tuple[dict[str, str], list[tuple[str, str]]]:
    styles = _start_styles(runs)
    return styles, sorted(styles.items(), key=lambda kv: natural_key(kv[0]))


def figure_specs(data: ReportData) -> list[FigureSpec]:
    """The curve figures' layout: one spec per figure (one per problem when panels would be too many)."""
    valid = data.valid
    if valid.empty:
        return []
    mode = mode_of(data)
    problems = data.problem_order()
    colors = LrColors(valid.lr) if mode == "lr" else None
    by_problem = dict(iter(valid.groupby("problem", sort=False)))
    if mode == "overlay":
        styles, style_list = _styled(valid)
        panels = [Panel(_title(data.problems[p].label, by_problem[p]), p, None,
                        _series(data, by_problem[p], mode, None, styles)) for p in problems]
        ncols = min(len(panels), 3)
        for k, panel in enumerate(panels):
            panel.row = k // ncols
        return [FigureSpec(mode, "", panels, math.ceil(len(panels) / ncols), ncols, style_list, colors)]
    column = "solver_name" if mode == "lr" else "solver_label"
    to_key = dict(zip(valid.solver_label, valid[column]))
    order: dict[str, int] = {}
    for label in data.ranking:  # solvers (lr mode) or settings, best first
        order.setdefault(to_key[label], len(order))
    keys = sorted(set(to_key.values()), key=lambda k: order.get(k, len(order)))
    groups = dict(iter(valid.groupby(["problem", column], sort=False)))
    if len(problems) * len(keys) <= MAX_PANELS and (len(problems) == 1 or len(keys) <= MAX_COLS):
        styles, style_list = _styled(valid)
        ncols = min(len(keys), MAX_COLS)
        panels = []
        for p in problems:  # a problem per row, or (one problem) its settings wrapped into rows
            for key in keys:
                runs = groups.get((p, key), valid.iloc[:0])
                title = key if len(problems) == 1 else f"{key} on {data.problems[p].label}"
                panels.append(Panel(_title(title, runs), p, key, _series(data, runs, mode, colors, styles),
                                    len(panels) // ncols))
        return [FigureSpec(mode, "", panels, math.ceil(len(panels) / ncols), ncols, style_list, colors)]
    specs = []
    for p in problems:
        styles, style_list = _styled(by_problem[p])
        present = [k for k in keys if (p, k) in groups]
        ncols = min(MAX_COLS, len(present))
        panels = [Panel(_title(k, groups[p, k]), p, k, _series(data, groups[p, k], mode, colors, styles), i // ncols)
                  for i, k in enumerate(present)]
        specs.append(FigureSpec(mode, data.problems[p].label, panels, math.ceil(len(panels) / ncols), ncols,
                                style_list, colors))
    return specs


# -- values, floor, axes --------------------------------------------------------------------
def y_values(t: Trace, f_ref: float, y: str) -> np.ndarray:
    return t.gap(f_ref) if y == "gap" else t.grad_norm


def x_values(t: Trace, x: str) -> np.ndarray:
    return {"iter": t.iter, "evals": t.evals, "nfev": t.nfev, "time": t.time_s}[x]


def floor_of(ys: list[np.ndarray], f_refs: list[float], y: str = "gap") -> tuple[float, bool]:
    """``(floor, any value <= 0)``, shared by the panels of a figure. With values <= 0, the floor is
    where they are drawn: ``1e-16 max(1, |f*|)`` (the smallest over the figure's problems), or a
    decade below the smallest positive value if that is lower. Without, it is the decade at or
    below the smallest positive value. Always a power of ten."""
    finite = [v[np.isfinite(v)] for v in ys]
    values = np.concatenate(finite) if finite else np.empty(0)
    positive = values[values > 0]
    zero = bool((values <= 0).any())
    if zero:
        base = min((EPS * max(1.0, abs(f)) for f in f_refs if math.isfinite(f)), default=EPS) if y == "gap" \
            else EPS
        level = min(base, float(positive.min()) / 10) if positive.size else base
    else:
        level = float(positive.min()) if positive.size else EPS
    return 10.0 ** math.floor(math.log10(max(level, 1e-300)) + 1e-9), zero


def x_axis(xs: list[np.ndarray], x: str) -> tuple[bool, float, float]:
    """``(symlog, linthresh, right end)`` for the runs' x values."""
    ends = [float(v[np.isfinite(v)][-1]) for v in xs if np.isfinite(v).any()]
    ends = [e for e in ends if e > 0] or [1.0]
    hi = max(ends)
    if x == "time":
        positive = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in xs] or [np.empty(0)])
        small = float(positive.min()) if positive.size else 1e-3
        linthresh = 10.0 ** math.floor(math.log10(max(small, 1e-9)))
    else:
        linthresh = 1.0
    symlog = hi / max(min(ends), linthresh) >= SPAN_FOR_LOG
    return symlog, linthresh, hi * (1.6 if symlog else 1.03)


# -- lines that leave the axis, lines that coincide -------------------------------------------
def exit_point(xv: np.ndarray, yv: np.ndarray, top: float) -> tuple[int, float, float] | None:
    """Where a diverged run's line leaves the axis: ``(points drawn, x, y)`` of its ✕, at the top edge
    where it crosses it (log-interpolated between its last point inside and the next), else at its
    last finite value; None when it has none."""
    ok = np.isfinite(xv) & np.isfinite(yv)
    inside = np.flatnonzero(ok & (yv <= top))
    if not inside.size:
        return None
    k = int(inside[-1])
    if k + 1 < len(yv) and ok[k + 1] and yv[k] > 0:  # the next point is finite, above the top
        t = (math.log(top) - math.log(yv[k])) / (math.log(yv[k + 1]) - math.log(yv[k]))
        return k + 1, float(xv[k] + t * (xv[k + 1] - xv[k])), top
    return k + 1, float(xv[k]), float(yv[k])


def coinciding(lines: list[tuple[np.ndarray, np.ndarray]], decades: float = COINCIDE_DECADES) -> list[list[int]]:
    """For each line ``(x, y)`` of a panel, in drawing order: the later lines that coincide with it,
    that is share its x and lie within ``decades`` of its y (log scale, values <= 0 alike) at every
    point they both have (at least two). A line drawn under others is drawn wider to show."""
    def same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
        m = min(len(a[0]), len(b[0]))
        if m < 2 or not np.array_equal(a[0][:m], b[0][:m], equal_nan=True):
            return False
        ya, yb = a[1][:m], b[1][:m]
        both = np.isfinite(ya) & np.isfinite(yb)
        if not np.array_equal(np.isfinite(ya), np.isfinite(yb)):
            return False
        pos = both & (ya > 0) & (yb > 0)
        if not np.array_equal(both & (ya > 0), both & (yb > 0)):
            return False
        return bool(np.all(np.abs(np.log10(ya[pos]) - np.log10(yb[pos])) <= decades))

    return [[j for j in range(i + 1, len(lines)) if same(lines[i], lines[j])] for i in range(len(lines))]
