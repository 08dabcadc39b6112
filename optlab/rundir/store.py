"""Run directories on disk: ``run.json`` (one record per run) and ``iterates.parquet``.

A run writes ``run.json`` with status ``running`` when it starts and again when it ends,
each time atomically; its iterates go out in chunks while it runs and are merged at the end
(:class:`RunFiles`, the sink :class:`RunDirs` opens for each run of a set). A finished run is
never replaced unless asked. :mod:`optlab.rundir.load` reads them back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.outcome import Outcome
from ..engine.run_set import RunSpec
from ..engine.stopping import FINISHED, Stop
from ..errors import ConfigError
from ..objectives.base import Objective
from ..solvers.base import Solver
from .chunks import ChunkFiles
from .layout import ITERATES, MANIFEST, PART_GLOB, PARTS, RECORD, RUNS_TABLE, write_atomic
from .load import _read_json
from .lock import acquire, release


def _version() -> str:
    from .. import __version__

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
        "host": platform.node(),
        "pid": os.getpid(),
        **(extra or {}),
    }


def json_safe(value: Any) -> Any:
    """``value`` with every float that JSON cannot hold (inf, NaN: an objective's f* at 1e300
    squared, an accepted option) as null, so that every record can be written."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return json_safe(value.tolist())
    return value


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    text = json.dumps(json_safe(record), indent=1, allow_nan=False, default=str)
    write_atomic(run_dir / RECORD, lambda p: p.write_text(text))


def finish_record(record: dict[str, Any], objective: Objective, out: Outcome) -> dict[str, Any]:
    """The record of a run that ended as ``out`` says."""
    s = out.state
    f = _finite(s.f)
    return {**record, "status": out.status, "message": out.message, "iterations": out.iterations,
            "f_final": f, "x_final": _floats(s.x), "gap": objective.gap(f) if f is not None else None,
            "point": out.point, "hessian_min_eig": out.hessian_min_eig, "nfev": out.nfev, "ngev": out.ngev,
            "nhev": out.nhev, "wall_time_s": out.wall_time_s, "setup_s": out.setup_s, "backend": out.backend,
            "jit": out.jit}


class RunExists(ConfigError):
    """The directory holds a finished run (or a sweep) that a new run would replace."""


def check_free(run_dir: Path, overwrite: bool = False) -> None:
    """Refuse a directory that holds a sweep, or a finished run unless ``overwrite``: nothing
    finished is ever replaced by accident. (A run that was interrupted or killed is taken up.)"""
    if (run_dir / MANIFEST).exists() or (run_dir / RUNS_TABLE).exists():
        raise RunExists(f"{run_dir} holds a sweep; allowed: a new directory for a run")
    record = _read_json(run_dir / RECORD)
    if not overwrite and isinstance(record, dict) and record.get("status") in FINISHED:
        raise RunExists(f"{run_dir} already holds a finished run ({record.get('status')}, run "
                        f"{str(record.get('run_id'))[:12]}); allowed: another directory, or overwrite=true to "
                        "replace it")


