"""Performance profiles (Dolan and More, 2002) and data profiles (More and Wild, 2009).

A *problem* is an objective with its options and a start point; a *solver* is a solver with
its options. ``cost[p, s]`` is what solver s spent on problem p until solved (inf if never).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import ReportData
from .style import Plot, decades, new_figure, plain_numbers, save

LINESTYLES = ["-", "--", "-.", ":"]


def performance_profile(cost: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """rho[s, a] = fraction of problems where solver s is within a factor alphas[a] of the best."""
    best = cost.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(cost) & np.isfinite(best), cost / np.where(best > 0, best, 1.0), np.inf)
    ratio = np.where(np.isfinite(cost) & (best == 0), np.where(cost == 0, 1.0, np.inf), ratio)
    return (ratio[:, :, None] <= alphas[None, None, :]).mean(axis=0)


def data_profile(cost: np.ndarray, dims: np.ndarray, kappas: np.ndarray) -> np.ndarray:
    """d[s, k] = fraction of problems solver s solves within kappas[k] (n_p + 1) evaluations."""
    units = cost / (dims[:, None] + 1.0)
    return (units[:, :, None] <= kappas[None, None, :]).mean(axis=0)


def cost_matrix(data: ReportData, column: str) -> tuple[np.ndarray, list[str], list[tuple[str, str]], np.ndarray]:
    """``(cost, solvers, problems, dims)``; the cheapest run counts when a cell has several."""
    valid = data.valid
    solvers = sorted(valid.solver_label.unique())
    problems = sorted(set(zip(valid.problem, valid.start_label)))
    cost = np.full((len(problems), len(solvers)), np.inf)
    p_index = {p: i for i, p in enumerate(problems)}
    s_index = {s: j for j, s in enumerate(solvers)}
    for r in valid.itertuples():
        value = getattr(r, column)
        if np.isfinite(value):
            i, j = p_index[(r.problem, r.start_label)], s_index[r.solver_label]
            cost[i, j] = min(cost[i, j], value)
    dims = np.array([data.problems[p].dim for p, _ in problems], dtype=float)
    return cost, solvers, problems, dims


def profile_plots(data: ReportData, out_dir: Path) -> list[Plot]:
    valid = data.valid
    if valid.empty or valid.solver_label.nunique() < 2 or valid.problem.nunique() * valid.start_label.nunique() < 2:
        return []
    evals, solvers, problems, dims = cost_matrix(data, "solved_nfev")
    if len(problems) < 2 or not np.isfinite(evals).any():  # nothing solved: every profile would be flat at 0
        return []
    times = cost_matrix(data, "solved_time_s")[0]
    fig, axes = new_figure(1, 3, w=4.3, h=3.4)
    for ax, cost, what in ((axes[0, 0], evals, "function evaluations"), (axes[0, 1], times, "wall-clock time")):
        _performance(ax, cost, solvers, what)
    _data(axes[0, 2], evals, dims, solvers)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(4, len(solvers)), frameon=False)
    fig.suptitle(f"Performance and data profiles over {len(problems)} problems (objective × start point)")
    save(fig, out_dir, "profiles")
    caption = (f"A problem is an objective with its options and a start point ({len(problems)} here); it counts "
               f"as solved by a run at the first iterate with f − f* ≤ {data.tol:g} (f(x0) − f*). Left and "
               f"middle, performance profiles (Dolan and Moré 2002): the fraction of problems a solver solves "
               f"within a factor α of the cheapest solver on that problem, by function evaluations and by time; "
               f"the value at α = 1 is how often it is the fastest, the height on the right how often it solves "
               f"at all. Right, the data profile (Moré and Wild 2009): the fraction of problems solved within "
               f"κ (n + 1) function evaluations, n the dimension. A solver that did not run on a problem, or "
               f"whose run was invalid, counts as not solving it.")
    return [Plot("profiles", "Profiles", "performance and data profiles", caption)]


def _style(k: int) -> dict:
    return {"color": f"C{k % 10}", "ls": LINESTYLES[(k // 10) % len(LINESTYLES)], "lw": 1.6}


def _performance(ax, cost: np.ndarray, solvers: list[str], what: str) -> None:
    best = cost.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = (cost / np.where(best > 0, best, 1.0))[np.isfinite(cost)]
    top = max(2.0, float(ratios.max()) * 1.5) if ratios.size else 2.0
    alphas = np.unique(np.r_[1.0, np.clip(ratios, 1.0, None), top])
    rho = performance_profile(cost, alphas)
    for k, name in enumerate(solvers):
        ax.step(alphas, rho[k], where="post", label=name, **_style(k))
    ax.set_xscale("log", base=2)
    plain_numbers(ax.xaxis)
    ax.set_xlim(1, top)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"α: within this factor of the best {what} (log₂)")
    ax.set_ylabel("fraction of problems solved")
    ax.set_title(f"Performance profile: {what}")


def _data(ax, cost: np.ndarray, dims: np.ndarray, solvers: list[str]) -> None:
    units = (cost / (dims[:, None] + 1.0))[np.isfinite(cost)]
    lo = max(float(units.min()) / 2, 1e-3) if units.size else 0.1
    hi = float(units.max()) * 2 if units.size else 10.0
    kappas = np.unique(np.r_[lo, units, hi])
    d = data_profile(cost, dims, kappas)
    for k, name in enumerate(solvers):
        ax.step(kappas, d[k], where="post", label=name, **_style(k))
    ax.set_xscale("log")
    decades(ax.xaxis)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("κ: budget in simplex gradients, evaluations / (n + 1)")
    ax.set_ylabel("fraction of problems solved")
    ax.set_title("Data profile: function evaluations")
