"""A sweep's overall progress with an ETA, for any launcher: jobs finished, read off the sweep directory.

Jobs may run in this process, in a pool of workers or on other machines; each holds its
directory's lock while it runs and leaves a run record. A job is finished when it has a record
and no lock. A thread looks every :data:`POLL_S` seconds and moves a tqdm bar on stderr, shown
where stderr is a terminal (or ``OPTLAB_PROGRESS=1``).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from ..rundir.layout import LOCK, RECORD, START_PREFIX

POLL_S = 0.5


def finished_jobs(sweep_dir: Path) -> int:
    """The jobs of the sweep in ``sweep_dir`` that have ended (a record, no lock)."""
    count = 0
    for job in sweep_dir.iterdir() if sweep_dir.is_dir() else []:
        if job.name.startswith(".") or not job.is_dir() or (job / LOCK).exists():
            continue
        if (job / RECORD).exists() or any(job.glob(f"{START_PREFIX}*/{RECORD}")):
            count += 1
    return count


class SweepProgress:
    """``with SweepProgress(sweep_dir) as progress: ...; progress.total = N``: a bar of N jobs."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir, self.total = Path(sweep_dir), 0
        self.shown = sys.stderr.isatty() or os.environ.get("OPTLAB_PROGRESS") == "1"
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> SweepProgress:
        if self.shown:
            self.already = finished_jobs(self.sweep_dir)  # (a resumed sweep: the jobs done before)
            self.thread = threading.Thread(target=self._watch, name="optlab-sweep-progress", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _watch(self) -> None:
        from tqdm import tqdm

        bar = None
        try:
            while True:
                stopping = self.done.wait(POLL_S)
                if self.total and bar is None:
                    bar = tqdm(total=self.total, unit="job", desc="sweep", file=sys.stderr, dynamic_ncols=True,
                               mininterval=POLL_S)
                if bar is not None:
                    bar.update(min(self.total, finished_jobs(self.sweep_dir) - self.already) - bar.n)
                if stopping:
                    return
        finally:
            if bar is not None:
                bar.close()
