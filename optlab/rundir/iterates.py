"""The iterate files of many runs read into one Arrow table, every file checked first.

Files of the current layout (:mod:`optlab.rundir.chunks`, schema version 2: a list column ``x``)
are read by polars when it is installed, in one scan (a few, one after another, for many files,
each batch converted while the next is read); the scan itself checks each file against that
schema, and the run ids of its rows are checked against the files' runs afterwards. Other
files (version 1, with ``x_0 .. x_{k-1}`` columns; anything that fails a check; every file when
polars is not installed) go through pyarrow's dataset reader, each file's schema checked by
:func:`optlab.rundir.reading.check_schema`, and file by file when the files disagree with their
runs, so that a bad file is skipped with a warning and never stops the reading. Either way the
table has the coordinates as ``x_0 .. x_{K-1}`` columns (null where a run has fewer).
"""

from __future__ import annotations

import functools
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..engine.log import FIELDS
from .chunks import SCHEMA_VERSION, X
from .reading import X_COLUMN, check_schema, expected_type, open_regular, safe_file, warn


def read_iterates(files: list[tuple[Path, str]], root: Path, early: Scan | None = None) -> Any:
    """The iterate files ``(path, run id)`` as one Arrow table, rows in the order of ``files``;
    the run id of each row is its file's. ``early``: a scan begun on the files before their runs
    were known (:func:`start_scan`), taken (in the form it made) when it read exactly the files
    to read, all of the current layout."""
    fast = scanner()
    eligible = [fast is not None and current_layout(path, run_id, root) for path, run_id in files]
    if early is not None and all(eligible) and early.paths == [str(path) for path, _ in files]:
        table = early.table(files)
        if table is not None:
            return table
    tables = []
    for is_current, group in itertools.groupby(zip(files, eligible), key=lambda pair: pair[1]):
        segment = [pair[0] for pair in group]
        table = Scan(segment).table(segment) if is_current else None
        tables.append(read_checked(segment, root) if table is None else table)
    if not tables:
        return pa.schema([("run_id", pa.string())]).empty_table()
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    return table.select(column_order(table.column_names))


def as_format(table: Any, form: str) -> Any:
    """An Arrow table, polars or pandas DataFrame of iterates as ``form`` (arrow, polars, pandas)."""
    kind = type(table).__module__.split(".")[0]
    if kind == {"arrow": "pyarrow"}.get(form, form):
        return table
    if form == "pandas":
        return table.to_pandas()
    if form == "arrow":
        return table.to_arrow()
    import polars as pl

    return pl.from_arrow(table)


def column_order(names: list[str] | set[str]) -> list[str]:
    """Iterate columns in the order :func:`optlab.load` gives them: the log's fields, the
    coordinates, the run id."""
    xs = sorted((n for n in names if X_COLUMN.fullmatch(n)), key=lambda n: int(n[2:]))
    return [*(n for n in FIELDS if n in names), *xs, *(n for n in (X, "run_id") if n in names)]


# -- the current layout, in one scan -----------------------------------------------------------
@functools.lru_cache(maxsize=1)
def scanner() -> Any:
    """polars, when installed in a version whose scans check every file against the schema
    given (missing and extra columns, types), else None."""
    import inspect

    try:
        import polars
    except ImportError:
        return None
    needed = {"schema", "missing_columns", "extra_columns", "hive_partitioning", "glob"}
    if not hasattr(polars, "read_parquet_metadata") or needed - set(inspect.signature(polars.scan_parquet).parameters):
        return None
    return polars


MAX_FOOTER_BYTES = 64 << 20
FOOTER_READ_BYTES = 8 << 10  # (an optlab file's footer is about 2 kB: one read takes it with its length)


def current_layout(path: Path, run_id: str, root: Path) -> bool:
    """Whether ``path`` is a safe file whose footer says it is run ``run_id``'s iterates in the
    current layout, with no Arrow schema (so no extension type can hide there).

    The footer's key-value pairs are found as Thrift's compact encoding writes them (a
    ``KeyValue`` struct: key, value, end), without decoding the rest of the footer: this is a
    choice of files for the scan, which checks their columns itself; a file not chosen is read
    by the checked path."""
    footer = _footer(path, root)
    return (footer is not None and current_schema_pair() in footer
            and key_value("optlab.run_id", run_id) in footer and b"ARROW:schema" not in footer)


def _footer(path: Path, root: Path) -> bytes | None:
    """The Parquet footer of a regular file (or of a symlink's target inside ``root``), else None."""
    try:
        fd, size = open_regular(path, root)
    except OSError:
        return None
    try:
        if size < 12:
            return None
        want = min(size, FOOTER_READ_BYTES)
        tail = os.pread(fd, want, size - want)
        length = int.from_bytes(tail[-8:-4], "little")
        if len(tail) != want or tail[-4:] != b"PAR1" or length > min(MAX_FOOTER_BYTES, size - 12):
            return None
        return tail[-8 - length:-8] if length + 8 <= want else os.pread(fd, length, size - 8 - length)
    except OSError:
        return None
    finally:
        os.close(fd)


