"""The report's data: runs read (see :mod:`.reader`), checked, grouped, and measured against f*.

Every run gets a reference value ``f_ref`` (f* when the objective knows it, else the best value
any run found on that problem) and the gap ``f - f_ref`` along its iterates. A run counts as
*solved* at the first iterate with ``f - f_ref <= tol * (f(x0) - f_ref)`` (the test of Moré
and Wild, 2009), which is scale-free across problems.

Runs are only ever pooled (into one median band) when every recorded option is the same: the
sweep (when several are read), the solver and its options, the stopping rules, the objective
and its options, and the start (x0, or the same multi-start specification).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..solvers.base import LEARNING_RATE
from .problems import ProblemInfo, box_of_points, labels, problem_key
from .reader import parse_iterates, read_sources
from .style import natural_key, setting_style

COSTS = {"nfev": "function evaluations (nfev)", "evals": "evaluations (nfev + ngev + nhev)",
         "time": "wall-clock time (s)"}
RECORD_COLUMNS = ("objective", "solver", "x0", "x_final", "dim", "f_star", "f_final", "start", "not_applicable",
                  "message", "iterations", "nfev", "ngev", "nhev", "wall_time_s")
COST_COLUMNS = {"nfev": "solved_nfev", "evals": "solved_evals", "time": "solved_time_s"}
KEPT = RECORD_COLUMNS + ("run_id", "status", "point", "batch", "setup_s", "gap")  # of a record, in the runs table
# What the recorded times are (optlab.engine.driver and .batch), said wherever the report reads them;
# tests/report/test_captions.py checks each claim against the fields of real runs.
TIME_CLAIMS = {
    "clock": "A run's clock starts once its set-up is done (compiling the objective's derivatives, for instance); "
             "the set-up's seconds are recorded apart (setup_s), so time_s starts near 0.",
    "batch": "the starts of a multi-start job advanced together as one batch record their share of the batch's "
             "time (each interval divided among the runs still going), so their times add up to the batch's.",
}
BATCH_NOTE = "batched: its share of the batch's time"


def time_claims(valid: Any, cost: str, batched_names: bool = False) -> str:
    """What a caption drawn against ``cost`` says of the times (" " and the claims; "" unless
    time): the clock's start, and how batched runs among ``valid`` share their batch's time
    (naming their solvers when ``batched_names``)."""
    if cost != "time":
        return ""
    text = " " + TIME_CLAIMS["clock"]
    batched = valid[valid.batched > 0]
    if len(batched):
        names = f" ({', '.join(sorted(batched.solver_label.unique()))})" if batched_names else ""
        text += f" Batched runs{names}: " + TIME_CLAIMS["batch"]
    return text


@dataclasses.dataclass
class Trace:
    """One run's iterates as arrays (``x``: the first two coordinates, rows per iterate)."""

    iter: np.ndarray
    f: np.ndarray
    grad_norm: np.ndarray
    step_size: np.ndarray
    nfev: np.ndarray
    evals: np.ndarray
    time_s: np.ndarray
    x: np.ndarray

    def gap(self, f_ref: float) -> np.ndarray:
        return self.f - f_ref


@dataclasses.dataclass
class ReportData:
    roots: list[Path]
    sweeps: list[str]
    runs: Any  # pandas DataFrame, one row per run kept (invalid runs included, without traces)
    traces: dict[str, Trace]
    problems: dict[str, ProblemInfo]
    skipped: list[str]
    notes: list[str]
    tol: float
    cost: str
    digest: str
    ranking: list[str]  # solver settings, best first (by the fraction solved, then the cost)
    lr_mode: bool  # settings of one solver differ only in their learning rate (colour by rate)

    @functools.cached_property
    def valid(self) -> Any:
        """The runs that ran (they have iterates): every status but ``invalid``."""
        return self.runs[self.runs.run_id.isin(self.traces.keys())]

    def rank(self, setting: str) -> int:
        return self._ranks.get(setting, len(self.ranking))

    @functools.cached_property
    def _ranks(self) -> dict[str, int]:
        return {s: k for k, s in enumerate(self.ranking)}

    def style(self, setting: str) -> dict[str, Any]:
        return setting_style(self.rank(setting))

    def problem_order(self) -> list[str]:
        keys = set(self.valid.problem)
        return sorted(keys, key=lambda k: natural_key(self.problems[k].label))


