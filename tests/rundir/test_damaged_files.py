"""Reading: corrupt, truncated or foreign files are skipped with a warning naming them; nothing is executed."""

from __future__ import annotations

import json
import pickle

import pytest

import optlab

from ..conftest import run_cli


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    out = run_cli("-m", "solver=gd,newton", "objective=double_well", "stop.max_iter=50", "report.auto=false",
                  f"hydra.sweep.dir={root}")
    assert out.returncode == 0, out.stderr
    return root


def copy_tree(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def load_with_warnings(path):
    with pytest.warns(UserWarning) as caught:
        runs, its = optlab.load(path)
    return runs, its, [str(w.message) for w in caught]


@pytest.mark.parametrize("damage", ["garbage json", "json list", "no run_id", "empty file", "binary"])
def test_corrupt_record_is_skipped_with_a_warning(sweep, tmp_path, damage):
    root = copy_tree(sweep, tmp_path / "t")
    bad = root / "1" / "run.json"
    content = {"garbage json": "{not json", "json list": "[1, 2]", "no run_id": json.dumps({"status": "x"}),
               "empty file": "", "binary": None}[damage]
    if content is None:
        bad.write_bytes(b"\x00\xff\xfe" * 10)
    else:
        bad.write_text(content)
    runs, its, messages = load_with_warnings(root)
    assert len(runs) == 1 and runs.solver[0] == "gd"
    assert set(its.run_id) == set(runs.run_id)
    assert any(str(bad) in m for m in messages)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign"])
def test_unreadable_iterates_are_skipped_with_a_warning(sweep, tmp_path, damage):
    root = copy_tree(sweep, tmp_path / "t")
    bad = root / "0" / "iterates.parquet"
    if damage == "truncated":
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"PAR1 but not really")
    else:
        bad.write_text("iter,f\n0,1\n")
    runs, its, messages = load_with_warnings(root)
    assert len(runs) == 2  # the run's record stays: its fate is known even if its curve is lost
    assert set(its.run_id) == {runs.run_id[runs.solver == "newton"].item()}
    assert any(str(bad) in m for m in messages)


def test_pickles_and_stray_files_are_never_read(sweep, tmp_path, monkeypatch):
    root = copy_tree(sweep, tmp_path / "t")
    (root / "0" / "evil.pkl").write_bytes(pickle.dumps({"a": 1}))
    (root / "notes.txt").write_text("hello")
    (root / "stray").mkdir()
    (root / "stray" / "data.parquet").write_bytes(b"junk")

    def refuse(*args, **kwargs):
        raise AssertionError("pickle must never be used when reading runs")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    runs, its = optlab.load(root)
    assert len(runs) == 2 and set(its.run_id) == set(runs.run_id)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        optlab.load(tmp_path / "does-not-exist")


def test_empty_tree_gives_empty_tables(tmp_path):
    runs, its = optlab.load(tmp_path)
    assert runs.empty and its.empty