class RunFiles:
    """One run's directory while it runs: locked for this process (:mod:`optlab.rundir.lock`),
    ``run.json`` written as ``running`` at the start (what a killed run leaves), its iterates
    taken in chunks (:class:`~optlab.rundir.chunks.ChunkFiles`: calling it hands it a table), and
    :meth:`close` writing ``iterates.parquet`` and the final record, then unlocking. A sink of
    :func:`optlab.engine.run_set.run_set`."""

    def __init__(self, run_dir: str | Path, run: RunSpec, extra: dict[str, Any] | None = None,
                 chunk_rows: int = 10_000, overwrite: bool = False,
                 on_close: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.dir, self.objective, self.on_close = Path(run_dir), run.objective, on_close
        self.lock = acquire(self.dir)
        try:
            check_free(self.dir, overwrite)
            self.record = describe_run(run.objective, run.solver, run.x0, run.stop, uuid.uuid4().hex[:12],
                                       {**(extra or {}), "backend": run.plan.backend,
                                        "backend_reason": run.plan.reason or None})
            write_record(self.dir, self.record)
            # The lock is held: parts here are a dead writer's, of a run this one replaces.
            stale = list((self.dir / PARTS).glob(PART_GLOB))
            for part in stale:
                part.unlink()
            if stale:
                with contextlib.suppress(OSError):
                    (self.dir / PARTS).rmdir()
            (self.dir / ITERATES).unlink(missing_ok=True)
        except BaseException:
            release(self.dir, self.lock)
            raise
        settings = {k: v for k, v in json_safe(self.record).items() if k not in ("status", "started_at")}
        self.chunks = ChunkFiles(self.dir, chunk_rows, self.record["run_id"], settings)

    def __call__(self, table: Any) -> None:
        self.chunks(table)

    def close(self, outcome: Outcome) -> dict[str, Any]:
        """Merge the iterates and write the final record. When the iterates cannot be written (a
        full disk), the record says so (status ``error``) and the parts written stay readable."""
        try:
            self.record = finish_record(self.record, self.objective, outcome)
            try:
                self.chunks.merge()
            except OSError as exc:
                kept = len(self.chunks.own_parts())
                self.record = {**self.record, "status": "error", "message": (
                    f"the run ended ({outcome.status}: {outcome.message}) but its iterates could not be "
                    f"written: {exc}; {kept} chunk(s) of {self.chunks.chunk_rows} rows are kept in {PARTS}")}
            write_record(self.dir, self.record)
            if self.on_close is not None:
                self.on_close(self.record)
            return self.record
        finally:
            release(self.dir, self.lock)

    def abandon(self) -> None:
        """Unlock after a failure outside the run (the record stays ``running``: what was not finished)."""
        release(self.dir, self.lock)


class RunDirs:
    """Sinks that keep run ``i`` of a set in ``dirs[i]`` with ``extras[i]`` joined to its record
    (a batched run's record also says ``batch: {"size": N}``); :attr:`records` holds the final
    records by run. ``overwrite`` lets a run replace a finished one (a sweep, never)."""

    def __init__(self, dirs: Sequence[str | Path], extras: Sequence[dict[str, Any] | None] | None = None,
                 chunk_rows: int = 10_000, overwrite: bool = False) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.extras = list(extras) if extras is not None else [None] * len(self.dirs)
        if len(self.extras) != len(self.dirs):
            raise ConfigError(f"{len(self.extras)} extras for {len(self.dirs)} run directories; allowed: one per run")
        self.chunk_rows, self.overwrite = chunk_rows, overwrite
        self.records: dict[int, dict[str, Any]] = {}

    def open(self, index: int, run: RunSpec) -> RunFiles:
        if run.count != len(self.dirs):
            raise ConfigError(f"{len(self.dirs)} run directories for {run.count} starts; allowed: one per start")
        extra = dict(self.extras[index] or {})
        if run.plan.backend == "batched":
            extra["batch"] = {"size": run.count}
        return RunFiles(self.dirs[index], run, extra, self.chunk_rows, self.overwrite,
                        on_close=lambda record: self.records.__setitem__(index, record))


def read_finished(run_dir: Path, key: str) -> dict[str, Any] | None:
    """The record of a run already finished in ``run_dir`` with the settings ``key``
    (:func:`optlab.app.config.settings_key`), else None."""
    record = _read_json(Path(run_dir) / RECORD)
    same = isinstance(record, dict) and record.get("settings_key") == key
    return record if same and record.get("status") in FINISHED else None


def write_invalid(run_dir: Path, message: str, extra: dict[str, Any], not_applicable: bool = False,
                  status: str = "invalid") -> None:
    """Record a sweep job that could not run: ``invalid`` when its configuration was rejected,
    ``error`` when something else stopped it; so the sweep keeps its fate.

    ``not_applicable`` marks a solver that cannot treat the objective: a combination of a
    sweep's grid to skip rather than a mistake.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    choices = extra.get("choices", {})
    write_record(run_dir, {
        "run_id": uuid.uuid4().hex[:12], "objective": choices.get("objective"),
        "solver": choices.get("solver"), "status": status, "message": message,
        "not_applicable": not_applicable, "iterations": 0, "optlab_version": _version(),
        "numpy_version": np.__version__, **extra,
    })
