"""Figures of the comparison sections: ranking with intervals, pairwise tests, profiles and
convergence with bootstrap bands, and the tuned comparison's profiles."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .comparisons import comparison_of
from .data import COSTS, ReportData
from .layout import floor_of
from .profiles import cost_matrix, data_profile, performance_profile
from .repeats import cost_along
from .stats import ALPHA, LEVEL, percentile_interval, resample_indices, rng_of
from .style import context, grid, legend_width, log_ticks, log_y, natural_key, setting_style, title

BEST = 6  # settings drawn with bands
PROFILE_BOOT = 200
CURVE_BOOT = 300
GRID_POINTS = 160
PAIR_COLORS = {"row": "#a1d99b", "column": "#fcbba1", "none": "#eeeeee"}


def _best(data: ReportData, settings: list[str]) -> list[str]:
    return [s for s in data.ranking if s in set(settings)][:BEST]


# -- ranking and pairs ---------------------------------------------------------------------
def ranking_figure(data: ReportData) -> Figure:
    """Mean ranks with bootstrap intervals, best first."""
    r = comparison_of(data).ranking
    with context():
        labels = list(r.solver_setting)
        g = grid(1, 1, w=4.2, h=max(1.2, 0.26 * len(labels)), left=0.4 + 0.062 * max(len(s) for s in labels),
                 right=2.3, top=0.6, bottom=0.6)
        ax = g.axes[0, 0]
        y = np.arange(len(labels))
        colors = [data.style(s)["color"] for s in labels]
        ax.errorbar(r.mean_rank, y, xerr=[r.mean_rank - r.rank_lo, r.rank_hi - r.mean_rank], fmt="none",
                    ecolor="#555555", elinewidth=1.2, capsize=3)
        ax.scatter(r.mean_rank, y, c=colors, s=36, zorder=3, edgecolors="black", linewidths=0.5)
        ax.set_yticks(y, labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("mean rank over units (0: best, 1: worst)")
        for k, row in enumerate(r.itertuples()):
            ax.text(1.06, k, f"P(best) {row.p_best:.0%} · {row.units} units · {row.solved:.0%} solved",
                    transform=ax.get_yaxis_transform(), va="center", fontsize=7.5, clip_on=False)
        title(ax, f"ranking with {LEVEL:.0%} bootstrap intervals", 9.5)
        return g.fig


def pairs_figure(data: ReportData) -> Figure:
    """Settings x settings: who is cheaper after Holm's correction, and the adjusted p-value."""
    c = comparison_of(data)
    settings = c.units.settings
    index = {s: k for k, s in enumerate(settings)}
    n = len(settings)
    color = np.full((n, n), "white", dtype=object)
    text = np.full((n, n), "", dtype=object)
    for p in c.pairs.itertuples():
        a, b = index[p.a], index[p.b]
        shown = "" if not np.isfinite(p.p_holm) else "<.001" if p.p_holm < 1e-3 else "1" if p.p_holm >= 0.9995 \
            else f"{p.p_holm:.3f}".lstrip("0")
        text[a, b] = text[b, a] = shown
        if p.verdict in ("a cheaper", "b cheaper"):
            winner = a if p.verdict == "a cheaper" else b
            color[winner, a + b - winner], color[a + b - winner, winner] = PAIR_COLORS["row"], PAIR_COLORS["column"]
        elif np.isfinite(p.p_holm):
            color[a, b] = color[b, a] = PAIR_COLORS["none"]
    with context():
        side = max(len(s) for s in settings)
        cell = 0.42
        labels = ["row cheaper", "column cheaper", f"no difference at {ALPHA:g}"]
        g = grid(1, 1, w=cell * n, h=max(cell * n, 0.9), left=0.3 + 0.062 * side, top=0.3 + 0.06 * side,
                 bottom=0.3, right=legend_width(labels))
        ax = g.axes[0, 0]
        for i in range(n):
            for j in range(n):
                ax.add_patch(_cell(j, i, "#dddddd" if i == j else color[i, j]))
                if text[i, j]:
                    ax.text(j, i, text[i, j], ha="center", va="center", fontsize=6.2)
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xticks(range(n), settings, rotation=90)
        ax.xaxis.tick_top()
        ax.set_yticks(range(n), settings)
        ax.grid(False)
        handles = [Patch(facecolor=PAIR_COLORS[k], label=label) for k, label in zip(("row", "column", "none"), labels)]
        g.fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(g.right_x, g.top_y), frameon=False,
                     borderaxespad=0, title="Holm-adjusted p")
        return g.fig


