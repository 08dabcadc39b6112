"""The iterate log: one row per iterate, kept in fixed-size chunks so memory stays bounded."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, check_number
from ..interrupts import interrupt_deferred
from .recycle import pool_array

FIELDS = ("iter", "f", "grad_norm", "step_size", "nfev", "ngev", "nhev", "time_s")
INT_FIELDS = {"iter", "nfev", "ngev", "nhev"}
COUNT_ROWS = np.array([[name in INT_FIELDS] for name in FIELDS])  # which rows of a log's head are whole numbers
FIELD_TYPES = [pa.int64() if name in INT_FIELDS else pa.float64() for name in FIELDS]
MAX_CHUNK_BYTES = 16 * 2**20  # a chunk of a wide log holds fewer rows than chunk_rows
FIRST_ROWS, GROWTH = 64, 4  # a log's buffer holds this many rows at first, then grows by this factor


MEMORY_BYTES = 512 * 2**20  # a batch's log buffers take at most about this much


def columns(n_coords: int) -> list[str]:
    return [*FIELDS, *(f"x_{i}" for i in range(n_coords))]


@dataclasses.dataclass(frozen=True)
class LogOptions:
    """What a run's log keeps: the first ``max_coords`` coordinates of x, ||grad f|| for methods
    that use no gradient (``grad_norm``, each a counted evaluation), chunks of ``chunk_rows`` rows,
    and at most about ``memory_bytes`` of buffers for a batch of runs."""

    max_coords: int = 100
    grad_norm: bool = False
    chunk_rows: int = 10_000
    memory_bytes: int = MEMORY_BYTES

    def __post_init__(self) -> None:
        check_number("log.max_coords", self.max_coords, low=0, strict=False, integer=True)
        check_number("log.chunk_rows", self.chunk_rows, low=1, strict=False, integer=True)
        check_number("log.memory_bytes", self.memory_bytes, low=1, strict=False, integer=True)
        if not isinstance(self.grad_norm, bool):
            raise ConfigError(f"log.grad_norm={self.grad_norm!r} is not true or false; allowed: true, false")

    def n_coords(self, dim: int) -> int:
        return min(dim, self.max_coords)


class MemorySink:
    """Keeps a run's rows in memory, as Arrow tables (:meth:`table` joins them)."""

    def __init__(self, n_coords: int) -> None:
        self.n_coords = n_coords
        self.tables: list[pa.Table] = []

    def __call__(self, table: pa.Table) -> None:
        self.tables.append(table)

    def table(self) -> pa.Table:
        if not self.tables:
            return empty_table(self.n_coords)
        return pa.concat_tables(self.tables) if len(self.tables) > 1 else self.tables[0]


def empty_table(n_coords: int) -> pa.Table:
    names = columns(n_coords)
    return pa.Table.from_arrays([arrow_column(np.empty(0), n in INT_FIELDS) for n in names], names=names)


