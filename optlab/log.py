"""The iterate log: one row per iterate, kept in fixed-size chunks so memory stays bounded."""

from __future__ import annotations

import contextlib
import math
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FIELDS = ("iter", "f", "grad_norm", "step_size", "nfev", "ngev", "nhev", "time_s")
INT_FIELDS = {"iter", "nfev", "ngev", "nhev"}
POOL_MIN_BYTES = 2**18  # log columns from this size on come from Arrow's pool (see pool_array)
MAX_CHUNK_BYTES = 16 * 2**20  # a chunk of a wide log holds fewer rows than chunk_rows
#: The version of the iterate files' layout, in their key-value metadata (docs/schema.md).
SCHEMA_VERSION = "1"
# Iterates are mostly distinct floats: dictionary encoding only costs time, except for the run id,
# one value repeated. Statistics (min, max per row group) let readers skip files by value.
PARQUET_OPTIONS = {"use_dictionary": ["run_id"], "write_statistics": True,
                   "column_encoding": {name: "DELTA_BINARY_PACKED" for name in INT_FIELDS}}


def columns(n_coords: int) -> list[str]:
    return [*FIELDS, *(f"x_{i}" for i in range(n_coords))]


class IterateLog:
    """Rows go into a preallocated chunk; a full chunk goes to ``sink`` as an Arrow table.

    ``n_coords`` is how many coordinates of x are kept (the first ones). Without a sink
    the chunks stay in memory (for :func:`optlab.minimize`). A chunk holds ``chunk_rows``
    rows, fewer when that would take more than :data:`MAX_CHUNK_BYTES`.
    """

    def __init__(self, n_coords: int, chunk_rows: int = 10_000,
                 sink: Callable[[pa.Table], None] | None = None) -> None:
        self.names = columns(n_coords)
        self.n_coords = n_coords
        capacity = max(1, min(int(chunk_rows), MAX_CHUNK_BYTES // (8 * len(self.names))))
        self.head = np.empty((len(FIELDS), capacity))  # a row per field: blocks of rows are written along it
        self.xs = np.empty((capacity, n_coords))  # a row per iterate: wide x are written along it
        self.rows = 0
        self.sink = sink
        self.kept: list[pa.Table] = []
        self.interrupted = False  # Ctrl-C came while a chunk was handed over: the run should end

    @property
    def capacity(self) -> int:
        return len(self.xs)

    def room(self) -> int:
        """Rows that fit before the current chunk is full."""
        return len(self.xs) - self.rows

    def append(self, x: np.ndarray, *, iter: int, f: float, grad_norm: float, step_size: float, nfev: int,
               ngev: int, nhev: int, time_s: float) -> None:
        """One row: the fields of :data:`FIELDS` by name, and the iterate x."""
        r = self.rows
        self.head[:, r] = (iter, f, grad_norm, step_size, nfev, ngev, nhev, time_s)
        if self.n_coords:
            self.xs[r] = x.ravel()[: self.n_coords]
        self.rows = r + 1
        if self.rows == len(self.xs):
            self.flush()

    def append_columns(self, columns: dict[str, np.ndarray], coords: np.ndarray) -> None:
        """Many rows at once: an array per field of :data:`FIELDS` (by name; a number is
        repeated), and ``coords`` with a row per coordinate of x (at least n_coords) and a
        column per iterate. A block of a chunk or more becomes tables without the buffer (the
        rows buffered before it go first, as a table of their own)."""
        m = len(columns["iter"])
        fields = [np.broadcast_to(np.asarray(columns[name], dtype=float if name not in INT_FIELDS else np.int64), m)
                  for name in FIELDS]
        if m >= len(self.xs):
            self.flush()
        done = 0
        while done < m:
            take = min(m - done, self.room())
            part = slice(done, done + take)
            if self.rows == 0 and take == len(self.xs):  # the caller's arrays are not reused: no copy
                self._emit(self._table([f[part] for f in fields], coords[: self.n_coords, part].T, copy=False))
            else:
                r = self.rows
                for j, f in enumerate(fields):
                    self.head[j, r:r + take] = f[part]
                if self.n_coords:
                    self.xs[r:r + take] = coords[: self.n_coords, part].T
                self.rows = r + take
                if self.rows == len(self.xs):
                    self.flush()
            done += take

    def flush(self) -> None:
        """Hand the rows so far to the sink (or keep them, without one)."""
        if not self.rows:
            return
        table = self._table(list(self.head[:, : self.rows]), self.xs[: self.rows])
        if self.sink is None:
            self._emit(table)
        else:
            with interrupt_deferred() as caught:  # a chunk half written would be lost
                self._emit(table)
            self.interrupted = self.interrupted or bool(caught)
        self.rows = 0

    def _table(self, fields: list[np.ndarray], xs: np.ndarray, copy: bool = True) -> pa.Table:
        cols = [arrow_column(f, name in INT_FIELDS, copy) for f, name in zip(fields, FIELDS)]
        cols += [arrow_column(xs[:, i], False, copy) for i in range(self.n_coords)]
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
            return pa.Table.from_arrays([arrow_column(np.empty(0), n in INT_FIELDS) for n in self.names],
                                        names=self.names)
        return pa.concat_tables(self.kept)


def arrow_column(values: np.ndarray, integer: bool, copy: bool = True) -> pa.Array:
    """``values`` as an Arrow int64 or float64 array: a copy, or with ``copy=False`` sharing
    the memory of a contiguous array of that type.

    Built from the buffer directly: ``pa.array`` would import pandas to look for pandas
    types, which costs half a second at start-up.
    """
    kind = np.int64 if integer else np.float64
    if copy:
        data = pool_array(len(values), kind)
        data[:] = values
    else:
        data = np.ascontiguousarray(values, dtype=kind)
    return pa.Array.from_buffers(pa.int64() if integer else pa.float64(), len(data), [None, pa.py_buffer(data)])


#: The signal a sweep stopped by Ctrl-C sends to its jobs' processes: not SIGINT, which some
#: launchers' workers never see as Python's (Ray's handle it in C).
STOP_SIGNAL = getattr(signal, "SIGUSR1", signal.SIGINT)
#: The signals that end a run as interrupted: Ctrl-C, and SIGTERM (timeout, a batch system's time
#: limit, docker stop) and :data:`STOP_SIGNAL`, where the process has a handler for them
#: (``python -m optlab`` does).
INTERRUPTS = tuple(dict.fromkeys((signal.SIGINT, signal.SIGTERM, STOP_SIGNAL)))


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[list[int]]:
    """Ctrl-C (and SIGTERM, where the process handles it) inside the block is held until its end
    and reported in the yielded list (in the main thread; Python delivers signals nowhere else)."""
    caught: list[int] = []
    previous = {}
    try:
        for number in INTERRUPTS:
            current = signal.getsignal(number)
            if number == signal.SIGINT or callable(current):  # (a default SIGTERM ends the process at once)
                previous[number] = signal.signal(number, lambda number, frame: caught.append(number))
    except ValueError:  # not the main thread
        yield caught
        return
    try:
        yield caught
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def pool_array(shape: int | tuple[int, ...], dtype: type = np.float64, fill: float | None = None) -> np.ndarray:
    """An empty array of 8-byte items for the log's columns; a large one in Arrow's memory
    pool, which reuses freed memory, where memory fresh from the system costs a page fault per
    4 KiB when first written (a few microseconds each on a virtual machine: as much as the
    rest of the log)."""
    size = 8 * (shape if isinstance(shape, int) else math.prod(shape))
    if size < POOL_MIN_BYTES:  # numpy allocates small arrays quicker
        array = np.empty(shape, dtype)
    else:
        array = np.frombuffer(pa.allocate_buffer(size), dtype=dtype).reshape(shape)
    if fill is not None:
        array.fill(fill)
    return array


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary name and rename, so ``path`` is never half written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, **PARQUET_OPTIONS)


def run_id_column(run_id: str, rows: int) -> pa.Array:
    """``run_id`` repeated ``rows`` times as an Arrow string array, built from its buffers."""
    data = run_id.encode()
    offsets = np.arange(0, len(data) * (rows + 1), len(data), dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data * rows)])


