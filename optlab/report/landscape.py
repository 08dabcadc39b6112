"""Figures over the objective itself: paths over filled contours (2-D) or the curve (1-D), and
basins of attraction of multi-start runs. Only for objectives the report could rebuild."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .data import ReportData
from .problems import ProblemInfo
from .style import DIVERGED_COLOR, LrColors, Plot, decades, hide_unused, new_figure, panel_grid, save, slug

MAX_PATHS = 25
BASIN_MIN_STARTS = 4
MAX_BASIN_PANELS = 12
BASIN_RADIUS = 0.02  # "reached a minimiser": ended within this fraction of the box diagonal
BASIN_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
FILL_CMAP = ListedColormap(matplotlib.colormaps["Blues_r"](np.linspace(0.15, 1.0, 256)) * [1, 1, 1, 0.8])
OTHER_COLORS = {"elsewhere": "#b0b0b0", "diverged": DIVERGED_COLOR, "failed": "#000000"}


def _background(ax, info: ProblemInfo, filled: bool = True):
    """Filled log-spaced contours of f - min f (2-D), or the curve of f (1-D)."""
    box = info.box
    if info.dim == 1:
        xs, fs = info.surface()
        ax.plot(xs, fs, color="#888888", lw=1.5, zorder=1)
        ax.set_xlim(*box[0])
        ax.set_xlabel("x")
        ax.set_ylabel("f(x)")
        return None
    X, Y, F = info.surface()
    low = np.nanmin(F) if info.f_star is None else min(np.nanmin(F), info.f_star)
    span = max(float(np.nanmax(F) - low), 1e-12)
    shifted = F - low + span * 1e-6
    levels = np.geomspace(span * 1e-6, span * (1 + 1e-6), 18)
    if filled:  # filled contours drawn as an image: the same bands, far cheaper to draw and to store as SVG
        cs = ax.imshow(shifted, origin="lower", extent=(*box[0], *box[1]), aspect="auto", cmap=FILL_CMAP,
                       norm=BoundaryNorm(levels, FILL_CMAP.N, extend="both"), interpolation="bilinear", zorder=0)
    else:
        cs = None
        ax.contour(X, Y, shifted, levels=levels, colors="#999999", linewidths=0.5, zorder=0)
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    ax.set_xlabel("x₀")
    ax.set_ylabel("x₁")
    return cs


def _minimizers(ax, info: ProblemInfo, colors: list | None = None) -> None:
    for k, m in enumerate(info.minimizers):
        color = "white" if colors is None else colors[k % len(colors)]
        if info.dim == 2:
            ax.plot(m[0], m[1], "*", ms=13, mfc=color, mec="black", mew=0.8, zorder=6)
        else:
            ax.plot(m[0], info.objective.value(m), "*", ms=13, mfc=color, mec="black", mew=0.8, zorder=6)


def _pick(runs, limit: int):
    """At most ``limit`` runs, spread evenly over the runs sorted by learning rate and start."""
    if len(runs) <= limit:
        return runs
    ordered = runs.sort_values(["lr", "start_label"])
    return ordered.iloc[np.linspace(0, len(ordered) - 1, limit).round().astype(int)]


def path_plots(data: ReportData, out_dir: Path, max_paths: int = MAX_PATHS) -> list[Plot]:
    valid = data.valid
    plots = []
    colors = LrColors(valid.lr)
    for key, info in sorted(data.problems.items(), key=lambda kv: kv[1].label):
        runs = valid[valid.problem == key]
        if runs.empty or not info.plottable:
            continue
        solvers = sorted(runs.solver_name.unique())
        nrows, ncols = panel_grid(len(solvers), 3)
        fig, axes = new_figure(nrows, ncols, w=4.3, h=3.7, extra_w=1.2 if colors.active else 0.0,
                               sharex=True, sharey=info.dim == 2)
        shown_total, cs = 0, None
        for ax, solver in zip(axes.ravel(), solvers):
            sub = runs[runs.solver_name == solver]
            picked = _pick(sub, max_paths)
            shown_total += len(picked)
            cs = _background(ax, info) or cs
            for r in picked.itertuples():
                _path(ax, info, data.traces[r.run_id], colors(r.lr), r.status == "diverged")
            _minimizers(ax, info)
            note = f" ({len(picked)} of {len(sub)} runs)" if len(picked) < len(sub) else ""
            ax.set_title(f"{solver} on {info.label}{note}")
        hide_unused(axes, len(solvers))
        for ax in axes.ravel()[: len(solvers)]:
            ax.label_outer()  # the panels share their box: axis labels once per row and column
        colors.colorbar(fig, axes)
        if cs is not None:
            bar = fig.colorbar(cs, ax=list(axes.ravel()), orientation="horizontal", shrink=0.6, pad=0.02,
                               aspect=40)
            bar.set_label("f(x) − min f on this box (log-spaced levels)")
            decades(bar.ax.xaxis)
        fig.legend(handles=_path_legend(info), loc="outside lower center", ncols=4, frameon=False)
        fig.suptitle(f"Paths of the iterates on {info.label}{colors.note()}")
        name = f"paths_{slug(info.label)}_{len(plots)}"
        save(fig, out_dir, name)
        what = "over filled contours of f (log-spaced levels)" if info.dim == 2 else "on the curve of f"
        plots.append(Plot(name, "Paths", f"paths on {info.label}",
                          f"Iterates of each run {what}, one panel per solver, coloured by learning rate "
                          f"(black: no learning rate). Circles mark the starts, dots the last iterates, a red ✕ "
                          f"the last finite iterate of a diverged run, white stars the known minimisers. "
                          f"At most {max_paths} runs per panel are drawn, spread over learning rates and "
                          f"starts ({shown_total} of {len(runs)} shown)."))
    return plots


def _path(ax, info: ProblemInfo, trace, color, diverged: bool) -> None:
    x = trace.x[:, 0]
    if info.dim == 2:
        y = trace.x[:, 1]
    else:
        y = trace.f
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return
    ax.plot(x[ok], y[ok], "-", color=color, lw=1.2, alpha=0.9, zorder=3,
            marker="." if info.dim == 1 or ok.sum() < 60 else None, ms=4)
    ax.plot(x[ok][0], y[ok][0], "o", mfc="white", mec=color, mew=1.5, ms=7, zorder=5)
    last = np.flatnonzero(ok)[-1]
    if diverged:
        ax.plot(x[last], y[last], "x", color=DIVERGED_COLOR, ms=9, mew=2.2, zorder=5)
    else:
        ax.plot(x[last], y[last], "o", color=color, mec="black", mew=0.6, ms=5, zorder=5)


def _path_legend(info: ProblemInfo) -> list:
    return [
        Line2D([], [], ls="", marker="o", mfc="white", mec="black", label="start"),
        Line2D([], [], ls="", marker="o", color="grey", mec="black", label="last iterate"),
        Line2D([], [], ls="", marker="x", color=DIVERGED_COLOR, mew=2, label="diverged (last finite iterate)"),
        Line2D([], [], ls="", marker="*", mfc="white", mec="black", ms=11, label="known minimiser"),
    ]


# -- basins of attraction -------------------------------------------------------------------
def classify(final: np.ndarray, status: str, targets: np.ndarray, radius: float) -> str | int:
    """Index of the target ``final`` ended within ``radius`` of, or what happened instead."""
    if status == "diverged":
        return "diverged"
    if status in ("failed", "error"):
        return "failed"
    if final is None or not np.all(np.isfinite(final)) or not len(targets):
        return "elsewhere"
    d = np.linalg.norm(targets - final, axis=1)
    k = int(np.argmin(d))
    return k if d[k] <= radius else "elsewhere"


def _final(x) -> np.ndarray | None:
    if not isinstance(x, (list, tuple, np.ndarray)):
        return None
    return np.array([np.nan if v is None else v for v in x], dtype=float)


def _targets(info: ProblemInfo, finals: list, radius: float) -> np.ndarray:
    """The known minimisers, or else the distinct points where converged runs ended."""
    if len(info.minimizers):
        return info.minimizers
    found: list[np.ndarray] = []
    for f in finals:
        if f is not None and np.all(np.isfinite(f)) and all(np.linalg.norm(f - g) > radius for g in found):
            found.append(f)
    return np.array(found).reshape(-1, info.dim)


def basin_plots(data: ReportData, out_dir: Path) -> list[Plot]:
    valid = data.valid
    plots = []
    for key, info in sorted(data.problems.items(), key=lambda kv: kv[1].label):
        runs = valid[valid.problem == key]
        if runs.empty or not info.plottable:
            continue
        groups = [(label, g) for label, g in runs.groupby("solver_label", sort=True)
                  if g.start_label.nunique() >= BASIN_MIN_STARTS][:MAX_BASIN_PANELS]
        if not groups:
            continue
        radius = BASIN_RADIUS * float(np.linalg.norm(info.box[:, 1] - info.box[:, 0]))
        converged = runs[runs.status == "converged"]
        targets = _targets(info, [_final(x) for x in converged.x_final], radius)
        nrows, ncols = panel_grid(len(groups), 3)
        fig, axes = new_figure(nrows, ncols, w=4.0, h=3.5, sharex=True, sharey=info.dim == 2)
        for ax, (label, g) in zip(axes.ravel(), groups):
            _basin_panel(ax, info, g, targets, radius)
            ax.set_title(f"{label} on {info.label}")
        hide_unused(axes, len(groups))
        for ax in axes.ravel()[: len(groups)]:
            ax.label_outer()
        fig.legend(handles=_basin_legend(info, targets), loc="outside lower center", ncols=4, frameon=False)
        fig.suptitle(f"Basins of attraction on {info.label}: which minimum each start reaches")
        name = f"basins_{slug(info.label)}_{len(plots)}"
        save(fig, out_dir, name)
        kind = "known minimiser" if len(info.minimizers) else "point where converged runs ended"
        plots.append(Plot(name, "Basins of attraction", f"basins on {info.label}",
                          f"Each marker is a start point, coloured by the {kind} (star of the same colour) "
                          f"its run ended within {radius:.3g} of (2% of the box diagonal); grey: ended elsewhere "
                          f"(not converged there, or at another stationary point), red: diverged, black: the "
                          f"method failed. One panel per solver setting with {BASIN_MIN_STARTS} or more starts."))
    return plots


def _basin_panel(ax, info: ProblemInfo, runs, targets: np.ndarray, radius: float) -> None:
    _background(ax, info, filled=False)
    starts = np.array([_final(x) for x in runs.x0], dtype=float).reshape(len(runs), info.dim)
    fates = [classify(_final(x), s, targets, radius) for x, s in zip(runs.x_final, runs.status)]
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
        ys = np.array([info.objective.value(s) for s in starts])
        ax.scatter(starts[:, 0], ys, c=colors, s=36, edgecolors="black", linewidths=0.4, zorder=4)
        ax.scatter(starts[:, 0], np.full(len(starts), ax.get_ylim()[0]), c=colors, s=60, marker="|", zorder=4,
                   clip_on=False)
    for k, m in enumerate(targets):
        y = m[1] if info.dim == 2 else info.objective.value(m)
        ax.plot(m[0], y, "*", ms=15, mfc=BASIN_COLORS[k % len(BASIN_COLORS)], mec="black", mew=0.9, zorder=6)


def _basin_legend(info: ProblemInfo, targets: np.ndarray) -> list:
    def point(m: np.ndarray) -> str:
        return "(" + ", ".join(f"{v:.3g}" for v in m) + ")"

    handles = [Line2D([], [], ls="", marker="s", color=BASIN_COLORS[k % len(BASIN_COLORS)],
                      label=f"reaches {point(m)}") for k, m in enumerate(targets)]
    handles += [Line2D([], [], ls="", marker="s", color=c, label=name) for name, c in OTHER_COLORS.items()]
    return handles