def key_value(key: str, value: str) -> bytes:
    """A Parquet footer's key-value pair ``key``: ``value`` in Thrift's compact encoding: each a
    field header (delta 1, type binary), its length as a varint and its bytes; then the end."""
    def binary(data: bytes) -> bytes:
        size, length = bytearray(), len(data)
        while length > 0x7F:
            size.append(length & 0x7F | 0x80)
            length >>= 7
        size.append(length)
        return b"\x18" + bytes(size) + data

    return binary(key.encode()) + binary(value.encode()) + b"\x00"


@functools.lru_cache(maxsize=1)
def current_schema_pair() -> bytes:
    """The key-value pair of a file of the current layout (:data:`SCHEMA_VERSION`)."""
    return key_value("optlab.schema", SCHEMA_VERSION)


@functools.lru_cache(maxsize=1)
def current_schema() -> dict[str, Any]:
    """The polars schema of a current iterate file: every file of a scan must have exactly it."""
    pl = scanner()
    types = {name: pl.Int64 if expected_type(name) == pa.int64() else pl.Float64 for name in FIELDS}
    return {**types, X: pl.List(pl.Float64), "run_id": pl.String}


#: Files a scan reads in one batch at least: larger scans are read in batches, each converted
#: while polars reads the next, so that the conversion of all but the last batch overlaps reading.
MIN_BATCH_FILES = 256
SCAN_BATCHES = 3


class Scan:
    """The files ``paths`` read by polars, checked against the current schema, with the
    coordinates as columns, made into ``form`` (arrow, polars, pandas); in a thread of its own
    when ``background`` (polars and pyarrow do not hold the interpreter meanwhile). Many files are
    read in batches (:data:`SCAN_BATCHES`), each converted while the next is read. The rows'
    run ids are checked by :meth:`table`."""

    def __init__(self, paths: list[Path] | list[str] | list[tuple[Path, str]], background: bool = False,
                 form: str = "arrow") -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        self.paths = [str(p[0] if isinstance(p, tuple) else p) for p in paths]
        self.form = form
        if background:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="optlab-scan")
            self.future = pool.submit(self._read)
            pool.shutdown(wait=False)
        else:
            self.future = Future()
            self.future.set_result(self._read())

    def _read(self) -> tuple[list[str], Any] | None:
        """The run ids of the rows, file after file (consecutive repeats as one), and the table;
        None when a file differs from the current schema (polars checks every file against it)."""
        from concurrent.futures import ThreadPoolExecutor

        bounds = batch_bounds(len(self.paths))
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="optlab-scan-convert") as pool:
                converting = [pool.submit(self._convert, _collect(self.paths[a:b])) for a, b in zip(bounds, bounds[1:])]
                run_ids: list[str] = []
                parts = []
                for ids, part in (done.result() for done in converting):
                    run_ids += ids[1:] if run_ids and ids and run_ids[-1] == ids[0] else ids  # (a run across batches)
                    parts.append(part)
            return run_ids, self._joined(parts)
        except Exception:  # noqa: BLE001 - polars' errors are of many kinds; the checked path names the file
            return None

    def _convert(self, frame: Any) -> tuple[list[str], Any]:
        """A scanned frame's run ids (consecutive repeats as one) and its table in the scan's form
        (pandas: Arrow, until the batches are joined)."""
        runs = frame.get_column("run_id").rle()
        run_ids = runs.struct.field("value").to_list()
        if self.form == "polars":  # (a chunk per file, as polars reads files itself)
            return run_ids, polars_coordinate_columns(frame)
        # (the coordinates from one copy of the lists into numpy: polars' own explode and gather
        # cost twice the time, in fresh pages)
        return run_ids, coordinate_columns(arrow_table(frame, run_ids, runs.struct.field("len").to_numpy()))

    def _joined(self, parts: list[Any]) -> Any:
        """The batches' tables as one (without copying), in the scan's form (pandas: one copy,
        into its blocks); a batch of runs with fewer coordinates has nulls in the others."""
        if self.form == "polars":
            import polars as pl

            frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal", rechunk=False)
            order = column_order(frame.columns)
            return frame if order == frame.columns else frame[order]  # (select would copy into one chunk)
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="default")
        table = table.select(column_order(table.column_names))
        return table.to_pandas() if self.form == "pandas" else table

    def table(self, files: list[tuple[Path, str]]) -> Any:
        """The table, or None when the files were not all read or when their rows are labelled
        with other runs than the files' (the run ids of the rows, file after file, must be the
        files' run ids in order)."""
        result = self.future.result()
        if result is None:
            return None
        runs, table = result
        return table if runs == [run_id for run_id, _ in itertools.groupby(r for _, r in files)] else None


