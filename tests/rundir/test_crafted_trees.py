"""optlab.load against crafted trees: one bad file is a warning naming it, never a failure; no
symlink out of the tree is followed; extension types are refused; runs are never counted twice."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import optlab

from .test_damaged_files import load_with_warnings, sweep  # noqa: F401 - the shared two-run sweep


@pytest.fixture
def tree(sweep, tmp_path):  # noqa: F811
    return shutil.copytree(sweep, tmp_path / "t")


def ids(runs) -> dict[str, str]:
    return {os.path.basename(p): r for p, r in zip(runs.path, runs.run_id)}


@pytest.mark.parametrize("field, value", [("objective_params", [1, 2]), ("solver_params", "lr=1"),
                                          ("stop", {"max_iter": "many"}), ("x0", [[1]]), ("iterations", -3),
                                          ("status", "exploded"), ("run_id", "../../etc")])
def test_record_with_a_field_of_the_wrong_type_is_skipped(tree, field, value):
    bad = tree / "1" / "run.json"
    bad.write_text(json.dumps({**json.loads(bad.read_text()), field: value}))
    runs, its, messages = load_with_warnings(tree)
    assert list(runs.solver) == ["gd"] and set(its.run_id) == set(runs.run_id)
    assert any(str(bad) in m and field in m for m in messages), messages


def test_deeply_nested_json_is_skipped(tree):
    bad = tree / "1" / "run.json"
    bad.write_text("[" * 200_000 + "]" * 200_000)
    runs, _, messages = load_with_warnings(tree)
    assert len(runs) == 1 and any(str(bad) in m for m in messages)


def rewrite_iterates(path, change) -> None:
    table = pq.read_table(path)
    pq.write_table(change(table), path)


@pytest.mark.parametrize("damage", ["iter as strings", "another run id column", "another run id in metadata",
                                    "a foreign column"])
def test_iterates_of_another_layout_are_skipped(tree, damage):
    bad = tree / "0" / "iterates.parquet"

    def change(table):
        if damage == "iter as strings":
            return table.set_column(table.schema.get_field_index("iter"), "iter",
                                    pa.array([str(v) for v in table.column("iter").to_pylist()]))
        if damage == "another run id column":
            return table.set_column(table.schema.get_field_index("run_id"), "run_id",
                                    pa.array(["someoneelse"] * table.num_rows))
        if damage == "another run id in metadata":
            return table.replace_schema_metadata({**table.schema.metadata, b"optlab.run_id": b"someoneelse"})
        return table.append_column("payload", pa.array(["x"] * table.num_rows))

    rewrite_iterates(bad, change)
    runs, its, messages = load_with_warnings(tree)
    assert len(runs) == 2  # the record stays: the run's fate is known even if its curve is not
    assert set(its.run_id) == {ids(runs)["1"]}
    assert any(str(bad) in m for m in messages), messages


def test_arrow_extension_types_are_refused_never_unpickled(tree, tmp_path):
    """A crafted file declaring pyarrow's pickled extension type (CVE-2023-47248): read, it would run
    a command; it is skipped with a warning and the command never runs."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    class Crafted(pa.ExtensionType):
        def __init__(self):
            super().__init__(pa.float64(), "arrow.py_extension_type")

        def __arrow_ext_serialize__(self):
            return pickle.dumps(Payload())

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            return cls()

    bad = tree / "0" / "iterates.parquet"
    table = pq.read_table(bad)
    storage = table.column("f").combine_chunks()
    crafted = pa.ExtensionArray.from_storage(Crafted(), storage)
    pq.write_table(table.set_column(table.schema.get_field_index("f"), "f", crafted), bad)
    runs, its, messages = load_with_warnings(tree)
    assert not marker.exists()
    assert set(its.run_id) == {ids(runs)["1"]}
    assert any(str(bad) in m and "extension type" in m for m in messages), messages


def test_symlinks_out_of_the_tree_are_not_followed(tree, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(tree / "0", outside)
    (tree / "1" / "iterates.parquet").unlink()
    (tree / "1" / "iterates.parquet").symlink_to(outside / "iterates.parquet")
    (tree / "linked").symlink_to(outside, target_is_directory=True)
    runs, its, messages = load_with_warnings(tree)
    assert len(runs) == 2 and set(its.run_id) == {ids(runs)["0"]}
    assert any(str(tree / "1" / "iterates.parquet") in m and "symlink" in m for m in messages)
    assert any("not following 1 symlinked folder" in m for m in messages)
    # A link inside the tree is followed.
    (tree / "0" / "iterates.parquet").rename(tree / "0" / "kept.parquet")
    (tree / "0" / "iterates.parquet").symlink_to(tree / "0" / "kept.parquet")
    runs, its, _ = load_with_warnings(tree)
    assert set(its.run_id) == {ids(runs)["0"]} and len(its) == runs.iterations[runs.solver == "gd"].item() + 1


def test_orphan_iterates_and_copied_runs_are_warned_about(tree):
    (tree / "1" / "run.json").unlink()
    shutil.copytree(tree / "0", tree / "copy")
    runs, its, messages = load_with_warnings(tree)
    assert len(runs) == 1 and its.groupby("run_id").size().item() == runs.iterations[0] + 1  # not doubled
    assert any(str(tree / "1") in m and "iterates without a run.json" in m for m in messages)
    assert any(str(tree / "copy") in m and "also the run in" in m for m in messages)


def test_a_run_file_path_reads_its_run(tree):
    for name in ("iterates.parquet", "run.json"):
        runs, its = optlab.load(tree / "0" / name)
        assert len(runs) == 1 and len(its) == runs.iterations[0] + 1
    with pytest.raises(ValueError, match="is a file; allowed: a run directory"):
        optlab.load(tree / "0" / ".hydra" / "config.yaml")


def test_files_without_a_run_id_column_still_read(tree):
    """Iterate files written before the run id was a column get their directory's run id."""
    path = tree / "0" / "iterates.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["run_id"]).replace_schema_metadata(None), path)
    runs, its = optlab.load(tree)
    assert its.groupby("run_id").size().loc[list(runs.run_id)].tolist() == (runs.iterations + 1).tolist()


def test_load_as_arrow_and_polars(tree):
    runs, its = optlab.load(tree, as_="arrow")
    assert isinstance(its, pa.Table) and its.schema.field("iter").type == pa.int64()
    assert runs.schema.field("solver.lr").type == pa.float64() or "solver.lr" not in runs.column_names
    assert runs.schema.field("x0").type == pa.list_(pa.float64())
    pl = pytest.importorskip("polars", reason="polars is in the test extra")
    runs_pl, its_pl = optlab.load(tree, as_="polars")
    assert isinstance(its_pl, pl.DataFrame) and its_pl.height == its.num_rows and runs_pl.height == 2
    with pytest.raises(ValueError, match="as_='numpy' is unknown; allowed: pandas, arrow, polars"):
        optlab.load(tree, as_="numpy")
    np.testing.assert_array_equal(its.column("iter").to_numpy(), its_pl["iter"].to_numpy())


def test_report_of_a_missing_path_creates_nothing(tmp_path):
    import subprocess
    import sys

    from ..conftest import REPO

    out = subprocess.run([sys.executable, "-m", "optlab.report", "missing/path"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 2 and "missing/path does not exist" in out.stderr
    assert list(tmp_path.iterdir()) == []  # no stray report/ folder
