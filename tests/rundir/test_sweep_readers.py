"""The recipes of docs/schema.md, run as they stand on the sweep the page makes (runs of Rosenbrock
in 2 and 4 dimensions): pandas, polars, duckdb and pyarrow.dataset each read every row and every
coordinate of every run, equal to optlab.load's; a copy of the sweep in another folder reads the
same through the paths of its runs.parquet."""

from __future__ import annotations

import re
import shlex
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import optlab
from optlab.engine.log import FIELDS

from ..conftest import REPO, run_cli

PAGE = REPO / "docs" / "schema.md"
READERS = ("pandas", "polars", "duckdb", "pyarrow.dataset")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", PAGE.read_text(), flags=re.S | re.M)


def recipes() -> tuple[str, dict[str, str]]:
    """The block that lists the sweep's files, and each reader's block (named by its first line)."""
    listing = next(b for b in blocks("python") if "files = " in b and "runs.parquet" in b)
    readers = {b.splitlines()[0][2:]: b for b in blocks("python") if b.startswith("# ")}
    return listing, readers


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The page's sweep, made by the page's own command in a folder of its own."""
    command = next(b for b in blocks("bash") if "hydra.sweep.dir=sweep" in b).strip()
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "optlab"], command
    where = tmp_path_factory.mktemp("readers")
    out = run_cli(*words[3:], cwd=where)
    assert out.returncode == 0, out.stderr
    return where


def read_with(reader: str, where, monkeypatch) -> pd.DataFrame:
    """The iterates as the page's recipe for ``reader`` reads them from ``where/sweep``."""
    pytest.importorskip(reader.split(".")[0], reason="polars and duckdb are in the test extra")
    listing, readers = recipes()
    monkeypatch.chdir(where)
    scope: dict = {}
    exec(compile(listing + readers[reader], str(PAGE), "exec"), scope)  # noqa: S102 - the page's own code
    iterates = scope["iterates"]
    return iterates if isinstance(iterates, pd.DataFrame) else iterates.to_pandas()


def assert_same_iterates(got: pd.DataFrame, loaded: pd.DataFrame, dims: dict[str, int]) -> None:
    """Same rows, same fields, and in ``x`` every coordinate of each run (dims: run id -> dim)."""
    assert len(got) == len(loaded) > 0
    order = ["run_id", "iter"]
    got = got.sort_values(order, ignore_index=True)
    loaded = loaded.sort_values(order, ignore_index=True)
    assert got.run_id.tolist() == loaded.run_id.tolist()
    for name in FIELDS:
        np.testing.assert_array_equal(got[name].to_numpy(), loaded[name].to_numpy(), err_msg=name)
    widest = max(dims.values())
    wide = [f"x_{i}" for i in range(widest)]
    assert [c for c in loaded.columns if c.startswith("x_")] == wide
    coords = [list(v) for v in got.x]
    assert [len(c) for c in coords] == [dims[r] for r in got.run_id]  # every coordinate of every run
    padded = np.array([c + [np.nan] * (widest - len(c)) for c in coords])
    np.testing.assert_array_equal(padded, loaded[wide].to_numpy(dtype=float))


def run_dims(sweep) -> dict[str, int]:
    runs, _ = optlab.load(sweep)
    return dict(zip(runs.run_id, runs.dim))


def test_the_page_makes_runs_of_two_dimensions(made):
    dims = run_dims(made / "sweep")
    assert sorted(dims.values()) == [2, 4]
    assert set(recipes()[1]) == set(READERS)


@pytest.mark.parametrize("reader", READERS)
def test_each_reader_reads_every_coordinate_of_every_run(made, reader, monkeypatch):
    _, loaded = optlab.load(made / "sweep")
    assert_same_iterates(read_with(reader, made, monkeypatch), loaded, run_dims(made / "sweep"))


def test_runs_table_paths_are_relative_to_the_sweep(made):
    runs = pq.read_table(made / "sweep" / "runs.parquet")
    assert runs.schema.field("path").type == pa.string() and runs.schema.field("iterates_file").type == pa.string()
    for path, file in zip(runs.column("path").to_pylist(), runs.column("iterates_file").to_pylist()):
        assert not path.startswith("/") and (made / "sweep" / path / "run.json").is_file()
        assert file == f"{path}/iterates.parquet"
    assert runs.schema.metadata[b"optlab.launch_dir"].decode() == str(made)


def test_a_copied_sweep_reads_the_same_through_its_runs_table(made, tmp_path, monkeypatch):
    _, loaded = optlab.load(made / "sweep")
    dims = run_dims(made / "sweep")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(made / "sweep", elsewhere / "sweep")
    (made / "sweep").rename(made / "away")  # nothing may still point into the original
    try:
        for reader in READERS:
            assert_same_iterates(read_with(reader, elsewhere, monkeypatch), loaded, dims)
        _, again = optlab.load(elsewhere / "sweep")
        pd.testing.assert_frame_equal(again, loaded)
    finally:
        (made / "away").rename(made / "sweep")
