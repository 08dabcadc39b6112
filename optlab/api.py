"""``optlab.minimize``: runs from Python by name or instance, each with its iterate table."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .engine.log import LogOptions
from .engine.outcome import Outcome
from .engine.run_set import InMemory, run_set
from .engine.stopping import SUCCESSES, Stop
from .errors import ConfigError
from .objectives import OBJECTIVES, Objective
from .rundir.layout import ITERATES, start_dir_name
from .rundir.store import RunDirs
from .solvers import SOLVERS, Solver


@dataclasses.dataclass(repr=False)
class Result(Outcome):
    """A run's :class:`~optlab.engine.outcome.Outcome` with where it ended (``x``, ``f``,
    ``gap`` = f - f*), and every iterate: ``iterates`` (a pandas DataFrame, made when first read;
    ``table`` is the same rows as an Arrow table)."""

    gap: float | None = None
    table: Any = None
    path: Path | None = None  # the run directory, for a run kept on disk

    @classmethod
    def of(cls, outcome: Outcome, objective: Objective, table: Any = None, path: Path | None = None) -> Result:
        """The result of a run that ended as ``outcome``."""
        fields = {f.name: getattr(outcome, f.name) for f in dataclasses.fields(Outcome)}
        return cls(**fields, gap=objective.gap(outcome.state.f), table=table, path=path)

    @property
    def x(self) -> np.ndarray:
        return self.state.x

    @property
    def f(self) -> float:
        return self.state.f

    @property
    def success(self) -> bool:
        """Whether f reached ``stop.target``, or the method's optimality test held at a point that
        is not known to be a saddle or a maximum."""
        return self.status in SUCCESSES and self.point not in ("saddle", "maximum")

    @property
    def iterates(self) -> Any:
        if self.table is None and self.path is not None and (self.path / ITERATES).exists():
            import pyarrow.parquet as pq

            from .rundir.iterates import coordinate_columns

            self.table = coordinate_columns(pq.ParquetFile(self.path / ITERATES).read())  # x as x_0 .. x_k
        if self.table is None:
            import pandas as pd

            return pd.DataFrame()
        return self.table.to_pandas()

    def __repr__(self) -> str:
        head = ", ".join(f"{v:.6g}" for v in np.ravel(self.x)[:4]) + (", ..." if np.size(self.x) > 4 else "")
        rows = self.iterations + 1 if self.started else 0
        return (f"Result(status={self.status!r}, iterations={self.iterations}, f={self.f:.10g}, x=[{head}], "
                f"nfev={self.nfev}, point={self.point!r}; .iterates: {rows} rows, .message: {self.message!r})")


def _build(kind: str, spec: Any, registry: dict[str, type], options: dict[str, Any]) -> Any:
    if not isinstance(spec, str):
        if options:
            raise ConfigError(f"{kind}_options given with a ready {kind} instance; pass one or the other")
        return spec
    if spec not in registry:
        raise ConfigError(f"{kind}={spec!r} is unknown; allowed: {', '.join(sorted(registry))}")
    return registry[spec](**options)


def minimize(objective: str | Objective, solver: str | Solver, x0: Any = None, *, starts: Any = None,
             lrs: Any = None, objective_options: dict[str, Any] | None = None,
             solver_options: dict[str, Any] | None = None, max_coords: int = 100, log_grad_norm: bool = False,
             out: str | Path | None = None, overwrite: bool = False, backend: str | None = None,
             **stop: Any) -> Result | list[Result]:
    """Minimise ``objective`` with ``solver``, by name or instance, keeping every iterate.

    From ``x0`` (default: the objective's standard start) a :class:`Result`; from ``starts``
    (rows of start points, optionally with ``lrs``, a learning rate per start) a list of them,
    run as one set (:func:`optlab.run_set`: batched where the method allows). ``stop`` takes the
    stopping rules of :class:`optlab.engine.stopping.Stop` (``max_iter``, ``gtol``, ``xtol``,
    ``max_seconds``, ``max_fev``, ``target``, ``ftol``, ``patience``); ``log_grad_norm`` logs
    ||grad f|| (counted) for methods that use no gradient. With ``out``, each run is also kept on
    disk (``run.json``, ``iterates.parquet``; with ``starts``, in ``out/start_NNN``), which
    :func:`optlab.load` and the report read like any other; a finished run there is replaced only
    with ``overwrite=True``.

    >>> minimize("double_well", "newton").x
    array([1.])
    """
    allowed = [f.name for f in dataclasses.fields(Stop)]
    unknown = set(stop) - set(allowed)
    if unknown:
        raise ConfigError(f"unknown stopping rule(s) {sorted(unknown)}; allowed: {', '.join(allowed)}")
    if x0 is not None and starts is not None:
        raise ConfigError("x0 and starts given together; allowed: one of them")
    obj = _build("objective", objective, OBJECTIVES, objective_options or {})
    sol = _build("solver", solver, SOLVERS, solver_options or {})
    log = LogOptions(max_coords=max_coords, grad_norm=log_grad_norm)
    points = None if starts is None and x0 is None else (starts if starts is not None else [x0])
    count = 1 if points is None else len(points)
    dirs = None
    if out is not None:
        dirs = [Path(out)] if starts is None else [Path(out) / start_dir_name(i, count) for i in range(count)]
        sinks: Any = RunDirs(dirs, overwrite=overwrite)
    else:
        sinks = InMemory(log)
    outcomes = run_set(obj, sol, points, Stop(**stop), sinks, lrs=lrs, log=log, backend=backend)
    results = [Result.of(o, obj, sinks.tables.get(i) if dirs is None else None,
                         dirs[i] if dirs is not None and o.started else None) for i, o in enumerate(outcomes)]
    return results if starts is not None else results[0]
