"""optlab.load across iterate layouts: version 1 (x_0 .. x_k columns) and version 2 (one list column
x) files in one tree, the polars scan and the pyarrow reader giving the same table, and files of
the current layout that a scan must not take (rows of another run, foreign columns) skipped."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import optlab
from optlab.rundir import chunks, iterates
from optlab.rundir.iterates import coordinate_columns, current_layout


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Three runs in path order: Rosenbrock in 2 and 4 dimensions, the double well in 1."""
    root = tmp_path_factory.mktemp("layouts")
    for name, (objective, dim) in {"a": ("rosenbrock", 2), "b": ("rosenbrock", 4), "c": ("double_well", None)}.items():
        options = {"dim": dim} if dim else {}
        optlab.minimize(objective, "gd", objective_options=options, out=root / name, max_iter=40)
    return root


@pytest.fixture
def tree(made, tmp_path):
    return shutil.copytree(made, tmp_path / "t")


def load_quietly(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs, its = optlab.load(path, **kw)
    return runs, its, [str(w.message) for w in caught]


def assert_same(a: pa.Table, b: pa.Table) -> None:
    """Equal tables, NaN equal to NaN (Arrow's equals says it is not)."""
    assert a.schema.equals(b.schema)
    pd.testing.assert_frame_equal(a.to_pandas(), b.to_pandas())


def assert_same_form(form: str, a, b) -> None:
    """Two results of ``optlab.load(..., as_=form)`` hold the same table."""
    if form == "arrow":
        assert_same(a, b)
    elif form == "polars":
        from polars.testing import assert_frame_equal

        assert_frame_equal(a, b)
    else:
        pd.testing.assert_frame_equal(a, b)


def without_polars(monkeypatch) -> None:
    monkeypatch.setattr(iterates, "scanner", lambda: None)


def as_version_1(path) -> None:
    """Rewrite a run's iterate file as optlab 0.2.0 wrote it: x_0 .. x_{k-1} columns, schema 1."""
    table = pq.read_table(path)
    meta = {**table.schema.metadata, b"optlab.schema": b"1"}
    pq.write_table(coordinate_columns(table).replace_schema_metadata(meta), path)


@pytest.mark.parametrize("form", ["arrow", "polars", "pandas"])
def test_the_polars_scan_and_the_pyarrow_reader_agree(made, monkeypatch, form):
    """One scan, begun before the records are read, takes every file and makes the form asked
    for; the pyarrow reader gives the same."""
    pytest.importorskip("polars", reason="polars is in the test extra")
    assert iterates.scanner() is not None
    assert all(current_layout(made / r / "iterates.parquet", run_id, made.resolve())
               for r, run_id in zip("abc", optlab.load(made)[0].run_id))
    table, tables = iterates.Scan.table, []
    monkeypatch.setattr(iterates.Scan, "table", lambda self, files: tables.append(table(self, files)) or tables[-1])
    _, scanned = optlab.load(made, as_=form)
    assert len(tables) == 1 and tables[0] is not None  # the scan begun before the records were read
    without_polars(monkeypatch)
    _, checked = optlab.load(made, as_=form)
    assert_same_form(form, scanned, checked)
    names = scanned.column_names if form == "arrow" else list(scanned.columns)
    assert names[-5:] == ["x_0", "x_1", "x_2", "x_3", "run_id"]


def test_iterates_match_the_runs_coordinates(made):
    runs, its = optlab.load(made)
    for run in runs.itertuples():
        rows = its[its.run_id == run.run_id].sort_values("iter")
        coords = [f"x_{i}" for i in range(4)]
        kept = rows[coords].notna().sum(axis=1)
        assert (kept == run.dim).all()
        np.testing.assert_array_equal(rows[coords[: run.dim]].to_numpy()[-1], run.x_final)
        np.testing.assert_array_equal(rows[coords[: run.dim]].to_numpy()[0], run.x0)


@pytest.mark.parametrize("converted", [["b"], ["a", "c"], ["a", "b", "c"]])
def test_version_1_and_version_2_files_read_together(tree, converted, monkeypatch):
    _, before = optlab.load(tree, as_="arrow")
    for name in converted:
        as_version_1(tree / name / "iterates.parquet")
    _, after, messages = load_quietly(tree, as_="arrow")
    assert not messages
    assert_same(after, before)  # the same table, rows in path order
    without_polars(monkeypatch)
    assert_same(optlab.load(tree, as_="arrow")[1], before)


def test_the_report_reads_both_versions(tree):
    from optlab.report.reader import parse_iterates

    path = tree / "b" / "iterates.parquet"
    new = parse_iterates([path.read_bytes()])
    as_version_1(path)
    old = parse_iterates([path.read_bytes()])
    assert sorted(new) == sorted(old) == ["f", "grad_norm", "iter", "nfev", "ngev", "nhev", "step_size",
                                              "time_s", "x_0", "x_1"]
    for name in new:
        np.testing.assert_array_equal(new[name], old[name])


def write_like_optlab(table: pa.Table, path, metadata: dict) -> None:
    """``table`` written as optlab writes iterate files: no Arrow schema, the metadata in the footer."""
    with pq.ParquetWriter(path, table.schema, store_schema=False) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata(metadata)


def rewrite_current(path, change) -> None:
    """Change a run's iterate file and write it back as optlab writes them."""
    table = pq.read_table(path)
    write_like_optlab(change(table.replace_schema_metadata(None)), path, table.schema.metadata)


DAMAGE = {
    "rows of another run": lambda t: t.set_column(t.column_names.index("run_id"), "run_id",
                                                  pa.array(["someoneelse"] * t.num_rows)),
    "a foreign column": lambda t: t.append_column("payload", pa.array(["x"] * t.num_rows)),
    "iter as floats": lambda t: t.set_column(0, "iter", t.column("iter").cast(pa.float64())),
    "no run_id column": lambda t: t.drop_columns(["run_id"]),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_current_files_a_scan_must_not_take_are_read_by_the_checks(tree, damage, monkeypatch):
    """Each file still passes the footer check, so the scan meets it and refuses it: the rows of the
    other runs still come, the damaged file is skipped with a warning, or (without a run id
    column) gets its run's id."""
    pytest.importorskip("polars", reason="polars is in the test extra")
    table, scanned = iterates.Scan.table, []
    monkeypatch.setattr(iterates.Scan, "table", lambda self, files: scanned.append(table(self, files)) or scanned[-1])
    runs, before = optlab.load(tree, as_="arrow")
    bad = tree / "b" / "iterates.parquet"
    rewrite_current(bad, DAMAGE[damage])
    b_id = runs.column("run_id")[runs.column("path").to_pylist().index(str((tree / "b").resolve()))].as_py()
    assert current_layout(bad, b_id, tree.resolve())
    scanned.clear()
    _, after, messages = load_quietly(tree, as_="arrow")
    assert scanned and not any(t is not None for t in scanned)  # the scans refused them; the checks read them
    if damage == "no run_id column":
        assert not messages
        assert_same(after, before)
        return
    assert any(str(bad) in m for m in messages), messages
    ids = after.column("run_id").to_pylist()
    assert b_id not in ids and sorted(set(ids)) == sorted(set(before.column("run_id").to_pylist()) - {b_id})


def test_a_footer_naming_another_run_is_not_scanned(tree):
    bad = tree / "a" / "iterates.parquet"
    table = pq.read_table(bad)
    write_like_optlab(table.replace_schema_metadata(None), bad, {**table.schema.metadata, b"optlab.run_id": b"other"})
    runs, its, messages = load_quietly(tree)
    assert any(str(bad) in m and "other" in m for m in messages), messages
    assert len(runs) == 3 and its.run_id.nunique() == 2


def test_coordinate_columns_of_ragged_lists_and_version_1_rows():
    x = pa.array([[1.0, 2.0], None, [3.0], [], [4.0, 5.0, 6.0]], chunks.X_TYPE)
    table = pa.table({"iter": pa.array(range(5), pa.int64()), "x": x, "x_0": [None, 7.0, None, None, None],
                      "run_id": ["a"] * 5})
    wide = coordinate_columns(table)
    assert wide.column_names == ["iter", "x_0", "x_1", "x_2", "run_id"]
    assert wide.column("x_0").to_pylist() == [1.0, 7.0, 3.0, None, 4.0]
    assert wide.column("x_1").to_pylist() == [2.0, None, None, None, 5.0]
    assert wide.column("x_2").to_pylist() == [None, None, None, None, 6.0]
    assert coordinate_columns(table, 1).column_names == ["iter", "x_0", "run_id"]
    sliced = pa.table({"x": pa.array([[9.0, 9.0], [1.0, 2.0], [3.0, 4.0]], chunks.X_TYPE)}).slice(1)
    assert coordinate_columns(sliced).to_pydict() == {"x_0": [1.0, 3.0], "x_1": [2.0, 4.0]}


def test_the_log_table_becomes_one_list_column():
    table = pa.table({"iter": pa.array([0, 1], pa.int64()), "x_0": [1.0, 3.0], "x_1": [2.0, 4.0],
                      "run_id": ["r", "r"]})
    listed = chunks.coordinates_as_list(table)
    assert listed.column_names == ["iter", "x", "run_id"] and listed.schema.field("x").type == chunks.X_TYPE
    assert listed.column("x").to_pylist() == [[1.0, 2.0], [3.0, 4.0]]
    none = chunks.coordinates_as_list(pa.table({"iter": pa.array([0, 1], pa.int64())}))
    assert none.column("x").to_pylist() == [[], []]


def test_minimize_with_out_gives_the_same_iterate_columns_as_without(tmp_path):
    kept = optlab.minimize("rosenbrock", "gd", out=tmp_path / "run", max_iter=20)
    in_memory = optlab.minimize("rosenbrock", "gd", max_iter=20)
    assert [c for c in kept.iterates.columns if c != "run_id"] == list(in_memory.iterates.columns)


@pytest.mark.parametrize("length", [1, 12, 127, 128, 300, 20_000])
def test_footer_pairs_are_found_as_parquet_writes_them(tmp_path, length):
    from optlab.rundir.iterates import key_value

    path = tmp_path / "f.parquet"
    value = "v" * length
    write_like_optlab(pa.table({"iter": pa.array([0], pa.int64())}), path, {"optlab.k": value, "other": "x"})
    footer = path.read_bytes()
    assert key_value("optlab.k", value) in footer and key_value("optlab.k", value[:-1]) not in footer
    assert key_value("optlab.k", "w" * length) not in footer


def test_polars_coordinates_of_uniform_and_ragged_lists():
    pl = pytest.importorskip("polars", reason="polars is in the test extra")
    from polars.testing import assert_frame_equal

    from optlab.rundir.iterates import polars_coordinate_columns

    for lists in ([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[1.0, 2.0], [3.0], []], [[], [], []]):
        frame = pl.DataFrame({"iter": [0, 1, 2], "x": lists, "run_id": ["r"] * 3},
                             schema={"iter": pl.Int64, "x": pl.List(pl.Float64), "run_id": pl.String})
        table = pa.table({"iter": pa.array([0, 1, 2], pa.int64()), "x": pa.array(lists, chunks.X_TYPE),
                          "run_id": ["r"] * 3})
        assert_frame_equal(polars_coordinate_columns(frame), pl.from_arrow(coordinate_columns(table)))


def test_runs_of_one_dimension_read_the_same_by_scan_and_checks(tmp_path, monkeypatch):
    """Every row with the same number of coordinates: the polars form takes them from one array."""
    pl = pytest.importorskip("polars", reason="polars is in the test extra")
    from polars.testing import assert_frame_equal

    starts = [[-1.0, 1.0, 0.5], [0.0, 2.0, 1.0], [1.5, -0.5, 2.0]]
    optlab.minimize("rosenbrock", "gd", starts=starts, objective_options={"dim": 3}, out=tmp_path / "s", max_iter=30)
    _, scanned = optlab.load(tmp_path, as_="polars")
    without_polars(monkeypatch)
    _, checked = optlab.load(tmp_path, as_="arrow")
    assert_frame_equal(scanned, pl.from_arrow(checked))
    assert scanned.columns[-4:] == ["x_0", "x_1", "x_2", "run_id"] and scanned["x_2"].null_count() == 0


@pytest.mark.parametrize("form", ["arrow", "pandas"])
def test_the_scan_gives_the_same_table_where_polars_exports_no_arrow_stream(made, monkeypatch, form):
    """Polars before 1.3 has no Arrow C stream: the scan's columns then come through ``to_arrow``."""
    pl = pytest.importorskip("polars", reason="polars is in the test extra")
    _, streamed = optlab.load(made, as_=form)
    monkeypatch.delattr(pl.Series, "__arrow_c_stream__", raising=False)
    table, tables = iterates.Scan.table, []
    monkeypatch.setattr(iterates.Scan, "table", lambda self, files: tables.append(table(self, files)) or tables[-1])
    _, copied = optlab.load(made, as_=form)
    assert len(tables) == 1 and tables[0] is not None
    if form == "arrow":
        assert_same(streamed, copied)
    else:
        pd.testing.assert_frame_equal(streamed, copied)


def as_killed_run(run_dir, rows: int) -> None:
    """Leave a run as a killed one does: its iterates in two part files, no iterates.parquet."""
    final = run_dir / "iterates.parquet"
    table = pq.ParquetFile(final).read()
    run_id = table.schema.metadata[b"optlab.run_id"].decode()
    (run_dir / "iterates.parts").mkdir()
    for i, part in enumerate((table.slice(0, rows), table.slice(rows))):
        chunks.write_table(part, run_dir / "iterates.parts" / f"part-{run_id}-{i:06d}.parquet")
    final.unlink()


@pytest.mark.parametrize("form", ["arrow", "polars", "pandas"])
def test_a_scan_in_batches_gives_what_one_scan_gives(tree, monkeypatch, form):
    """A file per batch: runs of 2, 4 and 1 coordinates apart, and a killed run's two parts in two
    batches (its run id spans them)."""
    pytest.importorskip("polars", reason="polars is in the test extra")
    as_killed_run(tree / "b", 10)
    _, whole = optlab.load(tree, as_=form)
    monkeypatch.setattr(iterates, "MIN_BATCH_FILES", 1)
    monkeypatch.setattr(iterates, "SCAN_BATCHES", 4)
    table, tables, collect, batches = iterates.Scan.table, [], iterates._collect, []
    monkeypatch.setattr(iterates.Scan, "table", lambda self, files: tables.append(table(self, files)) or tables[-1])
    monkeypatch.setattr(iterates, "_collect", lambda paths: batches.append(paths) or collect(paths))
    _, batched = optlab.load(tree, as_=form)
    assert len(tables) == 1 and tables[0] is not None
    assert [len(paths) for paths in batches if "iterates.parts" in paths[0]] == [1, 1]  # the parts apart
    without_polars(monkeypatch)
    _, checked = optlab.load(tree, as_=form)
    for other in (whole, checked):
        assert_same_form(form, batched, other)
