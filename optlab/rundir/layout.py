"""The names of everything optlab writes on disk, in one place, and the one way it writes a file.

A run directory holds :data:`RECORD` (the run's record) and :data:`ITERATES` (its iterates;
:data:`PARTS`, files named from :data:`PART_PREFIX`, while it runs or after a crash) and,
while a process writes there, :data:`LOCK`.
A multi-start job holds one run directory per start (:func:`start_dir_name`). A sweep directory
holds :data:`MANIFEST` (its identity), one job directory per job and, when it ends,
:data:`RUNS_TABLE` (one row per run); :data:`STOPPED` marks a sweep stopped by
Ctrl-C. docs/schema.md describes each file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

RECORD = "run.json"
ITERATES = "iterates.parquet"
PARTS = "iterates.parts"
LOCK = ".optlab.lock"
MANIFEST = "sweep.json"
RUNS_TABLE = "runs.parquet"
STOPPED = ".optlab.stopped"  # in a sweep directory: the sweep was stopped; jobs not yet begun do not run
START_PREFIX = "start_"
PART_PREFIX = "part-"  # in PARTS: part-RUNID-NNNNNN.parquet (part-NNNNNN.parquet before run ids)
PART_GLOB = f"{PART_PREFIX}*.parquet"


def start_dir_name(index: int, count: int) -> str:
    """The folder of start ``index`` of ``count`` in a multi-start job (``start_007``)."""
    return f"{START_PREFIX}{index:0{max(3, len(str(count - 1)))}d}"


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary name and rename, so ``path`` is never half written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
