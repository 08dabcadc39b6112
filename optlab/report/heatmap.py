"""Learning rate x start point heatmaps: iterations until solved, or how the run ended instead.

One panel per solver setting apart from its rate (so that runs differing in any other option are
never in one cell), drawn when it ran at two or more rates. Rates and starts are in numeric order.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from .data import ReportData
from .links import cell_href, slug
from .problems import labels
from .style import DIVERGED_COLOR, LEGEND_ROW, Plot, context, grid, log_ticks, text_width
from .style import title as set_title

NOT_REACHED = "#d9d9d9"
FAILED = "#444444"
MAX_ANNOTATED_CELLS = 160
MAX_LABELLED_STARTS = 40
MAX_STARTS = 200


def cell(runs: Any) -> tuple[str, float]:
    """How the runs of one (learning rate, start) cell ended: ("solved", median iterations),
    ("diverged" | "failed" | "unsolved", final gap)."""
    solved = runs.solved_iter[np.isfinite(runs.solved_iter)]
    if len(solved):
        return "solved", float(np.median(solved))
    if (runs.status == "diverged").any():
        return "diverged", math.nan
    if runs.status.isin(["failed", "error"]).all():
        return "failed", math.nan
    gaps = runs.gap_final[np.isfinite(runs.gap_final)]
    return "unsolved", float(np.median(gaps)) if len(gaps) else math.nan


def panels(data: ReportData, problem: str) -> list[tuple[str, Any]]:
    """``(title, runs)`` per setting-apart-from-its-rate that ran at two or more rates on ``problem``, from
    starts shared across the rates (at least half the cells of the grid filled)."""
    runs = data.valid[(data.valid.problem == problem) & np.isfinite(data.valid.lr)]
    if runs.empty:
        return []
    rows = list(zip(runs.sweep, runs.solver_name, runs.solver_opts, runs.stop_opts))
    rest = [{k: v for k, v in opts.items() if k != "lr"} for _, _, opts, _ in rows]
    keys = [json.dumps([sweep, solver, others, stop], sort_keys=True, default=str)
            for (sweep, solver, _, stop), others in zip(rows, rest)]
    runs = runs.assign(rest=keys)
    names = dict(zip(keys, labels([(solver, {**others, **{f"stop.{k}": v for k, v in stop.items()}})
                                   for (_, solver, _, stop), others in zip(rows, rest)])))
    out = []
    for key, g in runs.groupby("rest"):
        cells = g.lr.nunique() * g.start_label.nunique()
        filled = g.groupby(["lr", "start_label"]).ngroups >= 0.5 * cells  # the starts are shared across rates
        if g.lr.nunique() >= 2 and g.start_label.nunique() <= MAX_STARTS and filled:
            sweep = g.sweep.iloc[0]
            out.append(((f"{sweep}: " if sweep else "") + names[key], g))
    return sorted(out, key=lambda kv: min(data.rank(s) for s in kv[1].solver_label))


def matrix(runs: Any) -> tuple[list[float], list[str], np.ndarray, list[tuple[int, int, str, float]]]:
    """``(rates top to bottom, starts left to right, iterations, cells)`` in numeric order."""
    lrs = sorted(runs.lr.unique(), reverse=True)
    starts = [label for _, label in sorted(set(zip(runs.start_key, runs.start_label)))]
    values = np.full((len(lrs), len(starts)), np.nan)
    cells = []
    for (lr, start), g in runs.groupby(["lr", "start_label"]):
        i, j = lrs.index(lr), starts.index(start)
        kind, value = cell(g)
        if kind == "solved":
            values[i, j] = value
        cells.append((i, j, kind, value))
    return lrs, starts, values, cells


def heatmap_figure(data: ReportData, problem: str) -> Figure:
    with context():
        return _figure(data, problem)


def rate_labels(rates: list[float]) -> list[str]:
    """The rates with the fewest significant digits (2 to 12) that tell them all apart."""
    for digits in range(2, 13):
        labels = [f"{v:.{digits}g}" for v in rates]
        if len(set(labels)) == len(labels):
            return labels
    return [repr(v) for v in rates]


LEGEND = [(NOT_REACHED, "not solved: final f − f* in the cell"), (DIVERGED_COLOR, "✕ diverged"), (FAILED, "failed")]


def _figure(data: ReportData, problem: str) -> Figure:
    info = data.problems[problem]
    found = panels(data, problem)
    solved = np.concatenate([g.solved_iter.to_numpy(dtype=float) for _, g in found])
    solved = solved[np.isfinite(solved)]
    norm = LogNorm(max(1.0, float(solved.min())) if solved.size else 1.0,
                   max(10.0, float(solved.max())) if solved.size else 10.0)
    ncols = min(len(found), 3)
    widest = max(g.start_label.nunique() for _, g in found)
    tallest = max(g.lr.nunique() for _, g in found)
    # Margins from the labels they hold: rates on the left of every panel, starts below (turned when long).
    rates_w = max(text_width(label, 8) for _, g in found for label in rate_labels(sorted(g.lr.unique()))) + 0.45
    starts_w = max([text_width(label, 8) for _, g in found for label in g.start_label.unique()] + [0.0]) \
        if widest <= MAX_LABELLED_STARTS else 0.0
    w = max(2.6, 0.6 * min(widest, MAX_LABELLED_STARTS) + 0.4, max(text_width(t, 8.5) for t, _ in found) + 0.1)
    rotated = widest > 3 or starts_w > 0.9 * w / widest
    below = (0.72 * starts_w if rotated else 0.2) + 0.45
    title = f"Iterations to tolerance on {info.label}, by learning rate and start point"
    width = rates_w + ncols * w + (ncols - 1) * (rates_w + 0.3) + 1.3
    in_a_row = sum(text_width(label, 8) + 0.5 for _, label in LEGEND) <= max(width, text_width(title, 11))
    legend_h = 0.35 if in_a_row else 0.2 + len(LEGEND) * LEGEND_ROW
    g = grid(math.ceil(len(found) / ncols), ncols, w=w, h=max(1.6, 0.3 * tallest), left=rates_w, right=1.3,
             top=0.8, bottom=below + legend_h, wspace=rates_w + 0.3, hspace=below + 0.45, title=title)
    image = None
    for ax, (name, runs) in zip(g.axes.ravel(), found):
        image = _panel(ax, runs, norm, rotated, lambda lr, start, name=name: cell_href(info.label, name, lr, start))
        set_title(ax, name, 8.5)
    for ax in g.axes.ravel()[len(found):]:
        ax.set_visible(False)
    if image is not None and solved.size:
        bar = g.fig.colorbar(image, cax=g.fig.add_axes([g.right_x + 0.02, g.bottom_y, 0.15 / g.fig.get_figwidth(),
                                                        g.top_y - g.bottom_y]))
        bar.set_label("iterations until solved (log scale)")
        log_ticks(bar.ax.yaxis, norm.vmin, norm.vmax)
    g.fig.legend(handles=[Patch(color=c, label=label) for c, label in LEGEND], loc="lower center",
                 ncols=len(LEGEND) if in_a_row else 1, frameon=False)
    return g.fig


def _panel(ax: Any, runs: Any, norm: LogNorm, rotated: bool, href: Any) -> Any:
    """One panel of cells; ``href(lr, start)``: where a cell links to (its runs)."""
    lrs, starts, values, cells = matrix(runs)
    annotate = len(lrs) * len(starts) <= MAX_ANNOTATED_CELLS
    ax.set_facecolor("white")
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis_r", norm=norm, aspect="auto",
                      interpolation="nearest")
    for i, j, kind, value in cells:
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=0)).set_url(href(lrs[i], starts[j]))
        if kind != "solved":
            color = {"diverged": DIVERGED_COLOR, "failed": FAILED}.get(kind, NOT_REACHED)
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=color, edgecolor="white", lw=1))
        if not annotate:
            if kind == "diverged":
                ax.text(j, i, "✕", ha="center", va="center", color="white", fontsize=7)
            continue
        text = {"solved": f"{value:.0f}", "diverged": "✕", "failed": "failed",
                "unsolved": "" if not math.isfinite(value) else f"{value:.0e}"}[kind]
        dark = kind in ("diverged", "failed") or (kind == "solved" and norm(value) > 0.55)
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_yticks(range(len(lrs)), rate_labels(lrs))
    ax.set_ylabel("learning rate")
    if len(starts) <= MAX_LABELLED_STARTS:
        ax.set_xticks(range(len(starts)), starts, rotation=45 if rotated else 0, ha="right" if rotated else "center")
        ax.set_xlabel("start point x0")
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"start point x0 ({len(starts)} starts, in numeric order)")
    ax.grid(False)
    return image


def heatmap_tasks(data: ReportData) -> list[tuple[Plot, str, dict[str, Any]]]:
    out = []
    for k, problem in enumerate(data.problem_order()):
        if not panels(data, problem):
            continue
        label = data.problems[problem].label
        caption = (f"Each cell is one learning rate (row, largest on top) and start point (column, in numeric "
                   f"order): coloured by the iterations until the run was solved (f − f* ≤ {data.tol:g} (f(x0) − "
                   f"f*)); grey cells were not solved and show their final gap; red cells with ✕ diverged; dark "
                   f"cells failed. One panel per solver setting apart from its rate, best first.")
        out.append((Plot(f"heatmap_{slug(label)}_{k}", "Learning rate and start point",
                         f"learning rate × start on {label}", caption), "heatmap_figure", {"problem": problem}))
    return out
