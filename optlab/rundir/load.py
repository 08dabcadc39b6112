"""Reading run directories back: :func:`load` (``optlab.load``) and a sweep's job records."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..engine.stopping import verdict
from .layout import ITERATES, RECORD

# -- reading -----------------------------------------------------------------------------
LOAD_FORMATS = ("pandas", "arrow", "polars")



def load(path: str | Path, as_: str = "pandas") -> tuple[Any, Any]:
    """Read a run directory or a tree of them into ``(runs, iterates)``.

    ``runs`` has one row per run (its parameters flattened to ``objective.NAME``,
    ``solver.NAME`` and ``stop.NAME`` columns, and ``path``); ``iterates`` one row per iterate
    with its ``run_id`` (docs/schema.md). ``as_`` is ``"pandas"`` (DataFrames), ``"arrow"``
    (pyarrow Tables, the runs with a type per column) or ``"polars"`` (DataFrames of those).
    A bad file never stops the reading: it is skipped with a warning that names it
    (:mod:`optlab.rundir.reading`); nothing read is ever executed. ``path`` may also be a run's
    ``run.json`` or ``iterates.parquet``: its run is read.
    """
    from .iterates import as_format, read_iterates, start_scan
    from .reading import find_runs, flat_row, iterate_files, read_record, runs_table, warn

    if as_ not in LOAD_FORMATS:
        raise ValueError(f"as_={as_!r} is unknown; allowed: {', '.join(LOAD_FORMATS)}")
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    if root.is_file():
        if root.name not in (RECORD, ITERATES):
            raise ValueError(f"{root} is a file; allowed: a run directory, a folder of runs, or a run's "
                             f"{RECORD} or iterates.parquet")
        root = root.parent
    root = root.resolve()
    found = find_runs(root)
    early = start_scan([os.path.join(run_dir, ITERATES) for run_dir, names in found if ITERATES in names], as_)
    rows, files, seen = [], [], {}
    for run_dir, names in found:
        record = read_record(run_dir / RECORD, root)
        if record is None:
            continue
        run_id = record["run_id"]
        if run_id in seen:
            warn(f"skipping {run_dir}: run id {run_id} is also the run in {seen[run_id]} "
                 "(a copied run directory?); its rows would be counted twice")
            continue
        seen[run_id] = run_dir
        rows.append(flat_row(record, run_dir))
        files += [(f, run_id) for f in iterate_files(run_dir, run_id, names)]
    if as_ == "pandas":  # (the runs table made while the scan may still go on)
        import pandas as pd

        runs = pd.DataFrame(rows)
    else:
        runs = as_format(runs_table(rows), as_)
    return runs, as_format(read_iterates(files, root, early), as_)



def job_records(sweep_dir: str | Path) -> list[Path]:
    """The records of a sweep's jobs: ``JOB/run.json`` and ``JOB/start_NNN/run.json`` (multi-start
    jobs), in hidden folders (``.superseded``) or the report's folder none."""
    sweep_dir = Path(sweep_dir)
    found = []
    for job in sorted(sweep_dir.iterdir()) if sweep_dir.is_dir() else []:
        if job.name.startswith(".") or job.is_symlink() or not job.is_dir():
            continue
        if (job / RECORD).is_file():
            found.append(job / RECORD)
        found += sorted(p for p in job.glob(f"start_*/{RECORD}") if p.is_file())
    return found



def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None



def status_counts(root: str | Path, sweep_id: str | None = None) -> dict[str, int]:
    """How the runs of a sweep's jobs under ``root`` ended (:func:`optlab.engine.stopping.verdict`:
    statuses, converged runs at saddles and maxima apart, ``not applicable``); unreadable records
    count as ``unreadable``. With ``sweep_id``, only the runs of that sweep count."""
    counts: dict[str, int] = {}
    for path in job_records(root):
        record = _read_json(path)
        if sweep_id is not None and isinstance(record, dict) and record.get("sweep_id") != sweep_id:
            continue
        label = verdict(record) if isinstance(record, dict) and isinstance(record.get("status"), str) \
            else "unreadable"
        counts[label] = counts.get(label, 0) + 1
    return counts
