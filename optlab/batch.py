"""Batched runs: many start points and learning rates of a first-order method as one array program.

A sweep over starts and learning rates repeats the same few operations per step in every
run. Here the runs advance together (:func:`optlab.runner.run_many`): the solver's step
program, vectorised over the runs, takes one step of all of them per call. Every run still
ends as its own run: its own run id, ``run.json`` and ``iterates.parquet`` (the files of a
single run), the same stopping rules with the same messages, and the same iterates, bit for
bit, as a single run from the same start with the same learning rate.

* :func:`batchable` ``(objective, solver)`` -> None, or why the runs cannot be batched;
* :func:`run_batch` ``(objective, solver, starts, stop, lrs=...)`` -> one :class:`BatchRun`
  per start (outcome and iterate table, in memory);
* :func:`run_batch_to_dirs` ``(run_dirs, objective, solver, starts, stop, lrs=..., extras=...)``
  -> the final run records, one directory per start.

Both run the starts one after the other where they cannot be batched, so callers need one
code path. Batched: the methods written as steps (gd without a line search, momentum,
nesterov, adagrad, rmsprop, adam; any schedule) on objectives whose value and gradient come
from ``f`` with scalar code (up to 16 coordinates). Differences from single runs: ``time_s``
and ``wall_time_s`` count the time of the whole batch, and ``max_seconds`` is a budget for
the batch (runs still going when it is spent end as ``max_seconds``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .autodiff.compile import NotCompilable
from .errors import ConfigError
from .log import IterateLog, columns
from .objectives.base import Objective
from .runner import MEMORY_BYTES, Outcome, run, run_many
from .solvers.base import Solver, StepSolver
from .stopping import Stop


@dataclasses.dataclass
class BatchRun:
    """One run of a batch: how it ended, and its iterate table (the columns of a single run's log)."""

    outcome: Outcome
    iterates: pa.Table | None


def batchable(objective: Objective, solver: Solver) -> str | None:
    """None when runs of ``solver`` on ``objective`` can be batched, else the reason they cannot."""
    from .derivatives import derivatives_of
    from .program import program_for

    if not isinstance(solver, StepSolver):
        return f"solver {solver.name} is not written as a step (only gd, momentum, nesterov, adagrad, rmsprop, adam)"
    if not solver.stepwise():
        return f"solver {solver.name} with a line search has no batched form"
    derivatives = derivatives_of(objective)
    if "value_and_grad" in derivatives.analytic:
        return f"objective {objective.name} writes its gradient out; its analytic form is kept in single runs"
    x = np.asarray(objective.start(), dtype=float)
    compiled = derivatives.compiled(x)
    if compiled is None:
        return f"objective {objective.name} has no batched form: {derivatives.eager_reason or 'not compiled'}"
    try:
        program_for(solver, compiled, solver.init_carry(x))
    except NotCompilable as exc:
        return f"objective {objective.name} has no batched form: {exc}"
    return None


def _lrs(solver: Solver, lrs: Any, count: int) -> tuple[np.ndarray, list[Solver]]:
    """Per-run learning rates and solvers (one solver per distinct rate, checked as ``solver.lr`` is)."""
    if not hasattr(solver, "lr"):
        if lrs is not None:
            raise ConfigError(f"lrs={lrs!r} given for solver {solver.name}, which has no learning rate; "
                              "allowed: lrs only with a solver that has lr")
        return np.full(count, math.nan), [solver] * count
    values = np.broadcast_to(np.asarray(solver.lr if lrs is None else lrs, dtype=float), (count,))
    made: dict[float, Solver] = {float(solver.lr): solver}
    for lr in set(values.tolist()):
        if lr not in made:
            made[lr] = type(solver)(**{**solver.params(), "lr": lr})
    solvers = [made[lr] for lr in values.tolist()]
    return np.array([float(s.lr) for s in solvers]), solvers


def _starts(objective: Objective, starts: Any) -> np.ndarray:
    rows = np.asarray(starts, dtype=float)
    rows = rows.reshape(len(rows), -1) if rows.ndim != 2 else rows
    if len(rows) == 0:
        raise ConfigError("starts is empty; allowed: at least one start point")
    return np.stack([objective.start(r) for r in rows])


def run_batch(objective: Objective, solver: Solver, starts: Any, stop: Stop | None = None, *,
              lrs: Sequence[float] | float | None = None, max_coords: int = 100,
              chunk_rows: int = 10_000, memory_bytes: int = MEMORY_BYTES) -> list[BatchRun]:
    """Run ``solver`` from every row of ``starts`` (with learning rate ``lrs[i]``, default the
    solver's), as one batch where :func:`batchable`; each run's iterates as an Arrow table."""
    stop = stop or Stop()
    points = _starts(objective, starts)
    rates, solvers = _lrs(solver, lrs, len(points))
    n_log = min(objective.dim, max_coords)
    if batchable(objective, solver) is not None:
        runs = []
        for s, p in zip(solvers, points):
            log = IterateLog(n_log, chunk_rows)
            runs.append(BatchRun(run(objective, s, p, stop, log=log), log.table()))
        return runs
    tables: list[list[pa.Table]] = [[] for _ in points]
    outcomes = run_many(objective, solvers[0], points, stop, rates, n_log, [t.append for t in tables], chunk_rows,
                        memory_bytes)
    return [BatchRun(o, pa.concat_tables(t) if t else pa.table({c: [] for c in columns(n_log)}))
            for o, t in zip(outcomes, tables)]


def run_batch_to_dirs(run_dirs: Sequence[str | Path], objective: Objective, solver: Solver, starts: Any,
                      stop: Stop | None = None, *, lrs: Sequence[float] | float | None = None,
                      extras: Sequence[dict[str, Any] | None] | None = None, max_coords: int = 100,
                      chunk_rows: int = 10_000, memory_bytes: int = MEMORY_BYTES) -> list[dict[str, Any]]:
    """Run from every row of ``starts`` into ``run_dirs[i]`` (``run.json`` + ``iterates.parquet``,
    as :func:`optlab.store.run_to_dir` writes them); ``extras[i]`` joins run i's record.

    Batched when :func:`batchable`, else one run after the other. Returns the final records.
    """
    from .store import RunFiles, run_to_dir

    stop = stop or Stop()
    points = _starts(objective, starts)
    dirs = [Path(d) for d in run_dirs]
    if len(dirs) != len(points):
        raise ConfigError(f"{len(dirs)} run directories for {len(points)} starts; allowed: one per start")
    rates, solvers = _lrs(solver, lrs, len(points))
    extras = list(extras) if extras is not None else [None] * len(points)
    if batchable(objective, solver) is not None:
        return [run_to_dir(d, objective, s, p, stop, max_coords=max_coords, chunk_rows=chunk_rows, extra=e)
                for d, s, p, e in zip(dirs, solvers, points, extras)]
    files = [RunFiles(d, objective, s, p, stop, e, chunk_rows) for d, s, p, e in zip(dirs, solvers, points, extras)]
    n_log = min(objective.dim, max_coords)
    outcomes = run_many(objective, solvers[0], points, stop, rates, n_log, [f.sink for f in files], chunk_rows,
                        memory_bytes)
    return RunFiles.close_all(files, objective, outcomes)


__all__ = ["BatchRun", "batchable", "run_batch", "run_batch_to_dirs"]
