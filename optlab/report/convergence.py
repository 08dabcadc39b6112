"""Convergence curves: f - f* (or the gradient norm) against iteration, evaluations or time.

The layout (which runs share a panel, bands or lines, the floor for exact values, the x scale)
is decided in :mod:`.layout`; this module draws it. :func:`convergence_figure` returns a
``matplotlib.figure.Figure``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .data import BATCH_NOTE, COSTS, ReportData, time_claims
from .layout import (
    BAND_MIN,
    HALO,
    FigureSpec,
    coinciding,
    exit_point,
    figure_specs,
    floor_of,
    not_applicable_here,
    x_axis,
    x_values,
    y_values,
)
from .links import setting_href, slug, unit_href
from .style import (
    BAR_WIDTH,
    DIVERGED_COLOR,
    Plot,
    bar_and_legend,
    context,
    count_axis,
    grid,
    legend_width,
    log_y,
    needs_bar,
    title,
)

MANY_LINES = 30  # more lines in a panel are drawn thin and translucent
LINE_WIDTH = 1.3
MAX_POINTS = 20_000
X_LABELS = {"iter": "iteration", "evals": "evaluations (nfev + ngev + nhev)", "nfev": "function evaluations (nfev)",
            "time": "wall-clock time since the start of the run (s)"}
Y_LABELS = {"gap": "f − f*", "grad": "‖∇f(x)‖"}
EXACT = {"gap": "exact (f − f* ≤ 0)", "grad": "exact (‖∇f‖ = 0)"}


def convergence_figure(data: ReportData, spec: FigureSpec | None = None, x: str = "iter", y: str = "gap"
                       ) -> Figure:
    """f - f* (``y="gap"``) or ||grad f|| (``y="grad"``) against ``x``: "iter", "evals", "nfev" or "time"."""
    spec = spec or figure_specs(data)[0]
    with context():
        return _draw(data, spec, x, y)


def _thin(a: np.ndarray) -> np.ndarray:
    if a.size <= MAX_POINTS:
        return a
    step = math.ceil(a.size / MAX_POINTS)
    return np.r_[a[::step], a[-1:]]


def _draw(data: ReportData, spec: FigureSpec, x: str, y: str) -> Figure:
    valid = data.valid
    ids = [r for p in spec.panels for s in p.series for r in s.run_ids]
    f_ref = dict(zip(valid.run_id, valid.f_ref.astype(float)))
    state = dict(zip(valid.run_id, valid.status))
    batch = dict(zip(valid.run_id, valid.batched > 0))
    ys = {r: y_values(data.traces[r], f_ref[r], y) for r in ids}
    xs = {r: x_values(data.traces[r], x) for r in ids}
    floor, zero = floor_of(list(ys.values()), sorted({f_ref[r] for r in ids}), y)
    symlog, linthresh, hi = x_axis(list(xs.values()), x)
    under = _under(spec, xs, ys)
    diverged = sum(state[r] == "diverged" for r in ids)
    handles = _legend(data, spec, zero, y, (diverged, len(ids)), x == "time", _same_paths(spec, under))
    na = sorted({s for p in {p.problem for p in spec.panels} for s in not_applicable_here(data, p)})
    if na and spec.mode != "overlay":
        handles.append(Patch(color="none", label="not applicable here:"))
        handles += [Patch(color="none", label=f"  {s}") for s in na]
    width = legend_width([h.get_label() for h in handles]) if handles else 0.3
    one_problem = len({p.problem for p in spec.panels}) == 1
    sharey = True if one_problem else ("row" if spec.mode != "overlay" else False)
    g = grid(spec.nrows, spec.ncols, w=3.3 if spec.ncols > 1 else 4.6, h=2.35 if spec.nrows > 1 else 3.0,
             right=width + (BAR_WIDTH if needs_bar(spec.colors) else 0), top=0.7,
             wspace=0.25 if sharey else 0.85, sharex=True, sharey=sharey, legend_rows=len(handles),
             title=f"{'f − f*' if y == 'gap' else 'gradient norm'} against {X_LABELS[x].split(' (')[0]}"
             + (f" on {spec.suffix}" if spec.suffix else ""))
    keys = [0 if one_problem else (panel.row if spec.mode != "overlay" else i) for i, panel in enumerate(spec.panels)]
    tops: dict[int, float] = {}
    for key, panel in zip(keys, spec.panels):  # the top of the axis: shared by panels that share y
        for s in panel.series:
            top = _top([ys[r] for r in s.run_ids], [state[r] for r in s.run_ids])
            tops[key] = max(tops.get(key, floor * 1e3), top)
    for ax, panel, key in zip(g.axes.ravel(), spec.panels, keys):
        top = 10.0 ** math.ceil(math.log10(tops.get(key, floor * 1e3) * 3))
        clocked = x == "time" and spec.mode != "overlay" and any(batch[r] for t in panel.series for r in t.run_ids)
        title(ax, panel.title + (f" ({BATCH_NOTE})" if clocked else ""), pad=10)
        if not panel.series:
            na = panel.key in not_applicable_here(data, panel.problem) if panel.key else False
            ax.text(0.5, 0.5, "not applicable to this problem" if na else "did not run on this problem",
                    ha="center", va="center", transform=ax.transAxes, color="grey")
        marks: dict[str, list] = {"exact": [], "diverged": []}
        many: list | None = [] if sum(not t.band for t in panel.series) > MANY_LINES else None
        for s in panel.series:
            sx, sy = [xs[r] for r in s.run_ids], [ys[r] for r in s.run_ids]
            href = unit_href(s.setting, data.problems[panel.problem].label)
            if s.band:
                _band(ax, sx, sy, floor, top, s.color, symlog, linthresh, marks,
                      fade=1.0 if len(panel.series) <= 3 else 0.5).set_url(href)
            else:
                widths = [LINE_WIDTH + HALO * len(under.get(r, ())) for r in s.run_ids]
                _lines(ax, sx, sy, [state[r] for r in s.run_ids], floor, top, s.color, s.ls, marks, many, widths,
                       href)
        if many:  # thin and translucent, one collection for the panel
            segments, colors, styles = zip(*many)
            ax.add_collection(LineCollection(segments, colors=list(colors), linestyles=list(styles), linewidths=0.6,
                                             alpha=0.35), autolim=False)
        _marks(ax, marks)
        log_y(ax, floor if zero else None, floor / (2.5 if zero else 10), top, "≤ 0" if y == "gap" else "0")
        count_axis(ax, symlog, linthresh, hi)
    _axis_labels(g, data, spec, x, y, one_problem)
    bar_and_legend(g, spec.colors if spec.mode == "lr" else None, handles)
    return g.fig


def _axis_labels(g: Any, data: ReportData, spec: FigureSpec, x: str, y: str, one_problem: bool) -> None:
    """x labelled under the last panel of each column, y in the first column (every panel when overlaid
    panels of different problems do not share y); the unused panels hidden."""
    n = len(spec.panels)
    ylabel = Y_LABELS[y] if y != "gap" or all(data.problems[p.problem].f_star is not None for p in spec.panels) \
        else "f − f* (f*, or the best f found)"
    for k, ax in enumerate(g.axes.ravel()[:n]):
        if k + spec.ncols >= n:  # no panel below: the x axis is labelled
            ax.set_xlabel(X_LABELS[x])
            ax.xaxis.set_tick_params(labelbottom=True)
        if k % spec.ncols == 0 or not (one_problem or spec.mode != "overlay"):
            ax.set_ylabel(ylabel)
    for ax in g.axes.ravel()[n:]:
        ax.set_visible(False)


def _under(spec: FigureSpec, xs: dict[str, np.ndarray], ys: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Run -> the runs of its panel drawn after it along the same line (see :func:`.layout.coinciding`)."""
    out: dict[str, list[str]] = {}
    for panel in spec.panels:
        runs = [r for s in panel.series if not s.band for r in s.run_ids]
        if len(runs) > MANY_LINES:
            continue
        for r, later in zip(runs, coinciding([(xs[r], ys[r]) for r in runs])):
            if later:
                out[r] = [runs[j] for j in later]
    return out


