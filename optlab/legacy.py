"""The run entry points of optlab 0.1, kept for one release as thin wrappers over :func:`optlab.run_set`.

Reached through their old module names (``optlab.runner.run``, ``optlab.batch.run_batch``,
``optlab.store.run_to_dir``, ...: see :mod:`optlab.moved`), with a DeprecationWarning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .engine.log import IterateLog, LogOptions
from .engine.outcome import Outcome
from .engine.plan import make_plan
from .engine.run_set import InMemory, RunSpec, check_starts, per_run, run_set
from .engine.stopping import Stop
from .objectives.base import Objective
from .rundir.layout import start_dir_name
from .rundir.store import RunDirs
from .solvers.base import Solver


@dataclasses.dataclass
class BatchRun:
    """One run of a batch: how it ended, and its iterate table."""

    outcome: Outcome
    iterates: pa.Table | None


class _IntoLog:
    """Sinks handing every run's tables to one :class:`IterateLog` (0.1's ``run(log=...)``)."""

    def __init__(self, log: IterateLog) -> None:
        self.log = log

    def open(self, index: int, run: RunSpec) -> Any:
        return _Into(self.log)


class _Into:
    """One run's tables into the shared log (a class of its own: one made per run lives in a cycle)."""

    def __init__(self, log: IterateLog) -> None:
        self.log = log

    def __call__(self, table: pa.Table) -> None:
        self.log.flush()
        self.log._emit(table)

    def close(self, outcome: Outcome) -> None:
        return None


def run(objective: Objective, solver: Solver, x0: Any = None, stop: Stop | None = None,
        log: IterateLog | None = None, progress: Any = None, *, fused: bool = True,
        log_grad_norm: bool = False) -> Outcome:
    """One run from ``x0`` (0.1's ``optlab.runner.run``)."""
    options = LogOptions(max_coords=log.n_coords if log is not None else 100, grad_norm=log_grad_norm,
                         chunk_rows=log.capacity if log is not None else 10_000)
    sinks = _IntoLog(log) if log is not None else InMemory(options)
    return run_set(objective, solver, None if x0 is None else [x0], stop, sinks, log=options, progress=progress,
                   backend=None if fused else "generic")[0]


def run_batch(objective: Objective, solver: Solver, starts: Any, stop: Stop | None = None, *,
              lrs: Sequence[float] | float | None = None, max_coords: int = 100, chunk_rows: int = 10_000,
              memory_bytes: int = LogOptions.memory_bytes) -> list[BatchRun]:
    """Runs from every row of ``starts``, each with its table (0.1's ``optlab.batch.run_batch``)."""
    options = LogOptions(max_coords=max_coords, chunk_rows=chunk_rows, memory_bytes=memory_bytes)
    sinks = InMemory(options)
    outcomes = run_set(objective, solver, starts, stop, sinks, lrs=lrs, log=options)
    return [BatchRun(o, sinks.tables.get(i)) for i, o in enumerate(outcomes)]


def run_batch_to_dirs(run_dirs: Sequence[str | Path], objective: Objective, solver: Solver, starts: Any,
                      stop: Stop | None = None, *, lrs: Sequence[float] | float | None = None,
                      extras: Sequence[dict[str, Any] | None] | None = None, max_coords: int = 100,
                      chunk_rows: int = 10_000, memory_bytes: int = LogOptions.memory_bytes) -> list[dict[str, Any]]:
    """Runs from every row of ``starts`` into ``run_dirs[i]``; the final records (0.1's
    ``optlab.batch.run_batch_to_dirs``)."""
    options = LogOptions(max_coords=max_coords, chunk_rows=chunk_rows, memory_bytes=memory_bytes)
    sinks = RunDirs(run_dirs, extras, chunk_rows, overwrite=True)
    run_set(objective, solver, starts, stop, sinks, lrs=lrs, log=options)
    return [sinks.records[i] for i in sorted(sinks.records)]


def run_to_dir(run_dir: str | Path, objective: Objective, solver: Solver, x0: Any = None,
               stop: Stop | None = None, *, max_coords: int = 100, chunk_rows: int = 10_000,
               extra: dict[str, Any] | None = None, progress: Any = None, log_grad_norm: bool = False
               ) -> dict[str, Any]:
    """One run kept in ``run_dir``; its final record (0.1's ``optlab.store.run_to_dir``)."""
    options = LogOptions(max_coords=max_coords, chunk_rows=chunk_rows, grad_norm=log_grad_norm)
    sinks = RunDirs([run_dir], [extra], chunk_rows, overwrite=True)
    run_set(objective, solver, None if x0 is None else [x0], stop, sinks, log=options, progress=progress)
    return sinks.records[0]


def run_starts(job_dir: str | Path, objective: Objective, solver: Solver, points: np.ndarray, stop: Stop,
               spec: dict[str, Any], *, extra: dict[str, Any] | None = None,
               finished: Callable[[Path], dict[str, Any] | None] | None = None, max_coords: int = 100,
               chunk_rows: int = 10_000) -> list[dict[str, Any]]:
    """One run per start into ``job_dir/start_NNN`` (0.1's ``optlab.starts.run_starts``)."""
    dirs = [Path(job_dir) / start_dir_name(i, len(points)) for i in range(len(points))]
    records = [finished(d) if finished is not None else None for d in dirs]
    todo = [i for i, r in enumerate(records) if r is None]
    if todo:
        extras = [{**(extra or {}), "start": {**spec, "index": i, "count": len(points)}} for i in todo]
        ran = run_batch_to_dirs([dirs[i] for i in todo], objective, solver, np.asarray(points)[todo], stop,
                                extras=extras, max_coords=max_coords, chunk_rows=chunk_rows)
        for i, record in zip(todo, ran):
            records[i] = record
    return records


def batchable(objective: Objective, solver: Solver) -> str | None:
    """None when runs of ``solver`` on ``objective`` are batched, else why not (0.1's
    ``optlab.batch.batchable``; :func:`optlab.engine.plan.make_plan` is the planner)."""
    x = check_starts(objective, None)[0]
    plan = make_plan(objective, per_run(solver, None, 2), x, Stop())
    return None if plan.backend == "batched" else plan.reason
