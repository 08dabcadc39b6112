"""A run's iterates on disk: parquet files written in chunks while it runs, merged when it ends.

The layout of those files (schema version 2, docs/schema.md): the log's fields, the kept
coordinates as one list column ``x`` (so files of runs of any dimension share one schema and any
parquet reader can read a whole tree of them without losing a coordinate), and the run id,
with the file's identity in its key-value metadata. Version 1 files held ``x_0 .. x_{k-1}``
columns instead; :mod:`optlab.rundir.iterates` reads both.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..engine.log import INT_FIELDS, MAX_CHUNK_BYTES, arrow_column
from .layout import ITERATES, PART_PREFIX, PARTS, write_atomic

#: The version of the iterate files' layout, in their key-value metadata (docs/schema.md).
SCHEMA_VERSION = "2"
#: The coordinates column and its type: the name Parquet gives a list's items, so that a file
#: read back and a table written have the same schema.
X = "x"
X_TYPE = pa.list_(pa.field("element", pa.float64()))

# Iterates are mostly distinct floats: dictionary encoding only costs time, except for the run id,
# one value repeated. Statistics (min, max per row group) let readers skip files by value. The
# Arrow schema is not stored: the Parquet types say everything (no extension types, nothing to
# deserialise), and the run's settings are not written twice into every footer.
PARQUET_OPTIONS = {"use_dictionary": ["run_id"], "write_statistics": True, "store_schema": False,
                   "column_encoding": {name: "DELTA_BINARY_PACKED" for name in INT_FIELDS}}


def open_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A writer of iterate files; the schema's metadata becomes the file's key-value metadata
    when the writer is closed (:func:`close_writer`)."""
    return pq.ParquetWriter(path, schema.remove_metadata(), **PARQUET_OPTIONS)


def close_writer(writer: pq.ParquetWriter, metadata: dict[bytes, bytes] | None) -> None:
    if metadata:
        writer.add_key_value_metadata(metadata)
    writer.close()


def write_table(table: pa.Table, path: Path) -> None:
    writer = open_writer(path, table.schema)
    try:
        writer.write_table(table)
    finally:
        close_writer(writer, table.schema.metadata)


def coordinates_as_list(table: pa.Table) -> pa.Table:
    """The log's table in the files' layout: its ``x_0 .. x_{k-1}`` columns as one list column
    :data:`X` of k coordinates per row (empty lists when none are kept), before ``run_id``."""
    if X in table.column_names:
        return table
    names = [n for n in table.column_names if n.startswith("x_")]
    k, rows = len(names), table.num_rows
    values = np.empty((rows, k))
    for i, name in enumerate(names):
        values[:, i] = np.concatenate([_floats(c) for c in table.column(name).chunks] or [np.empty(0)])
    values = values.ravel()
    offsets = np.arange(rows + 1, dtype=np.int32) * k
    offsets_array = pa.Array.from_buffers(pa.int32(), rows + 1, [None, pa.py_buffer(offsets)])
    column = pa.ListArray.from_arrays(offsets_array, arrow_column(values, False), type=X_TYPE)
    kept = table.drop_columns(names)
    at = kept.column_names.index("run_id") if "run_id" in kept.column_names else kept.num_columns
    return kept.add_column(at, X, column)


def _floats(array: pa.Array) -> np.ndarray:
    """A float64 Arrow array without nulls as numpy, from its buffer (``to_numpy`` imports pandas)."""
    return np.frombuffer(array.buffers()[1], np.float64, len(array) + array.offset)[array.offset:]


def run_id_column(run_id: str, rows: int) -> pa.Array:
    """``run_id`` repeated ``rows`` times as an Arrow string array, built from its buffers."""
    data = run_id.encode()
    offsets = np.arange(0, len(data) * (rows + 1), len(data), dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data * rows)])



def file_metadata(run_id: str, run: dict | None = None) -> dict[bytes, bytes]:
    """The key-value metadata of a run's iterate files: what they are without their folder."""

    from .. import __version__

    meta = {b"optlab.schema": SCHEMA_VERSION.encode(), b"optlab.version": __version__.encode(),
            b"optlab.run_id": run_id.encode()}
    if run is not None:
        meta[b"optlab.run"] = json.dumps(run, allow_nan=False, default=str).encode()
    return meta



class ChunkFiles:
    """A sink of tables for one run's ``iterates.parquet``.

    Tables gather in memory; each time ``chunk_rows`` rows (fewer in a wide log: as many as fit in
    :data:`MAX_CHUNK_BYTES`) have gathered they are written as
    ``iterates.parts/part-RUNID-NNNNNN.parquet``, atomically, so a crashed run keeps them; the
    run id in the name keeps apart the parts of different writers. :meth:`merge` writes
    ``iterates.parquet`` (atomically) from this run's parts and the rows still in memory, and
    removes those parts only. With a ``run_id``, every file carries it as a column and, with
    ``run`` (the run's settings), in its key-value metadata (:func:`file_metadata`).
    """

    def __init__(self, run_dir: Path, chunk_rows: int = 10_000, run_id: str | None = None,
                 run: dict | None = None) -> None:
        self.final = run_dir / ITERATES
        self.parts = run_dir / PARTS
        self.chunk_rows = chunk_rows
        self.run_id = run_id
        self.metadata = file_metadata(run_id, run) if run_id is not None else None
        self.prefix = f"{PART_PREFIX}{run_id}-" if run_id is not None else PART_PREFIX
        self.count = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = self.pending_bytes = 0

    def __call__(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        self.pending_bytes += table.nbytes
        if not self.pending_rows:
            return
        # parts of chunk_rows rows, or of as many as fit in MAX_CHUNK_BYTES (a wide log's chunk): what
        # a part takes to write, and later to merge, is a few times its size
        rows = max(1, min(self.chunk_rows, int(MAX_CHUNK_BYTES * self.pending_rows // max(1, self.pending_bytes))))
        while self.pending_rows >= rows:
            self._write_part(self._take(rows))

    def _take(self, rows: int) -> pa.Table:
        """The first ``rows`` pending rows as one table; the rest stay pending (zero-copy slices)."""
        table = pa.concat_tables(self.pending) if len(self.pending) > 1 else self.pending[0]
        head, rest = table.slice(0, rows), table.slice(rows)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows, self.pending_bytes = rest.num_rows, rest.nbytes
        return head

    def _labelled(self, table: pa.Table) -> pa.Table:
        """``table`` in the files' layout (:func:`coordinates_as_list`), with the run id column and
        the file metadata when there is a run id."""
        table = coordinates_as_list(table)
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
            first = pq.ParquetFile(parts[0])
            writer = open_writer(tmp, first.schema_arrow)
            try:
                for part in parts:
                    writer.write_table(pq.ParquetFile(part).read())  # (read_table imports pandas)
                for table in tail:
                    writer.write_table(self._labelled(table))
            finally:
                close_writer(writer, first.schema_arrow.metadata)

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
