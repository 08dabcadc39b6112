"""Self-describing results: a sweep's files read with pandas, polars and duckdb alone, without
optlab, without parsing paths and without options, whatever the runs' dimensions; every iterate
file carries its run id and its run."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import optlab
from optlab.rundir.chunks import SCHEMA_VERSION

from ..conftest import REPO, run_cli


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Runs of dimensions 1 and 2 (double_well, rosenbrock), two learning rates."""
    root = tmp_path_factory.mktemp("formats") / "sweep"
    out = run_cli("-m", "objective=rosenbrock,double_well", "solver.lr=0.001,0.002", "stop.max_iter=30",
                  "report.auto=false", f"hydra.sweep.dir={root}")
    assert out.returncode == 0, out.stderr
    return root


def test_iterate_files_carry_their_run(sweep):
    for path in sorted(sweep.glob("*/iterates.parquet")):
        record = json.loads((path.parent / "run.json").read_text())
        file = pq.ParquetFile(path)
        meta = file.schema_arrow.metadata
        assert meta[b"optlab.schema"] == SCHEMA_VERSION.encode()
        assert meta[b"optlab.version"] == optlab.__version__.encode()
        assert meta[b"optlab.run_id"].decode() == record["run_id"]
        run = json.loads(meta[b"optlab.run"])
        assert run["objective"] == record["objective"] and run["solver_params"] == record["solver_params"]
        table = file.read()
        assert set(table.column("run_id").to_pylist()) == {record["run_id"]}
        assert table.schema.field("iter").type == pa.int64() and table.schema.field("f").type == pa.float64()
        stats = file.metadata.row_group(0).column(table.schema.get_field_index("iter")).statistics
        assert stats.has_min_max and (stats.min, stats.max) == (0, record["iterations"])


def test_runs_table_has_one_typed_row_per_run(sweep):
    runs = pq.read_table(sweep / "runs.parquet")
    assert runs.num_rows == 4 and runs.column("run_id").type == pa.string()
    types = {name: runs.schema.field(name).type for name in runs.column_names}
    assert types["solver.lr"] == pa.float64() and types["iterations"] == pa.int64()
    assert types["x0"] == pa.list_(pa.float64()) and types["stop.max_seconds"] == pa.float64()
    assert types["objective.dim"] == pa.int64() and types["overrides"] == pa.list_(pa.string())
    assert runs.schema.metadata[b"optlab.schema"] == SCHEMA_VERSION.encode()
    loaded, _ = optlab.load(sweep, as_="arrow")
    assert sorted(loaded.column("run_id").to_pylist()) == sorted(runs.column("run_id").to_pylist())


def test_pandas_reads_the_sweep(sweep):
    runs = pd.read_parquet(sweep / "runs.parquet")
    its = pd.read_parquet(sorted(sweep.glob("*/iterates.parquet")))
    joined = its.merge(runs[["run_id", "objective", "iterations", "dim"]], on="run_id", validate="many_to_one")
    sizes = joined.groupby("run_id").size()
    assert (sizes.loc[list(runs.run_id)].to_numpy() == runs.iterations.to_numpy() + 1).all()
    assert (joined.x.map(len) == joined.dim).all()  # one coordinate for double_well, two for rosenbrock


def test_polars_reads_runs_of_different_dimensions_with_no_option(sweep):
    pl = pytest.importorskip("polars", reason="polars is in the test extra: pip install -e '.[test]'")
    files = sorted(str(p) for p in sweep.glob("*/iterates.parquet"))
    frame = pl.read_parquet(files)
    assert {len(pq.read_schema(f).names) for f in files} == {frame.width}  # one schema for all
    runs = pl.read_parquet(sweep / "runs.parquet")
    counts = frame.group_by("run_id").agg(pl.len(), pl.col("x").list.len().max().alias("coords"))
    counts = counts.join(runs.select("run_id", "iterations", "dim"), on="run_id")
    assert counts.height == 4 and (counts["len"] == counts["iterations"] + 1).all()
    assert (counts["coords"] == counts["dim"]).all()


def test_duckdb_joins_iterates_with_runs(sweep):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is in the test extra: pip install -e '.[test]'")
    rows = duckdb.sql(f"""
        SELECT r.objective, r."solver.lr" AS lr, count(*) AS n, max(r.iterations) AS iterations,
               max(len(i.x)) AS coords, max(r.dim) AS dim
        FROM read_parquet('{sweep}/*/iterates.parquet') AS i
        JOIN '{sweep}/runs.parquet' AS r USING (run_id)
        GROUP BY ALL ORDER BY ALL""").fetchall()
    assert [(o, lr) for o, lr, *_ in rows] == [("double_well", 0.001), ("double_well", 0.002),
                                               ("rosenbrock", 0.001), ("rosenbrock", 0.002)]
    assert all(n == iterations + 1 and coords == dim for _, _, n, iterations, coords, dim in rows)


def test_schema_is_documented():
    text = (REPO / "docs" / "schema.md").read_text()
    for column in ("run_id", "iter", "grad_norm", "step_size", "time_s", "x", "x_0", "optlab.schema", "optlab.run",
                   "runs.parquet", "sweep.json", "path", "iterates_file", "optlab.launch_dir"):
        assert f"`{column}`" in text, column
    assert f"schema version {SCHEMA_VERSION}" in text
