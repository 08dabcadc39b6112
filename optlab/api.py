"""``optlab.minimize``: one run from Python, the iterate table in memory."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .errors import ConfigError
from .log import IterateLog
from .objectives import OBJECTIVES, Objective
from .runner import run
from .solvers import SOLVERS, Solver
from .stopping import SUCCESSES, Stop


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
             log_grad_norm: bool = False, **stop: Any) -> Result:
    """Minimise ``objective`` with ``solver``, by name or instance, keeping every iterate.

    ``stop`` takes the stopping rules of :class:`optlab.stopping.Stop` (``max_iter``,
    ``gtol``, ``xtol``, ``max_seconds``, ``max_fev``, ``target``, ``ftol``, ``patience``);
    ``log_grad_norm`` logs ||grad f|| (counted) for methods that use no gradient.

    >>> minimize("double_well", "newton").x
    array([1.])
    """
    allowed = [f.name for f in dataclasses.fields(Stop)]
    unknown = set(stop) - set(allowed)
    if unknown:
        raise ConfigError(f"unknown stopping rule(s) {sorted(unknown)}; allowed: {', '.join(allowed)}")
    obj = _build("objective", objective, OBJECTIVES, objective_options or {})
    sol = _build("solver", solver, SOLVERS, solver_options or {})
    log = IterateLog(min(obj.dim, max_coords))
    out = run(obj, sol, x0, Stop(**stop), log=log, log_grad_norm=log_grad_norm)
    return Result(out.status, out.message, out.state.x, out.state.f,
                  obj.gap(out.state.f), out.iterations, out.nfev, out.ngev, out.nhev,
                  out.wall_time_s, log.table().to_pandas(), out.setup_s)
