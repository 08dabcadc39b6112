"""Basins of attraction: each start point of a multi-start setting coloured by the minimum its run
reached. Only for 1-D and 2-D problems the report could rebuild."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .data import ReportData
from .landscape import background
from .links import slug
from .problems import ProblemInfo
from .style import DIVERGED_COLOR, Plot, context, grid, legend_width, outer_labels, title

BASIN_MIN_STARTS = 9
BASIN_MIN_GRID = 4  # a grid of starts is laid out to map the basins
MAX_BASIN_PANELS = 16
BASIN_RADIUS = 0.02  # "reached a minimiser": ended within this fraction of the box diagonal
BASIN_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
OTHER_COLORS = {"saddle point": "#f2c12e", "maximum": "#5b2c83", "elsewhere": "#b0b0b0", "diverged": DIVERGED_COLOR,
                "failed": "#000000"}


def classify(final: np.ndarray | None, status: str, targets: np.ndarray, radius: float,
             point: str | None = None) -> str | int:
    """Index of the target ``final`` ended within ``radius`` of, or what happened instead
    (converged at a saddle point or a maximum, elsewhere, diverged, failed)."""
    if status == "diverged":
        return "diverged"
    if status in ("failed", "error"):
        return "failed"
    if status == "converged" and point in ("saddle", "maximum"):
        return "saddle point" if point == "saddle" else "maximum"
    if final is None or not np.all(np.isfinite(final)) or not len(targets):
        return "elsewhere"
    d = np.linalg.norm(targets - final, axis=1)
    k = int(np.argmin(d))
    return k if d[k] <= radius else "elsewhere"


def _points(runs: Any) -> Any:
    """The kind of point each run's record names (None where it names none)."""
    import pandas as pd

    return runs["point"] if "point" in runs else pd.Series([None] * len(runs), index=runs.index)


def _vector(x: Any) -> np.ndarray | None:
    return np.asarray(x, dtype=float) if isinstance(x, (list, tuple, np.ndarray)) else None


def _targets(info: ProblemInfo, finals: list, radius: float) -> np.ndarray:
    """The known minimisers, or else the distinct points where converged runs ended."""
    if len(info.minimizers):
        return info.minimizers
    found: list[np.ndarray] = []
    for f in finals:
        if f is not None and f.size == info.dim and np.all(np.isfinite(f)) and \
                all(np.linalg.norm(f - g) > radius for g in found):
            found.append(f)
    return np.array(found).reshape(-1, info.dim)


def _grid(runs: Any) -> bool:
    return all(isinstance(s, dict) and s.get("kind") == "grid" for s in runs.start)


def basin_groups(data: ReportData, problem: str) -> list[tuple[str, Any]]:
    """The settings (best first) that ran on ``problem`` from a grid of ``BASIN_MIN_GRID`` or more starts,
    or from ``BASIN_MIN_STARTS`` or more starts of any kind."""
    runs = data.valid[data.valid.problem == problem]
    groups = [(label, g) for label, g in runs.groupby("solver_label")
              if g.start_label.nunique() >= (BASIN_MIN_GRID if _grid(g) else BASIN_MIN_STARTS)]
    return sorted(groups, key=lambda kv: data.rank(kv[0]))[:MAX_BASIN_PANELS]


def basin_figure(data: ReportData, problem: str) -> Figure:
    with context():
        return _figure(data, problem)


def _figure(data: ReportData, problem: str) -> Figure:
    info = data.problems[problem]
    groups = basin_groups(data, problem)
    runs = data.valid[data.valid.problem == problem]
    radius = BASIN_RADIUS * float(np.linalg.norm(info.box[:, 1] - info.box[:, 0]))
    converged = runs[(runs.status == "converged") & ~_points(runs).isin(["saddle", "maximum"])]
    targets = _targets(info, [_vector(x) for x in converged.get("x_final", [])], radius)
    fates = {classify(_vector(x), st, targets, radius, p) for _, g in groups
             for x, st, p in zip(g.x_final if "x_final" in g else [None] * len(g), g.status, _points(g))}
    handles = _legend(targets, {f for f in fates if isinstance(f, str)})
    ncols = min(len(groups), 3)
    g = grid(math.ceil(len(groups) / ncols), ncols, w=3.6, h=3.0, right=legend_width([h.get_label() for h in
                                                                                        handles]), top=0.7,
             wspace=0.4, sharex=True, sharey=True, legend_rows=len(handles),
             title=f"Basins of attraction on {info.label}: which minimum each start reaches")
    for ax, (label, runs_g) in zip(g.axes.ravel(), groups):
        _panel(ax, info, runs_g, targets, radius)
        title(ax, label, 8.5)
    outer_labels(g, len(groups))
    g.fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(g.right_x, g.top_y), frameon=False,
                 borderaxespad=0)
    return g.fig