class IterateLog:
    """Rows go into a buffer; a full chunk goes to ``sink`` as an Arrow table.

    ``n_coords`` is how many coordinates of x are kept (the first ones). Without a sink
    the chunks stay in memory (for :func:`optlab.minimize`). A chunk holds ``chunk_rows``
    rows (:attr:`capacity`), fewer when that would take more than :data:`MAX_CHUNK_BYTES`.
    The buffer grows to a chunk as rows come: a short run never maps a whole chunk's memory
    (a page fault per field on its first row, and a system call to map and unmap it).
    """

    def __init__(self, n_coords: int, chunk_rows: int = 10_000,
                 sink: Callable[[pa.Table], None] | None = None) -> None:
        self.names = columns(n_coords)
        self.n_coords = n_coords
        self.capacity = max(1, min(int(chunk_rows), MAX_CHUNK_BYTES // (8 * len(self.names))))
        self.rows = 0
        self._grow(min(self.capacity, FIRST_ROWS))
        self.sink = sink
        self.kept: list[pa.Table] = []
        self.interrupted = False  # Ctrl-C came while a chunk was handed over: the run should end

    def _grow(self, rows: int) -> None:
        """Buffers of ``rows`` rows (at most a chunk), the rows so far copied in."""
        head = np.empty((len(FIELDS), rows))  # a row per field: blocks of rows are written along it
        xs = np.empty((rows, self.n_coords))  # a row per iterate: wide x are written along it
        if self.rows:
            head[:, : self.rows] = self.head[:, : self.rows]
            xs[: self.rows] = self.xs[: self.rows]
        self.head, self.xs = head, xs

    def room(self) -> int:
        """Rows that fit before the current chunk is full."""
        return self.capacity - self.rows

    def append(self, x: np.ndarray, *, iter: int, f: float, grad_norm: float, step_size: float, nfev: int,
               ngev: int, nhev: int, time_s: float) -> None:
        """One row: the fields of :data:`FIELDS` by name, and the iterate x."""
        r = self.rows
        if r == len(self.xs):  # (a full chunk was flushed: the buffer is short of one)
            self._grow(min(self.capacity, GROWTH * r))
        self.head[:, r] = (iter, f, grad_norm, step_size, nfev, ngev, nhev, time_s)
        if self.n_coords:
            self.xs[r] = x.ravel()[: self.n_coords]
        self.rows = r + 1
        if self.rows == self.capacity:
            self.flush()

    def append_columns(self, columns: dict[str, np.ndarray], coords: np.ndarray) -> None:
        """Many rows at once: an array per field of :data:`FIELDS` (by name; a number is
        repeated), and ``coords`` with a row per coordinate of x (at least n_coords) and a
        column per iterate. Their whole chunks go to the sink as one table over the caller's
        arrays, which are not reused (no copy; the rows buffered before them go first, as a
        table of their own); the rest is buffered. (A sink takes tables of any length: files
        are written in parts of ``chunk_rows`` rows whatever tables arrive.)"""
        m, size = len(columns["iter"]), self.capacity
        fields = [_column(columns[name], name in INT_FIELDS, m) for name in FIELDS]
        whole = m - m % size
        if whole:
            self.flush()
            self._emit(self._table([f[:whole] for f in fields], coords[: self.n_coords, :whole].T))
        done = whole
        while done < m:
            take = min(m - done, self.room())
            part, r = slice(done, done + take), self.rows
            if r + take > len(self.xs):
                self._grow(min(self.capacity, max(GROWTH * len(self.xs), r + take)))
            for j, f in enumerate(fields):
                self.head[j, r:r + take] = f[part]
            if self.n_coords:
                self.xs[r:r + take] = coords[: self.n_coords, part].T
            self.rows = r + take
            if self.rows == size:
                self.flush()
            done += take

    def flush(self) -> None:
        """Hand the rows so far to the sink (or keep them, without one)."""
        if not self.rows:
            return
        table = self._copied(self.rows)
        if self.sink is None:
            self._emit(table)
        else:
            with interrupt_deferred() as caught:  # a chunk half written would be lost
                self._emit(table)
            self.interrupted = self.interrupted or bool(caught)
        self.rows = 0

    def _copied(self, rows: int) -> pa.Table:
        """The first ``rows`` rows of the buffers as a table of their own: copied into one block
        with a row per column (the counts' rows holding int64), each column a slice of it (an
        array made and filled per column cost twice as much for a run's few rows)."""
        block = pool_array((len(self.names), rows))
        fields = block[: len(FIELDS)]
        fields[:] = self.head[:, :rows]
        np.copyto(fields.view(np.int64), self.head[:, :rows], casting="unsafe", where=COUNT_ROWS)
        block[len(FIELDS):] = self.xs[:rows].T
        buffer = pa.py_buffer(block)
        kinds = FIELD_TYPES + [pa.float64()] * self.n_coords
        return pa.Table.from_arrays([pa.Array.from_buffers(kind, rows, [None, buffer], 0, i * rows)
                                     for i, kind in enumerate(kinds)], names=self.names)

    def _table(self, fields: list[np.ndarray], xs: np.ndarray) -> pa.Table:
        """A table over the caller's arrays (no copy)."""
        cols = [arrow_column(f, name in INT_FIELDS) for f, name in zip(fields, FIELDS)]
        cols += [arrow_column(xs[:, i], False) for i in range(self.n_coords)]
        return pa.Table.from_arrays(cols, names=self.names)

    def _emit(self, table: pa.Table) -> None:
        if self.sink is None:
            self.kept.append(table)
        else:
            self.sink(table)

    def table(self) -> pa.Table:
        """Everything kept in memory (no sink), flushed first."""
        self.flush()
        if not self.kept:
            return empty_table(self.n_coords)
        return pa.concat_tables(self.kept) if len(self.kept) > 1 else self.kept[0]


COUNTED = 1 << 20  # iterations and counts up to this are slices of shared arrays of whole numbers
_shared: dict[str, np.ndarray] = {}  # (made on first use: 8 MB of numbers; zeros take no memory until read)


def counting(first: int, count: int) -> np.ndarray:
    """``first, first + 1, ...`` (``count`` int64 numbers): a read-only slice of one shared array
    where they fit in it (no memory of their own), else a new array."""
    if 0 <= first and first + count <= COUNTED:
        return _shared_array("numbers", np.arange)[first:first + count]
    return np.arange(first, first + count, dtype=np.int64)


def repeated(value: int, count: int) -> np.ndarray:
    """``value`` ``count`` times as int64: a read-only slice of shared zeros for 0, else a new array."""
    if value == 0 and count <= COUNTED:
        return _shared_array("zeros", np.zeros)[:count]
    return np.full(count, value, dtype=np.int64)


def _shared_array(name: str, make: Callable) -> np.ndarray:
    array = _shared.get(name)
    if array is None:
        array = _shared[name] = make(COUNTED, dtype=np.int64)
        array.flags.writeable = False
    return array


def count_columns(k: int, count: int, counts: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """The iteration and evaluation columns of ``count`` steps after iteration ``k``, each step one
    evaluation of f and of its gradient, from the counts ``(nfev, ngev, nhev)`` before them: slices
    of shared arrays where they fit (a step's loop need not write them)."""
    nfev, ngev, nhev = counts
    return {"iter": counting(k + 1, count), "nfev": counting(nfev + 1, count), "ngev": counting(ngev + 1, count),
            "nhev": repeated(nhev, count)}


def _column(values: np.ndarray | float, integer: bool, m: int) -> np.ndarray:
    """``values`` as ``m`` int64 or float64 items (a number repeated without a copy)."""
    kind = np.int64 if integer else np.float64
    if type(values) is np.ndarray and values.dtype == kind and values.shape == (m,):
        return values  # (as the loops hand them: numpy's checks cost more than the rest of the call)
    return np.broadcast_to(np.asarray(values, dtype=kind), m)


def chunk_rows_from(k_log: int, chunk_rows: int, max_iter: int) -> int:
    """The rows of a batch's chunk of iterations ``k_log ...``: ``chunk_rows``, no more than the
    runs can still take under ``max_iter``."""
    return max(1, min(chunk_rows, max_iter - k_log + 1))


def chunk_table(k_log: int, stride: int, runs: int, fields: dict[str, np.ndarray], xs: list[np.ndarray]
                ) -> pa.Table:
    """One table over the rows of ``runs`` runs of a batch in a chunk, iterations ``k_log ...`` (a
    step is one evaluation of f and of its gradient): ``fields`` holds ``f``, ``grad_norm``,
    ``step_size`` and ``time_s``, ``xs`` the logged coordinates. An array of ``runs * stride``
    items holds run ``r``'s rows from ``r * stride``; one of ``stride`` items (the counts, a shared
    clock) is every run's, repeated without a copy. A run's table is then a slice of it, a
    fraction of the cost of assembling one per run."""
    values = {**fields, **count_columns(k_log - 1, stride, (k_log, k_log, 0))}
    arrays = [arrow_column(values[name], name in INT_FIELDS) for name in FIELDS]
    arrays += [arrow_column(x, False) for x in xs]
    spread = [a if len(a) == runs * stride else pa.chunked_array([a] * runs, type=a.type) for a in arrays]
    return pa.Table.from_arrays(spread, names=columns(len(xs)))


def arrow_column(values: np.ndarray, integer: bool) -> pa.Array:
    """``values`` as an Arrow int64 or float64 array, sharing the memory of a contiguous array of
    that type (a copy otherwise): the caller does not reuse it.

    Built from the buffer directly: ``pa.array`` would import pandas to look for pandas
    types, which costs half a second at start-up.
    """
    data = np.ascontiguousarray(values, dtype=np.int64 if integer else np.float64)
    return pa.Array.from_buffers(pa.int64() if integer else pa.float64(), len(data), [None, pa.py_buffer(data)])
