"""Reading run directories for the report: safely, and with a content hash.

The report reads ``run.json`` and ``iterates.parquet`` itself rather than through
:func:`optlab.load`, because it must

- not follow symlinks out of the tree it was given (symlinked folders are not entered at all,
  symlinked files are read only when they point inside the tree);
- check the type of every field it uses (a record that ``json.loads`` accepts may still hold
  ``"f_star": "abc"``): a run with a bad field is skipped with a warning naming its file;
- hash the bytes of every file it reads, so that an unchanged sweep is not drawn again.

Strings from the records are cut to a bounded length; nothing read is ever executed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from ..rundir.iterates import coordinate_columns
from ..rundir.layout import ITERATES, RECORD
from ..rundir.reading import MAX_RECORD_BYTES, safe_file
from ..rundir.records import check_record

MAX_TEXT = 200  # names, options
MAX_MESSAGE = 1000
COLUMNS = ("iter", "f", "grad_norm", "nfev", "ngev", "nhev", "time_s", "x_0", "x_1", "x")  # x: docs/schema.md


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


def find_runs(root: Path) -> tuple[list[Path], list[str]]:
    """Run directories under ``root`` (itself included) in path order; symlinked folders are not entered."""
    notes: list[str] = []
    if (root / RECORD).exists() or (root / RECORD).is_symlink():
        return [root], notes
    found, links = [], []
    for here, dirs, files in os.walk(root, followlinks=False):
        base = Path(here)
        links += [base / d for d in dirs if (base / d).is_symlink()]
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink() and not d.startswith("."))
        if RECORD in files and base != root:
            found.append(base)
    if links:
        shown = ", ".join(str(p) for p in links[:3]) + (", ..." if len(links) > 3 else "")
        notes.append(f"{len(links)} symlinked folder(s) not followed ({shown}); pass them as paths instead")
    return sorted(found), notes


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


# -- reading -------------------------------------------------------------------------------
def _read_bytes(path: Path, root: Path, limit: int | None = None) -> bytes:
    if not safe_file(path, root):
        raise OSError("a symlink out of the tree, or not a file")
    with open(path, "rb") as fh:
        data = fh.read(limit + 1 if limit else -1)
    if limit and len(data) > limit:
        raise OSError(f"larger than {limit >> 20} MB")
    return data


def _iterate_files(run_dir: Path) -> list[Path]:
    final = run_dir / ITERATES
    if final.exists() or final.is_symlink():
        return [final]
    return sorted((run_dir / "iterates.parts").glob("part-*.parquet"))


def read_sources(paths: list[tuple[Path, str]], salt: str = "") -> Raw:
    """Every run under each ``(root, sweep label)``; ``salt`` (the report's options) enters the hash."""
    runs: list[RunFiles] = []
    skipped: list[str] = []
    notes: list[str] = []
    seen: set[Path] = set()
    digest = hashlib.blake2b(salt.encode(), digest_size=16)
    for root, sweep in paths:
        run_dirs, more = find_runs(root)
        notes += more
        for run_dir in run_dirs:
            key = run_dir.resolve()
            if key in seen:
                continue
            seen.add(key)
            where = run_dir / RECORD
            try:
                text = _read_bytes(where, root, MAX_RECORD_BYTES)
                record = json.loads(text)
            except (OSError, ValueError) as exc:
                skipped.append(f"skipping {where}: not a run record ({cut(exc, 120)})")
                continue
            problem = check_record(record)
            if problem:
                skipped.append(f"skipping {where}: {problem}")
                continue
            blobs = []
            if record["status"] not in ("invalid", "running"):
                for path in _iterate_files(run_dir):
                    try:
                        blobs.append(_read_bytes(path, root))
                    except OSError as exc:
                        skipped.append(f"skipping {path}: {cut(exc, 120)}")
            digest.update(f"{sweep}\0{os.path.relpath(run_dir, root)}\0".encode())
            digest.update(hashlib.blake2b(text, digest_size=16).digest())
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
