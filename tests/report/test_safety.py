"""The report with records it should not trust, paths that do not hold runs, several paths, and a
caller whose matplotlib settings it must leave alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from optlab import report
from optlab.report import build_report
from optlab.report.build import ReportError

from ..conftest import REPO
from .test_rules import decay, write_run


def build_quietly(*args, **kw) -> tuple[Path, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = build_report(*args, progress=False, **kw)
    return index, [str(w.message) for w in caught]


def test_records_with_bad_fields_are_skipped_and_listed(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "good", decay(5.0, 0.5, 10))
    bad = {"f_star_text": {"f_star": "abc"}, "x0_strings": {"x0": ["a", "b"], "x": np.ones((10, 2))},
           "dim_text": {"dim": "6000"}, "status_odd": {"status": "weird"},
           "params_nested": {"objective_params": {"a": {"b": 1}}}}
    for name, fields in bad.items():
        write_run(root, name, decay(5.0, 0.5, 10), **fields)
    index, messages = build_quietly(root, tmp_path / "out")
    html = index.read_text()
    for name in bad:
        assert any(str(root / name / "run.json") in m for m in messages), name
        assert str(root / name / "run.json") in html
    assert len(pd.read_csv(tmp_path / "out" / "summary.csv")) == 1


def test_names_with_mathtext_and_formulas_are_text(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "a", decay(5.0, 0.5, 10), solver=r"$\cmd$", sparams={}, message="=cmd|' /C calc'!A0")
    write_run(root, "b", decay(5.0, 0.7, 10), solver="+gd", sparams={}, message="@SUM(A1)")
    data = report.read(root)
    figures = report.figures(data)
    assert {"convergence_iteration", "paths_rosenbrock_0", "stats_ranking"} <= set(figures)
    for fig in figures.values():
        texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
        assert all(not t.get_parse_math() for t in texts)
    index, _ = build_quietly(root, tmp_path / "out")
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert set(summary.message) == {"'=cmd|' /C calc'!A0", "'@SUM(A1)"}
    assert set(summary.solver) == {"$\\cmd$", "'+gd"}
    assert r"$\cmd$" in index.read_text()


def test_problems_are_rebuilt_only_small_and_on_request(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "quad", decay(5.0, 0.5, 10), objective="quadratic", oparams={"dim": 6000}, dim=6000,
              x0=[0.1] * 6000)
    write_run(root, "rb", decay(5.0, 0.5, 10), objective="rosenbrock", oparams={"dim": 300_000_000})
    data_file = tmp_path / "elsewhere" / "data.csv"
    data_file.parent.mkdir()
    data_file.write_text("1,0,1\n0,1,2\n1,1,3.5\n")
    write_run(root, "ls", decay(5.0, 0.5, 10), objective="least_squares", oparams={"m": 3, "n": 2,
                                                                                  "data": str(data_file)})
    t0 = time.perf_counter()
    data = report.read(root)
    notes = {p.name: (p.plottable, p.note) for p in data.problems.values()}
    assert time.perf_counter() - t0 < 10
    assert notes["quadratic"][0] is False
    assert not any(p._built for p in data.problems.values() if p.name == "quadratic")  # never even tried
    assert notes["rosenbrock"][0] is False and "too large" in notes["rosenbrock"][1]
    assert notes["least_squares"][0] is False and "--data" in notes["least_squares"][1]
    asked = report.read(root, data_files=True)
    assert [p.plottable for p in asked.problems.values() if p.name == "least_squares"] == [True]


def test_a_relative_data_path_resolves_from_where_the_sweep_started(tmp_path):
    launch = tmp_path / "project"
    (launch / "data").mkdir(parents=True)
    (launch / "data" / "z.csv").write_text("1,0,1\n0,1,2\n1,1,3.5\n")
    run = write_run(tmp_path / "sweep", "0", decay(5.0, 0.5, 10), objective="least_squares",
                    oparams={"m": 3, "n": 2, "data": "data/z.csv"})
    (run / ".hydra").mkdir()
    (run / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    cwd: {launch}\n")
    (info,) = report.read(tmp_path / "sweep", data_files=True).problems.values()
    assert info.plottable, info.note


def test_symlinks_out_of_the_tree_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    real = write_run(outside, "run", decay(5.0, 0.5, 10))
    root = tmp_path / "tree"
    write_run(root, "mine", decay(5.0, 0.5, 10))
    (root / "linked_dir").symlink_to(real, target_is_directory=True)
    (root / "linked_record").mkdir()
    (root / "linked_record" / "run.json").symlink_to(real / "run.json")
    sneaky = write_run(root, "sneaky", decay(5.0, 0.5, 10))
    (sneaky / "iterates.parquet").unlink()
    (sneaky / "iterates.parquet").symlink_to(real / "iterates.parquet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = report.read(root)
    assert sum("symlink out of the tree" in str(w.message) for w in caught) == 2
    assert list(data.runs.path) == [str(root / "mine")]
    assert any("symlinked folder" in n for n in data.notes)
    links = tmp_path / "links"  # a folder of symlinks only: an error that says why, not 0 runs
    links.mkdir()
    (links / "a").symlink_to(real, target_is_directory=True)
    with pytest.raises(ReportError, match="no runs found.*symlinked folder"):
        build_report(links, progress=False)
    assert not (links / "report").exists()


@pytest.mark.slow  # (4 to 6 s: whole sweeps in subprocesses; the README's command stays under 6 minutes)
def test_command_line_paths(tmp_path):
    for sweep in ("a", "b"):
        write_run(tmp_path / sweep, "0", decay(5.0, 0.5, 10))
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "optlab.report", *args], capture_output=True, text=True,
                              timeout=300, cwd=REPO, env=env)

    out = cli(str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "both"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "both" / "index.html")
    assert "optlab.report: read 2 run records" in out.stderr and "page written" in out.stderr
    assert sorted(pd.read_csv(tmp_path / "both" / "summary.csv").sweep) == ["a", "b"]
    for args in ([str(tmp_path / "missing")], [str(tmp_path / "a"), str(tmp_path / "b")]):
        bad = cli(*args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1
        assert bad.stderr.startswith("optlab.report: error: ")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "empty").mkdir()
    empty = cli(str(tmp_path / "empty"))
    assert empty.returncode == 2 and "no runs found" in empty.stderr
    assert not (tmp_path / "empty" / "report").exists()


def test_unchanged_runs_are_not_drawn_again(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "a", decay(5.0, 0.5, 10))
    write_run(root, "b", decay(5.0, 0.7, 10), solver="newton", sparams={})
    index, _ = build_quietly(root)
    png = root / "report" / "convergence_iteration.png"
    stamp = png.stat().st_mtime_ns
    assert build_quietly(root)[0] == index and png.stat().st_mtime_ns == stamp
    write_run(root, "c", decay(5.0, 0.6, 10), solver="bfgs", sparams={})
    build_quietly(root)
    assert png.stat().st_mtime_ns != stamp
    assert len(pd.read_csv(root / "report" / "summary.csv")) == 3
    assert not list((root / "report").glob("*.svg"))
    build_quietly(root, svg=True)
    assert (root / "report" / "convergence_iteration.svg").is_file()


def test_the_callers_matplotlib_is_left_alone(tmp_path):
    write_run(tmp_path / "runs", "a", decay(5.0, 0.5, 10))
    write_run(tmp_path / "runs", "b", decay(5.0, 0.5, 10), solver="newton", sparams={})
    with matplotlib.rc_context({"font.size": 13.0, "axes.grid": False, "text.parse_math": True}):
        before = dict(matplotlib.rcParams)
        backend = matplotlib.rcParams._get("backend")
        figs = report.figures(report.read(tmp_path / "runs"))
        build_quietly(tmp_path / "runs")
        assert dict(matplotlib.rcParams) == before and matplotlib.rcParams._get("backend") == backend
    assert figs and all(isinstance(f, Figure) for f in figs.values())
    assert figs["convergence_iteration"].axes[0].get_title() == "rosenbrock"
    code = ("import os, matplotlib; from optlab import report; "
            f"report.build_report({str(tmp_path / 'runs')!r}, {str(tmp_path / 'out')!r}, progress=False); "
            "print(os.environ.get('MPLBACKEND'), 'matplotlib.pyplot' in __import__('sys').modules)")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO,
                         env={**env, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "False"]


def test_many_figures_are_drawn_in_parallel_processes(tmp_path):
    root = tmp_path / "runs"
    for p in range(4):
        for s in range(3):
            write_run(root, f"{p}{s}", decay(5.0, 0.5 + 0.1 * s, 10), objective=f"user{p}", solver=f"s{s}",
                      sparams={})
    index, _ = build_quietly(root, jobs=2)
    names = {p.stem for p in (root / "report").glob("*.png")}
    # the six figures of the runs, the statistics' ranking figures and the paths of each user
    # objective (not rebuilt: without contours)
    assert {"profiles", "solved", "convergence_iteration", "stats_ranking", "paths_user0_0"} <= names
    assert len(names) == 6 + 4 + len({n for n in names if n.startswith("stats_")})
    stamp = json.loads((root / "report" / "report.json").read_text())
    assert sorted(f for f in stamp["files"] if "/" not in f) == sorted(p.name for p in (root / "report").glob("*.png"))
    pages = sorted(f"runs/{p.name}" for p in (root / "report" / "runs").iterdir())
    assert sorted(f for f in stamp["files"] if f.startswith("runs/")) == pages and len(pages) > 12
    assert np.all([n in index.read_text() for n in names])
