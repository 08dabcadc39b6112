"""The tuned comparison: each solver's best setting picked on some starts, judged on the others,
with the runs spent picking it charged.

A sweep declares its tuning axes (see :mod:`.tuning_axes`): a list of solver options (``[lr]``:
every solver, over its learning rate) or a mapping from solver to options (``{gd: [lr]}``).

Protocol, for each problem (an objective with its options):

1. The settings of a solver that differ only in the declared options are the candidates of one
   *tuned solver*; a setting alone (no declared option varies) is a solver of its own, untuned.
2. The starts of the problem, in numeric order, alternate: the 1st, 3rd, ... are for tuning,
   the 2nd, 4th, ... are judged.
3. On the tuning starts, each tuned solver keeps the candidate with the lowest average runtime
   to solve (COCO's aRT: cost of all runs over the number solved; ties: the lower median final
   gap). Every tuning run is charged what it spent until solved, or all it spent if not
   (every iterate is kept: no run has to be repeated to know this).
4. On the judged starts, the chosen candidate's runs give the usual profile; the "cost including
   tuning" profile adds to each solved judged run its share of the tuning cost (the problem's
   tuning cost divided by its judged starts).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np

from .data import COST_COLUMNS, ReportData
from .problems import labels, short
from .repeats import spent_of
from .stats import average_runtime
from .style import natural_key


@dataclasses.dataclass
class Tuned:
    """The tuned comparison's result."""

    tune: dict[str, tuple[str, ...]]
    solvers: list[str]  # tuned (and untuned) solvers, best first
    units: list[tuple[str, str]]  # judged (problem, start)
    cost: np.ndarray  # (judged units, solvers): the chosen setting's cost to solve; inf unsolved, NaN not run
    charged: np.ndarray  # the same with each solved run's share of the tuning cost added
    dims: np.ndarray  # per judged unit
    table: Any  # per solver and problem: candidates, the chosen one, tuning cost, judged results
    tuning_starts: int
    judged_starts: int


def _family(row: Any, tune: dict[str, tuple[str, ...]]) -> tuple[str, tuple[str, ...]]:
    names = tune.get(row.solver_name, tune.get("*", ()))
    rest = {k: v for k, v in row.solver_opts.items() if k not in names}
    return json.dumps([row.sweep, row.solver_name, rest, row.stop_opts], sort_keys=True, default=str), names


def _split(valid: Any) -> dict[str, tuple[list[str], list[str]]]:
    """Per problem: (tuning starts, judged starts), alternating in numeric order of the start."""
    out = {}
    for problem, g in valid.groupby("problem"):
        starts = [label for _, label in sorted(set(zip(g.start_key, g.start_label)))]
        out[problem] = (starts[0::2], starts[1::2])
    return out


