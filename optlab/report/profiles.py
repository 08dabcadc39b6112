"""Performance profiles (Dolan and Moré, 2002), data profiles (Moré and Wild, 2009) and which
setting solved which problem.

A *problem* is an objective with its options and a start point; a *solver* is a solver setting.
``cost[p, s]`` is what setting s spent on problem p until solved: inf if it ran and never
solved it, NaN if it did not run there (its jobs were recorded as not applicable, or it was
not in the sweep). Each setting's profile is over the problems it applies to, the best cost on
a problem over the settings that apply to it. The cost is ``nfev``, ``nfev + ngev + nhev``
(default: Newton's Hessians are not free) or wall-clock time.

On COCO's BBOB functions (``objective=bbob``) the report also draws COCO's own view: the
empirical distribution of runtimes to reach each of 51 targets f* + 10^k, k = 2, 1.8, ..., -8,
against function evaluations / dimension (Hansen et al., COCO: performance assessment, 2022).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .data import BATCH_NOTE, COST_COLUMNS, COSTS, ReportData, time_claims
from .layout import HALO, coinciding
from .links import setting_href, unit_href
from .style import (
    MAX_LEGEND_SETTINGS,
    NA_COLOR,
    Plot,
    capped_legend,
    context,
    grid,
    legend,
    legend_width,
    line_style,
    log_ticks,
    natural_key,
    title,
)

MIN_PROBLEMS = 4
#: Objectives with COCO's targets (f* known, targets f* + 10^k): the runtime profile is drawn for them.
COCO_OBJECTIVES = ("bbob",)
COCO_EXPONENTS = np.round(np.linspace(2.0, -8.0, 51), 10)  # COCO's 51 targets: 10^2 ... 10^-8, 5 per decade
OUTCOME_CMAP = ListedColormap(["#fcbba1", "#e5f5e0", "#a1d99b", "#41ab5d"])  # none, under half, half or more, all


def performance_profile(cost: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """rho[s, a]: the fraction of the problems setting s applies to (cost not NaN) that it solves within a
    factor alphas[a] of the best setting on that problem."""
    applies = ~np.isnan(cost)
    c = np.where(applies, cost, np.inf)
    best = c.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(c), c / np.where(best > 0, best, 1.0), np.inf)
    ratio = np.where(np.isfinite(c) & (best == 0), np.where(c == 0, 1.0, np.inf), ratio)
    hits = (ratio[:, :, None] <= alphas[None, None, :]) & applies[:, :, None]
    return hits.sum(axis=0) / np.maximum(applies.sum(axis=0), 1)[:, None]


def data_profile(cost: np.ndarray, dims: np.ndarray | None, kappas: np.ndarray) -> np.ndarray:
    """d[s, k]: the fraction of the problems setting s applies to that it solves within kappas[k] (n_p + 1)
    evaluations (``dims=None``: within kappas[k] of the cost itself, e.g. seconds)."""
    applies = ~np.isnan(cost)
    units = cost / (dims[:, None] + 1.0) if dims is not None else cost
    hits = (np.where(applies, units, np.inf)[:, :, None] <= kappas[None, None, :]) & applies[:, :, None]
    return hits.sum(axis=0) / np.maximum(applies.sum(axis=0), 1)[:, None]


def coco_runtimes(f: np.ndarray, nfev: np.ndarray, f_star: float, exponents: np.ndarray = COCO_EXPONENTS
                  ) -> np.ndarray:
    """For each target f* + 10^k: the function evaluations (nfev) at the first iterate with
    f - f* <= 10^k, inf if the run never got there (COCO's runtime of a run on a target)."""
    gap = np.where(np.isfinite(f), f - f_star, np.inf)
    best = np.minimum.accumulate(gap) if gap.size else gap
    out = np.full(len(exponents), np.inf)
    for i, k in enumerate(exponents):
        hit = np.flatnonzero(best <= 10.0 ** k)
        if hit.size:
            out[i] = nfev[hit[0]]
    return out


def coco_ecdf(runtimes: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """The fraction of (problem, target) pairs (the entries of ``runtimes``, per dimension already
    divided) reached within each budget."""
    flat = np.sort(np.ravel(runtimes))
    return np.searchsorted(flat, budgets, side="right") / max(flat.size, 1)


def coco_data(data: ReportData) -> dict[int, dict[str, tuple[np.ndarray, float]]]:
    """Per dimension and setting: the runtimes / dim of every BBOB run on every target (rows: runs)
    and the largest budget / dim the setting spent on a run."""
    out: dict[int, dict[str, tuple[list, float]]] = {}
    valid = data.valid
    for run_id, problem, setting in zip(valid.run_id, valid.problem, valid.solver_label):
        info = data.problems.get(problem)
        if info is None or info.name not in COCO_OBJECTIVES or info.f_star is None:
            continue
        t = data.traces[run_id]
        per_dim = out.setdefault(info.dim, {})
        rows, spent = per_dim.get(setting, ([], 0.0))
        rows.append(coco_runtimes(t.f, t.nfev, info.f_star) / info.dim)
        last = t.nfev[np.isfinite(t.nfev)]
        per_dim[setting] = (rows, max(spent, float(last[-1]) / info.dim if last.size else 0.0))
    return {d: {s: (np.array(r), spent) for s, (r, spent) in v.items()} for d, v in sorted(out.items())}


def _coco_figure(data: ReportData) -> Figure:
    by_dim = coco_data(data)
    settings = [s for s in data.ranking if any(s in v for v in by_dim.values())]
    handles = capped_legend(data, settings, settings)
    ncols = min(len(by_dim), 3)
    g = grid(math.ceil(len(by_dim) / ncols), ncols, w=4.0, h=3.1, right=legend_width([h.get_label() for h in
             handles]), top=0.75, bottom=0.6, wspace=0.6, hspace=0.9, legend_rows=len(handles) + 1,
             title="COCO runtime profile (empirical cumulative distribution of runtimes)")
    for ax in np.ravel(g.axes)[len(by_dim):]:
        ax.set_visible(False)
    for ax, (dim, runs) in zip(np.ravel(g.axes), by_dim.items()):
        spent = max(v[1] for v in runs.values())
        hi = max(10.0, spent * 2)
        budgets = np.geomspace(0.1, hi, 400)
        functions = {data.problems[p].params.get("function") for p in set(data.valid.problem)
                     if data.problems[p].name in COCO_OBJECTIVES and data.problems[p].dim == dim}
        for setting in sorted(settings, key=lambda s: data.rank(s) < MAX_LEGEND_SETTINGS):  # the grey first
            if setting not in runs:
                continue
            rows, most = runs[setting]
            frac = coco_ecdf(rows, budgets)
            style = line_style(data, setting)
            ax.step(budgets, frac, where="post", **style)[0].set_url(setting_href(setting))
            ax.plot([most], [coco_ecdf(rows, np.array([most]))[0]], marker="x", ms=7, mew=1.6, ls="none",
                    color=style["color"], alpha=style["alpha"])
        ax.set_xscale("log")
        ax.set_xlim(0.1, hi)
        log_ticks(ax.xaxis, 0.1, hi)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("function evaluations / dimension (log)")
        ax.set_ylabel("fraction of (function, target) pairs")
        title(ax, f"{len(functions)} BBOB function(s), {dim}-D, 51 targets 10^[-8..2]", 9.5)
    legend(g.fig, handles, loc="upper left", bbox_to_anchor=(g.right_x, g.top_y), frameon=False, borderaxespad=0,
           title="best first")
    return g.fig


def cost_matrix(data: ReportData, cost: str | None = None) -> tuple[np.ndarray, list[str], list[tuple], np.ndarray]:
    """``(cost, settings best first, problems (objective, start) in order, dims)``; the cheapest run of a
    setting counts when it ran a problem several times."""
    valid = data.valid
    column = COST_COLUMNS[cost or data.cost]
    settings = [s for s in data.ranking if s in set(valid.solver_label)]
    problems = sorted(set(zip(valid.problem, valid.start_label, valid.start_key)),
                      key=lambda p: (natural_key(data.problems[p[0]].label), p[2]))
    problems = [(p, s) for p, s, _ in problems]
    cost_m = np.full((len(problems), len(settings)), np.nan)
    p_index = {p: i for i, p in enumerate(problems)}
    s_index = {s: j for j, s in enumerate(settings)}
    for problem, start, setting, value in zip(valid.problem, valid.start_label, valid.solver_label, valid[column]):
        i, j = p_index[(problem, start)], s_index[setting]
        value = float(value) if np.isfinite(value) else math.inf
        cost_m[i, j] = value if np.isnan(cost_m[i, j]) else min(cost_m[i, j], value)
    dims = np.array([data.problems[p].dim for p, _ in problems], dtype=float)
    return cost_m, settings, problems, dims


def not_applicable(data: ReportData) -> set[tuple[str, str]]:
    """(solver, objective) pairs recorded as not applicable."""
    na = data.runs[data.runs.not_applicable] if "not_applicable" in data.runs else data.runs.iloc[:0]
    return {(str(r.solver), str(r.objective)) for r in na.itertuples()}


def outcome_table(data: ReportData) -> tuple[list[str], list[str], list[list[str]]]:
    """Per setting (rows, best first) and objective-with-options (columns): "k/n" solved of n runs, "n/a"
    (recorded as not applicable) or "" (did not run)."""
    valid = data.valid
    settings = [s for s in data.ranking if s in set(valid.solver_label)]
    problems = data.problem_order()
    na = not_applicable(data)
    rows = []
    for s in settings:
        sub = valid[valid.solver_label == s]
        solver = sub.solver_name.iloc[0]
        row = []
        for p in problems:
            g = sub[sub.problem == p]
            if len(g):
                row.append(f"{int(np.isfinite(g.solved_iter.to_numpy(dtype=float)).sum())}/{len(g)}")
            else:
                row.append("n/a" if (solver, data.problems[p].name) in na else "")
        rows.append(row)
    return settings, [data.problems[p].label for p in problems], rows


def profile_figure(data: ReportData, cost: str | None = None, coco: bool = False) -> Figure:
    """The performance profile and the data profile by ``cost`` ("nfev", "evals" or "time"); with
    ``coco``, COCO's runtime profile of the runs on BBOB functions instead (one panel per dimension)."""
    with context():
        return _coco_figure(data) if coco else _profile_figure(data, cost or data.cost)


def _profiles(cost_m: np.ndarray, dims: np.ndarray, cost: str) -> tuple[np.ndarray, ...]:
    """``(alphas, rho, kappas, d, per_n)``: the performance profile rho over alphas, the data profile d
    over budgets kappas (per n + 1 evaluations, except for time)."""
    best = np.nanmin(np.where(np.isnan(cost_m), np.inf, cost_m), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = (cost_m / np.where(best > 0, best, 1.0))[np.isfinite(cost_m)]
    top = max(2.0, float(ratios.max()) * 1.5) if ratios.size else 2.0
    alphas = np.unique(np.r_[1.0, np.clip(ratios, 1.0, None), top])
    per_n = cost != "time"
    units = (cost_m / (dims[:, None] + 1.0) if per_n else cost_m)[np.isfinite(cost_m)]
    lo = max(float(units.min()) / 2, 1e-6) if units.size else 0.1
    hi = float(units.max()) * 2 if units.size else 10.0
    kappas = np.unique(np.r_[lo, np.clip(units, lo, None), hi])
    return alphas, performance_profile(cost_m, alphas), kappas, data_profile(cost_m, dims if per_n else None,
                                                                               kappas), per_n


def _profile_figure(data: ReportData, cost: str) -> Figure:
    cost_m, settings, problems, dims = cost_matrix(data, cost)
    alphas, rho, kappas, d, per_n = _profiles(cost_m, dims, cost)
    # Drawn: the grey settings first, then the named ones best first; a setting whose curves (both) others
    # lie on is drawn wider beneath them, and its legend entry says so.
    order = sorted(range(len(settings)), key=lambda k: (data.rank(settings[k]) < MAX_LEGEND_SETTINGS, k))
    on_p, on_d = (coinciding([(xs, ys[k]) for k in order]) for xs, ys in ((alphas, rho), (kappas, d)))
    under = {order[i]: [order[j] for j in set(a) & set(b)] for i, (a, b) in enumerate(zip(on_p, on_d))}
    applies = (~np.isnan(cost_m)).sum(axis=0)
    names = [s + (f" (on {n} of {len(problems)})" if n < len(problems) else "") for s, n in zip(settings, applies)]
    if cost == "time":  # a batched run's time is its share of the batch's: say so where it is read
        batched = set(data.valid[data.valid.batched > 0].solver_label)
        names = [n + (f" ({BATCH_NOTE})" if s in batched else "") for s, n in zip(settings, names)]
    on = [[settings[j] for j in under[k] if data.rank(settings[j]) < MAX_LEGEND_SETTINGS] for k in range(len(names))]
    names = [n + (f" (the wide line: {', '.join(o)} on it)" if o else "") for n, o in zip(names, on)]
    handles = capped_legend(data, settings, names)
    g = grid(1, 2, w=4.3, h=3.3, right=legend_width([h.get_label() for h in handles]), top=0.75, bottom=0.6,
             wspace=0.8, legend_rows=len(handles) + 1,
             title=f"Profiles over {len(problems)} problems (objective × start point)")
    ax_p, ax_d = g.axes[0]
    for k in order:
        style = line_style(data, settings[k])
        style["lw"] += HALO * len(under[k])
        style["alpha"] *= 0.55 if under[k] else 1.0
        for ax, xs, ys in ((ax_p, alphas, rho[k]), (ax_d, kappas, d[k])):
            (line,) = ax.step(xs, ys, where="post", **style)
            line.set_url(setting_href(settings[k]))
    ax_p.set_xscale("log", base=2)
    ax_p.set_xlim(1, alphas[-1])
    log_ticks(ax_p.xaxis, 1, alphas[-1])
    ax_p.set_xlabel(f"α: within this factor of the best {COSTS[cost].split(' (')[0]} (log)")
    title(ax_p, f"Performance profile: {COSTS[cost]}", 9.5)
    ax_d.set_xscale("log")
    ax_d.set_xlim(kappas[0], kappas[-1])
    log_ticks(ax_d.xaxis, kappas[0], kappas[-1])
    ax_d.set_xlabel("κ: budget, cost / (n + 1)" if per_n else "budget (s)")
    title(ax_d, f"Data profile: {COSTS[cost]}", 9.5)
    for ax in (ax_p, ax_d):
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("fraction of its problems solved")
    legend(g.fig, handles, loc="upper left", bbox_to_anchor=(g.right_x, g.top_y), frameon=False, borderaxespad=0,
           title="best first")
    return g.fig


def outcome_figure(data: ReportData) -> Figure:
    """Settings (rows, best first) x objectives: solved of run, n/a where the solver does not apply."""
    with context():
        settings, problems, rows = outcome_table(data)
        width = 1.0 + 0.065 * max(len(s) for s in settings)
        g = grid(1, 1, w=max(3.2, 0.75 * len(problems) + 0.2), h=max(1.2, 0.26 * len(settings) + 0.2), left=width,
                 top=0.6, bottom=1.1, right=0.3)
        ax = g.axes[0, 0]
        frac = np.full((len(settings), len(problems)), np.nan)
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                if text not in ("n/a", ""):
                    k, n = (int(v) for v in text.split("/"))
                    frac[i, j] = k / n
        level = np.where(np.isnan(frac), np.nan, np.select([frac <= 0, frac < 0.5, frac < 1], [0, 1, 2], 3))
        ax.imshow(np.ma.masked_invalid(level), cmap=OUTCOME_CMAP, vmin=-0.5, vmax=3.5, aspect="auto")
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                if text in ("n/a", ""):
                    ax.add_patch(_na_patch(j, i, text))
                if text:  # the cell links to the runs behind it
                    cell = ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=0))
                    cell.set_url(unit_href(settings[i], problems[j]))
                ax.text(j, i, text or "–", ha="center", va="center", fontsize=7, color="#555555" if
                        text in ("n/a", "") else "black")
        ax.set_xticks(range(len(problems)), problems, rotation=40, ha="right")
        ax.set_yticks(range(len(settings)), settings)
        ax.grid(False)
        title(ax, "runs solved / runs, best setting first", 9.5)
        return g.fig


def _na_patch(j: int, i: int, text: str) -> Any:
    return Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=NA_COLOR if text == "n/a" else "white",
                     hatch="//" if text == "n/a" else None, edgecolor="#cccccc", lw=0.5)