def _cell(j: int, i: int, color: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=color, edgecolor="white", lw=1)


# -- profiles with bands ----------------------------------------------------------------------
def band_profile_figure(data: ReportData) -> Figure:
    """Performance and data profiles of the best settings, with bootstrap bands over the problems."""
    cost_m, settings, problems, dims = cost_matrix(data)
    best = _best(data, settings)
    cols = [settings.index(s) for s in best]
    per_n = data.cost != "time"
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.nanmin(np.where(np.isnan(cost_m), np.inf, cost_m), axis=1, keepdims=True)
        ratios = (cost_m / np.where(low > 0, low, 1.0))[np.isfinite(cost_m)]
    top = max(2.0, float(ratios.max()) * 1.5) if ratios.size else 2.0
    alphas = np.geomspace(1.0, top, GRID_POINTS)
    units = (cost_m / (dims[:, None] + 1.0) if per_n else cost_m)[np.isfinite(cost_m)]
    lo = max(float(units.min()) / 2, 1e-6) if units.size else 0.1
    hi = float(units.max()) * 2 if units.size else 10.0
    kappas = np.geomspace(lo, hi, GRID_POINTS)
    idx = resample_indices(len(problems), PROFILE_BOOT, rng_of())
    rho = np.array([performance_profile(cost_m[i], alphas)[cols] for i in idx])
    dpro = np.array([data_profile(cost_m[i], dims[i] if per_n else None, kappas)[cols] for i in idx])
    with context():
        g = grid(1, 2, w=4.3, h=3.3, right=legend_width(best + [f"{LEVEL:.0%} bootstrap band"]), top=0.75,
                 bottom=0.6, wspace=0.8)
        ax_p, ax_d = g.axes[0]
        for k, s in enumerate(best):
            style = data.style(s)
            for ax, xs, full, reps in ((ax_p, alphas, performance_profile(cost_m, alphas)[cols[k]], rho[:, k]),
                                       (ax_d, kappas, data_profile(cost_m, dims if per_n else None, kappas)[cols[k]],
                                        dpro[:, k])):
                band_lo, band_hi = percentile_interval(reps, LEVEL)
                ax.fill_between(xs, band_lo, band_hi, step="post", color=style["color"], alpha=0.18, lw=0)
                ax.step(xs, full, where="post", lw=1.6, **style)
        for ax, (a, b) in ((ax_p, (1.0, top)), (ax_d, (lo, hi))):
            ax.set_xscale("log", base=2 if ax is ax_p else 10)
            ax.set_xlim(a, b)
            log_ticks(ax.xaxis, a, b)
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("fraction of its problems solved")
        ax_p.set_xlabel(f"α: within this factor of the best {COSTS[data.cost].split(' (')[0]} (log)")
        ax_d.set_xlabel("κ: budget, cost / (n + 1)" if per_n else "budget (s)")
        title(ax_p, "performance profile", 9.5)
        title(ax_d, "data profile", 9.5)
        handles = [Line2D([], [], lw=1.6, label=s, **data.style(s)) for s in best]
        handles.append(Patch(facecolor="grey", alpha=0.3, label=f"{LEVEL:.0%} bootstrap band"))
        g.fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(g.right_x, g.top_y), frameon=False,
                     borderaxespad=0, title="best first")
        g.fig.suptitle(f"Profiles over {len(problems)} problems, {PROFILE_BOOT} bootstrap resamples")
        return g.fig


