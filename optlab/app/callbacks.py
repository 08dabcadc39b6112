"""Hydra callbacks: the sweep summary and the sweep report, at the end of every multirun.

Configured in ``conf/config.yaml`` under ``hydra.callbacks``; ``report.auto=false`` on the
command line switches it off. A report that cannot be built is a warning, never a failed
sweep: the runs are on disk and ``python -m optlab.report DIR`` builds it again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ..engine.stopping import PROBLEMS
from ..rundir.layout import RUNS_TABLE


class SweepSummary(Callback):
    """Write ``runs.parquet`` (one row per run of the sweep, a typed column per parameter) and
    print one line saying how every run of the sweep ended; exit 1 if a job could not run.

    Only this sweep's runs count (the sweep id of ``sweep.json``). Hydra calls the end-of-sweep
    callbacks in reverse order, so this one, listed first in ``conf/config.yaml``, runs after
    the report."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from ..rundir.load import status_counts
        from .sweep import read_sweep_id

        sweep_dir = Path(config.hydra.sweep.dir)
        ident = read_sweep_id(sweep_dir)
        try:
            write_runs_table(sweep_dir, ident)
        except Exception as exc:  # noqa: BLE001 - the runs are on disk; the table is a convenience
            print(f"optlab: warning: no {RUNS_TABLE} in {sweep_dir} ({type(exc).__name__}: {exc})", file=sys.stderr)
        counts = status_counts(sweep_dir, ident)
        total = sum(counts.values())
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        problems = sum(counts.get(s, 0) for s in PROBLEMS)
        print(f"sweep: {total} runs in {sweep_dir}: {parts or 'none'}", flush=True)
        if problems:
            print(f"optlab: {problems} of {total} runs could not run ({', '.join(PROBLEMS)}); "
                  "their run.json files say why", file=sys.stderr)
            sys.exit(1)


def write_runs_table(sweep_dir: Path, sweep_id: str | None) -> Path:
    """``<sweep dir>/runs.parquet``: the sweep's runs as :func:`optlab.load` reads them (as Arrow),
    with ``path`` (the run's directory) and ``iterates_file`` (its ``iterates.parquet``, null when
    it has none) relative to the sweep directory, so that the folder can be moved or copied;
    the schema version, the sweep id and the directory the sweep was launched from in its metadata."""
    import os
    import warnings

    import pyarrow.parquet as pq

    from ..rundir.chunks import SCHEMA_VERSION
    from ..rundir.layout import ITERATES, RECORD, write_atomic
    from ..rundir.load import job_records
    from ..rundir.reading import flat_row, read_record, runs_table, safe_file

    root = sweep_dir.resolve()
    rows = []
    with warnings.catch_warnings():  # (a bad record is the summary's to count, not a reason to stop)
        warnings.simplefilter("ignore")
        for path in job_records(sweep_dir):
            record = read_record(path, root)
            if record is not None and (sweep_id is None or record.get("sweep_id") == sweep_id):
                run_dir = path.parent.relative_to(sweep_dir)
                rows.append({**flat_row(record, run_dir), "path": run_dir.as_posix(), "iterates_file": (
                    (run_dir / ITERATES).as_posix() if safe_file(sweep_dir / run_dir / ITERATES, root) else None)})
    table = runs_table(rows)
    table = table.replace_schema_metadata({b"optlab.schema": SCHEMA_VERSION.encode(),
                                           b"optlab.sweep_id": (sweep_id or "").encode(),
                                           b"optlab.record": RECORD.encode(),
                                           b"optlab.launch_dir": os.getcwd().encode()})
    target = sweep_dir / RUNS_TABLE
    write_atomic(target, lambda p: pq.write_table(table, p))
    return target


class SweepReport(Callback):
    """Build ``<sweep dir>/report/`` (index.html, figures, summary CSV) when a multirun ends."""

    def __init__(self, enabled: bool = True, tol: float = 1e-6, folder: str = "report", tune: Any = None) -> None:
        if tune is not None:  # tuning axes: checked before any job runs; the report reads them from multirun.yaml
            from omegaconf import OmegaConf

            from ..report.tuning_axes import parse_tune

            parse_tune(OmegaConf.to_container(tune) if OmegaConf.is_config(tune) else tune)
        self.enabled = bool(enabled)
        self.tol = tol
        self.folder = folder

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            from ..report import build_report

            index = build_report(sweep_dir, sweep_dir / self.folder, tol=self.tol)
        except KeyboardInterrupt:  # the runs are done; the summary line still comes
            print(f"optlab: report interrupted; build it with: python -m optlab.report {sweep_dir}", file=sys.stderr)
            return
        except Exception as exc:  # noqa: BLE001 - the sweep's runs are safe; the report can be rebuilt
            print(f"optlab: warning: no report for {sweep_dir} ({type(exc).__name__}: {exc}); "
                  f"build it with: python -m optlab.report {sweep_dir}", file=sys.stderr)
            return
        print(f"report: {index}", flush=True)
