"""How a run ended: its :class:`Outcome`, the clock it was timed by, and the kind of point it reached."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ..objectives.base import Objective
from ..solvers.base import State
from .stopping import POINT_MAX_DIM, holds_non_finite, point_kind


@dataclasses.dataclass
class Outcome:
    """How a run ended: its status and message, where it stands, its counts, its time (from its
    first evaluation on) and the one-off set-up before (compiling the objective's code).

    ``backend`` is the path that ran it (``batched``, ``fused`` or ``generic``: see
    :mod:`optlab.engine.plan`), ``jit`` whether that path ran as machine code
    (:mod:`optlab.engine.jit`, the same bits); ``point`` the kind of point a converged run reached (minimum,
    saddle, maximum, unknown) with the Hessian's smallest eigenvalue there; ``started`` is False
    for a run of a set that was interrupted before it began (nothing of it was written)."""

    status: str
    message: str
    state: State
    iterations: int
    nfev: int
    ngev: int
    nhev: int
    wall_time_s: float
    setup_s: float = 0.0
    backend: str = "generic"
    jit: bool = False
    point: str | None = None
    hessian_min_eig: float | None = None
    started: bool = True

    def classified(self, objective: Objective) -> Outcome:
        """This outcome with the kind of point it reached, when it converged; a saddle or a
        maximum is said in the message too."""
        if self.status != "converged":
            return self
        point, low = classify_point(objective, self.state.x)
        note = (f"; the Hessian is not positive definite there (smallest eigenvalue {low:.3g}): a {point}, "
                "not a minimum") if point in ("saddle", "maximum") else ""
        return dataclasses.replace(self, message=self.message + note, point=point, hessian_min_eig=low)


def not_started(x0: np.ndarray) -> Outcome:
    """The outcome of a run of an interrupted set that never began."""
    return Outcome("interrupted", "not started: the run set was interrupted before this run began",
                   State(x=x0, f=math.nan, g=None), 0, 0, 0, 0, 0.0, started=False)


def classify_point(objective: Objective, x: np.ndarray) -> tuple[str, float | None]:
    """The kind of point ``x`` is (:func:`optlab.engine.stopping.point_kind`) and the Hessian's
    smallest eigenvalue there; ``unknown`` above :data:`~optlab.engine.stopping.POINT_MAX_DIM`
    coordinates, where the Hessian cannot be computed, and where it would cost evaluations of f or
    its gradient (differences of a black box: the run's counts would no longer be its cost)."""
    if objective.dim > POINT_MAX_DIM or any(objective.costs("hessian")[:2]):
        return "unknown", None
    try:
        with np.errstate(all="ignore"):
            eig = np.linalg.eigvalsh(objective.hessian(np.asarray(x, dtype=float)))
    except Exception:  # noqa: BLE001 - a verdict's detail, never a reason to lose the run
        return "unknown", None
    return point_kind(eig), (None if holds_non_finite(eig) else float(eig[0]))


class Clock:
    """A run's clock: seconds since the start and the deadline of ``max_seconds``."""

    def __init__(self, max_seconds: float | None) -> None:
        self.t0 = time.perf_counter()
        self.deadline = math.inf if max_seconds is None else self.t0 + max_seconds

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def late(self) -> bool:
        return self.deadline < math.inf and time.perf_counter() > self.deadline