# -- convergence with bands ---------------------------------------------------------------------
def _curves(data: ReportData, run_ids: list[str], f_refs: list[float], grid_x: np.ndarray) -> np.ndarray:
    """Rows: runs; the best f - f* so far at each budget of ``grid_x`` (held after the run's end)."""
    out = np.empty((len(run_ids), grid_x.size))
    for k, (r, f_ref) in enumerate(zip(run_ids, f_refs)):
        t = data.traces[r]
        at = cost_along(t, data.cost).astype(float).copy()
        if data.cost != "time":
            at[0] = 1.0
        gap = np.where(np.isfinite(t.f), t.f - f_ref, np.inf)
        best = np.minimum.accumulate(gap)
        i = np.searchsorted(at, grid_x, side="right") - 1
        out[k] = best[np.maximum(i, 0)]  # (before its first clock reading, a run is at its start)
    return out


def band_convergence_figure(data: ReportData) -> Figure:
    """Per family, the median best gap of the best settings against the cost, with bootstrap bands."""
    rep = comparison_of(data).repeats
    runs = rep.runs
    families = sorted(set(runs.family_label), key=natural_key)
    best = _best(data, list(runs.solver_label))
    cols = min(4, len(families))
    nrows = math.ceil(len(families) / cols)
    rng = rng_of()
    with context():
        band = f"median, {LEVEL:.0%} bootstrap band"
        g = grid(nrows, cols, w=3.3, h=2.5, right=legend_width(best + [band]), top=0.75, bottom=0.6, wspace=0.55,
                 hspace=0.75)
        for ax, family in zip(g.axes.ravel(), families):
            here = runs[runs.family_label == family]
            ends = [float(cost_along(data.traces[r], data.cost)[-1]) for r in here.run_id]
            start = 1.0 if data.cost != "time" else max(min(float(data.traces[r].time_s[0]) for r in here.run_id),
                                                        1e-6)
            grid_x = np.geomspace(start, max(max(ends), start * 10), GRID_POINTS)
            mine = {s: here[here.solver_label == s] for s in best}
            curves = {s: _curves(data, list(g.run_id), list(g.f_ref.astype(float)), grid_x) for s, g in mine.items()
                      if len(g)}
            floor, zero = floor_of([c.ravel() for c in curves.values()], sorted(set(here.f_ref.astype(float))))
            top = floor * 10
            for s, c in curves.items():
                shown = np.log10(np.where(c > floor, c, floor))
                median = np.median(shown, axis=0)
                top = max(top, float(np.max(10 ** median)))
                style = data.style(s)
                if len(c) >= 3:
                    reps = np.median(shown[resample_indices(len(c), CURVE_BOOT, rng)], axis=1)
                    band_lo, band_hi = percentile_interval(reps, LEVEL)
                    ax.fill_between(grid_x, 10 ** band_lo, 10 ** band_hi, color=style["color"], alpha=0.13, lw=0)
                ax.plot(grid_x, 10 ** median, lw=1.5, **style)
            ax.set_xscale("log")
            ax.set_xlim(grid_x[0], grid_x[-1])
            log_ticks(ax.xaxis, grid_x[0], grid_x[-1])
            log_y(ax, floor if zero else None, floor / (2.5 if zero else 1), 10 ** math.ceil(math.log10(top * 3)))
            n = here.groupby("solver_label").size()
            counts = sorted({int(n[s]) for s in curves})
            title(ax, f"{family} ({'/'.join(map(str, counts))} runs each)", pad=6)
        for k, ax in enumerate(g.axes.ravel()[:len(families)]):
            ax.set_xlabel(_cost_label(data.cost) if k + cols >= len(families) else "")
            ax.set_ylabel("best f − f* so far" if k % cols == 0 else "")
        for ax in g.axes.ravel()[len(families):]:
            ax.set_visible(False)
        handles = [Line2D([], [], lw=1.5, label=s, **data.style(s)) for s in best]
        handles.append(Patch(facecolor="grey", alpha=0.3, label=band))
        g.fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(g.right_x, g.top_y), frameon=False,
                     borderaxespad=0, title="best first")
        g.fig.suptitle("Median best f − f* so far over repeated runs")
        return g.fig