def _same_paths(spec: FigureSpec, under: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Setting -> {a setting drawn on top of it along the same line: in how many runs}."""
    setting = {r: s.setting for p in spec.panels for s in p.series for r in s.run_ids}
    out: dict[str, dict[str, int]] = {}
    for r, later in under.items():
        for other in {setting[o] for o in later} - {setting[r]}:
            out.setdefault(setting[r], {}).setdefault(other, 0)
            out[setting[r]][other] += 1
    return out


def _top(ys: list[np.ndarray], status: list[str]) -> float:
    """The highest value worth showing: what runs that did not diverge reach, and every run's start."""
    values = [v[np.isfinite(v)] for v, s in zip(ys, status) if s != "diverged"] + [v[:1] for v in ys]
    finite = np.concatenate(values) if values else np.empty(0)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    return float(finite.max()) if finite.size else 0.0


def _lines(ax: Any, xs: list[np.ndarray], ys: list[np.ndarray], status: list[str], floor: float, top: float,
           color: Any, ls: str, marks: dict[str, list], many: list | None, widths: list[float], href: str) -> None:
    """One line per run (or, with ``many`` a list, its segments for a shared collection), linking to
    ``href``; a diverged run's line ends where it leaves the axis, at its ✕."""
    for xv, yv, st, lw in zip(xs, ys, status, widths):
        ok = np.isfinite(yv) & np.isfinite(xv)
        shown = np.where(ok, np.where(yv > 0, yv, floor), np.nan)
        exact = np.flatnonzero(ok & (yv <= 0))
        if st == "diverged":
            leaves = exit_point(xv, shown, top)
            if leaves is None:
                continue
            n, x_out, y_out = leaves
            xv, shown = np.r_[xv[:n], x_out], np.r_[shown[:n], y_out]
            marks["diverged"].append((x_out, y_out, color))
            exact = exact[exact < n]
        if many is not None:
            many.append((np.column_stack([_thin(xv), _thin(shown)]), color, ls))
        else:
            ax.plot(_thin(xv), _thin(shown), color=color, ls=ls, lw=lw, alpha=0.9 if lw == LINE_WIDTH else 0.55,
                    marker="o" if np.isfinite(shown).sum() == 1 else None, ms=4,  # a run of one iterate: a point
                    url=href)
        if exact.size:
            marks["exact"].append((xv[exact[0]], floor, color))


def _marks(ax: Any, marks: dict[str, list]) -> None:
    """The ▼ where runs first reach the floor and the ✕ where diverged runs leave, one collection each."""
    for kind, (marker, size, edge, width) in {"exact": ("v", 40, "black", 0.6),
                                              "diverged": ("X", 60, DIVERGED_COLOR, 1.3)}.items():
        if marks[kind]:
            x, y, c = zip(*marks[kind])
            ax.scatter(x, y, s=size, marker=marker, c=list(c), edgecolors=edge, linewidths=width, zorder=6,
                       clip_on=False)


def _grid_points(xs: list[np.ndarray], symlog: bool, linthresh: float) -> np.ndarray:
    end = max(float(v[-1]) for v in xs if v.size)
    start = min(float(v[0]) for v in xs if v.size)
    if not symlog or end <= linthresh:
        return np.linspace(start, end, 240)
    near = np.linspace(start, linthresh, 20)
    return np.unique(np.r_[near, np.geomspace(linthresh, end, 240)])


def _band(ax: Any, xs: list[np.ndarray], ys: list[np.ndarray], floor: float, top: float, color: Any,
          symlog: bool, linthresh: float, marks: dict[str, list], fade: float = 1.0) -> Any:
    """Median and quantile bands of step functions held at their last value (of runs that did not diverge:
    :func:`.layout.pooled_sizes`); a value that is not finite counts as off the top."""
    grid_x = _grid_points(xs, symlog, linthresh)
    table = np.empty((len(xs), grid_x.size))
    for k, (xv, yv) in enumerate(zip(xs, ys)):
        held = np.where(np.isnan(yv), np.inf, yv)
        idx = np.clip(np.searchsorted(xv, grid_x, side="right") - 1, 0, len(xv) - 1)
        table[k] = held[idx]
    q = np.quantile(table, [0.1, 0.25, 0.5, 0.75, 0.9], axis=0, method="nearest")
    shown = np.where(q > 0, np.minimum(q, top * 1e3), floor)
    ax.fill_between(grid_x, shown[0], shown[4], color=color, alpha=0.16 * fade, lw=0)
    ax.fill_between(grid_x, shown[1], shown[3], color=color, alpha=0.32 * fade, lw=0)
    (median,) = ax.plot(grid_x, np.where(np.isfinite(q[2]), shown[2], np.nan), color=color, lw=1.7)
    exact = np.flatnonzero(q[2] <= 0)
    if exact.size:
        marks["exact"].append((grid_x[exact[0]], floor, color))
    return median


def _legend(data: ReportData, spec: FigureSpec, zero: bool, y: str, diverged: tuple[int, int], clock: bool,
            same: dict[str, dict[str, int]]) -> list:
    handles: list = []
    if spec.mode == "lr" and spec.colors is not None:
        if spec.colors.discrete:
            handles.append(Patch(color="none", label="learning rate"))
            handles += spec.colors.handles()
    elif spec.mode == "overlay":
        seen = list(dict.fromkeys(s.setting for p in spec.panels for s in p.series))
        batched = set(data.valid[data.valid.batched > 0].solver_label) if clock else set()
        for setting in sorted(seen, key=data.rank):
            note = f" ({BATCH_NOTE})" if setting in batched else ""
            on = [f"{other} runs on it in {n} run{'s' * (n > 1)}" for other, n in sorted(same.get(setting, {}).items())]
            note += f" (the wide line: {'; '.join(on)})" if on else ""
            handles.append(Line2D([], [], color=data.style(setting)["color"], lw=2, label=setting + note,
                                  url=setting_href(setting)))
    if any(s.band for p in spec.panels for s in p.series):
        handles.append(Patch(facecolor="grey", alpha=0.4,
                             label="median, 25–75% and 10–90% of the starts that did not diverge"))
    if spec.starts:
        handles.append(Patch(color="none", label="start x0 (line style)"))
        handles += [Line2D([], [], color="#555555", ls=ls, lw=1.4, label=label) for label, ls in spec.starts]
    if zero:
        handles.append(Line2D([], [], ls="", marker="v", mfc="white", mec="black", label=EXACT[y]))
    if diverged[0]:
        handles.append(Line2D([], [], ls="", marker="X", mfc="white", mec=DIVERGED_COLOR, mew=1.3,
                              label=f"diverged ({diverged[0]} of {diverged[1]} runs): where it leaves"))
    return handles


# -- tasks and captions ----------------------------------------------------------------------
def convergence_tasks(data: ReportData) -> list[tuple[Plot, str, dict[str, Any]]]:
    """``(plot, function, keyword arguments)`` for every curve figure."""
    if data.valid.empty:
        return []
    evals = "nfev" if data.cost == "nfev" else "evals"
    kinds = [("iter", "gap", "convergence_iteration"), (evals, "gap", "convergence_evaluations"),
             ("time", "gap", "convergence_time"), ("iter", "grad", "grad_norm_iter")]
    # A figure per problem (many settings on many problems): f - f* against iteration and the cost only.
    cost_kind = [kinds[2] if data.cost == "time" else kinds[1]]
    out = []
    for k, spec in enumerate(figure_specs(data)):
        tail = f"_{slug(spec.suffix)}_{k}" if spec.suffix else ""
        for x, y, stem in (kinds[:1] + cost_kind if spec.suffix else kinds):
            title = (f"{'f − f*' if y == 'gap' else 'gradient norm'} against {X_LABELS[x].split(' (')[0]}"
                     + (f" on {spec.suffix}" if spec.suffix else ""))
            section = "Convergence" + (f": {spec.suffix}" if spec.suffix else "")
            out.append((Plot(stem + tail, section, title, _caption(data, spec, x, y)), "convergence_figure",
                        {"spec": spec, "x": x, "y": y}))
    return out


def _caption(data: ReportData, spec: FigureSpec, x: str, y: str) -> str:
    layout = {"overlay": "one panel per problem, the solver settings overlaid (colours; legend best first)",
              "lr": "one panel per solver (best first) and problem, coloured by learning rate",
              "multiples": "one panel per solver setting (best first), all panels on the same axes"}[spec.mode]
    text = (f"{Y_LABELS[y]} at every iterate against {X_LABELS[x]}: {layout}. Runs that share every recorded "
            f"option, {BAND_MIN} or more of them that did not diverge (one setting from many generated starts), are "
            "drawn as their median with 25–75% and 10–90% bands, a stopped run held at its last value; runs that "
            "differ in any option (start, stopping rule, ...) are separate lines, their starts told apart by line "
            "style. A diverged run is never pooled: it is a line of its own, ending in ✕ where it leaves the axis "
            "(or at its last finite value), and the legend counts them. Lines that coincide are drawn one on the "
            "other, the one beneath wider. Values ≤ 0 are drawn at the floor marked “≤ 0”, the same in every "
            "panel, with ▼ where a run first gets there. The y axis is logarithmic; where the runs' lengths span "
            "decades, so is the x axis beyond 1 (linear from 0 to 1).")
    if spec.suffix:
        text += (" With a figure per problem (many settings on many problems), f − f* is drawn against iteration "
                 "and against the profiles' cost only (--cost nfev, evals or time).")
    text += time_claims(data.valid, x, batched_names=True)
    if x in ("evals", "nfev"):
        text += f" Cost: {COSTS[x]}."
    unknown = [p.label for p in data.problems.values() if p.f_star is None]
    if unknown and y == "gap":
        text += " f* is unknown for " + ", ".join(unknown) + ": there the gap is to the best value any run found."
    return text
