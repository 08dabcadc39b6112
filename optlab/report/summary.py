"""The report's tables: one row per run (``summary.csv``) and one per solver setting and problem.

Text cells that a spreadsheet would read as a formula (starting with = + - @, a tab or a
carriage return) are written with a leading quote.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.stopping import VERDICTS, verdict
from .data import ReportData
from .style import natural_key

# how runs are counted (optlab.engine.stopping.verdict): converged runs at saddles and maxima apart
STATUS_ORDER = VERDICTS  # (the statuses of optlab.engine.stopping, as summaries count them)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

RUN_COLUMNS = {  # summary.csv column -> runs column
    "run_id": "run_id", "sweep": "sweep", "status": "status", "point": "point", "not_applicable": "not_applicable",
    "objective": "objective", "problem": "problem_label", "solver": "solver_name", "solver_setting": "solver_label",
    "lr": "lr", "x0": "start_label", "iterations": "iterations", "iterations_to_tol": "solved_iter",
    "nfev_to_tol": "solved_nfev", "evals_to_tol": "solved_evals", "time_to_tol_s": "solved_time_s",
    "f_final": "f_final", "f_ref": "f_ref", "f_ref_is_f_star": "f_ref_is_f_star", "gap_final": "gap_final",
    "nfev": "nfev", "ngev": "ngev", "nhev": "nhev", "wall_time_s": "wall_time_s", "batch_size": "batched",
    "message": "message", "path": "path",
}


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would take for a formula, quoted; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def run_table(data: ReportData) -> Any:
    runs = data.runs
    table = runs.reindex(columns=list(RUN_COLUMNS.values())).copy()
    table.columns = list(RUN_COLUMNS)
    table["path"] = [_relative(p, data.roots) for p in runs.get("path", [None] * len(runs))]
    table.insert(int(table.columns.get_loc("status")) + 1, "verdict", verdicts(table))
    if len(data.roots) < 2:
        table = table.drop(columns=["sweep"])
    for column in ("iterations_to_tol", "nfev_to_tol", "evals_to_tol", "iterations", "nfev", "ngev", "nhev",
                   "batch_size"):
        table[column] = table[column].astype("Float64").round().astype("Int64")
    keys = list(zip(table.problem.map(lambda v: natural_key(str(v))), table.solver_setting.map(
        lambda v: natural_key(str(v))), table.lr.fillna(0), runs.get("start_key", [()] * len(runs))))
    order = sorted(range(len(table)), key=lambda i: keys[i])
    return table.iloc[order].reset_index(drop=True)


def _relative(path: Any, roots: list[Path]) -> str:
    if not isinstance(path, str):
        return ""
    for root in roots:
        rel = os.path.relpath(path, root.resolve())
        if not rel.startswith(".."):
            return "." if rel == "." else rel
    return path


def verdicts(runs: Any) -> list[str]:
    """Each run's verdict (:func:`optlab.engine.stopping.verdict`): its status, converged runs at saddles
    and maxima apart, invalid jobs whose solver does not apply as ``not applicable``."""
    columns = [c for c in ("status", "point", "not_applicable") if c in runs]
    return [verdict({c: (None if isinstance(v, float) and v != v else v) for c, v in zip(columns, row)})
            for row in zip(*(runs[c] for c in columns))] if len(runs) else []


def status_counts(runs: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in verdicts(runs):
        counts[label] = counts.get(label, 0) + 1
    ordered = {s: int(counts.pop(s)) for s in STATUS_ORDER if s in counts}
    ordered.update({str(k): int(v) for k, v in sorted(counts.items())})
    return ordered


def solver_table(data: ReportData) -> Any:
    """Per solver setting and problem: status counts, medians to tolerance, final gap and time."""
    import pandas as pd

    table = run_table(data)
    statuses = [s for s in status_counts(data.runs) if s != "not applicable"]
    rows = []
    for (setting, problem), g in table.groupby(["solver_setting", "problem"], sort=False, dropna=False):
        solved = g[np.isfinite(g.iterations_to_tol.astype(float))]
        row = {"solver_setting": setting, "problem": problem, "runs": len(g), "solved": len(solved)}
        row.update({s: int((g.verdict == s).sum()) for s in statuses})
        row["not_applicable"] = int(g.not_applicable.fillna(False).astype(bool).sum())
        row.update({
            "median_iterations_to_tol": _median(solved.iterations_to_tol),
            "median_nfev_to_tol": _median(solved.nfev_to_tol),
            "median_evals_to_tol": _median(solved.evals_to_tol),
            # a diverged run's final gap is infinite, never left out: 2 of 3 diverged make the median inf
            "median_gap_final": _median(np.where(g.verdict == "diverged", np.inf, g.gap_final.astype(float)),
                                        keep_inf=True),
            "median_wall_time_s": _median(g.wall_time_s),
        })
        rows.append(row)
    rank = {s: k for k, s in enumerate(data.ranking)}
    rows.sort(key=lambda r: (rank.get(r["solver_setting"], len(rank)), natural_key(str(r["problem"]))))
    return pd.DataFrame(rows)


def _median(values: Any, keep_inf: bool = False) -> float:
    """The median of the values that are numbers (NaN left out; infinities too unless ``keep_inf``)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)] if keep_inf else v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def pd_numeric(column: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def write_tables(data: ReportData, out_dir: Path) -> tuple[Any, Any]:
    runs, solvers = run_table(data), solver_table(data)
    for table, name in ((runs, "summary.csv"), (solvers, "solvers.csv")):
        safe = table.copy()
        for column in safe.columns:
            if not pd_numeric(safe[column]):
                safe[column] = safe[column].map(neutralise)
        safe.to_csv(out_dir / name, index=False)
    return runs, solvers