def _cost_label(cost: str) -> str:
    """"evaluations", "function evaluations", "wall-clock time (s)"."""
    return COSTS[cost] if cost == "time" else COSTS[cost].split(" (")[0]


# -- the tuned comparison --------------------------------------------------------------------------
def tuned_figure(data: ReportData) -> Figure:
    """Performance and data profiles of the tuned solvers on the judged starts: the usual cost (left)
    and the cost including tuning (right)."""
    t = comparison_of(data).tuned
    per_n = data.cost != "time"
    with context():
        g = grid(2, 2, w=4.0, h=2.9, right=legend_width(t.solvers), top=0.75, bottom=0.6, wspace=0.55,
                 hspace=0.8, sharey=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = [m / np.nanmin(np.where(np.isnan(m), np.inf, m), axis=1, keepdims=True)
                      for m in (t.cost, t.charged)]
        finite = np.concatenate([r[np.isfinite(r)] for r in ratios])
        top = max(2.0, float(finite.max()) * 1.5) if finite.size else 2.0
        alphas = np.geomspace(1.0, top, GRID_POINTS)
        scale = (t.dims[:, None] + 1.0) if per_n else 1.0
        units = np.concatenate([(m / scale)[np.isfinite(m)] for m in (t.cost, t.charged)])
        lo = max(float(units.min()) / 2, 1e-6) if units.size else 0.1
        hi = float(units.max()) * 2 if units.size else 10.0
        kappas = np.geomspace(lo, hi, GRID_POINTS)
        for col, (m, what) in enumerate(((t.cost, "usual cost"), (t.charged, "cost including tuning"))):
            rho = performance_profile(m, alphas)
            d = data_profile(m, t.dims if per_n else None, kappas)
            for k in range(len(t.solvers)):
                style = setting_style(k)
                g.axes[0, col].step(alphas, rho[k], where="post", lw=1.6, **style)
                g.axes[1, col].step(kappas, d[k], where="post", lw=1.6, **style)
            g.axes[0, col].set_xscale("log", base=2)
            g.axes[0, col].set_xlim(1, top)
            log_ticks(g.axes[0, col].xaxis, 1, top)
            g.axes[1, col].set_xscale("log")
            g.axes[1, col].set_xlim(lo, hi)
            log_ticks(g.axes[1, col].xaxis, lo, hi)
            title(g.axes[0, col], f"performance profile, {what}", 9.5)
            title(g.axes[1, col], f"data profile, {what}", 9.5)
            g.axes[0, col].set_xlabel("α: within this factor of the best (log)")
            g.axes[1, col].set_xlabel("κ: budget, cost / (n + 1)" if per_n else "budget (s)")
        for ax in g.axes.ravel():
            ax.set_ylim(-0.02, 1.02)
        for ax in g.axes[:, 0]:
            ax.set_ylabel("fraction of judged problems solved")
        handles = [Line2D([], [], lw=1.6, label=s, **setting_style(k)) for k, s in enumerate(t.solvers)]
        g.fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(g.right_x, g.top_y), frameon=False,
                     borderaxespad=0, title="best first")
        g.fig.suptitle(f"Tuned comparison on {len(t.units)} judged problems (objective × start), "
                       f"{COSTS[data.cost].split(' (')[0]}")
        return g.fig


FIGURES = {f.__name__: f for f in (ranking_figure, pairs_figure, band_profile_figure, band_convergence_figure,
                                   tuned_figure)}