def sweep_labels(roots: list[Path]) -> list[str]:
    """The shortest distinct tails of the paths ("" for a single path)."""
    if len(roots) < 2:
        return [""]
    parts = [r.resolve().parts for r in roots]
    for n in range(1, max(len(p) for p in parts) + 1):
        tails = ["/".join(p[-n:]) for p in parts]
        if len(set(tails)) == len(tails):
            return tails
    return [str(r) for r in roots]


def read(paths: Any, tol: float = 1e-6, cost: str = "evals", data_files: bool = False, salt: str = "",
         raw: Any = None) -> ReportData:
    """Read one or several run directories or trees; skip (with a warning) what is unusable."""
    roots = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
    sweeps = sweep_labels(roots)
    raw = raw or read_sources([(r.resolve(), s) for r, s in zip(roots, sweeps)], salt)
    rows, traces, skipped = _rows(raw)
    skipped = raw.skipped + skipped
    for message in skipped:
        warnings.warn(message, stacklevel=2)
    import pandas as pd

    runs = pd.DataFrame(rows)
    if runs.empty:
        runs = pd.DataFrame(columns=["run_id", "status", "path", "sweep", "solver_opts", "stop_opts", "objective_opts"])
    for column in RECORD_COLUMNS:
        if column not in runs:
            runs[column] = None
    problems = _problems(runs, data_files)
    runs = _derive(runs, traces, problems, tol, len(roots) > 1)
    _run_boxes(runs, traces, problems)
    ranking = rank_settings(runs[runs.run_id.isin(traces.keys())], COST_COLUMNS[cost])
    lr_mode = _lr_mode(runs[runs.run_id.isin(traces.keys())])
    return ReportData(roots, sweeps, runs, traces, problems, skipped, raw.notes, tol, cost, raw.digest, ranking,
                      lr_mode)


def _rows(raw: Any) -> tuple[list[dict[str, Any]], dict[str, Trace], list[str]]:
    rows, traces, skipped, seen = [], {}, [], set()
    for run in raw.runs:
        rec, where = run.record, run.run_dir
        status = rec["status"]
        if status == "running":
            skipped.append(f"skipping {where}: incomplete run (status 'running': still running, or killed)")
            continue
        if rec["run_id"] in seen:
            skipped.append(f"skipping {where}: run id {rec['run_id']} appears twice")
            continue
        if status != "invalid":
            cols = parse_iterates(run.iterates)
            if cols is None or "f" not in cols or "iter" not in cols or not len(cols["f"]):
                skipped.append(f"skipping {where}: run {rec['run_id']} ({status}) has no readable iterates")
                continue
            traces[rec["run_id"]] = _trace(cols)
        seen.add(rec["run_id"])
        flat = {k: rec.get(k) for k in KEPT}  # (options stay in dicts: the figures compare them whole)
        flat.update(path=str(where), sweep=run.sweep, stop_opts=rec.get("stop") or {},
                    solver_opts=rec.get("solver_params") or {}, objective_opts=rec.get("objective_params") or {})
        rows.append(flat)
    return rows, traces, skipped


def _trace(cols: dict[str, np.ndarray]) -> Trace:
    n = len(cols["f"])

    def col(name: str) -> np.ndarray:
        return cols[name] if name in cols else np.full(n, math.nan)

    it = col("iter")
    order = np.argsort(it, kind="stable") if np.any(np.diff(it) < 0) else slice(None)
    nfev = col("nfev")
    evals = nfev + np.nan_to_num(col("ngev")) + np.nan_to_num(col("nhev"))
    x = np.stack([col("x_0"), col("x_1")], 1) if "x_1" in cols else col("x_0")[:, None]
    return Trace(it[order], col("f")[order], col("grad_norm")[order], col("step_size")[order], nfev[order],
                 evals[order], col("time_s")[order], x[order])


def _problems(runs: Any, data_files: bool) -> dict[str, ProblemInfo]:
    found: dict[str, tuple[str, dict[str, Any], int, float | None, str]] = {}
    keys = []
    for row in runs.itertuples(index=False):
        if row.status == "invalid" or not isinstance(row.objective, str):
            keys.append(None)
            continue
        dim = int(row.dim) if isinstance(getattr(row, "dim", None), (int, float)) and row.dim == row.dim \
            else len(row.x0 if isinstance(row.x0, list) else [])
        key = problem_key(row.objective, row.objective_opts, dim)
        keys.append(key)
        f_star = row.f_star if isinstance(row.f_star, (int, float)) and math.isfinite(row.f_star) else None
        found.setdefault(key, (row.objective, row.objective_opts, dim, f_star, row.path))
    runs["problem"] = keys
    names = labels([(name, params) for name, params, *_ in found.values()])
    out = {}
    for (key, (name, params, dim, f_star, path)), label in zip(found.items(), names):
        launch = _launch_dir(Path(path)) if data_files else None
        out[key] = ProblemInfo(key, name, params, label, dim, f_star, data_files, launch)
    return out