def tuned_comparison(data: ReportData, tune: dict[str, tuple[str, ...]]) -> Tuned:
    import pandas as pd

    valid = data.valid.copy()
    fams = [_family(r, tune) for r in valid.itertuples()]
    valid["tuned_family"] = [f for f, _ in fams]
    cost = valid[COST_COLUMNS[data.cost]].to_numpy(dtype=float)
    valid["cost_to_solve"] = np.where(np.isfinite(cost), cost, np.inf)
    valid["charge"] = np.where(np.isfinite(cost), cost, spent_of(valid, data.cost))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = valid.gap_final.to_numpy(dtype=float) / np.maximum(valid.gap_start.to_numpy(dtype=float), 1e-300)
    valid["rel_gap"] = np.where(np.isfinite(rel), rel, np.inf)
    names = {f: n for f, (_, n) in zip(valid.tuned_family, fams)}
    family_labels = _family_labels(valid, names)
    split = _split(valid)
    valid["share"] = math.nan
    rows, chosen = [], {}
    for (family, problem), g in valid.groupby(["tuned_family", "problem"], sort=False):
        tuning, judged = split[problem]
        on_tuning = g[g.start_label.isin(tuning)]
        candidates = sorted(set(g.solver_label), key=natural_key)
        scores = {}
        for c in candidates:
            runs = on_tuning[on_tuning.solver_label == c]
            art = float(average_runtime(runs.cost_to_solve.to_numpy(), runs.charge.to_numpy())) if len(runs) \
                else math.inf
            scores[c] = (art, float(np.median(runs.rel_gap)) if len(runs) else math.inf, natural_key(c))
        best = min(candidates, key=lambda c: scores[c])
        chosen[(family, problem)] = best
        tuning_cost = float(on_tuning.charge.sum()) if len(candidates) > 1 else 0.0
        mine = g[(g.solver_label == best) & g.start_label.isin(judged)]
        solved = mine.cost_to_solve.to_numpy()
        share = tuning_cost / max(len(judged), 1)
        rows.append({"solver": family_labels[family], "problem": data.problems[problem].label,
                     "candidates": len(candidates), "chosen": _chosen_label(g, best, names[family]),
                     "tuning_runs": len(on_tuning) if len(candidates) > 1 else 0, "tuning_cost": tuning_cost,
                     "judged_runs": len(mine), "judged_solved": int(np.isfinite(solved).sum()),
                     "judged_aRT": float(average_runtime(solved, mine.charge.to_numpy())) if len(mine) else math.nan,
                     "judged_aRT_with_tuning": _art_with(solved, mine.charge.to_numpy(), tuning_cost)})
        valid.loc[mine.index, "share"] = share
    table = pd.DataFrame(rows)
    units = sorted({(p, s) for p, (_, judged) in split.items() for s in judged},
                   key=lambda u: (natural_key(data.problems[u[0]].label), natural_key(u[1])))
    solvers = _order(table, family_labels)
    u_index, s_index = {u: i for i, u in enumerate(units)}, {s: j for j, s in enumerate(solvers)}
    cost_m = np.full((len(units), len(solvers)), np.nan)
    charged = cost_m.copy()
    for r in valid.itertuples():
        if chosen.get((r.tuned_family, r.problem)) != r.solver_label or (r.problem, r.start_label) not in u_index:
            continue
        i, j = u_index[(r.problem, r.start_label)], s_index[family_labels[r.tuned_family]]
        cost_m[i, j] = r.cost_to_solve if np.isnan(cost_m[i, j]) else min(cost_m[i, j], r.cost_to_solve)
        charged[i, j] = cost_m[i, j] + (r.share if math.isfinite(r.share) else 0.0)
    dims = np.array([data.problems[p].dim for p, _ in units], dtype=float)
    table = table.sort_values(["problem", "solver"], key=lambda c: c.map(lambda v: natural_key(str(v))),
                              kind="stable").reset_index(drop=True)
    n_tune = sum(len(t) for t, _ in split.values())
    return Tuned(tune, solvers, units, cost_m, charged, dims, table, n_tune, len(units))


def _art_with(solved: np.ndarray, charge: np.ndarray, tuning_cost: float) -> float:
    """aRT on the judged runs with the tuning cost added to the total spent."""
    hits = int(np.isfinite(solved).sum())
    return (float(np.where(np.isfinite(solved), solved, charge).sum()) + tuning_cost) / hits if hits else math.inf


def _family_labels(valid: Any, names: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Tuned solvers as "gd (tuned: lr)", untuned ones by their setting's label."""
    out = {}
    multi = {f: g.solver_label.nunique() > 1 for f, g in valid.groupby("tuned_family")}
    families = list(dict.fromkeys(valid.tuned_family))
    items = []
    for f in families:
        sweep, solver, rest, stop = json.loads(f)
        items.append((solver, {**rest, **{f"stop.{k}": v for k, v in stop.items()}, **({"sweep": sweep} if sweep
                                                                                      else {})}))
    for f, base in zip(families, labels(items)):
        first = valid[valid.tuned_family == f].solver_label.iloc[0]
        out[f] = f"{base} (tuned: {', '.join(names[f])})" if multi[f] else first
    return out


def _chosen_label(g: Any, best: str, names: tuple[str, ...]) -> str:
    opts = g[g.solver_label == best].solver_opts.iloc[0]
    shown = ", ".join(f"{k}={short(opts[k])}" for k in names if k in opts)
    return shown or best


def _order(table: Any, family_labels: dict[str, str]) -> list[str]:
    """Solvers best first: by the fraction of judged runs solved, then the median judged aRT with tuning."""
    def score(name: str) -> tuple:
        g = table[table.solver == name]
        frac = g.judged_solved.sum() / max(g.judged_runs.sum(), 1)
        return (-frac, float(np.median(g.judged_aRT_with_tuning)) if len(g) else math.inf, natural_key(name))

    return sorted(set(family_labels.values()), key=score)
