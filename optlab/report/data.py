"""The report's data: runs read through :func:`optlab.load`, checked, and measured against f*.

Every run gets a reference value ``f_ref`` (f* when the objective knows it, else the best
value any run found on that problem) and the gap ``f - f_ref`` along its iterates. A run
counts as *solved* at the first iterate with ``f - f_ref <= tol * (f(x0) - f_ref)``
(the test of More and Wild, 2009), which is scale-free across problems.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .problems import ProblemInfo, labels, problem_key, rebuild

INCOMPLETE = "running"


@dataclasses.dataclass
class Trace:
    """One run's iterates as arrays (``x``: the first two coordinates, rows per iterate)."""

    iter: np.ndarray
    f: np.ndarray
    grad_norm: np.ndarray
    nfev: np.ndarray
    time_s: np.ndarray
    x: np.ndarray

    def gap(self, f_ref: float) -> np.ndarray:
        return self.f - f_ref


@dataclasses.dataclass
class ReportData:
    root: Path
    runs: Any  # pandas DataFrame, one row per run kept (invalid runs included, without traces)
    traces: dict[str, Trace]
    problems: dict[str, ProblemInfo]
    skipped: list[str]
    tol: float

    @property
    def valid(self) -> Any:
        """The runs that ran (they have iterates): every status but ``invalid``."""
        return self.runs[self.runs.run_id.isin(self.traces.keys())]


def read(root: str | Path, tol: float = 1e-6) -> ReportData:
    """Read a run directory or a tree; skip (with a warning) what is corrupt or half written."""
    from ..store import load

    root = Path(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs, iterates = load(root)
    skipped = [str(w.message) for w in caught]
    runs, more = _drop_unusable(runs, iterates)
    skipped += more
    for message in skipped:
        warnings.warn(message, stacklevel=2)
    traces = _traces(iterates, set(runs.run_id) if len(runs) else set())
    runs = runs[(runs.status == "invalid") | runs.run_id.isin(traces.keys())].reset_index(drop=True)
    problems = _problems(runs)
    runs = _derive(runs, traces, problems, tol)
    return ReportData(root, runs, traces, problems, skipped, tol)


def _drop_unusable(runs: Any, iterates: Any) -> tuple[Any, list[str]]:
    import pandas as pd

    if runs.empty:
        return runs.assign(run_id=pd.Series(dtype=str), status=pd.Series(dtype=str)), []
    for column in ("status", "objective", "solver", "x0", "dim", "f_star", "path"):
        if column not in runs:
            runs[column] = None
    skipped = []
    have_iterates = set(iterates.run_id.unique()) if len(iterates) else set()
    keep = []
    seen: set[str] = set()
    for row in runs.itertuples(index=False):
        status = getattr(row, "status", None)
        where = getattr(row, "path", "?")
        if status == INCOMPLETE:
            skipped.append(f"skipping {where}: incomplete run (status 'running': still running, or killed)")
        elif not isinstance(status, str):
            skipped.append(f"skipping {where}: its run.json has no status")
        elif row.run_id in seen:
            skipped.append(f"skipping {where}: run id {row.run_id} appears twice in the tree")
        elif status != "invalid" and row.run_id not in have_iterates:
            skipped.append(f"skipping {where}: run {row.run_id} ({status}) has no readable iterates")
        elif status != "invalid" and not isinstance(getattr(row, "objective", None), str):
            skipped.append(f"skipping {where}: its run.json names no objective")
        else:
            keep.append(True)
            seen.add(row.run_id)
            continue
        keep.append(False)
    return runs[np.array(keep, dtype=bool)].reset_index(drop=True), skipped


def _traces(iterates: Any, wanted: set[str]) -> dict[str, Trace]:
    import pandas as pd

    if not len(iterates):
        return {}
    codes, ids = pd.factorize(iterates.run_id)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(ids) + 1))

    def column(name: str, fill: float = math.nan) -> np.ndarray:
        if name not in iterates:
            return np.full(len(iterates), fill)
        return iterates[name].to_numpy(dtype=float, na_value=math.nan)[order]

    cols = {name: column(name) for name in ("iter", "f", "grad_norm", "nfev", "time_s", "x_0", "x_1")}
    traces = {}
    for i, run_id in enumerate(ids):
        if run_id not in wanted:
            continue
        s = slice(bounds[i], bounds[i + 1])
        it = cols["iter"][s]
        sort = np.argsort(it, kind="stable") if np.any(np.diff(it) < 0) else slice(None)
        traces[run_id] = Trace(it[sort], cols["f"][s][sort], cols["grad_norm"][s][sort], cols["nfev"][s][sort],
                               cols["time_s"][s][sort], np.stack([cols["x_0"][s], cols["x_1"][s]], 1)[sort])
    return traces


