"""Paths of the iterates over the objective: filled contours (2-D) or the curve of f (1-D).

Only for problems the report could rebuild (see :mod:`.problems`). A path is cut where it leaves
the plot box, so a run that flies off is drawn up to the edge (marked there) and never as a
straight line across the plot; a diverged run's exit, or its last finite iterate inside the
box, is marked with ✕.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .data import ReportData
from .layout import OVERLAY_MAX_SETTINGS
from .links import slug, unit_href
from .problems import ProblemInfo
from .style import (
    BAR_WIDTH,
    DIVERGED_COLOR,
    LrColors,
    Plot,
    bar_and_legend,
    context,
    grid,
    legend_width,
    log_ticks,
    needs_bar,
    outer_labels,
    start_style,
)
from .style import natural_key as nat
from .style import title as set_title

MAX_PATHS = 25
OVERLAY_MAX_PATHS = 8
FILL_CMAP = ListedColormap(matplotlib.colormaps["Blues_r"](np.linspace(0.15, 1.0, 256)) * [1, 1, 1, 0.8])


def clip_path(x: np.ndarray, y: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The polyline through ``(x, y)`` cut to ``box`` (Liang-Barsky per segment), NaN where it breaks;
    and the indices of the segments along which it leaves the box."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    (x0, x1), (y0, y1) = box
    if x.size < 2:
        inside = x.size == 1 and x0 <= x[0] <= x1 and y0 <= y[0] <= y1
        return (x, y, []) if inside else (x[:0], y[:0], [])
    ax, ay, dx, dy = x[:-1], y[:-1], np.diff(x), np.diff(y)
    t0, t1 = np.zeros(ax.size), np.ones(ax.size)
    keep = np.ones(ax.size, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for p, q in ((-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)):
            keep &= ~((p == 0) & (q < 0))
            r = q / p
            t0 = np.where(p < 0, np.maximum(t0, r), t0)
            t1 = np.where(p > 0, np.minimum(t1, r), t1)
    keep &= t0 <= t1
    x_in = (x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1)
    keep &= x_in[:-1] | x_in[1:]  # a segment between two points outside is a flight: never drawn
    sx, sy, ex, ey = ax + t0 * dx, ay + t0 * dy, ax + t1 * dx, ay + t1 * dy
    prev = np.r_[False, keep[:-1] & (t1[:-1] >= 1)]
    joined = keep & prev & (t0 <= 0)
    px, py = [], []
    for i in np.flatnonzero(keep):
        if joined[i]:
            px.append(ex[i])
            py.append(ey[i])
        else:
            px += [math.nan, sx[i], ex[i]]
            py += [math.nan, sy[i], ey[i]]
    exits = [int(i) for i in np.flatnonzero(keep & (t1 < 1))]
    return np.array(px), np.array(py), exits


def pick(runs: Any, limit: int) -> Any:
    """At most ``limit`` runs, spread evenly over the runs in order of learning rate and start."""
    if len(runs) <= limit:
        return runs
    ordered = runs.sort_values(["lr", "start_key"])
    return ordered.iloc[np.linspace(0, len(ordered) - 1, limit).round().astype(int)]


def path_panels(data: ReportData, problem: str, max_paths: int = MAX_PATHS) -> tuple[str, list[tuple[str, Any]]]:
    """``(mode, [(title, runs drawn)])`` for one problem: one overlaid panel when few settings and paths,
    else a panel per solver (learning-rate mode) or per setting, best first."""
    runs = data.valid[data.valid.problem == problem]
    if runs.solver_label.nunique() <= OVERLAY_MAX_SETTINGS and len(runs) <= OVERLAY_MAX_PATHS and not data.lr_mode:
        return "overlay", [(data.problems[problem].label, runs)]
    column = "solver_name" if data.lr_mode else "solver_label"
    ranked = sorted(runs[column].unique(), key=lambda k: min(data.rank(s) for s in
                                                             runs[runs[column] == k].solver_label))
    return ("lr" if data.lr_mode else "multiples"), [(k, pick(runs[runs[column] == k], max_paths)) for k in ranked]


def shading(info: ProblemInfo) -> tuple[np.ndarray, Any]:
    """The filled contours of a 2-D problem as an RGBA image (rows from the bottom of its box) and the
    norm of their log-spaced levels of f - min f: computed once, drawn in every panel (and page)."""
    if info._shading is None:
        _, _, F = info.surface()
        low = np.nanmin(F) if info.f_star is None else min(np.nanmin(F), info.f_star)
        span = max(float(np.nanmax(F) - low), 1e-12)
        norm = BoundaryNorm(np.geomspace(span * 1e-6, span * (1 + 1e-6), 18), FILL_CMAP.N, extend="both")
        rgba = FILL_CMAP(norm(np.ma.masked_invalid(F - low + span * 1e-6)))
        info._shading = (rgba, norm)
    return info._shading


def background(ax: Any, info: ProblemInfo, filled: bool = True) -> Any:
    """Filled log-spaced contours of f - min f (2-D), or the curve of f (1-D); nothing but the box
    (and axis labels) for a problem that could not be rebuilt. Returns what a colour bar needs, or None."""
    box = info.box
    ax.set_xlim(*box[0])
    if info.dim == 1:
        if info.plottable:
            xs, fs = info.surface()
            ax.plot(xs, fs, color="#888888", lw=1.5, zorder=1)
        ax.set_xlabel("x")
        ax.set_ylabel("f(x)")
        return None
    ax.set_ylim(*box[1])
    ax.set_xlabel("x₀")
    ax.set_ylabel("x₁")
    if not info.plottable:
        return None
    rgba, norm = shading(info)
    if filled:
        ax.imshow(rgba, origin="lower", extent=(*box[0], *box[1]), aspect="auto", interpolation="bilinear",
                  zorder=0)
        ax.set_xlim(*box[0])
        ax.set_ylim(*box[1])
        return ScalarMappable(norm=norm, cmap=FILL_CMAP)
    X, Y, F = info.surface()
    shift = norm.boundaries[0] - (np.nanmin(F) if info.f_star is None else min(np.nanmin(F), info.f_star))
    ax.contour(X, Y, F + shift, levels=norm.boundaries, colors="#999999", linewidths=0.5, zorder=0)
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    return None


def plot_box(info: ProblemInfo, traces: list[Any]) -> np.ndarray:
    """The box paths are drawn in: the problem's (2-D), or its x range and the range of f over it
    (1-D: the curve's, else the runs' values)."""
    if info.dim == 2:
        return info.box
    if info.plottable:
        fs = info.surface()[1]
    else:
        fs = np.concatenate([t.f[np.isfinite(t.f) & (t.f < 1e300)] for t in traces] + [np.zeros(1)])
    lo, hi = float(np.nanmin(fs)), float(np.nanmax(fs))
    pad = 0.05 * (hi - lo or 1.0)
    return np.array([info.box[0], [lo - pad, hi + pad]])


def _path(ax: Any, info: ProblemInfo, trace: Any, box: np.ndarray, color: Any, ls: str, diverged: bool,
          href: str) -> None:
    x = trace.x[:, 0]
    y = trace.x[:, 1] if info.dim == 2 else trace.f
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return
    if diverged:  # drawn up to where it first leaves the box
        (x0, x1), (y0, y1) = box
        out = np.flatnonzero(ok & ~((x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1)))
        if out.size:
            x, y, ok = x[: out[0] + 1], y[: out[0] + 1], ok[: out[0] + 1]
    px, py, _ = clip_path(x, y, box)
    ax.plot(px, py, color=color, ls=ls, lw=1.3, alpha=0.9, zorder=3,
            marker="." if info.dim == 1 or ok.sum() < 60 else None, ms=4, url=href)
    xs, ys = x[ok], y[ok]
    (x0, x1), (y0, y1) = box
    inside = (x0 <= xs) & (xs <= x1) & (y0 <= ys) & (ys <= y1)
    if inside[0]:
        ax.plot(xs[0], ys[0], "o", mfc="white", mec=color, mew=1.5, ms=7, zorder=5)
    if inside[-1]:
        ax.plot(xs[-1], ys[-1], "X" if diverged else "o", ms=8 if diverged else 5, zorder=6,
                mfc=color, mec=DIVERGED_COLOR if diverged else "black", mew=1.2 if diverged else 0.6)
    else:  # ended outside the box: marked where it last left
        last = np.flatnonzero(np.isfinite(px))
        if last.size:
            k = last[-1]
            ax.plot(px[k], py[k], "X" if diverged else "s", ms=8 if diverged else 6, mfc=color, zorder=6,
                    clip_on=False, mec=DIVERGED_COLOR if diverged else "black", mew=1.2 if diverged else 0.8)


def _ends_outside(info: ProblemInfo, trace: Any, box: np.ndarray) -> bool:
    x = trace.x[:, 0]
    y = trace.x[:, 1] if info.dim == 2 else trace.f
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if not ok.size:
        return False
    (x0, x1), (y0, y1) = box
    return not (x0 <= x[ok[-1]] <= x1 and y0 <= y[ok[-1]] <= y1)


def path_figure(data: ReportData, problem: str, max_paths: int = MAX_PATHS) -> Figure:
    """The paths of the runs on one problem over its landscape."""
    with context():
        return _path_figure(data, problem, max_paths)


def _path_figure(data: ReportData, problem: str, max_paths: int) -> Figure:
    info = data.problems[problem]
    mode, panels = path_panels(data, problem, max_paths)
    everyone = data.valid[data.valid.problem == problem]
    colors = LrColors(everyone.lr) if mode == "lr" else None
    starts = sorted(set(zip(everyone.start_key, everyone.start_label)))
    styles = {label: start_style(k) for k, (_, label) in enumerate(starts)} if 2 <= len(starts) <= 4 else {}
    box = plot_box(info, [data.traces[r] for r in everyone.run_id])
    outside = any(_ends_outside(info, data.traces[r], box) for _, runs in panels
                  for r, status in zip(runs.run_id, runs.status) if status != "diverged")
    handles = _legend(data, mode, everyone, colors, styles, info, outside)
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    g = grid(nrows, ncols, w=3.6 if ncols > 1 else 5.0, h=2.9 if ncols > 1 else 3.8, right=legend_width(
        [h.get_label() for h in handles]) + (BAR_WIDTH if needs_bar(colors) else 0), top=0.7,
        bottom=1.25 if info.dim == 2 and info.plottable else 0.55, wspace=0.4, sharex=True,
        sharey=True, legend_rows=len(handles), title=f"Paths of the iterates on {info.label}")
    image = None
    for ax, (title, runs) in zip(g.axes.ravel(), panels):
        image = background(ax, info) or image
        for run_id, lr, setting, start, status in zip(runs.run_id, runs.lr, runs.solver_label, runs.start_label,
                                                      runs.status):
            color = colors(lr) if colors is not None else data.style(setting)["color"]
            _path(ax, info, data.traces[run_id], box, color, styles.get(start, "-"), status == "diverged",
                  unit_href(setting, info.label))
        for m in info.minimizers:
            ax.plot(m[0], m[1] if info.dim == 2 else info.value(m), "*", ms=13, mfc="white", mec="black", mew=0.8,
                    zorder=4)
        ax.set_ylim(*box[1])
        n_all = (everyone.solver_name if mode == "lr" else everyone.solver_label).eq(title).sum()
        shown = f" ({len(runs)} of {n_all} runs)" if mode != "overlay" and len(runs) < n_all else ""
        set_title(ax, title + shown, 8.5)
    outer_labels(g, len(panels))
    bar_and_legend(g, colors, handles)
    if image is not None:
        width = g.fig.get_figwidth()
        height = g.fig.get_figheight()
        cax = g.fig.add_axes([0.25, 0.48 / height, 0.5 * (1 - 1.0 / width), 0.12 / height])
        bar = g.fig.colorbar(image, cax=cax, orientation="horizontal")
        bar.set_label("f(x) − min f on this box (log-spaced levels)")
        log_ticks(bar.ax.xaxis, image.norm.boundaries[0], image.norm.boundaries[-1])
        bar.ax.set_xlim(image.norm.boundaries[0], image.norm.boundaries[-1])
    return g.fig


def _legend(data: ReportData, mode: str, runs: Any, colors: LrColors | None, styles: dict[str, str],
            info: ProblemInfo, outside: bool) -> list:
    handles: list = []
    if mode == "overlay":
        for s in sorted(runs.solver_label.unique(), key=data.rank):
            handles.append(Line2D([], [], color=data.style(s)["color"], lw=2, label=s))
    elif colors is not None and colors.discrete:
        handles.append(Patch(color="none", label="learning rate"))
        handles += colors.handles()
    if styles:
        handles.append(Patch(color="none", label="start x0 (line style)"))
        handles += [Line2D([], [], color="#555555", ls=ls, label=s) for s, ls in sorted(styles.items(),
                                                                                       key=lambda kv: nat(kv[0]))]
    handles += [Line2D([], [], ls="", marker="o", mfc="white", mec="black", label="start"),
                Line2D([], [], ls="", marker="o", color="grey", mec="black", label="last iterate")]
    diverged = int((runs.status == "diverged").sum())
    if diverged:
        handles.append(Line2D([], [], ls="", marker="X", mfc="white", mec=DIVERGED_COLOR, mew=1.2,
                              label=f"diverged ({diverged} of {len(runs)} runs): where it leaves the box"))
    if outside:
        handles.append(Line2D([], [], ls="", marker="s", mfc="white", mec="black", label="ended outside the box"))
    if len(info.minimizers):
        handles.append(Line2D([], [], ls="", marker="*", mfc="white", mec="black", ms=11, label="known minimiser"))
    return handles


def path_tasks(data: ReportData, max_paths: int = MAX_PATHS) -> list[tuple[Plot, str, dict[str, Any]]]:
    out = []
    for k, problem in enumerate(data.problem_order()):
        info = data.problems[problem]
        if not info.drawable:
            continue
        runs = data.valid[data.valid.problem == problem]
        what = "over filled contours of f (log-spaced levels)" if info.dim == 2 else "on the curve of f"
        if not info.plottable:
            what = (f"in the {'plane' if info.dim == 2 else '(x, f) plane'}, without contours ({info.note}), on the "
                    "box the runs span (their starts and the iterates of those that did not diverge)")
        caption = (f"Iterates of each run {what}. Circles mark the starts, dots the last iterates, ✕ a diverged "
                   f"run's last finite iterate (or where it left the box), squares where a run that ended outside "
                   f"the box last left it; stars are the known minimisers. Paths are cut at the edge of the box. "
                   f"At most {max_paths} runs per panel are drawn, spread over learning rates and starts "
                   f"({len(runs)} runs on this problem).")
        out.append((Plot(f"paths_{slug(info.label)}_{k}", "Paths", f"paths on {info.label}", caption),
                    "path_figure", {"problem": problem, "max_paths": max_paths}))
    return out
