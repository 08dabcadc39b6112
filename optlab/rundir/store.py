"""Run directories on disk: ``run.json`` (one record per run) and ``iterates.parquet``.

A run writes ``run.json`` with status ``running`` when it starts and again when it ends,
each time atomically; its iterates go out in chunks while it runs and are merged at the
end. :func:`load` reads one run directory or a whole tree of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import platform
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.driver import Outcome, run
from ..engine.log import IterateLog
from ..engine.stopping import FINISHED, POINT_MAX_DIM, Stop, point_kind
from ..interrupts import interrupt_deferred
from ..objectives.base import Objective
from ..solvers.base import Solver
from .chunks import ChunkFiles
from .layout import RECORD, write_atomic
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
    """One run's directory while it runs: locked for this process (:mod:`optlab.lock`),
    ``run.json`` written as ``running`` at the start (what a killed run leaves), ``sink`` taking
    its iterates (:class:`~optlab.log.ChunkFiles`), and :meth:`close` writing
    ``iterates.parquet`` and the final record, then unlocking."""

    def __init__(self, run_dir: str | Path, objective: Objective, solver: Solver, x0: np.ndarray, stop: Stop,
                 extra: dict[str, Any] | None = None, chunk_rows: int = 10_000) -> None:
        self.dir = Path(run_dir)
        self.lock = acquire(self.dir)
        try:
            self.record = describe_run(objective, solver, x0, stop, uuid.uuid4().hex[:12], extra)
            write_record(self.dir, self.record)
            # The lock is held: parts here are a dead writer's, of a run this one replaces.
            stale = list((self.dir / "iterates.parts").glob("part-*.parquet"))
            for part in stale:
                part.unlink()
            if stale:
                with contextlib.suppress(OSError):
                    (self.dir / "iterates.parts").rmdir()
            (self.dir / "iterates.parquet").unlink(missing_ok=True)
        except BaseException:
            release(self.dir, self.lock)
            raise
        run = {k: v for k, v in json_safe(self.record).items() if k not in ("status", "started_at")}
        self.sink = ChunkFiles(self.dir, chunk_rows, self.record["run_id"], run)

    def close(self, objective: Objective, outcome: Outcome) -> dict[str, Any]:
        """Merge the iterates and write the final record. When the iterates cannot be written (a
        full disk), the record says so (status ``error``) and the parts written stay readable."""
        try:
            self.record = finish_record(self.record, objective, outcome)
            try:
                self.sink.merge()
            except OSError as exc:
                kept = len(self.sink.own_parts())
                self.record = {**self.record, "status": "error", "message": (
                    f"the run ended ({outcome.status}: {outcome.message}) but its iterates could not be "
                    f"written: {exc}; {kept} chunk(s) of {self.sink.chunk_rows} rows are kept in iterates.parts")}
            write_record(self.dir, self.record)
            return self.record
        finally:
            release(self.dir, self.lock)

    @staticmethod
    def close_all(files: list[RunFiles], objective: Objective, outcomes: list[Outcome]) -> list[dict[str, Any]]:
        """Close runs that have ended; Ctrl-C meanwhile is held until every file is complete."""
        with interrupt_deferred() as caught:
            records, failure = [], None
            for f, o in zip(files, outcomes):
                try:
                    records.append(f.close(objective, o))
                except OSError as exc:  # the others are still closed
                    failure = failure or exc
        if failure is not None:
            raise failure
        if caught:
            raise KeyboardInterrupt
        return records


def run_to_dir(run_dir: str | Path, objective: Objective, solver: Solver, x0: Any = None,
               stop: Stop | None = None, *, max_coords: int = 100, chunk_rows: int = 10_000,
               extra: dict[str, Any] | None = None, progress: Any = None, log_grad_norm: bool = False
               ) -> dict[str, Any]:
    """Run and keep everything in ``run_dir``; returns the final run record. The directory is
    locked meanwhile: a second writer gets :class:`optlab.lock.LockHeld`."""
    stop = stop or Stop()
    solver.check(objective)
    files = RunFiles(run_dir, objective, solver, objective.start(x0), stop, extra, chunk_rows)
    try:
        log = IterateLog(min(objective.dim, max_coords), chunk_rows, sink=files.sink)
        outcome = run(objective, solver, objective.start(x0), stop, log=log, progress=progress,
                      log_grad_norm=log_grad_norm)
    except BaseException:
        release(files.dir, files.lock)
        raise
    with interrupt_deferred() as caught:  # the run has ended: its files are completed first
        try:
            log.flush()
        except OSError as exc:  # the last chunk cannot be written: the record says so
            outcome = dataclasses.replace(outcome, status="error", message=f"{outcome.message}; then: {exc}")
        record = files.close(objective, outcome)
    if caught:
        raise KeyboardInterrupt
    return record


def read_finished(run_dir: Path, key: str) -> dict[str, Any] | None:
    """The record of a run already finished in ``run_dir`` with the settings ``key``
    (:func:`optlab.config.settings_key`), else None."""
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
