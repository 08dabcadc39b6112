"""The report's tables: one row per run (``summary.csv``) and one per solver setting and problem."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .data import ReportData

STATUS_ORDER = ("converged", "max_iter", "max_seconds", "diverged", "failed", "error", "interrupted", "invalid")

RUN_COLUMNS = {  # summary.csv column -> runs column
    "run_id": "run_id", "status": "status", "objective": "objective", "problem": "problem_label",
    "solver": "solver_name", "solver_setting": "solver_label", "lr": "lr", "x0": "start_label",
    "iterations": "iterations", "iterations_to_tol": "solved_iter", "nfev_to_tol": "solved_nfev",
    "time_to_tol_s": "solved_time_s", "f_final": "f_final", "f_ref": "f_ref", "f_ref_is_f_star": "f_ref_is_f_star",
    "gap_final": "gap_final", "nfev": "nfev", "ngev": "ngev", "nhev": "nhev", "wall_time_s": "wall_time_s",
    "message": "message", "path": "path",
}


def run_table(data: ReportData) -> Any:
    runs = data.runs
    table = runs.reindex(columns=list(RUN_COLUMNS.values())).copy()
    table.columns = list(RUN_COLUMNS)
    table["path"] = [_relative(p, data.root) for p in runs.get("path", [None] * len(runs))]
    order = np.lexsort((table.x0.astype(str), table.lr.fillna(0).to_numpy(), table.solver_setting.astype(str),
                        table.problem.astype(str)))
    return table.iloc[order].reset_index(drop=True)


def _relative(path: Any, root: Path) -> str:
    if not isinstance(path, str):
        return ""
    rel = os.path.relpath(path, root)
    return "." if rel == "." else rel


def status_counts(runs: Any) -> dict[str, int]:
    counts = runs.status.value_counts().to_dict() if len(runs) else {}
    ordered = {s: int(counts.pop(s)) for s in STATUS_ORDER if s in counts}
    ordered.update({str(k): int(v) for k, v in sorted(counts.items())})
    return ordered


def solver_table(data: ReportData) -> Any:
    """Per solver setting and problem: status counts, medians to tolerance, final gap and time."""
    import pandas as pd

    table = run_table(data)
    statuses = list(status_counts(data.runs))
    rows = []
    for (setting, problem), g in table.groupby(["solver_setting", "problem"], sort=True, dropna=False):
        solved = g[np.isfinite(g.iterations_to_tol.astype(float))]
        row = {"solver_setting": setting, "problem": problem, "runs": len(g), "solved": len(solved)}
        row.update({s: int((g.status == s).sum()) for s in statuses})
        row.update({
            "median_iterations_to_tol": _median(solved.iterations_to_tol),
            "median_nfev_to_tol": _median(solved.nfev_to_tol),
            "median_gap_final": _median(g.gap_final),
            "median_wall_time_s": _median(g.wall_time_s),
        })
        rows.append(row)
    return pd.DataFrame(rows)


def _median(values: Any) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def write_tables(data: ReportData, out_dir: Path) -> tuple[Any, Any]:
    runs, solvers = run_table(data), solver_table(data)
    runs.to_csv(out_dir / "summary.csv", index=False)
    solvers.to_csv(out_dir / "solvers.csv", index=False)
    return runs, solvers
