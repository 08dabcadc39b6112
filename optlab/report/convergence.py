"""Convergence curves: f - f* (or the gradient norm) against iteration, time or evaluations.

Panels: one row per problem, one column per solver. One line per run, coloured by learning
rate; a group of ``BAND_MIN`` or more runs with the same solver options (e.g. one learning
rate from many starts) becomes its median with 25-75% and 10-90% bands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .data import ReportData, Trace
from .style import (
    DIVERGED_COLOR,
    PANEL_H,
    PANEL_W,
    SETTING_COLORS,
    LrColors,
    Plot,
    decades,
    hide_unused,
    log_floor,
    new_figure,
    panel_grid,
    save,
)

BAND_MIN = 5
MAX_SOLVER_COLUMNS = 6  # more solvers than this share one panel per problem, coloured by solver
GRID_POINTS = 240

X_AXES = {
    "iter": ("iteration", "iteration"),
    "time_s": ("time", "wall-clock time since the start of the run (s)"),
    "nfev": ("evaluations", "function evaluations (nfev, cumulative)"),
}


def _gap(t: Trace, f_ref: float) -> np.ndarray:
    return t.gap(f_ref)


def _grad_norm(t: Trace, f_ref: float) -> np.ndarray:
    return t.grad_norm


def _gap_label(known: bool) -> str:
    return "f − f*" if known else "f − best f found (f* unknown)"


def convergence_plots(data: ReportData, out_dir: Path) -> list[Plot]:
    valid = data.valid
    if valid.empty:
        return []
    plots = []
    for xcol, (short, xlabel) in X_AXES.items():
        name = f"convergence_{short}"
        _figure(data, out_dir, name, _gap, xcol, xlabel, _gap_label, f"Convergence: f − f* against {short} (log scale)")
        plots.append(Plot(name, "Convergence", f"f − f* against {short}", _caption(data, short, "the gap f − f*")))
    _figure(data, out_dir, "grad_norm_iter", _grad_norm, "iter", X_AXES["iter"][1],
            lambda known: "‖∇f(x)‖", "Gradient norm against iteration (log scale)")
    plots.append(Plot("grad_norm_iter", "Convergence", "gradient norm against iteration",
                      _caption(data, "iteration", "the gradient norm ‖∇f(x_k)‖")))
    return plots


def _caption(data: ReportData, short: str, what: str) -> str:
    unknown = [p.label for p in data.problems.values() if p.f_star is None]
    if data.valid.solver_name.nunique() <= MAX_SOLVER_COLUMNS:
        layout = ("one panel per problem (rows) and solver (columns), one line per run, coloured by learning rate "
                  "on a log scale (black: a solver without a learning rate)")
    else:
        layout = "one panel per problem, one line per run, coloured by solver setting (legend on the right)"
    text = (f"{what.capitalize()} at every iterate against {short}: {layout}. "
            f"Where {BAND_MIN} or more runs share the same solver options (for example one learning "
            f"rate from many start points) they are drawn as their median (line) with 25–75% (dark) and 10–90% "
            f"(light) bands; a run that has stopped keeps its last value. A red ✕ marks the last finite value "
            f"of a run that diverged; values at or below zero are drawn at the bottom of the axis.")
    if unknown and what.startswith("the gap"):
        text += (" f* is unknown for " + ", ".join(unknown) + ": there the gap is measured from the best value "
                 "any run found.")
    return text


def _figure(data: ReportData, out_dir: Path, name: str, series: Callable[[Trace, float], np.ndarray],
            xcol: str, xlabel: str, ylabel: Callable[[bool], str], title: str) -> None:
    valid = data.valid
    problems = sorted(valid.problem.unique(), key=lambda k: data.problems[k].label)
    solvers = sorted(valid.solver_name.unique())
    if len(solvers) <= MAX_SOLVER_COLUMNS:  # a panel per problem and solver, colour by learning rate
        colors = LrColors(valid.lr)
        cells = [(key, s) for key in problems for s in solvers]
        nrows, ncols = len(problems), len(solvers)

        def color_of(label: str, group) -> Any:
            return colors(float(group.lr.iloc[0]))
    else:  # many solvers: a panel per problem, colour by solver setting
        settings = sorted(valid.solver_label.unique())
        palette = {s: SETTING_COLORS[k % len(SETTING_COLORS)] for k, s in enumerate(settings)}
        cells = [(key, None) for key in problems]
        nrows, ncols = panel_grid(len(problems), 3)

        def color_of(label: str, group) -> Any:
            return palette[label]
    by_solver = cells[0][1] is not None
    fig, axes = new_figure(nrows, ncols, w=PANEL_W if by_solver else 4.6, h=PANEL_H if by_solver else 3.3,
                           extra_w=1.2 if by_solver and colors.active else 0.0)
    for ax, (key, solver) in zip(axes.ravel(), cells):
        rows = valid[valid.problem == key]
        sub = rows if solver is None else rows[rows.solver_name == solver]
        ax.set_title(f"{solver} on {data.problems[key].label}" if solver else data.problems[key].label)
        if sub.empty:
            ax.text(0.5, 0.5, f"{solver} did not run on this problem", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
            ax.set_axis_off()
            continue
        ys = {r.run_id: series(data.traces[r.run_id], r.f_ref) for r in sub.itertuples()}
        floor = log_floor(np.concatenate(list(ys.values())))
        _panel(ax, sub, data, ys, xcol, floor, color_of, label_groups=by_solver)
        ax.set_yscale("log")
        decades(ax.yaxis)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel(data.problems[key].f_star is not None))
    hide_unused(axes, len(cells))
    if by_solver:
        colors.colorbar(fig, axes)
    else:
        handles = [Line2D([], [], color=c, lw=2, label=s) for s, c in palette.items()]
        fig.legend(handles=handles, loc="outside right upper", title="solver setting", frameon=False)
    fig.suptitle(title + (colors.note() if by_solver else ""))
    save(fig, out_dir, name)


def _panel(ax, sub, data: ReportData, ys: dict[str, np.ndarray], xcol: str, floor: float,
           color_of: Callable[[str, Any], Any], label_groups: bool) -> None:
    handles = []
    top = floor  # the top of the axis: what runs that did not diverge reach (a diverged run leaves it)
    diverged_at: list[tuple[float, float]] = []
    for label, group in sub.groupby("solver_label", sort=True):
        color = color_of(label, group)
        traces = [data.traces[r] for r in group.run_id]
        series = [ys[r] for r in group.run_id]
        diverged = (group.status == "diverged").to_numpy()
        if len(group) >= BAND_MIN:
            _band(ax, [getattr(t, xcol) for t in traces], series, floor, color,
                  fade=1.0 if sub.solver_label.nunique() <= 3 else 0.5)
            top = max(top, _top(series, diverged))
            n_div = int(diverged.sum())
            if label_groups:
                handles.append(Patch(facecolor=color, alpha=0.45, label=f"{label}: median of {len(group)} runs"
                                     + (f" ({n_div} diverged)" if n_div else "")))
        else:
            for t, y, div in zip(traces, series, diverged):
                x = getattr(t, xcol)
                shown = np.where(np.isfinite(y), np.maximum(y, floor), np.nan)
                ax.plot(x, shown, color=color, lw=1.1, alpha=0.85)
                finite = np.flatnonzero(np.isfinite(shown))
                if finite.size:
                    top = max(top, float(shown[finite[0]]) if div else float(np.nanmax(shown)))
                if div and finite.size:
                    diverged_at.append((x[finite[-1]], shown[finite[-1]]))
            if label_groups and not np.isfinite(group.lr.iloc[0]):
                handles.append(Line2D([], [], color=color, label=label))
    if len(handles) > 4:  # one entry per setting would hide the curves: the colour bar names the rates
        n_div = int((sub.status == "diverged").sum())
        handles = [Patch(facecolor="grey", alpha=0.45, label="median and bands per setting"
                         + (f" ({n_div} of {len(sub)} runs diverged)" if n_div else ""))]
    top = top * 30 if top > floor else floor * 10
    for x, y in diverged_at:  # drawn at the top edge when the blow-up leaves the axis
        ax.plot(x, min(y, top), "x", color=DIVERGED_COLOR, ms=7, mew=2, clip_on=False, zorder=5)
    if (sub.status == "diverged").any():
        handles.append(Line2D([], [], ls="", marker="x", color=DIVERGED_COLOR, mew=2, label="diverged"))
    ax.set_ylim(floor, top)
    if handles:
        ax.legend(handles=handles, loc="upper right", framealpha=0.8)


def _top(ys: list[np.ndarray], diverged: np.ndarray) -> float:
    """The highest value worth showing: the runs that did not diverge, and every run's start."""
    values = [y[np.isfinite(y)] for y, d in zip(ys, diverged) if not d] + [y[:1] for y in ys]
    finite = np.concatenate(values) if values else np.empty(0)
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else 0.0


def _band(ax, xs: list[np.ndarray], ys: list[np.ndarray], floor: float, color, fade: float = 1.0) -> None:
    """Median and quantile bands of step functions held at their last value."""
    end = max(float(x[-1]) for x in xs if x.size)
    start = min(float(x[0]) for x in xs if x.size)
    grid = np.linspace(start, end, GRID_POINTS)
    table = np.empty((len(xs), grid.size))
    for k, (x, y) in enumerate(zip(xs, ys)):
        held = np.where(np.isfinite(y), y, np.inf)
        idx = np.clip(np.searchsorted(x, grid, side="right") - 1, 0, len(x) - 1)
        table[k] = held[idx]
    q = np.quantile(table, [0.1, 0.25, 0.5, 0.75, 0.9], axis=0, method="nearest")
    shown = np.clip(np.where(np.isfinite(q), q, np.finfo(float).max), floor, 1e300)  # inf: off the top
    ax.fill_between(grid, shown[0], shown[4], color=color, alpha=0.18 * fade, lw=0)
    ax.fill_between(grid, shown[1], shown[3], color=color, alpha=0.35 * fade, lw=0)
    ax.plot(grid, np.where(np.isfinite(q[2]), shown[2], np.nan), color=color, lw=1.6)
