"""The report reads run directories through the reader ``optlab.load`` uses: it survives what
``load`` survives (a record nested 100,000 deep among them) and keeps the same runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pandas as pd

import optlab
from optlab.report import build_report
from optlab.report import reader as report_reader
from optlab.rundir import reading

from ..conftest import REPO
from .test_rules import decay, write_run

DEPTH = 100_000


def broken_tree(root):
    """Two good runs and records that ``load`` skips: nested 100,000 deep, not JSON, a field of
    the wrong type, a record that is a list."""
    write_run(root, "good_a", decay(5.0, 0.5, 10))
    write_run(root, "good_b", decay(5.0, 0.7, 12), solver="newton", sparams={})
    for name, text in {"deep": "[" * DEPTH + "]" * DEPTH, "deep_object": '{"a":' * DEPTH + "1" + "}" * DEPTH,
                       "not_json": '{"run_id": "abc", "status": "conv', "a_list": "[1, 2, 3]"}.items():
        (root / name).mkdir()
        (root / name / "run.json").write_text(text)
    bad = write_run(root, "bad_field", decay(5.0, 0.5, 10))
    record = json.loads((bad / "run.json").read_text())
    (bad / "run.json").write_text(json.dumps({**record, "f_star": "abc"}))
    return root


def messages(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, sorted(str(w.message) for w in caught)


def test_the_report_reads_records_through_the_shared_reader(tmp_path, monkeypatch):
    root = broken_tree(tmp_path / "runs")
    calls = {"find_runs": [], "read_record": []}
    for name in calls:
        shared = getattr(reading, name)
        monkeypatch.setattr(reading, name, lambda *a, _f=shared, _n=name, **k: calls[_n].append(a) or _f(*a, **k))
    messages(lambda: report_reader.read_sources([(root, "")]))
    assert [a[0] for a in calls["find_runs"]] == [root]
    assert sorted(a[0] for a in calls["read_record"]) == sorted(root.glob("*/run.json"))  # every record, once


def test_a_record_nested_100000_deep_is_skipped_with_the_warning_load_gives(tmp_path):
    root = broken_tree(tmp_path / "runs")
    (runs, _), load_warnings = messages(lambda: optlab.load(root))
    index, report_warnings = messages(lambda: build_report(root, tmp_path / "out", progress=False))
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert sorted(summary.run_id) == sorted(runs.run_id) and len(runs) == 2
    for name in ("deep", "deep_object", "not_json", "a_list", "bad_field"):
        path = str(root / name / "run.json")
        said = [m for m in load_warnings if path in m]
        assert len(said) == 1, name
        assert said[0] in report_warnings  # the same words
        assert path in index.read_text()  # and listed on the page
    assert any("RecursionError" in m for m in report_warnings)


def test_the_command_line_report_survives_a_deep_record(tmp_path):
    root = broken_tree(tmp_path / "runs")
    done = run_cli_report(str(root), "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"skipping {root / 'deep' / 'run.json'}: not a run record (RecursionError" in done.stderr
    assert (tmp_path / "out" / "index.html").is_file()


def run_cli_report(*args: str) -> subprocess.CompletedProcess:
    """``python -m optlab.report ARGS`` as a user runs it (PYTHONPATH: this repository)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "optlab.report", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)
