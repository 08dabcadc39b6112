"""Reading run directories safely: which files, checked how, into one Arrow table.

:func:`optlab.load` reads through here. One bad file never stops it: every problem with a
file (not JSON, a field of the wrong type, a parquet file of another layout, an Arrow extension
type, a symlink out of the tree, a run id seen twice) becomes a warning naming the file, and the
file is skipped. Symlinked folders are not entered; symlinked files are read only when they point
inside the tree. Only JSON and parquet are read, never pickles, and no extension type is ever
deserialised into a Python object.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Any

from ..engine.log import FIELDS, INT_FIELDS
from .layout import ITERATES, PART_GLOB, PART_PREFIX, PARTS, RECORD
from .records import NUMBER_TYPES, check_record

MAX_RECORD_BYTES = 4 << 20
X_COLUMN = re.compile(r"x_(\d{1,6})")
LEGACY_PART = re.compile(re.escape(PART_PREFIX) + r"\d{6}\.parquet")


def warn(text: str) -> None:
    warnings.warn(text, UserWarning, stacklevel=4)


# -- finding files -------------------------------------------------------------------------
def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def safe_file(path: Path, root: Path) -> bool:
    """A regular file, or a symlink to one inside ``root`` (resolved)."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            return _inside(path, root) and path.resolve().is_file()
        return stat.S_ISREG(mode)
    except OSError:
        return False


def open_regular(path: Path, root: Path) -> tuple[int, int]:
    """A file descriptor, for the caller to close, and the size of ``path``, a regular file or a
    symlink to one inside ``root`` (else OSError); opened once, without blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # a symlink (or no file): followed only inside the tree
        if not safe_file(path, root):
            raise OSError("a symlink out of the tree, or not a file") from None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def find_runs(root: Path) -> list[tuple[Path, set[str]]]:
    """Run directories (holding ``run.json``) under ``root``, itself included, in path order, each
    with the names it holds. Symlinked and hidden folders are not entered; iterates without a
    record are warned about."""
    if (root / RECORD).exists() or (root / RECORD).is_symlink():
        return [(root, set(os.listdir(root)))]
    found, links = [], []
    pending = [str(root)]
    while pending:  # (os.scandir: the entries' types come with the listing, no stat per entry)
        here = pending.pop()
        try:
            with os.scandir(here) as listing:
                entries = list(listing)
        except OSError:
            continue
        names = {e.name for e in entries}
        dirs = {e.name: e.is_symlink() for e in entries if _is_dir(e)}
        if dirs:  # (a run directory mostly holds files alone)
            links += [Path(here, d) for d, linked in sorted(dirs.items()) if linked]
        if RECORD in names and RECORD not in dirs:
            found.append((Path(here), names))
            inside = [d for d, linked in dirs.items() if d.startswith("start_") and not linked]
        else:
            if (ITERATES in names and ITERATES not in dirs) or PARTS in dirs:
                warn(f"skipping {here}: iterates without a {RECORD} (a run whose record was lost or removed)")
            inside = [d for d, linked in dirs.items() if not linked and not d.startswith(".") and d != PARTS]
        if inside:
            pending += [os.path.join(here, d) for d in sorted(inside, reverse=True)]
    if links:
        shown = ", ".join(str(p) for p in links[:3]) + (", ..." if len(links) > 3 else "")
        warn(f"not following {len(links)} symlinked folder(s) under {root} ({shown}); pass them as paths instead")
    return sorted(found)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


# -- records -------------------------------------------------------------------------------
def read_record(path: Path, root: Path) -> dict[str, Any] | None:
    """The checked record at ``path``, or None with a warning naming it."""
    try:
        fd, size = open_regular(path, root)
        try:
            if size > MAX_RECORD_BYTES:
                raise OSError(f"larger than {MAX_RECORD_BYTES >> 20} MB")
            data = os.read(fd, size + 1)  # (a buffer of the file's size: reading it costs no more)
        finally:
            os.close(fd)
        record = json.loads(data)
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        warn(f"skipping {path}: not a run record ({type(exc).__name__}: {str(exc)[:120]})")
        return None
    problem = check_record(record)
    if problem:
        warn(f"skipping {path}: {problem}")
        return None
    return record


def flat_row(record: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """A record as a row of the runs table: options flattened to ``objective.NAME``,
    ``solver.NAME`` and ``stop.NAME`` columns, and ``path``."""
    flat = {k: record[k] for k in _plain_fields(tuple(record))}
    for group in ("objective", "solver"):
        for key, value in (record.get(f"{group}_params") or {}).items():
            flat[f"{group}.{key}"] = value
    for key, value in (record.get("stop") or {}).items():
        flat[f"stop.{key}"] = value
    flat["path"] = str(run_dir)
    return flat


@functools.lru_cache(maxsize=256)
def _plain_fields(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The fields of a record that are columns as they are (records of one run set share their
    fields, so this is worked out once for thousands of records)."""
    return tuple(k for k in fields if not k.endswith("_params") and k != "stop")


# -- iterates ------------------------------------------------------------------------------
def iterate_files(run_dir: Path, run_id: str, names: set[str] | None = None) -> list[Path]:
    """The run's iterate files: ``iterates.parquet``, or its parts (a killed run): its own, by
    the run id in their names, or those of a version that wrote none. ``names``: what the run
    directory holds, when already listed."""
    final = run_dir / ITERATES
    if (ITERATES in names) if names is not None else (final.exists() or final.is_symlink()):
        return [final]
    if names is not None and PARTS not in names:
        return []
    parts = run_dir / PARTS
    if not parts.is_dir() or parts.is_symlink():
        return []
    return sorted(p for p in parts.glob(PART_GLOB)
                  if p.name.startswith(f"{PART_PREFIX}{run_id}-") or LEGACY_PART.fullmatch(p.name))


