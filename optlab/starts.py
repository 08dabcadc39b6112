"""Multi-start runs: one solver from many start points in one job, one run directory per start.

The start points come from the ``starts`` config group: ``grid`` (``n`` points per axis over
the objective's plot box), ``random`` (``n`` seeded uniform points in the box) or ``list``
(explicit ``points``). :func:`run_starts` runs them one after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, check_number
from .objectives.base import Objective, as_box
from .runner import Stop
from .solvers.base import Solver

KINDS = ("grid", "random", "list")
MAX_STARTS = 10_000


def start_points(objective: Objective, kind: str, n: int = 5, seed: int = 0, points: Any = None,
                 box: Any = None) -> np.ndarray:
    """The start points (rows) of a multi-start run on ``objective``.

    ``box`` (default: the objective's plot box) bounds ``grid`` and ``random`` points;
    ``points`` is the list for ``kind="list"``.
    """
    if kind not in KINDS:
        raise ConfigError(f"starts.kind={kind!r} is unknown; allowed: {', '.join(KINDS)}")
    if kind == "list":
        if not isinstance(points, (list, tuple)) or not points:
            raise ConfigError(f"starts.points={points!r} is not a list of points; allowed: a non-empty list "
                              f"of start points, e.g. [[0,2],[-1.2,1]]")
        rows = [[p] if isinstance(p, (int, float)) else p for p in points]
        return np.stack([objective.start(p) for p in rows])
    n = int(check_number("starts.n", n, low=1, strict=False, integer=True))
    seed = int(check_number("starts.seed", seed, integer=True))
    bounds = np.asarray(objective.box, dtype=float) if box is None else _box(box, objective.dim)
    if kind == "grid":
        total = n ** objective.dim
        if total > MAX_STARTS:
            raise ConfigError(f"starts.n={n} gives {n}^{objective.dim} = {total} grid points; "
                              f"allowed: at most {MAX_STARTS} points (use starts=random in high dimension)")
        axes = [np.linspace(lo, hi, n) for lo, hi in bounds]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)
    if n > MAX_STARTS:
        raise ConfigError(f"starts.n={n} is too many start points; allowed: at most {MAX_STARTS}")
    rng = np.random.default_rng(seed)
    return bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * rng.random((n, objective.dim))


def _box(box: Any, dim: int) -> np.ndarray:
    try:
        bounds = as_box(box, dim)
        if np.all(np.isfinite(bounds)):  # start points are drawn or spaced inside: the bounds must be finite
            return bounds
    except (ConfigError, ValueError, TypeError):
        pass
    raise ConfigError(f"starts.box={box!r} is not {dim} rows of [low, high] (or one [low, high] for every "
                      f"axis); allowed: e.g. [[-2,2],[-1,3]] with finite low < high")


def start_dir_name(index: int, count: int) -> str:
    return f"start_{index:0{max(3, len(str(count - 1)))}d}"


def run_starts(job_dir: str | Path, objective: Objective, solver: Solver, points: np.ndarray, stop: Stop,
               spec: dict[str, Any], *, extra: dict[str, Any] | None = None,
               finished: Callable[[Path], dict[str, Any] | None] | None = None,
               **store_options: Any) -> list[dict[str, Any]]:
    """Run ``solver`` from every row of ``points``, each into ``job_dir/start_NNN/``.

    Each run is a run like any other (its own run id, ``run.json`` and iterates) whose record
    also holds ``start`` (the ``spec`` of the starts, with this start's index and the count).
    ``finished(dir)`` returns the record of a start already complete there (it is then kept,
    not run again), so a resumed job redoes only what is missing. The remaining starts go to
    :func:`optlab.batch.run_batch_to_dirs`: all at once when the solver and objective have a
    batched form (gradient descent at a constant rate), else one after the other.
    """
    from .batch import run_batch_to_dirs

    job_dir = Path(job_dir)
    dirs = [job_dir / start_dir_name(i, len(points)) for i in range(len(points))]
    records = [finished(d) if finished is not None else None for d in dirs]
    todo = [i for i, r in enumerate(records) if r is None]
    if todo:
        extras = [{**(extra or {}), "start": {**spec, "index": i, "count": len(points)}} for i in todo]
        ran = run_batch_to_dirs([dirs[i] for i in todo], objective, solver, np.asarray(points)[todo], stop,
                                extras=extras, **store_options)
        for i, record in zip(todo, ran):
            records[i] = record
    return records
