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

from .stopping import PROBLEMS


class SweepSummary(Callback):
    """Print one line saying how every run of the sweep ended; exit 1 if a job could not run.

    Hydra calls the end-of-sweep callbacks in reverse order, so this one, listed first in
    ``conf/config.yaml``, runs after the report."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from .store import status_counts

        sweep_dir = Path(config.hydra.sweep.dir)
        counts = status_counts(sweep_dir)
        total = sum(counts.values())
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        problems = sum(counts.get(s, 0) for s in PROBLEMS)
        print(f"sweep: {total} runs in {sweep_dir}: {parts or 'none'}", flush=True)
        if problems:
            print(f"optlab: {problems} of {total} runs could not run ({', '.join(PROBLEMS)}); "
                  "their run.json files say why", file=sys.stderr)
            sys.exit(1)


class SweepReport(Callback):
    """Build ``<sweep dir>/report/`` (index.html, figures, summary CSV) when a multirun ends."""

    def __init__(self, enabled: bool = True, tol: float = 1e-6, folder: str = "report") -> None:
        self.enabled = bool(enabled)
        self.tol = tol
        self.folder = folder

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            from .report import build_report

            index = build_report(sweep_dir, sweep_dir / self.folder, tol=self.tol)
        except Exception as exc:  # noqa: BLE001 - the sweep's runs are safe; the report can be rebuilt
            print(f"optlab: warning: no report for {sweep_dir} ({type(exc).__name__}: {exc}); "
                  f"build it with: python -m optlab.report {sweep_dir}", file=sys.stderr)
            return
        print(f"report: {index}", flush=True)