def _params(row: Any, group: str, columns: list[str]) -> dict[str, Any]:
    out = {}
    for col in columns:
        if col.startswith(group + "."):
            v = row[col]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            out[col[len(group) + 1:]] = v.item() if isinstance(v, np.generic) else v
    return out


def _problems(runs: Any) -> dict[str, ProblemInfo]:
    cols = list(runs.columns)
    found: dict[str, tuple[str, dict[str, Any], int, float | None]] = {}
    keys = []
    for _, row in runs.iterrows():
        if row.status == "invalid" or not isinstance(row.get("objective"), str):
            keys.append(None)
            continue
        params = _params(row, "objective", cols)
        key = problem_key(row.objective, params)
        keys.append(key)
        f_star = row.get("f_star")
        f_star = float(f_star) if f_star is not None and np.isfinite(f_star) else None
        dim = row.get("dim")
        dim = int(dim) if isinstance(dim, (int, float, np.number)) and np.isfinite(dim) else len(row.get("x0") or [])
        found.setdefault(key, (row.objective, params, dim, f_star))
    runs["problem"] = keys
    names = labels([(name, params) for name, params, _, _ in found.values()])
    return {key: ProblemInfo(key, name, params, label, dim, f_star, rebuild(name, params, dim))
            for (key, (name, params, dim, f_star)), label in zip(found.items(), names)}


def start_label(x0: Any) -> str:
    if not isinstance(x0, (list, tuple, np.ndarray)) or len(x0) == 0:
        return "?"
    shown = ", ".join("nan" if v is None else f"{v:.4g}" for v in list(x0)[:3])
    return f"({shown}{', ...' if len(x0) > 3 else ''})"


def _derive(runs: Any, traces: dict[str, Trace], problems: dict[str, ProblemInfo], tol: float) -> Any:
    cols = list(runs.columns)
    best: dict[str, float] = {}
    for run_id, key in zip(runs.run_id, runs.problem):
        t = traces.get(run_id)
        if t is not None and key is not None:
            finite = t.f[np.isfinite(t.f)]
            if finite.size:
                best[key] = min(best.get(key, math.inf), float(finite.min()))
    settings = [(row.get("solver") if isinstance(row.get("solver"), str) else "?", _params(row, "solver", cols))
                for _, row in runs.iterrows()]
    rows = []
    for (_, row), (solver, sparams), solver_label in zip(runs.iterrows(), settings, labels(settings)):
        t, key = traces.get(row.run_id), row.problem
        info = problems.get(key) if key is not None else None
        lr = sparams.get("lr")
        derived = {
            "problem_label": info.label if info else (row.get("objective") or "?"),
            "solver_name": solver,
            "solver_label": solver_label,
            "lr": float(lr) if isinstance(lr, (int, float)) and lr > 0 else math.nan,
            "start_label": start_label(row.get("x0")),
            "multistart": isinstance(row.get("start"), dict),
            "f_ref": math.nan, "f_ref_is_f_star": False, "gap_start": math.nan, "gap_final": math.nan,
            "solved_iter": math.nan, "solved_nfev": math.nan, "solved_time_s": math.nan,
        }
        if t is not None and info is not None:
            f_ref = info.f_star if info.f_star is not None else best.get(key, math.nan)
            derived.update(f_ref=f_ref, f_ref_is_f_star=info.f_star is not None)
            derived.update(_progress(t, f_ref, tol))
        rows.append(derived)
    import pandas as pd

    extra = pd.DataFrame(rows, index=runs.index)
    return pd.concat([runs, extra], axis=1) if len(runs) else runs.assign(**{k: [] for k in extra.columns})


def _progress(t: Trace, f_ref: float, tol: float) -> dict[str, float]:
    gap = t.gap(f_ref)
    out = {"gap_start": float(gap[0]) if gap.size else math.nan}
    finite = np.isfinite(gap)
    out["gap_final"] = float(gap[-1]) if gap.size and finite[-1] else math.nan
    if gap.size and np.isfinite(gap[0]):
        hit = np.flatnonzero(finite & (gap <= tol * max(gap[0], 0.0)))
        if hit.size:
            k = hit[0]
            out.update(solved_iter=float(t.iter[k]), solved_nfev=float(t.nfev[k]), solved_time_s=float(t.time_s[k]))
    return out