def _panel(ax: Any, info: ProblemInfo, runs: Any, targets: np.ndarray, radius: float) -> None:
    background(ax, info, filled=False)
    starts = np.array([_vector(x) for x in runs.x0], dtype=float).reshape(len(runs), info.dim)
    finals = runs.x_final if "x_final" in runs else [None] * len(runs)
    fates = [classify(_vector(x), s, targets, radius, p) for x, s, p in zip(finals, runs.status, _points(runs))]
    colors = [BASIN_COLORS[f % len(BASIN_COLORS)] if isinstance(f, int) else OTHER_COLORS[f] for f in fates]
    if info.dim == 2:
        xs, ys = np.unique(starts[:, 0]), np.unique(starts[:, 1])
        if len(xs) * len(ys) == len(runs) and len(xs) > 1 and len(ys) > 1:  # a grid: one tile per start
            w, h = np.min(np.diff(xs)), np.min(np.diff(ys))
            tiles = [Rectangle((x - w / 2, y - h / 2), w, h) for x, y in starts]
            ax.add_collection(PatchCollection(tiles, facecolors=colors, edgecolors="white", linewidths=0.5,
                                              alpha=0.8, zorder=2))
            ax.set_xlim(min(xs[0] - w / 2, ax.get_xlim()[0]), max(xs[-1] + w / 2, ax.get_xlim()[1]))
            ax.set_ylim(min(ys[0] - h / 2, ax.get_ylim()[0]), max(ys[-1] + h / 2, ax.get_ylim()[1]))
        else:
            ax.scatter(starts[:, 0], starts[:, 1], c=colors, s=22, edgecolors="none", alpha=0.85, zorder=2)
    else:
        ys = np.array([info.value(s) for s in starts])
        ax.scatter(starts[:, 0], ys, c=colors, s=36, edgecolors="black", linewidths=0.4, zorder=4)
        ax.scatter(starts[:, 0], np.full(len(starts), ax.get_ylim()[0]), c=colors, s=60, marker="|", zorder=4,
                   clip_on=False)
    for k, m in enumerate(targets):
        y = m[1] if info.dim == 2 else info.value(m)
        ax.plot(m[0], y, "*", ms=15, mfc=BASIN_COLORS[k % len(BASIN_COLORS)], mec="black", mew=0.9, zorder=6)


def _legend(targets: np.ndarray, others: set[str]) -> list:
    def point(m: np.ndarray) -> str:
        return "(" + ", ".join(f"{v:.3g}" for v in m) + ")"

    handles = [Line2D([], [], ls="", marker="s", color=BASIN_COLORS[k % len(BASIN_COLORS)],
                      label=f"reaches {point(m)}") for k, m in enumerate(targets)]
    handles += [Line2D([], [], ls="", marker="s", color=c, label=name) for name, c in OTHER_COLORS.items()
                if name in others]
    return handles


def basin_tasks(data: ReportData) -> list[tuple[Plot, str, dict[str, Any]]]:
    out = []
    for k, problem in enumerate(data.problem_order()):
        info = data.problems[problem]
        if info.dim not in (1, 2) or not basin_groups(data, problem) or not info.plottable:
            continue
        kind = "known minimiser" if len(info.minimizers) else "point where converged runs ended"
        caption = (f"Each marker is a start point, coloured by the {kind} (star of the same colour) its run ended "
                   f"within 2% of the box diagonal of; yellow: converged to a saddle point, purple: to a maximum "
                   f"(by the Hessian's eigenvalues there); grey: ended elsewhere (not converged there), red: "
                   f"diverged, black: the method failed. One panel per solver setting "
                   f"with a grid of {BASIN_MIN_GRID} or more starts, or {BASIN_MIN_STARTS} or more of any kind, "
                   f"best first.")
        out.append((Plot(f"basins_{slug(info.label)}_{k}", "Basins of attraction", f"basins on {info.label}",
                         caption), "basin_figure", {"problem": problem}))
    return out
