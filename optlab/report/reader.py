"""Reading run directories for the report, through the reader :func:`optlab.load` uses.

Finding run directories, reading and checking each ``run.json`` and naming its iterate files
are :mod:`optlab.rundir.reading`'s (:func:`~optlab.rundir.reading.find_runs`,
:func:`~optlab.rundir.reading.read_record`, :func:`~optlab.rundir.reading.iterate_files`), so
the report survives exactly what ``optlab.load`` survives: a file that is not JSON, nested too
deep to parse, of a field of the wrong type, or a symlink out of the tree is skipped with the
warning ``load`` gives, and listed on the page. Here the report adds what it needs besides:

- the bytes of every iterate file it reads (symlinks out of the tree refused), parsed into the
  few columns it draws;
- a stamp of what was read (each record's size and modification time, each iterate file's
  content hash), so that an unchanged sweep is not drawn again.

Strings from the records are cut to a bounded length; nothing read is ever executed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..rundir import reading
from ..rundir.iterates import coordinate_columns
from ..rundir.layout import RECORD

MAX_TEXT = 200  # names, options
MAX_MESSAGE = 1000
COLUMNS = ("iter", "f", "grad_norm", "step_size", "nfev", "ngev", "nhev", "time_s", "x_0", "x_1", "x")  # docs/schema.md


@dataclasses.dataclass
class RunFiles:
    """One run as read: its checked record, the bytes of its iterates, and where it came from."""

    record: dict[str, Any]
    run_dir: Path
    sweep: str
    iterates: list[bytes]


@dataclasses.dataclass
class Raw:
    runs: list[RunFiles]
    skipped: list[str]
    notes: list[str]
    digest: str


def cut(text: Any, limit: int = MAX_TEXT) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def clean(record: dict[str, Any]) -> dict[str, Any]:
    """Strings cut to a bounded length; options kept as scalars (lists as short text)."""
    out = dict(record)
    for field in ("objective", "solver"):
        if isinstance(out.get(field), str):
            out[field] = cut(out[field], 80)
    out["message"] = cut(out.get("message") or "", MAX_MESSAGE)
    for group in ("objective_params", "solver_params", "start"):
        params = out.get(group) or {}
        out[group] = {cut(k, 60): (cut(json.dumps(v), 80) if isinstance(v, list) else
                                   cut(v) if isinstance(v, str) else v) for k, v in params.items()}
    for field in ("x0", "x_final"):
        if out.get(field) is not None:
            out[field] = [math.nan if v is None else float(v) for v in out[field]]
    return out


@contextlib.contextmanager
def _kept(skipped: list[str], notes: list[str]) -> Iterator[None]:
    """The shared reader's warnings, kept as the report's lists: folders not followed are notes,
    everything else a skipped item (the page lists both)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = str(w.message)
        (notes if text.startswith("not following") else skipped).append(text)


def _read_bytes(path: Path, root: Path) -> bytes:
    if not reading.safe_file(path, root):
        raise OSError("a symlink out of the tree, or not a file")
    return path.read_bytes()


def _stamp(path: Path) -> bytes:
    try:
        st = os.stat(path)
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode()
    except OSError:
        return b"?"


def read_sources(paths: list[tuple[Path, str]], salt: str = "") -> Raw:
    """Every run under each ``(root, sweep label)``; ``salt`` (the report's options) enters the stamp."""
    runs: list[RunFiles] = []
    skipped: list[str] = []
    notes: list[str] = []
    seen: set[Path] = set()
    digest = hashlib.blake2b(salt.encode(), digest_size=16)
    for root, sweep in paths:
        with _kept(skipped, notes):
            found = reading.find_runs(root)
        for run_dir, names in found:
            key = run_dir.resolve()
            if key in seen:
                continue
            seen.add(key)
            with _kept(skipped, notes):
                record = reading.read_record(run_dir / RECORD, root)
            if record is None:
                continue
            blobs = []
            if record["status"] not in ("invalid", "running"):
                for path in reading.iterate_files(run_dir, record["run_id"], names):
                    try:
                        blobs.append(_read_bytes(path, root))
                    except OSError as exc:
                        skipped.append(f"skipping {path}: {cut(exc, 120)}")
            digest.update(f"{sweep}\0{os.path.relpath(run_dir, root)}\0".encode() + _stamp(run_dir / RECORD))
            for blob in blobs:
                digest.update(hashlib.blake2b(blob, digest_size=16).digest())
            runs.append(RunFiles(clean(record), run_dir, sweep, blobs))
    return Raw(runs, skipped, notes, digest.hexdigest())


def parse_iterates(blobs: list[bytes]) -> dict[str, Any] | None:
    """The columns the report uses, as float arrays; None when a file is not readable parquet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for blob in blobs:
        try:
            file = pq.ParquetFile(pa.BufferReader(blob))
            names = set(file.schema_arrow.names)
            table = file.read(columns=[c for c in COLUMNS if c in names], use_threads=False)
            tables.append(coordinate_columns(table, 2))
        except (OSError, pa.ArrowException, ValueError):
            return None
    if not tables:
        return None
    try:
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        return {c: np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=float)
                for c in table.column_names}
    except (pa.ArrowException, ValueError, TypeError):
        return None
