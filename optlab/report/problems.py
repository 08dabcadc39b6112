"""What the report knows about a problem, and the objective rebuilt for the figures that need it.

A run records its objective by name and options only. The contours, minimisers and basins of
1-D and 2-D objectives need the objective itself, so the report builds it again from the
registry, but only

- when a figure asks for it (never for problems it does not draw over their landscape);
- for ``dim <= 2``, with every integer option and list at most ``SIZE_CAP`` (a record naming
  ``rosenbrock`` with ``dim = 3e8`` builds nothing);
- without opening a data file named in a record (``least_squares`` ``data=PATH``) unless the
  caller asked for it (``--data`` / ``data_files=True``); relative paths then resolve against
  the directory the sweep was started from (Hydra's ``runtime.cwd``), files up to 64 MB.

An objective that is not in the registry (a plugin, say), or no longer builds, gets every curve
and table, and its paths drawn without contours (1-D and 2-D), on the box its runs span; the
page says why there are no contours. An objective without a ``box`` is drawn on that box too.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

SIZE_CAP = 10_000
MAX_DATA_BYTES = 64 << 20
DATA_SUFFIXES = (".csv", ".npz", ".npy", ".txt", ".json", ".parquet")


@dataclasses.dataclass
class ProblemInfo:
    """One problem: an objective with fixed options (``key`` identifies it across runs)."""

    key: str
    name: str
    params: dict[str, Any]
    label: str
    dim: int
    f_star: float | None
    data_files: bool = False
    launch_dir: Path | None = None  # where the sweep was started (relative data paths)
    note: str = ""  # why there are no landscape figures
    run_box: np.ndarray | None = None  # the box the runs span (padded), for objectives without one
    _objective: Any = None
    _built: bool = False
    _surface: tuple[np.ndarray, ...] | None = None
    _shading: tuple[np.ndarray, Any] | None = None

    @property
    def objective(self) -> Any:
        if not self._built:
            self._built = True
            self._objective, self.note = rebuild(self.name, self.params, self.dim, self.data_files, self.launch_dir)
        return self._objective

    @property
    def plottable(self) -> bool:
        """Its landscape can be drawn: 1-D or 2-D, rebuilt, with a box (its own or its runs')."""
        return self.dim in (1, 2) and self.objective is not None and self.box is not None

    @property
    def drawable(self) -> bool:
        """Its runs' paths can be drawn: 1-D or 2-D, over its landscape or, without, on its runs' box."""
        return self.dim in (1, 2) and self.box is not None

    @property
    def box(self) -> np.ndarray | None:
        """The objective's plot box, else the box its runs span."""
        own = getattr(self.objective, "box", None) if self.objective is not None else None
        try:
            box = np.asarray(own, dtype=float) if own is not None else None
        except (TypeError, ValueError):
            box = None
        usable = box is not None and box.shape == (self.dim, 2) and bool(np.all(np.isfinite(box)))
        if usable and np.all(box[:, 0] < box[:, 1]):
            return box
        return self.run_box

    @property
    def minimizers(self) -> np.ndarray:
        m = np.asarray(getattr(self.objective, "minimizers", np.empty((0, self.dim))), dtype=float)
        return m.reshape(-1, self.dim) if m.size else np.empty((0, self.dim))

    def surface(self, n: int = 101) -> tuple[np.ndarray, ...]:
        """``(xs, f)`` on ``n`` points of the box (1-D) or ``(X, Y, F)`` on an n x n grid (2-D)."""
        if self._surface is None:
            axes = [np.linspace(lo, hi, n) for lo, hi in self.box]
            mesh = np.meshgrid(*axes, indexing="xy")
            points = np.stack([m.ravel() for m in mesh], axis=1)
            values = self.values(points).reshape(mesh[0].shape)
            self._surface = (axes[0], values) if self.dim == 1 else (*mesh, values)
        return self._surface

    def values(self, points: np.ndarray) -> np.ndarray:
        """f at every row of ``points``: all at once when ``f`` works elementwise on a (dim, N)
        input (checked against single evaluations), else one by one."""
        from .. import autodiff as ad

        try:
            with ad.no_grad(), np.errstate(all="ignore"):
                out = np.asarray(self.objective.f(ad.Variable(points.T.copy())).data, dtype=float)
            sample = np.linspace(0, len(points) - 1, 7).astype(int)
            if out.shape == (len(points),) and np.allclose(out[sample], [self.value(points[i]) for i in sample],
                                                           rtol=1e-9, atol=1e-12, equal_nan=True):
                return np.where(np.isfinite(out), out, np.nan)
        except Exception:  # noqa: BLE001 - an f written for one point only
            pass
        return np.array([self.value(p) for p in points])

    def value(self, x: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            try:
                v = float(self.objective.value(np.asarray(x, dtype=float)))
            except Exception:  # noqa: BLE001 - a point where f fails is left blank
                return math.nan
        return v if math.isfinite(v) else math.nan


def box_of_points(points: np.ndarray, pad: float = 0.08) -> np.ndarray | None:
    """The box (rows ``(low, high)`` per coordinate) around the finite rows of ``points``, widened by
    ``pad`` of its size on each side (by 1 where it has none); None without a finite row."""
    points = points[np.all(np.isfinite(points), axis=1)]
    if not len(points):
        return None
    low, high = points.min(axis=0), points.max(axis=0)
    margin = np.where(high > low, pad * (high - low), 1.0)
    return np.stack([low - margin, high + margin], axis=1)


def problem_key(name: str, params: dict[str, Any], dim: int | None = None) -> str:
    return json.dumps([name, params, dim], sort_keys=True, default=str)


def _too_big(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)) and math.isfinite(value) and float(value).is_integer():
        return abs(value) > SIZE_CAP
    return isinstance(value, str) and len(value) > 2 * SIZE_CAP


def _data_path(value: Any) -> bool:
    return isinstance(value, str) and (value.lower().endswith(DATA_SUFFIXES) or "/" in value or "\\" in value)


def rebuild(name: str, params: dict[str, Any], dim: int, data_files: bool = False,
            launch_dir: Path | None = None) -> tuple[Any, str]:
    """``(objective, "")``, or ``(None, why not)``."""
    if dim not in (1, 2):
        return None, f"dimension {dim}: no landscape figures"
    big = [k for k, v in params.items() if _too_big(v) or (k in ("dim", "n") and isinstance(v, int) and v > 2)]
    if big:
        return None, f"not rebuilt: option(s) {', '.join(big)} too large for a {dim}-D landscape"
    options = dict(params)
    for key, value in params.items():
        if _data_path(value):
            if not data_files:
                return None, (f"not rebuilt: its option {key}={value} names a data file, which the report opens "
                              "only when asked (--data)")
            path = Path(value).expanduser()
            if not path.is_absolute() and launch_dir is not None and not path.exists():
                path = launch_dir / path
            try:
                size = path.stat().st_size
            except OSError:
                return None, f"not rebuilt: data file {value} not found (looked in {path.parent})"
            if size > MAX_DATA_BYTES:
                return None, f"not rebuilt: data file {value} is larger than {MAX_DATA_BYTES >> 20} MB"
            options[key] = str(path)
    try:
        from ..objectives import OBJECTIVES
    except Exception as exc:  # noqa: BLE001 - the objectives cannot even be imported: curves and tables only
        return None, f"not rebuilt: the objectives could not be imported ({type(exc).__name__})"
    cls = OBJECTIVES.get(name)
    if cls is None:
        return None, "not in optlab's registry: no landscape figures"
    if name == "black_box" and not data_files:  # rebuilding it would import and call code named in a record
        return None, ("not rebuilt: a black box names a function to import, which the report does only when "
                      "asked (--data)")
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return None, "not rebuilt"
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    options = {k: v for k, v in options.items() if takes_any or k in signature.parameters}
    try:
        objective = cls(**options)
    except Exception as exc:  # noqa: BLE001 - e.g. a data file that has gone: no landscape, nothing else lost
        return None, f"not rebuilt: {type(exc).__name__}: {str(exc)[:120]}"
    if getattr(objective, "dim", None) != dim:
        return None, f"not rebuilt: it builds with dimension {getattr(objective, 'dim', '?')}, the runs say {dim}"
    return objective, ""


def labels(items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Short names: the name, with the options that tell same-named items apart."""
    distinct = {json.dumps([n, p], sort_keys=True, default=str): (n, p) for n, p in items}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for name, params in distinct.values():
        by_name.setdefault(name, []).append(params)
    # Options that differ between settings of one name; a record without options (an invalid job) is no setting.
    varying = {name: sorted({k for p in group if p for k in p if any(q.get(k) != p.get(k) for q in group if q)})
               for name, group in by_name.items()}
    out = []
    for name, params in items:
        shown = ", ".join(f"{k}={short(params.get(k))}" for k in varying[name] if k in params)
        out.append(f"{name} ({shown})" if shown else name)
    return out


def short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
