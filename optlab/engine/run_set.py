"""One entry for every run: :func:`run_set` runs a solver from one or many starts, every iterate kept.

The starts and the solver are checked once; the planner (:mod:`optlab.engine.plan`) picks the
path (batched, fused or generic) and builds what it needs once; each run's rows go to the sink
its caller opened for it (:class:`InMemory` keeps them; :class:`optlab.rundir.store.RunDirs`
writes run directories). ``optlab.minimize``, the command line's jobs and the deprecated
helpers of 0.1 are thin wrappers over it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, describe
from ..interrupts import interrupt_deferred
from ..objectives.base import Objective
from ..solvers.base import LEARNING_RATE, Solver
from .batch import drive_batch
from .driver import drive
from .log import IterateLog, LogOptions, MemorySink
from .outcome import Outcome, not_started
from .plan import Plan, make_plan
from .stopping import Stop


class Sink(Protocol):
    """Where one run's rows go (Arrow tables, in order), closed once with how the run ended."""

    def __call__(self, table: pa.Table) -> None: ...

    def close(self, outcome: Outcome) -> Any: ...


class Sinks(Protocol):
    """Opens the sink of each run of a set as it starts."""

    def open(self, index: int, run: RunSpec) -> Sink: ...


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What a sink is told of the run it takes: what runs, from where, under which rules and plan."""

    objective: Objective
    solver: Solver
    x0: np.ndarray
    stop: Stop
    plan: Plan
    count: int  # runs in the set


class InMemory:
    """Keeps each run's rows in memory: after the runs, ``tables[i]`` is run i's iterate table."""

    def __init__(self, log: LogOptions | None = None) -> None:
        self.log = log or LogOptions()
        self.tables: dict[int, pa.Table] = {}

    def open(self, index: int, run: RunSpec) -> Sink:
        return _Kept(self, index, self.log.n_coords(run.objective.dim))


class _Kept(MemorySink):
    """Run ``index``'s rows, kept in ``sinks.tables`` when it ends (a class of its own, not one
    made per run: a class made in a call lives in a reference cycle, and so would the rows)."""

    def __init__(self, sinks: InMemory, index: int, n_coords: int) -> None:
        super().__init__(n_coords)
        self.sinks, self.index = sinks, index

    def close(self, outcome: Outcome) -> pa.Table:
        table = self.sinks.tables[self.index] = self.table()
        return table


def run_set(objective: Objective, solver: Solver, starts: Any = None, stop: Stop | None = None,
            sinks: Sinks | None = None, *, lrs: Sequence[float] | float | None = None,
            log: LogOptions | None = None, progress: Any = None, backend: str | None = None) -> list[Outcome]:
    """Run ``solver`` on ``objective`` from every start, one :class:`Outcome` per start, in order.

    ``starts``: rows of start points (None: the objective's standard start, one run). ``lrs``:
    a learning rate per run, or one for all (default: the solver's). ``sinks`` opens where each
    run's rows go (default :class:`InMemory`). ``backend`` forces a path (``batched``, ``fused``
    or ``generic``; default: the planner's choice, recorded in each outcome). Ctrl-C ends the
    runs going as ``interrupted`` and starts no more (their outcomes say ``not started``).
    Raises :class:`ConfigError` (one line) for a mistake, before anything runs.
    """
    stop, log = stop or Stop(), log or LogOptions()
    solver.check(objective)
    points = check_starts(objective, starts)
    solvers = per_run(solver, lrs, len(points))
    plan = make_plan(objective, solvers, points[0], stop, backend)
    sinks = sinks if sinks is not None else InMemory(log)
    specs = [RunSpec(objective, s, p, stop, plan, len(points)) for s, p in zip(solvers, points)]
    if plan.backend == "batched":
        with interrupt_deferred() as caught:
            opened = _open_all(sinks, specs)
        outcomes = drive_batch(solvers, points, stop, stop.limit(objective.f_star), plan, opened, log,
                               log.n_coords(objective.dim), bool(caught))
        return _close_all(opened, [o.classified(objective) for o in outcomes])
    outcomes: list[Outcome] = []
    for i, spec in enumerate(specs):
        if outcomes and outcomes[-1].status == "interrupted":
            outcomes.append(not_started(spec.x0))
            continue
        with interrupt_deferred() as caught:  # a run whose sink is open is driven: it ends with a status
            sink = sinks.open(i, spec)
        rows = IterateLog(log.n_coords(objective.dim), log.chunk_rows, sink=sink)
        try:
            outcome = drive(objective, spec.solver, spec.x0, stop, rows, plan, log.grad_norm, progress, bool(caught))
        except BaseException:
            _abandon(sink)
            raise
        outcomes += _close_all([sink], [outcome.classified(objective)], rows)
    return outcomes


def check_starts(objective: Objective, starts: Any) -> np.ndarray:
    """The start points as rows, each checked against the objective (:meth:`Objective.start`:
    one line for the first bad one); None is the objective's standard start."""
    if starts is None:
        return objective.start()[None, :]
    if isinstance(starts, np.ndarray) and starts.dtype.kind == "f" and starts.shape[1:] == (objective.dim,) \
            and len(starts) and np.isfinite(starts).all():  # (checked as a whole: many starts at once)
        return starts.astype(float, copy=True)
    if not isinstance(starts, (list, tuple, np.ndarray)) or len(starts) == 0:
        raise ConfigError(f"starts={describe(starts)} is not a list of start points; allowed: a non-empty list of "
                          f"points of {objective.dim} numbers, e.g. [[0,2],[-1.2,1]]")
    return np.array([objective.start(r) for r in starts], dtype=float).reshape(len(starts), objective.dim)


def per_run(solver: Solver, lrs: Any, count: int) -> list[Solver]:
    """One solver per run: ``solver`` itself, or one per distinct learning rate of ``lrs``
    (each checked as ``solver.lr`` is)."""
    if lrs is None:
        return [solver] * count
    if not hasattr(solver, LEARNING_RATE):
        raise ConfigError(f"lrs={lrs!r} given for solver {solver.name}, which has no learning rate; "
                          "allowed: lrs only with a solver that has lr")
    try:
        values = np.broadcast_to(np.asarray(lrs, dtype=float), (count,)).tolist()
    except (TypeError, ValueError):
        raise ConfigError(f"lrs={lrs!r} is not one learning rate or one per start; allowed: {count} numbers") from None
    made: dict[float, Solver] = {float(getattr(solver, LEARNING_RATE)): solver}
    for lr in values:
        if lr not in made:
            made[lr] = type(solver)(**{**solver.params(), LEARNING_RATE: lr})
    return [made[lr] for lr in values]


def _open_all(sinks: Sinks, specs: list[RunSpec]) -> list[Sink]:
    opened: list[Sink] = []
    try:
        for i, spec in enumerate(specs):
            opened.append(sinks.open(i, spec))
    except BaseException:
        for sink in opened:
            _abandon(sink)
        raise
    return opened


def _close_all(opened: list[Sink], outcomes: list[Outcome], rows: IterateLog | None = None) -> list[Outcome]:
    """Close the sinks of runs that have ended (the log's last rows first, for a single run).
    Ctrl-C meanwhile is held until every one is closed, then raised. A last chunk that cannot be
    written makes its run an ``error`` that says so; a sink that cannot close (a full disk)
    leaves the others closed and raises its error."""
    failure = None
    with interrupt_deferred() as caught:
        if rows is not None:
            try:
                rows.flush()
            except OSError as exc:  # the last chunk cannot be written: the record says so
                ended = outcomes[0]
                outcomes = [dataclasses.replace(ended, status="error", message=f"{ended.message}; then: {exc}")]
        for sink, outcome in zip(opened, outcomes):
            try:
                sink.close(outcome)
            except OSError as exc:
                failure = failure or exc
    if failure is not None:
        raise failure
    if caught:
        raise KeyboardInterrupt
    return outcomes


def _abandon(sink: Sink) -> None:
    """Let go of a run's sink after a failure outside the run (its files stay as they are)."""
    abandon = getattr(sink, "abandon", None)
    if abandon is not None:
        abandon()


__all__ = ["InMemory", "RunSpec", "Sink", "Sinks", "check_starts", "per_run", "run_set"]