def _run_boxes(runs: Any, traces: dict[str, Trace], problems: dict[str, ProblemInfo]) -> None:
    """Each 1-D or 2-D problem's ``run_box``: around every start and the iterates of the runs that did
    not diverge (a diverged run's flight would make the box useless)."""
    for key, info in problems.items():
        if info.dim not in (1, 2):
            continue
        here = runs[(runs.problem == key) & runs.run_id.isin(traces.keys())]
        points = [traces[r].x[:1 if status == "diverged" else None, :info.dim]
                  for r, status in zip(here.run_id, here.status)]
        if points:
            info.run_box = box_of_points(np.concatenate(points))


def _launch_dir(run_dir: Path) -> Path | None:
    """The directory a Hydra job was started from (``runtime.cwd`` in ``.hydra/hydra.yaml``)."""
    for where in (run_dir, run_dir.parent):
        conf = where / ".hydra" / "hydra.yaml"
        if conf.is_file() and not conf.is_symlink() and conf.stat().st_size < 1 << 20:
            try:
                import yaml

                cwd = yaml.safe_load(conf.read_text())["hydra"]["runtime"]["cwd"]
                return Path(cwd) if isinstance(cwd, str) else None
            except Exception:  # noqa: BLE001 - no launch directory known: paths as recorded
                return None
    return None


def start_label(x0: Any) -> str:
    if not isinstance(x0, (list, tuple, np.ndarray)) or len(x0) == 0:
        return "?"
    shown = ", ".join("nan" if not math.isfinite(v) else f"{v:.4g}" for v in list(x0)[:3])
    return f"({shown}{', ...' if len(x0) > 3 else ''})"


def start_key(x0: Any) -> tuple:
    """Numeric order of start points (coordinate by coordinate)."""
    if not isinstance(x0, (list, tuple, np.ndarray)):
        return (math.inf,)
    return tuple(v if math.isfinite(v) else math.inf for v in x0)


def _setting(row: Any, multi: bool) -> str:
    return json.dumps([row.sweep if multi else "", row.solver, row.solver_opts, row.stop_opts], sort_keys=True,
                      default=str)


def _derive(runs: Any, traces: dict[str, Trace], problems: dict[str, ProblemInfo], tol: float, multi: bool) -> Any:
    import pandas as pd

    if runs.empty:
        return runs.assign(**{c: [] for c in ("problem_label", "setting", "solver_label", "solver_name", "lr",
                                              "start_label", "group", "f_ref", "gap_final", "solved_iter",
                                              "solved_nfev", "solved_evals", "solved_time_s", "batched")})
    best: dict[str, float] = {}
    for run_id, key in zip(runs.run_id, runs.problem):
        t = traces.get(run_id)
        if t is not None and key is not None:
            finite = t.f[np.isfinite(t.f)]
            if finite.size:
                best[key] = min(best.get(key, math.inf), float(finite.min()))
    items = [(r.solver if isinstance(r.solver, str) else "?",
              {**r.solver_opts, **{f"stop.{k}": v for k, v in r.stop_opts.items()}}) for r in runs.itertuples()]
    setting_labels = labels(items)
    rows = []
    for r, label in zip(runs.itertuples(), setting_labels):
        t, info = traces.get(r.run_id), problems.get(r.problem) if r.problem is not None else None
        lr = r.solver_opts.get(LEARNING_RATE)
        start = r.start if isinstance(getattr(r, "start", None), dict) else None
        x0 = r.x0 if isinstance(r.x0, list) else None
        start_id = ({k: v for k, v in start.items() if k != "index"} if start else
                    [float(f"{v:.12g}") for v in (x0 or [])])
        setting = _setting(r, multi)
        derived = {
            "problem_label": info.label if info else (r.objective or "?"),
            "setting": setting,
            "solver_name": r.solver if isinstance(r.solver, str) else "?",
            "solver_label": (f"{r.sweep}: {label}" if multi else label),
            "lr": float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0 else math.nan,
            "start_label": start_label(x0), "start_key": start_key(x0), "multistart": start is not None,
            "group": json.dumps([setting, r.problem, start_id], sort_keys=True, default=str),
            "f_ref": math.nan, "f_ref_is_f_star": False, "gap_start": math.nan, "gap_final": math.nan,
            "solved_iter": math.nan, "solved_nfev": math.nan, "solved_evals": math.nan, "solved_time_s": math.nan,
        }
        if t is not None and info is not None:
            f_ref = info.f_star if info.f_star is not None else best.get(r.problem, math.nan)
            derived.update(f_ref=f_ref, f_ref_is_f_star=info.f_star is not None)
            derived.update(_progress(t, f_ref, tol))
        rows.append(derived)
    extra = pd.DataFrame(rows, index=runs.index)
    runs = pd.concat([runs, extra], axis=1)
    runs["not_applicable"] = [v is True and s == "invalid" for v, s in
                              zip(runs.get("not_applicable", [None] * len(runs)), runs.status)]
    runs["batched"] = _batched(runs, traces)
    return runs


