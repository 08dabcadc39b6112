"""Multi-start runs: one solver from many start points in one job, one run directory per start.

The start points come from the ``starts`` config group: ``grid`` (``n`` points per axis over
the objective's plot box), ``random`` (``n`` seeded uniform points in the box) or ``list``
(explicit ``points``). :func:`run_starts` runs them one after the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, check_number
from ..objectives.base import Objective, as_box

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


