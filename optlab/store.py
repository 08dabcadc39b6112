"""Run directories on disk: ``run.json`` (one record per run) and ``iterates.parquet``.

A run writes ``run.json`` with status ``running`` when it starts and again when it ends,
each time atomically; its iterates go out in chunks while it runs and are merged at the
end. :func:`load` reads one run directory or a whole tree of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import platform
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .log import ChunkFiles, IterateLog, interrupt_deferred, write_atomic
from .objectives.base import Objective
from .runner import Outcome, run
from .solvers.base import Solver
from .stopping import FINISHED, POINT_MAX_DIM, Stop, point_kind, verdict

RECORD = "run.json"


def _version() -> str:
    from . import __version__

    return __version__


def _floats(x: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(x, dtype=float).ravel()]


def _finite(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def describe_run(objective: Objective, solver: Solver, x0: np.ndarray, stop: Stop,
                 run_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "objective": objective.name,
        "objective_params": objective.params(),
        "solver": solver.name,
        "solver_params": solver.params(),
        "dim": objective.dim,
        "x0": _floats(x0),
        "stop": dataclasses.asdict(stop),
        "f_star": objective.f_star,
        "status": "running",
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "optlab_version": _version(),
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        **(extra or {}),
    }


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    text = json.dumps(record, indent=1, allow_nan=False)
    write_atomic(run_dir / RECORD, lambda p: p.write_text(text))


def classify_point(objective: Objective, x: np.ndarray) -> tuple[str, float | None]:
    """The kind of a converged run's point (:func:`optlab.stopping.point_kind`) and the Hessian's
    smallest eigenvalue there; ``unknown`` above :data:`~optlab.stopping.POINT_MAX_DIM`
    coordinates or where the Hessian cannot be computed."""
    if objective.dim > POINT_MAX_DIM:
        return "unknown", None
    try:
        with np.errstate(all="ignore"):
            eig = np.linalg.eigvalsh(objective.hessian(np.asarray(x, dtype=float)))
    except Exception:  # noqa: BLE001 - a verdict's detail, never a reason to lose the run
        return "unknown", None
    finite = bool(np.all(np.isfinite(eig)))
    return point_kind(eig), (float(eig[0]) if finite else None)


def finish_record(record: dict[str, Any], objective: Objective, out: Outcome) -> dict[str, Any]:
    s = out.state
    f = _finite(s.f)
    gap = objective.gap(f) if f is not None else None
    point, low = classify_point(objective, s.x) if out.status == "converged" else (None, None)
    note = f"; the Hessian is indefinite there (smallest eigenvalue {low:.3g}): a {point}, not a minimum" \
        if point in ("saddle", "maximum") else ""
    return {**record, "status": out.status, "message": out.message + note, "iterations": out.iterations,
            "f_final": f, "x_final": _floats(s.x), "gap": gap, "point": point, "hessian_min_eig": low,
            "nfev": out.nfev, "ngev": out.ngev, "nhev": out.nhev, "wall_time_s": out.wall_time_s,
            "setup_s": out.setup_s}


class RunFiles:
    """One run's directory while it runs: ``run.json`` written as ``running`` at the start (what
    a killed run leaves), ``sink`` taking its iterates (:class:`~optlab.log.ChunkFiles`), and
    :meth:`close` writing ``iterates.parquet`` and the final record."""

    def __init__(self, run_dir: str | Path, objective: Objective, solver: Solver, x0: np.ndarray, stop: Stop,
                 extra: dict[str, Any] | None = None, chunk_rows: int = 10_000) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.record = describe_run(objective, solver, x0, stop, uuid.uuid4().hex[:12], extra)
        write_record(self.dir, self.record)
        for stale in (self.dir / "iterates.parts").glob("part-*.parquet"):  # left by a killed run in this dir
            stale.unlink()
        (self.dir / "iterates.parquet").unlink(missing_ok=True)
        self.sink = ChunkFiles(self.dir, chunk_rows)

    def close(self, objective: Objective, outcome: Outcome) -> dict[str, Any]:
        self.sink.merge()
        self.record = finish_record(self.record, objective, outcome)
        write_record(self.dir, self.record)
        return self.record

    @staticmethod
    def close_all(files: list[RunFiles], objective: Objective, outcomes: list[Outcome]) -> list[dict[str, Any]]:
        """Close runs that have ended; Ctrl-C meanwhile is held until every file is complete."""
        with interrupt_deferred() as caught:
            records = [f.close(objective, o) for f, o in zip(files, outcomes)]
        if caught:
            raise KeyboardInterrupt
        return records


def run_to_dir(run_dir: str | Path, objective: Objective, solver: Solver, x0: Any = None,
               stop: Stop | None = None, *, max_coords: int = 100, chunk_rows: int = 10_000,
               extra: dict[str, Any] | None = None, progress: Any = None, log_grad_norm: bool = False
               ) -> dict[str, Any]:
    """Run and keep everything in ``run_dir``; returns the final run record."""
    stop = stop or Stop()
    solver.check(objective)
    files = RunFiles(run_dir, objective, solver, objective.start(x0), stop, extra, chunk_rows)
    log = IterateLog(min(objective.dim, max_coords), chunk_rows, sink=files.sink)
    outcome = run(objective, solver, objective.start(x0), stop, log=log, progress=progress,
                  log_grad_norm=log_grad_norm)
    with interrupt_deferred() as caught:  # the run has ended: its files are completed first
        log.flush()
        record = files.close(objective, outcome)
    if caught:
        raise KeyboardInterrupt
    return record


# -- reading -----------------------------------------------------------------------------
def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not isinstance(record.get("run_id"), str):
            raise ValueError("no run_id")
        return record
    except (OSError, ValueError) as exc:
        warnings.warn(f"skipping {path}: not a run record ({exc})", stacklevel=3)
        return None


def _read_iterates(run_dir: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    final = run_dir / "iterates.parquet"
    files = [final] if final.exists() else sorted((run_dir / "iterates.parts").glob("part-*.parquet"))
    tables = []
    for path in files:
        try:
            tables.append(pq.read_table(path))
        except (OSError, pa.ArrowException) as exc:
            warnings.warn(f"skipping {path}: unreadable parquet ({exc})", stacklevel=3)
    return tables


def load(path: str | Path):
    """Read a run directory or a tree of them into ``(runs, iterates)`` pandas DataFrames.

    ``runs`` has one row per run (its parameters flattened to ``objective.NAME`` and
    ``solver.NAME`` columns); ``iterates`` one row per iterate with its ``run_id``.
    Unreadable files are skipped with a warning; nothing read is ever executed.
    """
    import pandas as pd
    import pyarrow as pa

    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    records_paths = [root / RECORD] if (root / RECORD).is_file() else sorted(root.rglob(RECORD))
    rows, tables = [], []
    for rp in records_paths:
        record = _read_record(rp)
        if record is None:
            continue
        flat = {k: v for k, v in record.items() if not k.endswith("_params") and k != "stop"}
        for group in ("objective", "solver"):
            for key, value in (record.get(f"{group}_params") or {}).items():
                flat[f"{group}.{key}"] = value
        for key, value in (record.get("stop") or {}).items():
            flat[f"stop.{key}"] = value
        flat["path"] = str(rp.parent)
        rows.append(flat)
        for table in _read_iterates(rp.parent):
            tables.append(table.append_column("run_id", pa.array([record["run_id"]] * table.num_rows)))
    runs = pd.DataFrame(rows)
    if tables:
        iterates = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    else:
        iterates = pd.DataFrame(columns=["run_id", "iter", "f", "grad_norm"])
    return runs, iterates


def status_counts(root: str | Path) -> dict[str, int]:
    """How many runs below ``root`` ended in each way (:func:`optlab.stopping.verdict`: statuses,
    converged runs at saddles and maxima apart, ``not applicable``); unreadable records count as
    ``unreadable``."""
    counts: dict[str, int] = {}
    for path in sorted(Path(root).rglob(RECORD)):
        try:
            record = json.loads(path.read_text())
            label = verdict(record) if isinstance(record, dict) else "unreadable"
        except (OSError, ValueError):
            label = "unreadable"
        counts[label] = counts.get(label, 0) + 1
    return counts


def read_finished(run_dir: Path, overrides: list[str]) -> dict[str, Any] | None:
    """The record of a run already finished in ``run_dir`` with the same overrides, else None."""
    path = Path(run_dir) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = isinstance(record, dict) and record.get("overrides") == overrides
    return record if same and record.get("status") in FINISHED else None


def write_invalid(run_dir: Path, message: str, extra: dict[str, Any], not_applicable: bool = False) -> None:
    """Record a sweep job whose configuration was rejected, so the sweep keeps its fate.

    ``not_applicable`` marks a solver that cannot treat the objective: a combination of a
    sweep's grid to skip rather than a mistake.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    choices = extra.get("choices", {})
    write_record(run_dir, {
        "run_id": uuid.uuid4().hex[:12], "objective": choices.get("objective"),
        "solver": choices.get("solver"), "status": "invalid", "message": message,
        "not_applicable": not_applicable, "iterations": 0, "optlab_version": _version(),
        "numpy_version": np.__version__, **extra,
    })
