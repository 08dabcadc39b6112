"""Batched runs: many start points and learning rates of gradient descent as one array program.

A sweep over starts and learning rates repeats the same few operations per step in every
run. Here the runs advance together: the objective's compiled derivatives are evaluated for
all points at once (a batch axis through the recorded graph, see
:mod:`optlab.autodiff.compile`), the gradient step is one array operation, and the log
is one array per chunk of steps. Every run still ends as its own run: its own run id,
``run.json`` and ``iterates.parquet`` (the files of a single run, read by
:func:`optlab.load`), the same stopping rules with the same messages, and the same
iterates as a single run from the same start with the same learning rate.

API (used by the multi-start CLI, ``starts=...``):

* :func:`batchable` ``(objective, solver)`` -> None, or why the runs cannot be batched;
* :func:`run_batch` ``(objective, solver, starts, stop, lrs=...)`` -> one :class:`BatchRun`
  per start (outcome and iterate table, in memory);
* :func:`run_batch_to_dirs` ``(run_dirs, objective, solver, starts, stop, lrs=..., extras=...)``
  -> the final run records, one directory per start. When the runs cannot be batched it
  runs them one after the other through :func:`optlab.store.run_to_dir`, so callers need
  no second code path.

Batched: gradient descent with a constant learning rate and no line search, on an objective
whose value and gradient come from ``f`` (not analytic overrides) and compile with a
batched form. Differences from single runs: the log's ``time_s`` and ``wall_time_s`` count
the time of the whole batch; ``max_seconds`` is a budget for the batch (runs still going
when it is spent end as ``max_seconds``); Ctrl-C ends the runs still going as
``interrupted`` with every finished step logged, as in a single run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .autodiff.compile import Compiled, NotCompilable
from .errors import ConfigError
from .log import FIELDS, PARQUET_OPTIONS, columns, pool_array
from .objectives.base import Objective
from .runner import Outcome, Stop, stop_message
from .solvers.base import Solver

ITERATES = "iterates.parquet"
MEMORY_BYTES = 512 * 2**20  # the chunk buffers of a batch take at most about this much


@dataclasses.dataclass
class BatchRun:
    """One run of a batch: how it ended, and its iterate table (the columns of a single run's log)."""

    outcome: Outcome
    iterates: pa.Table | None


def batchable(objective: Objective, solver: Solver) -> str | None:
    """None when runs of ``solver`` on ``objective`` can be batched, else the reason they cannot."""
    from .fastpath import plain_gradient_descent

    if not plain_gradient_descent(solver):
        return f"solver {solver.name} with these options has no batched form (only gd without line search)"
    if getattr(solver, "schedule", "constant") != "constant":
        return f"solver.schedule={solver.schedule} has no batched form (only constant)"
    if type(objective).value_and_grad is not Objective.value_and_grad:
        return f"objective {objective.name} writes its gradient out; its analytic form is kept in single runs"
    try:
        _batched_value_and_grad(objective, np.asarray(objective.start(), dtype=float))
    except NotCompilable as exc:
        return f"objective {objective.name} has no batched form: {exc}"
    return None


def _batched_value_and_grad(objective: Objective, x: np.ndarray) -> Callable:
    """``vg(X) -> (F, G)`` for points in the columns of X (shape ``x.shape + (B,)``)."""
    from .fastpath import batched_value_and_grad

    compiled: Compiled | None = objective._compiled_for(x)
    if compiled is None:
        raise NotCompilable(objective.__dict__.get("_eager_reason", "its derivatives are not compiled"))
    return batched_value_and_grad(compiled)


class _Batch:
    """The runs still going: columns of x and g, f, gradient norms, learning rates, run numbers."""

    def __init__(self, x: np.ndarray, f: np.ndarray, g: np.ndarray, gn: np.ndarray, lr: np.ndarray,
                 index: np.ndarray) -> None:
        self.x, self.f, self.g, self.gn, self.lr, self.index = x, f, g, gn, lr, index
        self.f_previous = np.full(len(f), math.nan)
        self.time = 0.0  # of the current row, since the start of the batch

    def keep(self, mask: np.ndarray) -> None:
        self.x, self.f, self.g, self.gn, self.lr, self.index = (
            self.x[:, mask], self.f[mask], self.g[:, mask], self.gn[mask], self.lr[mask], self.index[mask])
        self.f_previous = self.f_previous[mask]


def _norms(g: np.ndarray) -> np.ndarray:
    """||column|| for each column, summed in order over the rows as the runner sums (np.dot)."""
    return np.sqrt(np.add.reduce(g * g, axis=0))


def _stop_reasons(stop: Stop, k: np.ndarray, f: np.ndarray, gn: np.ndarray, x: np.ndarray,
                  previous: np.ndarray | None, late: np.ndarray, block: int = 128) -> np.ndarray:
    """For rows of steps (``k``: iteration of each row), the code of the first stopping rule that
    holds, in the runner's order: 1 xtol, 2 diverged, 3 gtol, 4 max_iter, 5 max_seconds, 0 none.

    ``f`` and ``gn`` are (rows, runs), ``x`` (rows, n, runs), ``previous`` the x of the rows
    before (None at the start), ``late`` (rows,) whether the deadline had passed. Done a block
    of rows at a time, so that the temporaries stay small.
    """
    if len(f) > block:
        return np.concatenate([
            _stop_reasons(stop, k[i:i + block], f[i:i + block], gn[i:i + block], x[i:i + block],
                          None if previous is None else previous[i:i + block], late[i:i + block], block)
            for i in range(0, len(f), block)])
    code = np.zeros(f.shape, dtype=np.int8)
    total = f + gn
    for i in range(x.shape[1]):
        total += x[:, i]
    if not np.isfinite(total).all():  # a sum is finite when every term is
        look = ~np.isfinite(total)
        code[look] = np.where(np.isfinite(f[look]) & np.isfinite(gn[look])
                              & np.all(np.isfinite(np.moveaxis(x, 1, -1)[look]), axis=-1), 0, 2)
    converged = gn <= stop.gtol
    if converged.any():
        code[converged & (code == 0)] = 3
    for rows, rule in ((k >= stop.max_iter, 4), (late, 5)):  # rules of whole rows: mostly none holds
        if rows.any():
            code[(code == 0) & np.broadcast_to(rows[:, None], code.shape)] = rule
    if previous is not None:
        if stop.xtol == 0.0:
            # ||d|| <= 0 needs |d_i| below ~1.5e-162 (d_i^2 underflows) for every i, so for i = 0 first
            look = np.abs(x[:, 0] - previous[:, 0]) < 1e-150
        else:
            look = np.ones(f.shape, dtype=bool)
        if look.any():
            d = np.moveaxis(x, 1, -1)[look] - np.moveaxis(previous, 1, -1)[look]
            step = np.sqrt(np.add.reduce(d * d, axis=-1))
            bound = 0.0 if stop.xtol == 0.0 else stop.xtol * (
                1.0 + _row_norms(np.moveaxis(previous, 1, -1)[look]))
            small = np.zeros(f.shape, dtype=bool)
            small[look] = step <= bound
            code[small] = 1
    return code


def _row_norms(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.add.reduce(a * a, axis=-1))


def _message(code: int, k: int, gn: float, stop: Stop) -> tuple[str, str]:
    return stop_message(("xtol", "diverged", "gtol", "max_iter", "max_seconds")[code - 1], k, gn, stop)


class _Runner:
    """Advances a batch chunk by chunk, applies the stopping rules after each chunk, logs to sinks."""

    def __init__(self, objective: Objective, starts: np.ndarray, lrs: np.ndarray, stop: Stop, n_log: int,
                 chunk_rows: int, sinks: list[Callable[[pa.Table], None]], memory_bytes: int) -> None:
        self.stop, self.starts, self.lrs = stop, starts, lrs
        self.n, self.n_log, self.sinks = starts.shape[1], n_log, sinks
        self.vg = _batched_value_and_grad(objective, starts[0])
        per_step = 8 * len(starts) * (2 * self.n + 4)  # the chunk's arrays and their transposed copies
        self.chunk = max(1, min(chunk_rows, memory_bytes // per_step))
        self.outcomes: list[Outcome | None] = [None] * len(starts)
        self.interrupted = False

    def run(self) -> list[Outcome]:
        stop = self.stop
        self.t0 = time.perf_counter()
        self.deadline = math.inf if stop.max_seconds is None else self.t0 + stop.max_seconds
        with np.errstate(all="ignore"):
            x = self.starts.T.copy()
            f, g = self.gradients(x)
            batch = _Batch(x, f, g, _norms(g), self.lrs.copy(), np.arange(len(self.starts)))
            batch.time = time.perf_counter() - self.t0
            code = _stop_reasons(stop, np.array([0]), f[None], batch.gn[None], x[None], None,
                                 np.array([batch.time + self.t0 > self.deadline]))[0]
            if code.any():
                ends = code != 0
                self._log(batch, 0, x[None], f[None], batch.gn[None], np.array([batch.time]), ends.astype(int))
                self._finish(batch, code, np.zeros(len(code), dtype=int), np.full(len(code), np.nan))
                batch.keep(~ends)
            k = 0
            while len(batch.index):
                k = self._chunk(batch, k)
        return [o for o in self.outcomes if o is not None]

    def gradients(self, x: np.ndarray, f: np.ndarray | None = None, g: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """f and the gradient (a row per coordinate) at the columns of x, into ``f`` and ``g`` if given."""
        f, g = self.vg(x.reshape(self.starts.shape[1:] + (-1,)), f, g)
        return f, g.reshape(self.n, -1)

    def _chunk(self, batch: _Batch, k0: int) -> int:
        """Up to ``chunk`` steps of every run still going; returns the iteration reached.

        Row 0 of the chunk's arrays is the current point (logged with the first chunk only).
        """
        n, b = self.n, len(batch.index)
        steps = min(self.chunk, self.stop.max_iter - k0)
        xs, fs, gns, ts = self._buffers(steps + 1, b)
        xs[0], fs[0], gns[0], ts[0] = batch.x, batch.f, batch.gn, batch.time
        g, lr, scaled, squares = batch.g, batch.lr, np.empty((n, b)), np.empty((n, b))
        grads = (np.empty((n, b)), np.empty((n, b)))  # by turns: the last row's gradient stays whole
        done = steps
        try:
            for j in range(1, steps + 1):
                np.multiply(g, lr, out=scaled)
                np.subtract(xs[j - 1], scaled, out=xs[j])
                g_new = self.gradients(xs[j], fs[j], grads[j % 2])[1]
                np.multiply(g_new, g_new, out=squares)
                norm = gns[j]
                np.add.reduce(squares, axis=0, out=norm)
                np.sqrt(norm, out=norm)
                ts[j] = time.perf_counter() - self.t0
                g = g_new  # row j is complete
                if ts[j] + self.t0 > self.deadline:
                    done = j
                    break
        except KeyboardInterrupt:  # the rows done so far count; the runs still going end as interrupted
            done, self.interrupted = j - 1, True
            if done == 0:
                self._interrupt(batch, k0)
                return k0
        rows = slice(1, done + 1)
        codes = _stop_reasons(self.stop, k0 + np.arange(1, done + 1), fs[rows], gns[rows], xs[rows], xs[:done],
                              ts[rows] + self.t0 > self.deadline)
        stopped = codes != 0
        last = np.where(stopped.any(axis=0), stopped.argmax(axis=0), done - 1) + 1  # each run's last row
        first = 0 if k0 == 0 else 1
        self._log(batch, k0 + first, xs[first:done + 1], fs[first:done + 1], gns[first:done + 1],
                  ts[first:done + 1], last + 1 - first)
        code = codes[last - 1, np.arange(b)]
        ends = np.flatnonzero(code)
        if len(ends):
            at = last[ends]
            x_end = xs[at, :, ends].T
            current = at == done  # other runs ended earlier in the chunk: their gradient is recomputed
            g_end = np.empty_like(x_end)
            g_end[:, current] = g[:, ends[current]]
            if not current.all():
                g_end[:, ~current] = self.gradients(x_end[:, ~current])[1]
            final = _Batch(x_end, fs[at, ends], g_end, gns[at, ends], batch.lr[ends], batch.index[ends])
            self._finish(final, code[ends], k0 + at, fs[at - 1, ends])
        going = code == 0
        batch.x, batch.f, batch.g, batch.gn = xs[done][:, going], fs[done][going], g[:, going], gns[done][going]
        batch.lr, batch.index, batch.time = batch.lr[going], batch.index[going], float(ts[done])
        batch.f_previous = fs[done - 1][going]
        if self.interrupted:
            self._interrupt(batch, k0 + done)
        return k0 + done

    def _interrupt(self, batch: _Batch, k: int) -> None:
        """The runs of ``batch`` end as interrupted at iteration ``k``, where they stand."""
        from .solvers.descent import DescentState

        now, shape = time.perf_counter() - self.t0, self.starts.shape[1:]
        for col, run in enumerate(batch.index.tolist()):
            state = DescentState(x=batch.x[:, col].reshape(shape).copy(), f=float(batch.f[col]),
                                 g=batch.g[:, col].reshape(shape).copy(),
                                 step_size=float(batch.lr[col]) if k else math.nan, k=k,
                                 f_previous=float(batch.f_previous[col]))
            self.outcomes[run] = Outcome("interrupted", f"interrupted by the user at iteration {k}", state, k,
                                         k + 1, k + 1, 0, now)
        batch.keep(np.zeros(len(batch.index), dtype=bool))

    def _buffers(self, rows: int, b: int) -> tuple[np.ndarray, ...]:
        """The chunk's arrays (x, f, gradient norm, time), allocated once and reused as views."""
        if getattr(self, "_memory", None) is None or self._memory[0].shape[0] < rows:
            size = len(self.starts)
            self._memory = (pool_array((rows, self.n * size)), pool_array((rows, size)), pool_array((rows, size)),
                            pool_array(rows))
        xs, fs, gns, ts = self._memory
        return (xs[:rows, : self.n * b].reshape(rows, self.n, b), fs[:rows, :b], gns[:rows, :b], ts[:rows])

    def _finish(self, batch: _Batch, code: np.ndarray, k: np.ndarray, f_prev: np.ndarray) -> None:
        """Outcomes of the columns of ``batch`` whose ``code`` is a stopping rule, at iterations ``k``."""
        from .solvers.descent import DescentState

        now = time.perf_counter() - self.t0
        shape = self.starts.shape[1:]
        for col in np.flatnonzero(code):
            run, kk = int(batch.index[col]), int(k[col])
            status, message = _message(int(code[col]), kk, float(batch.gn[col]), self.stop)
            state = DescentState(x=batch.x[:, col].reshape(shape).copy(), f=float(batch.f[col]),
                                 g=batch.g[:, col].reshape(shape).copy(),
                                 step_size=float(batch.lr[col]) if kk else math.nan, k=kk,
                                 f_previous=float(f_prev[col]))
            self.outcomes[run] = Outcome(status, message, state, kk, kk + 1, kk + 1, 0, now)

    def _log(self, batch: _Batch, k0: int, xs: np.ndarray, fs: np.ndarray, gns: np.ndarray,
             ts: np.ndarray, counts: np.ndarray) -> None:
        """Rows ``k0 ...`` of the runs of ``batch`` (``counts[c]`` rows of column c) to their sinks.

        The chunk's values are transposed once, so that every run's rows are contiguous; the
        tables share that memory, and the columns equal for all runs (iteration, counts,
        time, step size) are one array each.
        """
        m, b = fs.shape
        # each one Arrow array holding a run's rows after another, sliced per run
        blocks = (fs, gns, *xs[:, : self.n_log].swapaxes(0, 1))
        f_runs, gn_runs, *x_runs = (_view(_transposed(block).ravel()) for block in blocks)
        it = np.arange(k0, k0 + m, dtype=np.int64)
        shared = [_view(it), _view(it + 1), _view(np.zeros(m, dtype=np.int64)), _view(np.array(ts, dtype=float))]
        steps: dict[float, pa.Array] = {}
        names = columns(self.n_log)
        for c, run in enumerate(batch.index.tolist()):
            r = int(counts[c])
            if r == 0:
                continue
            lr = float(self.lrs[run])
            if lr not in steps:
                step = np.full(m, lr)
                if k0 == 0:
                    step[0] = math.nan  # no step has been taken at the start
                steps[lr] = _view(step)
            it_r, evals, zeros, times = (a.slice(0, r) for a in shared)
            cols = [it_r, f_runs.slice(c * m, r), gn_runs.slice(c * m, r), steps[lr].slice(0, r), evals, evals, zeros,
                    times, *(x.slice(c * m, r) for x in x_runs)]
            self.sinks[run](pa.Table.from_arrays(cols, names=names))


def _transposed(a: np.ndarray, block: int = 1024) -> np.ndarray:
    """``a.T`` as a C-ordered copy, a block of rows at a time (cache-friendly)."""
    out = pool_array(a.shape[::-1])
    for i in range(0, a.shape[0], block):
        out[:, i:i + block] = a[i:i + block].T
    return out


def _view(values: np.ndarray) -> pa.Array:
    """A contiguous int64 or float64 numpy array as an Arrow array sharing its memory."""
    kind = pa.int64() if values.dtype == np.int64 else pa.float64()
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _lrs(solver: Solver, lrs: Any, count: int) -> tuple[np.ndarray, list[Solver]]:
    """Per-run learning rates and solvers (one solver per distinct rate, checked as ``solver.lr`` is)."""
    if not hasattr(solver, "lr"):
        if lrs is not None:
            raise ConfigError(f"lrs={lrs!r} given for solver {solver.name}, which has no learning rate; "
                              "allowed: lrs only with a solver that has lr")
        return np.full(count, math.nan), [solver] * count
    values = np.broadcast_to(np.asarray(solver.lr if lrs is None else lrs, dtype=float), (count,))
    made: dict[float, Solver] = {float(solver.lr): solver}
    for lr in set(values.tolist()):
        if lr not in made:
            made[lr] = type(solver)(**{**solver.params(), "lr": lr})
    solvers = [made[lr] for lr in values.tolist()]
    return np.array([float(s.lr) for s in solvers]), solvers


def _starts(objective: Objective, starts: Any) -> np.ndarray:
    rows = np.asarray(starts, dtype=float)
    rows = rows.reshape(len(rows), -1) if rows.ndim != 2 else rows
    if len(rows) == 0:
        raise ConfigError("starts is empty; allowed: at least one start point")
    return np.stack([objective.start(r) for r in rows])


def run_batch(objective: Objective, solver: Solver, starts: Any, stop: Stop | None = None, *,
              lrs: Sequence[float] | float | None = None, max_coords: int = 100,
              chunk_rows: int = 10_000, memory_bytes: int = MEMORY_BYTES) -> list[BatchRun]:
    """Run ``solver`` from every row of ``starts`` (with learning rate ``lrs[i]``, default the
    solver's) as one batch; each run's iterates as an Arrow table in memory."""
    stop = stop or Stop()
    reason = batchable(objective, solver)
    if reason is not None:
        raise ConfigError(f"these runs cannot be batched: {reason}")
    points = _starts(objective, starts)
    rates, _ = _lrs(solver, lrs, len(points))
    tables: list[list[pa.Table]] = [[] for _ in points]
    n_log = min(objective.dim, max_coords)
    outcomes = _Runner(objective, points, rates, stop, n_log, chunk_rows, [t.append for t in tables],
                       memory_bytes).run()
    return [BatchRun(o, pa.concat_tables(t)) for o, t in zip(outcomes, tables)]


class _IterateFile:
    """A run's ``iterates.parquet``, written chunk by chunk under a temporary name, renamed at the end."""

    def __init__(self, run_dir: Path) -> None:
        self.final = run_dir / ITERATES
        self.tmp = run_dir / f".{ITERATES}.{os.getpid()}.tmp"
        self.writer: pq.ParquetWriter | None = None

    def __call__(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema, **PARQUET_OPTIONS)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            os.replace(self.tmp, self.final)


def run_batch_to_dirs(run_dirs: Sequence[str | Path], objective: Objective, solver: Solver, starts: Any,
                      stop: Stop | None = None, *, lrs: Sequence[float] | float | None = None,
                      extras: Sequence[dict[str, Any] | None] | None = None, max_coords: int = 100,
                      chunk_rows: int = 10_000, memory_bytes: int = MEMORY_BYTES) -> list[dict[str, Any]]:
    """Run from every row of ``starts`` into ``run_dirs[i]`` (``run.json`` + ``iterates.parquet``,
    as :func:`optlab.store.run_to_dir` writes them); ``extras[i]`` joins run i's record.

    Batched when :func:`batchable`, else one run after the other. Returns the final records.
    """
    from .store import describe_run, finish_record, run_to_dir, write_record

    stop = stop or Stop()
    points = _starts(objective, starts)
    dirs = [Path(d) for d in run_dirs]
    if len(dirs) != len(points):
        raise ConfigError(f"{len(dirs)} run directories for {len(points)} starts; allowed: one per start")
    rates, solvers = _lrs(solver, lrs, len(points))
    extras = list(extras) if extras is not None else [None] * len(points)
    if batchable(objective, solver) is not None:
        return [run_to_dir(d, objective, s, p, stop, max_coords=max_coords, chunk_rows=chunk_rows, extra=e)
                for d, s, p, e in zip(dirs, solvers, points, extras)]
    records, files = [], []
    for d, s, p, e in zip(dirs, solvers, points, extras):
        d.mkdir(parents=True, exist_ok=True)
        record = describe_run(objective, s, p, stop, uuid.uuid4().hex[:12], e)
        write_record(d, record)
        for stale in (*(d / "iterates.parts").glob("part-*.parquet"), d / ITERATES):
            stale.unlink(missing_ok=True)
        records.append(record)
        files.append(_IterateFile(d))
    n_log = min(objective.dim, max_coords)
    try:
        outcomes = _Runner(objective, points, rates, stop, n_log, chunk_rows, files, memory_bytes).run()
    finally:
        for file in files:
            file.close()
    finished = []
    for d, record, outcome in zip(dirs, records, outcomes):
        record = finish_record(record, objective, outcome)
        write_record(d, record)
        finished.append(record)
    return finished


__all__ = ["FIELDS", "BatchRun", "batchable", "run_batch", "run_batch_to_dirs"]
