"""``optlab.minimize``: one run from Python, the iterate table in memory."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .engine.driver import run
from .engine.log import IterateLog
from .engine.stopping import SUCCESSES, Stop
from .errors import ConfigError
from .objectives import OBJECTIVES, Objective
from .solvers import SOLVERS, Solver


@dataclasses.dataclass
class Result:
    """How a run ended, where, and every iterate (``iterates``, a pandas DataFrame)."""

    status: str
    message: str
    x: np.ndarray
    f: float
    gap: float | None
    iterations: int
    nfev: int
    ngev: int
    nhev: int
    wall_time_s: float
    iterates: Any
    setup_s: float = 0.0

    def __repr__(self) -> str:
        head = ", ".join(f"{v:.6g}" for v in np.ravel(self.x)[:4]) + (", ..." if np.size(self.x) > 4 else "")
        return (f"Result(status={self.status!r}, iterations={self.iterations}, f={self.f:.10g}, x=[{head}], "
                f"nfev={self.nfev}; .iterates: {len(self.iterates)} rows, .message: {self.message!r})")

    @property
    def success(self) -> bool:
        """Whether the method's optimality test held (``converged``) or f reached ``stop.target``."""
        return self.status in SUCCESSES


def _build(kind: str, spec: Any, registry: dict[str, type], options: dict[str, Any]) -> Any:
    if not isinstance(spec, str):
        if options:
            raise ConfigError(f"{kind}_options given with a ready {kind} instance; pass one or the other")
        return spec
    if spec not in registry:
        raise ConfigError(f"{kind}={spec!r} is unknown; allowed: {', '.join(sorted(registry))}")
    return registry[spec](**options)


def minimize(objective: str | Objective, solver: str | Solver, x0: Any = None, *,
             objective_options: dict[str, Any] | None = None,
             solver_options: dict[str, Any] | None = None, max_coords: int = 100,
             log_grad_norm: bool = False, out: str | Path | None = None, **stop: Any) -> Result:
    """Minimise ``objective`` with ``solver``, by name or instance, keeping every iterate.

    ``stop`` takes the stopping rules of :class:`optlab.stopping.Stop` (``max_iter``,
    ``gtol``, ``xtol``, ``max_seconds``, ``max_fev``, ``target``, ``ftol``, ``patience``);
    ``log_grad_norm`` logs ||grad f|| (counted) for methods that use no gradient. With ``out``,
    the run is also kept there as a run directory (``run.json``, ``iterates.parquet``), which
    :func:`optlab.load` and the report read like any other.

    >>> minimize("double_well", "newton").x
    array([1.])
    """
    allowed = [f.name for f in dataclasses.fields(Stop)]
    unknown = set(stop) - set(allowed)
    if unknown:
        raise ConfigError(f"unknown stopping rule(s) {sorted(unknown)}; allowed: {', '.join(allowed)}")
    obj = _build("objective", objective, OBJECTIVES, objective_options or {})
    sol = _build("solver", solver, SOLVERS, solver_options or {})
    if out is not None:
        return _saved(obj, sol, x0, Stop(**stop), max_coords, log_grad_norm, Path(out))
    log = IterateLog(min(obj.dim, max_coords))
    outcome = run(obj, sol, x0, Stop(**stop), log=log, log_grad_norm=log_grad_norm)
    return Result(outcome.status, outcome.message, outcome.state.x, outcome.state.f,
                  obj.gap(outcome.state.f), outcome.iterations, outcome.nfev, outcome.ngev, outcome.nhev,
                  outcome.wall_time_s, log.table().to_pandas(), outcome.setup_s)


def _saved(objective: Objective, solver: Solver, x0: Any, stop: Stop, max_coords: int, log_grad_norm: bool,
           out: Path) -> Result:
    """The run kept in the run directory ``out``, as the command line keeps it."""
    import pandas as pd

    from .rundir.store import run_to_dir

    record = run_to_dir(out, objective, solver, x0, stop, max_coords=max_coords, log_grad_norm=log_grad_norm)
    iterates = pd.read_parquet(out / "iterates.parquet") if (out / "iterates.parquet").exists() else pd.DataFrame()
    x = np.array([np.nan if v is None else v for v in record["x_final"]], dtype=float)
    f = np.nan if record["f_final"] is None else record["f_final"]
    return Result(record["status"], record["message"], x, f, record.get("gap"), record["iterations"],
                  record["nfev"], record["ngev"], record["nhev"], record["wall_time_s"], iterates,
                  record.get("setup_s", 0.0))