def profile_tasks(data: ReportData) -> list[tuple[Plot, str, dict[str, Any]]]:
    valid = data.valid
    if valid.empty:
        return []
    out = []
    if coco_data(data):  # COCO's view, also for one setting alone (its runtimes against the budget)
        caption = ("COCO's runtime profile on the BBOB runs: for each run and each of COCO's 51 targets f* + 10^k "
                   "(k = 2, 1.8, ..., -8), the function evaluations (finite differences included) until the best "
                   "f so far first reached the target, divided by the dimension; each curve is the fraction of "
                   "(run, target) pairs reached within a budget, × where the setting's longest run ended. "
                   "One panel per dimension (Hansen et al., COCO: performance assessment, 2022).")
        out.append((Plot("profiles_coco", "Profiles", "COCO runtime profile (BBOB)", caption), "profile_figure",
                    {"coco": True}))
    if valid.solver_label.nunique() < 2:
        return out
    cost_m, settings, problems, _ = cost_matrix(data)
    if len(problems) >= MIN_PROBLEMS and np.isfinite(cost_m).any():
        caption = (f"A problem is an objective with its options and a start point ({len(problems)} here); a run "
                   f"solves it at the first iterate with f − f* ≤ {data.tol:g} (f(x0) − f*). Left, the performance "
                   f"profile (Dolan and Moré 2002): the fraction of its problems a setting solves within a factor α "
                   f"of the cheapest setting there, by {COSTS[data.cost]}; at α = 1, how often it is the cheapest; "
                   f"on the right edge, how often it solves at all. Right, the data profile (Moré and Wild 2009): "
                   f"the fraction solved within a budget. Each setting counts only the problems it applies to "
                   f"(“on k of n” in the legend); legend best first.")
        caption += time_claims(valid, data.cost)
        out.append((Plot("profiles", "Profiles", f"performance and data profiles ({COSTS[data.cost]})", caption),
                    "profile_figure", {}))
    if valid.problem.nunique() >= 2 or not_applicable(data):
        caption = ("For each solver setting (best first) and objective: how many of its runs (one per start) "
                   "solved the problem; hatched n/a where the solver does not apply to the objective (its job was "
                   "recorded as not applicable), – where it did not run.")
        out.append((Plot("solved", "Profiles", "solved runs by setting and objective", caption),
                    "outcome_figure", {}))
    return out
