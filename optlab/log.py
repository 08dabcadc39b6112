"""The iterate log: one row per iterate, kept in fixed-size chunks so memory stays bounded."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FIELDS = ("iter", "f", "grad_norm", "step_size", "nfev", "ngev", "nhev", "time_s")
INT_FIELDS = {"iter", "nfev", "ngev", "nhev"}


def columns(n_coords: int) -> list[str]:
    return [*FIELDS, *(f"x_{i}" for i in range(n_coords))]


class IterateLog:
    """Rows go into a preallocated chunk; a full chunk goes to ``sink`` as an Arrow table.

    ``n_coords`` is how many coordinates of x are kept (the first ones). Without a sink
    the chunks stay in memory (for :func:`optlab.minimize`).
    """

    def __init__(self, n_coords: int, chunk_rows: int = 10_000,
                 sink: Callable[[pa.Table], None] | None = None) -> None:
        self.names = columns(n_coords)
        self.n_coords = n_coords
        self.buf = np.empty((chunk_rows, len(self.names)))
        self.rows = 0
        self.sink = sink
        self.kept: list[pa.Table] = []

    def append(self, it: int, f: float, grad_norm: float, step_size: float, nfev: int,
               ngev: int, nhev: int, time_s: float, x: np.ndarray) -> None:
        row = self.buf[self.rows]
        row[:8] = (it, f, grad_norm, step_size, nfev, ngev, nhev, time_s)
        row[8:] = x[: self.n_coords]
        self.rows += 1
        if self.rows == len(self.buf):
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        block = self.buf[: self.rows]
        table = pa.table({
            name: pa.array(block[:, j].astype(np.int64) if name in INT_FIELDS else block[:, j])
            for j, name in enumerate(self.names)
        })
        self.rows = 0
        (self.sink or self.kept.append)(table)

    def table(self) -> pa.Table:
        """Everything kept in memory (no sink), flushed first."""
        self.flush()
        if not self.kept:
            return pa.table({n: pa.array([], pa.int64() if n in INT_FIELDS else pa.float64())
                             for n in self.names})
        return pa.concat_tables(self.kept)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary name and rename, so ``path`` is never half written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ChunkFiles:
    """A sink writing each chunk as ``iterates.parts/part-NNNNNN.parquet``, atomically.

    :meth:`merge` joins the parts into ``iterates.parquet`` (atomically) and removes them;
    until then, a crashed run's earlier chunks stay readable.
    """

    def __init__(self, run_dir: Path) -> None:
        self.final = run_dir / "iterates.parquet"
        self.parts = run_dir / "iterates.parts"
        self.count = 0

    def __call__(self, table: pa.Table) -> None:
        self.parts.mkdir(exist_ok=True)
        write_atomic(self.parts / f"part-{self.count:06d}.parquet", lambda p: pq.write_table(table, p))
        self.count += 1

    def merge(self) -> None:
        parts = sorted(self.parts.glob("part-*.parquet"))
        if not parts:
            return

        def write(tmp: Path) -> None:
            schema = pq.read_schema(parts[0])
            with pq.ParquetWriter(tmp, schema) as writer:
                for part in parts:
                    writer.write_table(pq.read_table(part))

        write_atomic(self.final, write)
        for part in parts:
            part.unlink()
        self.parts.rmdir()