def batch_bounds(files: int) -> list[int]:
    """Where the batches of a scan of ``files`` files begin and end: at most :data:`SCAN_BATCHES`
    and one per :data:`MIN_BATCH_FILES` files, each smaller than the one before (sizes in the ratio
    k : k-1 : ... : 1), since only the last batch's conversion is not hidden behind reading."""
    count = max(1, min(SCAN_BATCHES, files // MIN_BATCH_FILES))
    weights = list(itertools.accumulate(range(count, 0, -1), initial=0))
    return [files * w // weights[-1] for w in weights]


def _collect(paths: list[str]) -> Any:
    """The files read in one polars scan, each checked against the current schema."""
    return scanner().scan_parquet(paths, schema=current_schema(), glob=False, hive_partitioning=False,
                                  missing_columns="raise", extra_columns="raise").collect()


def arrow_table(frame: Any, run_ids: list[str], counts: np.ndarray) -> pa.Table:
    """A polars frame of iterates as an Arrow table, its numbers not copied: each column is
    exported as polars holds it, a chunk per file (``to_arrow`` would first copy every column into
    one chunk: 130 MB of fresh pages for 2,000 runs of 1,000 iterates), and the ``run_id`` column
    is made from its run-length encoding (``run_ids`` repeated ``counts`` times) as Arrow strings."""
    import pyarrow.compute as pc

    ends = pa.array(np.cumsum(counts, dtype=np.int64))
    labels = pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(ends, pa.array(run_ids, pa.string())))
    return pa.table({name: labels if name == "run_id" else export_column(frame.get_column(name))
                     for name in frame.columns})


def export_column(series: Any) -> pa.ChunkedArray:
    """A polars series as Arrow through the Arrow C stream (polars 1.3 on), else ``to_arrow``."""
    if hasattr(series, "__arrow_c_stream__"):
        return pa.chunked_array(series)
    return series.to_arrow()


def polars_coordinate_columns(frame: Any) -> Any:
    """:func:`coordinate_columns` for a polars frame of the current layout. When every row has
    the same number of coordinates they are taken from the lists' values in one pass (polars'
    ``list.get`` costs a pass per file and coordinate), and inserted without putting the other
    columns into one chunk (``with_columns`` would copy them all)."""
    lists = frame.get_column(X)
    lengths = lists.list.len()
    width = lengths.max() or 0
    if width and lengths.min() == width and not lists.null_count():
        values = lists.explode()
        columns = [values.gather_every(width, i).alias(f"x_{i}") for i in range(width)]
    else:
        columns = [lists.list.get(i, null_on_oob=True).alias(f"x_{i}") for i in range(width)]
    frame = frame.drop(X)
    at = frame.columns.index("run_id")
    for column in reversed(columns):
        frame = frame.insert_column(at, column)
    return frame


def start_scan(paths: list[Path] | list[str], form: str = "arrow") -> Scan | None:
    """A scan of ``paths`` into ``form`` begun now in a thread of its own, or None without polars
    (or with no file): :func:`read_iterates` takes it when they turn out to be the files to read."""
    return Scan(paths, background=True, form=form) if paths and scanner() is not None else None


# -- any layout, each file checked ------------------------------------------------------------
def read_checked(files: list[tuple[Path, str]], root: Path) -> pa.Table:
    """The files through pyarrow's dataset reader, each checked first (:func:`check_schema`);
    file by file, the wrong ones skipped, when their rows are not all of their run."""
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    fmt, local = ds.ParquetFileFormat(), pafs.LocalFileSystem()
    good: list[tuple[Any, str, int]] = []
    names: set[str] = set()
    proven = True  # every file's statistics show it holds its run's id alone
    for path, run_id in files:
        try:
            if not safe_file(path, root):
                raise OSError("a symlink out of the tree, or not a file")
            fragment = fmt.make_fragment(str(path), local)
            fragment.ensure_complete_metadata()  # (the footer, read once: the dataset reuses it)
            meta, schema = fragment.metadata, fragment.physical_schema
        except (OSError, pa.ArrowException, ValueError) as exc:
            warn(f"skipping {path}: unreadable parquet ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        problem = check_schema(schema, run_id)
        if problem:
            warn(f"skipping {path}: {problem}")
            continue
        names.update(schema.names)
        good.append((fragment, run_id, meta.num_rows))
        proven = proven and "run_id" in schema.names and _holds_only(meta, schema.get_field_index("run_id"), run_id)
    names.add("run_id")
    schema = pa.schema([(n, expected_type(n)) for n in column_order(names)])
    if not good:
        return coordinate_columns(schema.empty_table())
    try:
        table = ds.FileSystemDataset([g[0] for g in good], schema, fmt, local).to_table()
    except (OSError, pa.ArrowException) as exc:  # a file that changed or broke since it was checked
        warn(f"reading file by file: {str(exc)[:200]}")
        return coordinate_columns(_one_by_one(good, schema))
    if not proven:
        table = _with_run_ids(table, good)
    return coordinate_columns(table if table is not None else _one_by_one(good, schema))


def _holds_only(meta: Any, column: int, run_id: str) -> bool:
    """Whether the file's statistics show that its ``run_id`` column holds ``run_id`` alone."""
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max or stats.null_count or stats.min != run_id or stats.max != run_id:
            return False
    return True


def _with_run_ids(table: pa.Table, good: list[tuple[Any, str, int]]) -> pa.Table | None:
    """Files written before the run id was a column get theirs here; every other row must
    already hold its file's run id, else None (the files are then read one by one)."""
    import pyarrow.compute as pc

    rows = np.repeat(np.arange(len(good), dtype=np.int32), [g[2] for g in good])
    expected = pa.array([g[1] for g in good], pa.string()).take(pa.array(rows))
    have = table.column("run_id")
    if have.null_count:
        have = pc.coalesce(have, expected)
        table = table.set_column(table.schema.get_field_index("run_id"), "run_id", have)
    if len(have) != len(expected) or not pc.all(pc.equal(have, expected)).as_py():
        return None
    return table


def _one_by_one(good: list[tuple[Any, str, int]], schema: pa.Schema) -> pa.Table:
    """The slow path: each file on its own, those whose run ids disagree with their record skipped."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = []
    for fragment, run_id, _ in good:
        path = fragment.path
        try:
            table = pq.ParquetFile(path).read()
        except (OSError, pa.ArrowException) as exc:
            warn(f"skipping {path}: unreadable parquet ({str(exc)[:120]})")
            continue
        if "run_id" in table.column_names:
            if not pc.all(pc.equal(table.column("run_id"), run_id)).as_py():
                warn(f"skipping {path}: its run_id column holds other runs than {run_id!r}")
                continue
            table = table.drop_columns(["run_id"])
        table = table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.string()))
        tables.append(table.select([n for n in schema.names if n in table.column_names]).cast(
            pa.schema([schema.field(n) for n in schema.names if n in table.column_names])))
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables, promote_options="permissive").select(schema.names)


# -- coordinates ------------------------------------------------------------------------------
def coordinate_columns(table: pa.Table, keep: int | None = None) -> pa.Table:
    """``table`` with its list column ``x`` as columns ``x_0 .. x_{K-1}`` (K the longest list,
    or ``keep`` when fewer; null where a row has fewer coordinates), merged with the ``x_i``
    columns of version 1 files."""
    import pyarrow.compute as pc

    if X not in table.column_names:
        return table
    lists = table.column(X).combine_chunks()
    offsets = numbers(lists.offsets)
    values = numbers(pc.fill_null(lists.values, np.nan) if lists.values.null_count else lists.values)
    lengths = np.diff(offsets)
    if lists.null_count:  # (rows of version 1 files)
        lengths[~numbers(pc.cast(lists.is_valid(), pa.int8())).astype(bool)] = 0
    width = int(lengths.max()) if len(lengths) else 0
    width = width if keep is None else min(width, keep)
    starts = offsets[:-1]
    step = lengths[0] if len(lengths) else 0
    uniform = len(lengths) and (lengths == step).all()  # (then each row starts where the one before ends)
    table = table.drop_columns([X])
    for i in range(width):
        if uniform:
            column = float_array(values[starts[0] + i: starts[0] + step * len(starts): step])
        else:
            has = lengths > i
            column = float_array(values[np.where(has, starts + i, 0)], has)
        name = f"x_{i}"
        if name in table.column_names:  # rows of version 1 files hold theirs here
            at = table.column_names.index(name)
            table = table.set_column(at, name, pc.coalesce(table.column(name), column))
        else:
            table = table.append_column(name, column)
    return table.select(column_order(table.column_names))


def float_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """A float64 Arrow array of ``values`` (null where ``valid`` is False), built from buffers:
    ``pa.array`` would import pandas."""
    data = pa.py_buffer(np.ascontiguousarray(values, dtype=np.float64))
    if valid is None or valid.all():
        return pa.Array.from_buffers(pa.float64(), len(values), [None, data])
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.float64(), len(values), [bitmap, data], null_count=int((~valid).sum()))


def numbers(array: pa.Array) -> np.ndarray:
    """A primitive Arrow array without nulls as numpy, sharing its buffer (``to_numpy`` would
    import pandas)."""
    dtype = np.dtype(array.type.to_pandas_dtype())
    return np.frombuffer(array.buffers()[1], dtype, len(array) + array.offset)[array.offset:]
