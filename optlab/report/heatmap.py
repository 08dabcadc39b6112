"""Learning rate x start point heatmaps: iterations until solved, or how the run ended instead."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.patches import Patch, Rectangle

from .data import ReportData
from .style import DIVERGED_COLOR, Plot, hide_unused, log_ticks, new_figure, panel_grid, save, slug

NOT_REACHED = "#d9d9d9"
FAILED = "#444444"
MAX_ANNOTATED_CELLS = 160
MAX_LABELLED_STARTS = 40
MAX_STARTS = 200


def cell(runs) -> tuple[str, float]:
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


def _fills_a_grid(runs) -> bool:
    """Several learning rates or starts, with the starts shared across rates (most cells hold a run)."""
    cells = runs.lr.nunique() * runs.start_label.nunique()
    filled = len(runs.groupby(["lr", "start_label"]))
    return 2 <= cells and filled >= 0.5 * cells and runs.start_label.nunique() <= MAX_STARTS


def heatmap_plots(data: ReportData, out_dir: Path) -> list[Plot]:
    valid = data.valid
    valid = valid[np.isfinite(valid.lr)]
    plots = []
    for key, info in sorted(data.problems.items(), key=lambda kv: kv[1].label):
        runs = valid[valid.problem == key]
        panels = [(s, g) for s, g in runs.groupby("solver_name", sort=True) if _fills_a_grid(g)]
        if not panels:
            continue
        solved = runs.solved_iter[np.isfinite(runs.solved_iter)]
        norm = LogNorm(max(1.0, float(solved.min())) if len(solved) else 1.0,
                       max(10.0, float(solved.max())) if len(solved) else 10.0)
        nrows, ncols = panel_grid(len(panels), 2)
        widest = max(g.start_label.nunique() for _, g in panels)
        fig, axes = new_figure(nrows, ncols, w=max(6.5 / ncols, 0.55 * min(widest, MAX_LABELLED_STARTS) + 2.0),
                               h=max(3.0, 0.32 * max(g.lr.nunique() for _, g in panels) + 1.6), extra_w=1.0)
        image = None
        for ax, (solver, g) in zip(axes.ravel(), panels):
            image = _panel(ax, g, norm) or image
            ax.set_title(f"{solver} on {info.label}")
        hide_unused(axes, len(panels))
        if image is not None and len(solved):
            bar = fig.colorbar(image, ax=list(axes.ravel()), shrink=0.8, pad=0.01)
            bar.set_label("iterations until solved (log scale)")
            log_ticks(bar.ax.yaxis, norm.vmin, norm.vmax)
        fig.legend(handles=[Patch(color=NOT_REACHED, label="not solved: final gap f − f* written in the cell"),
                            Patch(color=DIVERGED_COLOR, label="✕ diverged"),
                            Patch(color=FAILED, label="failed or error")],
                   loc="outside lower center", ncols=3, frameon=False)
        fig.suptitle(f"Iterations to tolerance on {info.label}\nby learning rate and start point")
        name = f"heatmap_{slug(info.label)}_{len(plots)}"
        save(fig, out_dir, name)
        plots.append(Plot(name, "Learning rate and start point", f"learning rate × start on {info.label}",
                          f"Each cell is one learning rate (row) and start point (column): coloured by the "
                          f"iterations until the run was solved (f − f* ≤ {data.tol:g} (f(x0) − f*)), median "
                          f"over runs in the cell; grey cells were not solved and show their final gap; red "
                          f"cells with ✕ diverged; dark cells failed."))
    return plots


def _panel(ax, runs, norm: LogNorm):
    lrs = sorted(runs.lr.unique(), reverse=True)
    starts = sorted(runs.start_label.unique())
    values = np.full((len(lrs), len(starts)), np.nan)
    annotate = len(lrs) * len(starts) <= MAX_ANNOTATED_CELLS
    specials = []
    for (lr, start), g in runs.groupby(["lr", "start_label"]):
        i, j = lrs.index(lr), starts.index(start)
        kind, value = cell(g)
        if kind == "solved":
            values[i, j] = value
        specials.append((i, j, kind, value))
    ax.set_facecolor("white")
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis_r", norm=norm, aspect="auto",
                      interpolation="nearest")
    for i, j, kind, value in specials:
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
    ax.set_yticks(range(len(lrs)), [f"{v:g}" for v in lrs])
    ax.set_ylabel("learning rate")
    if len(starts) <= MAX_LABELLED_STARTS:
        ax.set_xticks(range(len(starts)), starts, rotation=45 if len(starts) > 3 else 0, ha="right"
                      if len(starts) > 3 else "center")
        ax.set_xlabel("start point x0")
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"start point x0 ({len(starts)} starts, sorted)")
    ax.grid(False)
    return image