def file_metadata(run_id: str, run: dict | None = None) -> dict[bytes, bytes]:
    """The key-value metadata of a run's iterate files: what they are without their folder."""
    import json

    from . import __version__

    meta = {b"optlab.schema": SCHEMA_VERSION.encode(), b"optlab.version": __version__.encode(),
            b"optlab.run_id": run_id.encode()}
    if run is not None:
        meta[b"optlab.run"] = json.dumps(run, allow_nan=False, default=str).encode()
    return meta


class ChunkFiles:
    """A sink of tables for one run's ``iterates.parquet``.

    Tables gather in memory; each time ``chunk_rows`` rows (or :data:`MAX_CHUNK_BYTES`) have
    gathered they are written as
    ``iterates.parts/part-RUNID-NNNNNN.parquet``, atomically, so a crashed run keeps them; the
    run id in the name keeps apart the parts of different writers. :meth:`merge` writes
    ``iterates.parquet`` (atomically) from this run's parts and the rows still in memory, and
    removes those parts only. With a ``run_id``, every file carries it as a column and, with
    ``run`` (the run's settings), in its key-value metadata (:func:`file_metadata`).
    """

    def __init__(self, run_dir: Path, chunk_rows: int = 10_000, run_id: str | None = None,
                 run: dict | None = None) -> None:
        self.final = run_dir / "iterates.parquet"
        self.parts = run_dir / "iterates.parts"
        self.chunk_rows = chunk_rows
        self.run_id = run_id
        self.metadata = file_metadata(run_id, run) if run_id is not None else None
        self.prefix = f"part-{run_id}-" if run_id is not None else "part-"
        self.count = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = self.pending_bytes = 0

    def __call__(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        self.pending_bytes += table.nbytes
        if self.pending_bytes >= MAX_CHUNK_BYTES:  # wide logs: bounded in memory
            self._write_part(self._take(self.pending_rows))
        while self.pending_rows >= self.chunk_rows:  # parts of exactly chunk_rows rows
            self._write_part(self._take(self.chunk_rows))

    def _take(self, rows: int) -> pa.Table:
        """The first ``rows`` pending rows as one table; the rest stay pending (zero-copy slices)."""
        table = pa.concat_tables(self.pending) if len(self.pending) > 1 else self.pending[0]
        head, rest = table.slice(0, rows), table.slice(rows)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows, self.pending_bytes = rest.num_rows, rest.nbytes
        return head

    def _labelled(self, table: pa.Table) -> pa.Table:
        """``table`` with the run id column and the file metadata, when there is a run id."""
        if self.run_id is None:
            return table
        if "run_id" not in table.column_names:
            table = table.append_column("run_id", run_id_column(self.run_id, table.num_rows))
        return table.replace_schema_metadata(self.metadata)

    def _write_part(self, table: pa.Table) -> None:
        table = self._labelled(table)
        self.parts.mkdir(exist_ok=True)
        write_atomic(self.parts / f"{self.prefix}{self.count:06d}.parquet", lambda p: write_table(table, p))
        self.count += 1

    def own_parts(self) -> list[Path]:
        """The part files this writer wrote, in order."""
        return [self.parts / f"{self.prefix}{i:06d}.parquet" for i in range(self.count)
                if (self.parts / f"{self.prefix}{i:06d}.parquet").exists()]

    def merge(self) -> None:
        """Write ``iterates.parquet``; when that fails (a full disk), the parts stay on disk and
        the rows in memory stay pending, and the error is raised."""
        parts = self.own_parts()
        tail, self.pending, self.pending_rows, self.pending_bytes = self.pending, [], 0, 0
        if not parts and not tail:
            return

        def write(tmp: Path) -> None:
            if not parts:
                write_table(self._labelled(pa.concat_tables(tail)), tmp)
                return
            schema = pq.ParquetFile(parts[0]).schema_arrow
            with pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as writer:
                for part in parts:
                    writer.write_table(pq.ParquetFile(part).read())  # (read_table imports pandas)
                for table in tail:
                    writer.write_table(self._labelled(table))

        if len(parts) == 1 and not tail:  # already a complete file: renaming is atomic too
            os.replace(parts[0], self.final)
        else:
            try:
                write_atomic(self.final, write)
            except BaseException:
                self.pending, self.pending_rows = tail, sum(t.num_rows for t in tail)
                self.pending_bytes = sum(t.nbytes for t in tail)
                raise
            for part in parts:
                part.unlink()
        if self.count:
            with contextlib.suppress(OSError):  # (left alone when other files are in it)
                self.parts.rmdir()
