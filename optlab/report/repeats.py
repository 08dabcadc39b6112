"""Repeated runs, arranged for statistics: runtimes to fixed targets, the average-runtime table,
paired tests between solver settings and their ranking.

- A **family** is an objective with its options, the options that only draw a new random
  instance aside (``instance`` of BBOB, ``seed`` of ``quadratic``, ``least_squares``, ...): runs
  on a family are repetitions over instances and starts, which the aRT table pools.
- A **unit** is one problem (objective with all its options) from one start: two settings are
  paired over the units both ran.
- A run's **runtime** to a target ``f - f* <= t`` is its cost (``--cost``: evaluations, function
  evaluations or seconds) at the first iterate where the best f so far reached it, and 1 when
  the start already did (f(x0) is the first evaluation of every run); f* stands for the best
  value any run found where the objective does not know it. Every iterate is kept, so any
  target is a lookup.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np

from .data import COST_COLUMNS, ReportData
from .problems import labels
from .stats import (
    ALPHA,
    LEVEL,
    N_BOOT,
    average_runtime,
    holm,
    rank_uncertainty,
    rng_of,
    runtime_interval,
    signed_rank_test,
    unit_ranks,
)
from .style import natural_key

REPEAT_OPTIONS = ("instance", "seed")
#: Targets of the aRT table, f - f* <= t: COCO's table targets (pptable) but 1 and 1e-2.
TARGETS = (1e1, 1e-1, 1e-3, 1e-5, 1e-7)


def target_name(t: float) -> str:
    return f"{t:.0e}".replace("e+0", "e").replace("e-0", "e-")


def runtimes_to(f: np.ndarray, cost: np.ndarray, f_ref: float, targets: np.ndarray, counted: bool = True
                ) -> np.ndarray:
    """For each target t: the cost at the first iterate where min(f so far) - f_ref <= t (inf if
    never). ``counted``: costs are counts, and the first iterate (the start) costs 1."""
    gap = np.where(np.isfinite(f), f - f_ref, np.inf)
    best = np.minimum.accumulate(gap) if gap.size else gap
    at = np.asarray(cost, dtype=float).copy()
    if counted and at.size:
        at[0] = 1.0
    first = np.searchsorted(-best, -np.asarray(targets, dtype=float), side="left")
    return np.where(first < best.size, at[np.minimum(first, best.size - 1)], np.inf)


def cost_along(trace: Any, cost: str) -> np.ndarray:
    return {"nfev": trace.nfev, "evals": trace.evals, "time": trace.time_s}[cost]


def spent_of(runs: Any, cost: str) -> np.ndarray:
    """What each run spent in all (its record's totals)."""
    def column(name: str) -> np.ndarray:
        return np.asarray(runs[name], dtype=float) if name in runs else np.full(len(runs), np.nan)

    if cost == "time":
        return column("wall_time_s")
    spent = column("nfev")
    if cost == "evals":
        spent = spent + np.nan_to_num(column("ngev")) + np.nan_to_num(column("nhev"))
    return spent


def family_key(name: Any, params: dict[str, Any], dim: Any) -> str:
    rest = {k: v for k, v in (params or {}).items() if k not in REPEAT_OPTIONS}
    return json.dumps([name, rest, dim], sort_keys=True, default=str)


@dataclasses.dataclass
class Repeats:
    """The valid runs with their family, and their runtimes to ``targets`` and total spending."""

    runs: Any  # DataFrame: the report's valid runs plus ``family`` and ``family_label``
    targets: np.ndarray
    runtimes: np.ndarray  # (runs, targets)
    spent: np.ndarray  # (runs,)


def repeats_of(data: ReportData, targets: tuple[float, ...] = TARGETS) -> Repeats:
    runs = data.valid.copy()
    keys = [family_key(o, p, d) for o, p, d in zip(runs.objective, runs.objective_opts, runs.dim)]
    names = {k: (json.loads(k)[0], json.loads(k)[1]) for k in keys}
    shown = dict(zip(names, labels(list(names.values()))))
    runs["family"] = keys
    many_dims = {o for o, g in runs.groupby("objective") if g.dim.nunique() > 1}
    runs["family_label"] = [shown[k] + (f" {int(d)}-D" if o in many_dims else "")
                            for k, o, d in zip(keys, runs.objective, runs.dim)]
    t = np.asarray(targets, dtype=float)
    counted = data.cost != "time"
    rows = [runtimes_to(data.traces[r].f, cost_along(data.traces[r], data.cost), ref, t, counted)
            for r, ref in zip(runs.run_id, runs.f_ref.astype(float))]
    spent = spent_of(runs, data.cost)
    last = np.array([float(cost_along(data.traces[r], data.cost)[-1]) for r in runs.run_id])
    spent = np.where(np.isfinite(spent), spent, last)
    return Repeats(runs, t, np.array(rows).reshape(len(runs), t.size), spent)


def art_table(data: ReportData, rep: Repeats, n_boot: int = N_BOOT, level: float = LEVEL) -> Any:
    """One row per family and setting (families in label order, settings best first): runs, and per
    target the aRT with its bootstrap interval and how many runs reached it."""
    import pandas as pd

    rng = rng_of()
    rows = []
    order = {s: k for k, s in enumerate(data.ranking)}
    groups = rep.runs.groupby(["family_label", "solver_label"], sort=False).indices
    for (family, setting), idx in sorted(groups.items(), key=lambda kv: (natural_key(kv[0][0]),
                                                                         order.get(kv[0][1], len(order)))):
        row: dict[str, Any] = {"family": family, "solver_setting": setting, "runs": len(idx)}
        for j, t in enumerate(rep.targets):
            runtimes, spent = rep.runtimes[idx, j], rep.spent[idx]
            lo, hi = runtime_interval(runtimes, spent, n_boot, level, rng)
            name = target_name(t)
            row.update({f"aRT_{name}": float(average_runtime(runtimes, spent)), f"aRT_{name}_lo": lo,
                        f"aRT_{name}_hi": hi, f"reached_{name}": int(np.isfinite(runtimes).sum())})
        rows.append(row)
    return pd.DataFrame(rows)


# -- paired comparisons -------------------------------------------------------------------------
@dataclasses.dataclass
class Units:
    """Settings (best first) against units (problem, start): cost to solve (inf: not solved, NaN: did
    not run) and the relative final gap, for the paired tests and the ranking."""

    settings: list[str]
    units: list[tuple[str, str]]
    cost: np.ndarray
    gap: np.ndarray


def units_of(data: ReportData) -> Units:
    valid = data.valid
    settings = [s for s in data.ranking if s in set(valid.solver_label)]
    units = sorted(set(zip(valid.problem, valid.start_label)), key=lambda u: (natural_key(u[0]), natural_key(u[1])))
    u_index, s_index = {u: i for i, u in enumerate(units)}, {s: j for j, s in enumerate(settings)}
    cost = np.full((len(units), len(settings)), np.nan)
    gap = np.full_like(cost, np.nan)
    solved = valid[COST_COLUMNS[data.cost]].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = valid.gap_final.to_numpy(dtype=float) / np.maximum(valid.gap_start.to_numpy(dtype=float), 1e-300)
    for problem, start, setting, c, g in zip(valid.problem, valid.start_label, valid.solver_label, solved, rel):
        i, j = u_index[(problem, start)], s_index[setting]
        c = c if np.isfinite(c) else math.inf
        g = g if np.isfinite(g) else math.inf
        cost[i, j] = c if np.isnan(cost[i, j]) else min(cost[i, j], c)  # the cheapest of repeated runs
        gap[i, j] = g if np.isnan(gap[i, j]) else min(gap[i, j], g)
    return Units(settings, units, cost, gap)


def pairwise_table(u: Units, alpha: float = ALPHA) -> Any:
    """Every pair of settings (a ranked above b): the signed-rank test on their costs over shared
    units, Holm's correction over all pairs, and the verdict at ``alpha``."""
    import pandas as pd

    rows = []
    for a in range(len(u.settings)):
        for b in range(a + 1, len(u.settings)):
            t = signed_rank_test(u.cost[:, a], u.cost[:, b])
            rows.append({"a": u.settings[a], "b": u.settings[b], "units": t.n, "a_cheaper": t.wins_a,
                         "b_cheaper": t.wins_b, "ties": t.ties, "statistic": t.statistic, "p": t.p})
    table = pd.DataFrame(rows, columns=["a", "b", "units", "a_cheaper", "b_cheaper", "ties", "statistic", "p"])
    table["p_holm"] = holm(table.p.to_numpy(dtype=float)) if len(table) else []
    table["verdict"] = [_verdict(r, alpha) for r in table.itertuples()]
    return table


def _verdict(r: Any, alpha: float) -> str:
    if not np.isfinite(r.p):
        return "no test" if r.units else "no shared units"
    if r.p_holm >= alpha:
        return "no significant difference"
    return "a cheaper" if r.a_cheaper > r.b_cheaper else "b cheaper"


def ranking_table(u: Units, n_boot: int = N_BOOT, level: float = LEVEL) -> Any:
    """Settings with their mean rank over the units (0 best, 1 worst), its bootstrap interval, the
    chance of being first and the fraction of units solved; in the order of the mean rank."""
    import pandas as pd

    summary = rank_uncertainty(unit_ranks(u.cost, u.gap), n_boot, level, rng_of())
    ran = ~np.isnan(u.cost)
    solved = (np.isfinite(u.cost) & ran).sum(axis=0) / np.maximum(ran.sum(axis=0), 1)
    table = pd.DataFrame({"solver_setting": u.settings, "mean_rank": summary.mean, "rank_lo": summary.lo,
                          "rank_hi": summary.hi, "p_best": summary.p_best, "units": summary.units,
                          "solved": solved})
    return table.sort_values(["mean_rank", "solver_setting"], kind="stable").reset_index(drop=True)
