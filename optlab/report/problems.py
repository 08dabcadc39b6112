"""What the report knows about a problem: the objective rebuilt from its recorded name and options.

A run records its objective by name and options only, so the report builds it again from the
registry to draw contours, mark minimisers and classify basins. An objective that is not in
the registry (a user plugin) or no longer builds still gets every curve and table, only no
landscape figures.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from typing import Any

import numpy as np

from ..objectives.base import Objective


@dataclasses.dataclass
class ProblemInfo:
    """One problem: an objective with fixed options (``key`` identifies it across runs)."""

    key: str
    name: str
    params: dict[str, Any]
    label: str
    dim: int
    f_star: float | None
    objective: Objective | None = None
    _surface: tuple[np.ndarray, ...] | None = None

    @property
    def plottable(self) -> bool:
        return self.objective is not None and self.dim in (1, 2)

    @property
    def box(self) -> np.ndarray:
        return np.asarray(self.objective.box, dtype=float)

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
            values = self._values(points).reshape(mesh[0].shape)
            self._surface = (axes[0], values) if self.dim == 1 else (*mesh, values)
        return self._surface

    def _values(self, points: np.ndarray) -> np.ndarray:
        """f at every row of ``points``: all at once when ``f`` works elementwise on a (dim, N)
        input (checked against single evaluations), else one by one."""
        from .. import autodiff as ad

        try:
            with ad.no_grad(), np.errstate(all="ignore"):
                out = np.asarray(self.objective.f(ad.Variable(points.T.copy())).data, dtype=float)
            sample = np.linspace(0, len(points) - 1, 7).astype(int)
            if out.shape == (len(points),) and np.allclose(out[sample], [self._value(points[i]) for i in sample],
                                                           rtol=1e-9, atol=1e-12, equal_nan=True):
                return np.where(np.isfinite(out), out, np.nan)
        except Exception:  # noqa: BLE001 - an f written for one point only
            pass
        return np.array([self._value(p) for p in points])

    def _value(self, x: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            try:
                v = float(self.objective.value(x))
            except Exception:  # noqa: BLE001 - a point where f fails is left blank
                return math.nan
        return v if math.isfinite(v) else math.nan


def problem_key(name: str, params: dict[str, Any]) -> str:
    return json.dumps([name, params], sort_keys=True, default=str)


def rebuild(name: str, params: dict[str, Any], dim: int) -> Objective | None:
    """The objective ``name`` with the recorded ``params``, or None when it cannot be rebuilt."""
    from ..objectives import OBJECTIVES

    cls = OBJECTIVES.get(name)
    if cls is None:
        return None
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return None
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    options = {k: v for k, v in params.items() if takes_any or k in signature.parameters}
    try:
        objective = cls(**options)
    except Exception:  # noqa: BLE001 - e.g. a data file that has gone: no landscape, nothing else lost
        return None
    return objective if getattr(objective, "dim", None) == dim else None


def labels(problems: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Short names: the objective's name, with the options that tell same-named problems apart."""
    distinct = {problem_key(name, params): (name, params) for name, params in problems}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for name, params in distinct.values():
        by_name.setdefault(name, []).append(params)
    # Options that differ between settings of one name; a record without options (an invalid job) is no setting.
    varying = {name: sorted({k for p in group if p for k in p if any(q.get(k) != p.get(k) for q in group if q)})
               for name, group in by_name.items()}
    out = []
    for name, params in problems:
        shown = ", ".join(f"{k}={_short(params.get(k))}" for k in varying[name])
        out.append(f"{name} ({shown})" if shown else name)
    return out


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