def expected_type(name: str) -> Any:
    """The Arrow type of an iterate column (``x``: the current layout's coordinates; ``x_i``:
    version 1's), or None for a column that has no place there."""
    import pyarrow as pa

    from .chunks import X_TYPE, X

    if name in FIELDS:
        return pa.int64() if name in INT_FIELDS else pa.float64()
    if X_COLUMN.fullmatch(name):
        return pa.float64()
    if name == X:
        return X_TYPE
    if name == "run_id":
        return pa.string()
    return None


def _same_type(have: Any, want: Any) -> bool:
    """Types equal up to the name of a list's items and the width of offsets and strings."""
    import pyarrow as pa

    if pa.types.is_list(want):
        return (pa.types.is_list(have) or pa.types.is_large_list(have)) and have.value_type == want.value_type
    return have == want or (want == pa.string() and have == pa.large_string())


def check_schema(schema: Any, run_id: str) -> str | None:
    """Why an iterate file of this Arrow schema cannot be read as run ``run_id``'s, or None."""
    import pyarrow as pa

    meta = schema.metadata or {}
    if b"optlab.run_id" in meta and meta[b"optlab.run_id"] != run_id.encode():
        return f"its metadata names run {meta[b'optlab.run_id'][:40]!r}, its directory's record {run_id!r}"
    for field in schema:
        if isinstance(field.type, pa.ExtensionType) or b"ARROW:extension:name" in (field.metadata or {}):
            return f"column {field.name[:40]!r} has an Arrow extension type (refused: never deserialised)"
        want = expected_type(field.name)
        if want is None:
            return f"column {field.name[:40]!r} is not an iterate column (iter, f, grad_norm, ..., x, run_id)"
        if not _same_type(field.type, want):
            return f"column {field.name!r} is {field.type}, not {want}"
    if "iter" not in schema.names:
        return "it has no iter column"
    return None


# -- the runs table, typed ------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _known_types() -> dict[str, Any]:
    """The runs table's type of each record field, for columns that are null in every run."""
    import dataclasses

    import pyarrow as pa

    from ..engine.stopping import Stop

    floats = ("f_star", "f_final", "gap", "hessian_min_eig", "wall_time_s", "setup_s")
    types = {name: pa.float64() for name in floats}
    types.update({name: pa.string() for name in ("point", "message", "objective", "solver", "status")})
    types.update({name: pa.int64() for name in ("iterations", "nfev", "ngev", "nhev", "dim")})
    for field in dataclasses.fields(Stop):
        types[f"stop.{field.name}"] = pa.int64() if "int" in str(field.type) else pa.float64()
    return types


def runs_table(rows: list[dict[str, Any]]) -> Any:
    """The runs as an Arrow table with a type per column: integers, floats (a column of integers
    and floats), booleans, strings, lists of numbers; tables (``start``) and columns whose values
    differ in type are JSON text."""
    import pyarrow as pa

    known = _known_types()
    columns = {}
    for name, values in _columns(rows).items():
        present = [v for v in values if v is not None]
        kinds = _kinds(present)
        if not present:  # a column null in every run: its type when known, else null
            columns[name] = pa.nulls(len(values), known.get(name, pa.null()))
        elif kinds <= {"int"} and known.get(name) != pa.float64():
            columns[name] = pa.array(values, pa.int64())
        elif kinds <= {"int", "float"}:
            columns[name] = pa.array([None if v is None else float(v) for v in values], pa.float64())
        elif kinds == {"bool"}:
            columns[name] = pa.array(values, pa.bool_())
        elif kinds == {"str"}:
            columns[name] = pa.array(values, pa.string())
        elif kinds <= {"strings"}:
            columns[name] = pa.array(values, pa.list_(pa.string()))
        elif kinds == {"numbers"}:
            columns[name] = pa.array([None if v is None else [None if x is None else float(x) for x in v]
                                      for v in values], pa.list_(pa.float64()))
        else:
            columns[name] = pa.array([None if v is None else json.dumps(v, default=str) for v in values],
                                     pa.string())
    return pa.table(columns) if columns else pa.table({"run_id": pa.array([], pa.string())})


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows' values by column, in the order columns first appear; None where a row has none.
    Rows of the same fields in the same order (records of one run set) are transposed at once."""
    fields = dict.fromkeys(map(tuple, rows))
    if len(fields) == 1:
        return dict(zip(next(iter(fields)), map(list, zip(*(row.values() for row in rows)))))
    names = dict.fromkeys(itertools.chain.from_iterable(fields))
    return {name: [row.get(name) for row in rows] for name in names}


def _kinds(values: list[Any]) -> set[str]:
    """The kinds (:func:`_kind`) of a column's values; a column of one plain type at once."""
    types = set(map(type, values))
    if types == {str} or types == {bool}:
        return {"str" if types == {str} else "bool"}
    if types and types <= {int, float}:
        ints = [v for v in values if type(v) is int]
        floats = [v for v in values if type(v) is float]
        if (not ints or -2**63 <= min(ints) and max(ints) < 2**63) and all(map(math.isfinite, floats)):
            return {kind for kind, found in (("int", ints), ("float", floats)) if found}
    return {_kind(v) for v in values}


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int" if -2**63 <= v < 2**63 else "other"
    if isinstance(v, float):
        return "float" if math.isfinite(v) else "other"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list) and set(map(type, v)) <= NUMBER_TYPES:  # (is_number of each, at once)
        return "numbers"
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return "strings"
    return "other"