def _progress(t: Trace, f_ref: float, tol: float) -> dict[str, float]:
    gap = t.gap(f_ref)
    out = {"gap_start": float(gap[0])}
    finite = np.isfinite(gap)
    out["gap_final"] = float(gap[-1]) if finite[-1] else math.nan
    if np.isfinite(gap[0]):
        hit = np.flatnonzero(finite & (gap <= tol * max(gap[0], 0.0)))
        if hit.size:
            k = hit[0]
            out.update(solved_iter=float(t.iter[k]), solved_nfev=float(t.nfev[k]), solved_evals=float(t.evals[k]),
                       solved_time_s=float(t.time_s[k]))
    return out


def _batched(runs: Any, traces: dict[str, Trace]) -> list[int]:
    """For runs of one multi-start job advanced as one batch: how many runs the batch had (its record's
    ``batch.size``; for records without it, runs whose first clock readings are the same); 0 otherwise."""
    out = dict.fromkeys(runs.index, 0)
    sizes = [b.get("size") if isinstance(b, dict) else None for b in runs.get("batch", [None] * len(runs))]
    recorded = [isinstance(n, int) and not isinstance(n, bool) and n > 1 for n in sizes]
    out.update({i: n for i, n, ok in zip(runs.index, sizes, recorded) if ok})
    ran = runs[runs.multistart & runs.run_id.isin(traces.keys()) & ~np.array(recorded, dtype=bool)]
    for _, g in ran.groupby([ran.path.map(lambda p: str(Path(p).parent)), ran.setting]):
        if len(g) < 2:
            continue
        heads = [traces[r].time_s[:3] for r in g.run_id]
        n = min(len(h) for h in heads)
        if n >= 2 and all(np.array_equal(h[:n], heads[0][:n]) for h in heads) and np.all(np.isfinite(heads[0][:n])):
            out.update(dict.fromkeys(g.index, len(g)))
    return [out[i] for i in runs.index]


def rank_settings(valid: Any, cost_column: str) -> list[str]:
    """Solver settings, best first: by the fraction of the problems (objective x start) they ran on that
    they solved, then the median ratio of their cost to the best on each problem, then the final gap."""
    if valid.empty:
        return []
    inst = list(zip(valid.problem, valid.start_label))
    costs = valid[cost_column].to_numpy(dtype=float)
    best: dict[tuple, float] = {}
    for key, c in zip(inst, costs):
        if np.isfinite(c):
            best[key] = min(best.get(key, math.inf), c)
    scores = {}
    for label, g in valid.groupby("solver_label"):
        c = g[cost_column].to_numpy(dtype=float)
        keys = list(zip(g.problem, g.start_label))
        ratios = [c[i] / best[k] if best[k] > 0 else 1.0 for i, k in enumerate(keys) if np.isfinite(c[i])]
        rel = g.gap_final.to_numpy(dtype=float) / np.maximum(g.gap_start.to_numpy(dtype=float), 1e-300)
        rel = np.where(np.isfinite(rel), rel, math.inf)
        scores[label] = (-len(ratios) / max(1, len(keys)), float(np.median(ratios)) if ratios else math.inf,
                         float(np.median(rel)), natural_key(label))
    return sorted(scores, key=lambda s: scores[s])


def _lr_mode(valid: Any) -> bool:
    """A solver ran at several learning rates, and within each solver the settings differ in nothing else."""
    if valid.empty or not any(g.lr.nunique() >= 2 for _, g in valid.groupby("solver_name")):
        return False
    for _, g in valid.groupby("solver_name"):
        rest = {json.dumps([r.sweep, {k: v for k, v in r.solver_opts.items() if k != "lr"}, r.stop_opts],
                           sort_keys=True, default=str) for r in g.itertuples()}
        if len(rest) > 1:
            return False
    return True
