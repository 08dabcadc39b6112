"""The sweep report: built from a tree of real runs (with broken ones mixed in), its files,
tables and numbers checked against the iterates and against hand computations."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import optlab
from optlab.engine.stopping import Stop
from optlab.objectives import DoubleWell, Rosenbrock
from optlab.objectives.base import Objective
from optlab.report import build_report
from optlab.report.basins import classify
from optlab.report.profiles import data_profile, performance_profile
from optlab.rundir.store import write_invalid
from optlab.solvers import SOLVERS

from ..conftest import REPO, multi_start
from ..conftest import to_dir as run_to_dir

TOL = 1e-6


class Bowl(Objective):
    """A user objective the report cannot rebuild (not in the registry)."""

    name = "user_bowl"

    def __init__(self) -> None:
        self.dim, self.x0, self.f_star = 2, np.array([1.0, 1.0]), None
        self.box = np.array([[-2.0, 2.0], [-2.0, 2.0]])

    def f(self, x):
        return (x * x).sum() + 3.0


def gd(lr: float):
    return SOLVERS["gd"](lr=lr)


def load_quietly(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the broken dirs, checked in their own test
        return optlab.load(path)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """gd at three rates (one diverges) and Newton on Rosenbrock from two starts, a multi-start
    Newton run on the double well, a user objective, an invalid job, and three broken dirs."""
    root = tmp_path_factory.mktemp("tree")
    stop = Stop(max_iter=150, gtol=1e-10)
    job = 0
    for lr in (1e-3, 3e-3, 0.05):
        for x0 in ([0.0, 2.0], [-1.2, 1.0]):
            run_to_dir(root / f"{job}", Rosenbrock(), gd(lr), x0, stop)
            job += 1
    for x0 in ([0.0, 2.0], [-1.2, 1.0]):
        run_to_dir(root / f"{job}", Rosenbrock(), SOLVERS["newton"](), x0, stop)
        job += 1
    dw = DoubleWell()
    multi_start(root / f"{job}", dw, SOLVERS["newton"](), stop, {"kind": "grid", "n": 9})
    run_to_dir(root / "bowl", Bowl(), gd(0.1), None, stop)
    write_invalid(root / "invalid", "solver.lr=-1 is out of range; allowed: a number > 0",
                  {"overrides": ["solver.lr=-1"], "choices": {"objective": "rosenbrock", "solver": "gd"}})
    # A hostile name: everything taken from the runs must be escaped on the page.
    run_to_dir(root / "x<script>alert(1)</script>", DoubleWell(), gd(0.01), [0.5], Stop(max_iter=20))
    (root / "corrupt").mkdir()
    (root / "corrupt" / "run.json").write_text('{"run_id": "abc", "status": "conv')
    half = root / "half"
    run_to_dir(half, DoubleWell(), gd(0.01), None, Stop(max_iter=30))
    record = json.loads((half / "run.json").read_text())
    (half / "run.json").write_text(json.dumps({**record, "status": "running"}))
    bad_parquet = root / "bad_parquet"
    run_to_dir(bad_parquet, DoubleWell(), gd(0.01), None, Stop(max_iter=30))
    (bad_parquet / "iterates.parquet").write_bytes(b"PAR1 not really")
    return root


@pytest.fixture(scope="module")
def report(tree) -> tuple[Path, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = build_report(tree, tree.parent / "report", tol=TOL, svg=True)
    return index, [str(w.message) for w in caught]


def figure_files(index: Path) -> list[str]:
    html = index.read_text()
    return sorted(set(re.findall(r"(?:src|href)='([^']+\.(?:png|svg))'", html)))


def test_every_figure_named_in_the_page_exists_and_is_an_image(report):
    index, _ = report
    names = figure_files(index)
    stems = {Path(n).stem for n in names}
    assert {"convergence_iteration", "convergence_time", "convergence_evaluations", "grad_norm_iter",
            "profiles"} <= stems
    assert any(s.startswith("paths_rosenbrock") for s in stems)
    assert any(s.startswith("paths_double_well") for s in stems)
    assert any(s.startswith("heatmap_rosenbrock") for s in stems)
    assert any(s.startswith("basins_double_well") for s in stems)
    # cannot be rebuilt: its paths without contours, on the box of its runs (see tests/report/test_figures.py)
    assert len([s for s in stems if s.startswith("paths") and "user_bowl" in s]) == 1
    for name in names:
        path = index.parent / name
        assert path.is_file(), name
        if name.endswith(".png"):
            with Image.open(path) as im:
                im.verify()
                assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 150
        else:
            assert ET.parse(path).getroot().tag.endswith("svg")
    for stem in stems:  # every figure in both formats
        assert f"{stem}.png" in names and f"{stem}.svg" in names


def test_broken_run_dirs_are_skipped_with_a_warning(report, tree):
    index, messages = report
    joined = "\n".join(messages)
    for broken in ("corrupt", "half", "bad_parquet"):
        assert str(tree / broken) in joined
    html = index.read_text()
    assert "item(s) skipped" in html and "incomplete run" in html
    for broken in ("corrupt", "half", "bad_parquet"):
        assert str(tree / broken) in html


def test_summary_has_one_row_per_run_with_the_right_statuses(report, tree):
    index, _ = report
    summary = pd.read_csv(index.parent / "summary.csv")
    runs, _ = load_quietly(tree)
    usable = runs[~runs.path.str.endswith(("half", "bad_parquet"))]
    assert len(summary) == len(usable) == 6 + 2 + 9 + 1 + 1 + 1
    assert summary.run_id.is_unique and set(summary.run_id) == set(usable.run_id)
    assert summary.status.value_counts().to_dict() == usable.status.value_counts().to_dict()
    assert (summary.status == "diverged").sum() == 2  # gd at lr 0.05 from both starts
    assert (summary.status == "invalid").sum() == 1
    by_solver = pd.read_csv(index.parent / "solvers.csv")
    assert by_solver.runs.sum() == len(summary)
    assert by_solver.diverged.sum() == 2


def test_iterations_to_tolerance_match_the_iterates(report, tree):
    index, _ = report
    summary = pd.read_csv(index.parent / "summary.csv").set_index("run_id")
    runs, its = load_quietly(tree)
    for r in runs[runs.solver == "newton"].itertuples():
        f = its[its.run_id == r.run_id].sort_values("iter")
        gap = f.f.to_numpy() - r.f_star
        expected = np.flatnonzero(gap <= TOL * gap[0])
        row = summary.loc[r.run_id]
        if expected.size:
            assert row.iterations_to_tol == f.iter.to_numpy()[expected[0]]
            assert row.nfev_to_tol == f.nfev.to_numpy()[expected[0]]
        else:
            assert math.isnan(row.iterations_to_tol)
    # Newton on Rosenbrock from (0, 2) is solved within its 6 steps; gd at lr 1e-3 is not in 150.
    newton = summary[(summary.solver == "newton") & (summary.problem == "rosenbrock")]
    assert (newton.iterations_to_tol <= 6).all()
    assert summary[(summary.solver == "gd") & (summary.lr == 1e-3)].iterations_to_tol.isna().all()


def test_unknown_f_star_uses_the_best_value_found(report):
    index, _ = report
    summary = pd.read_csv(index.parent / "summary.csv")
    bowl = summary[summary.objective == "user_bowl"].iloc[0]
    assert not bowl.f_ref_is_f_star
    assert bowl.f_ref == pytest.approx(bowl.f_final) and bowl.gap_final == pytest.approx(0.0, abs=1e-15)


def test_page_escapes_strings_from_the_runs(report):
    html = report[0].read_text()
    # (the page may break long names into lines with <wbr>, after a "/" for one)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/" in html
    pages = list((report[0].parent / "runs").glob("*.html"))
    assert any("alert(1)" in p.read_text() for p in pages)
    assert not any("<script>" in p.read_text() for p in pages)


def test_performance_profile_by_hand():
    inf = np.inf
    cost = np.array([[10.0, 20.0, inf],   # solver 0 best
                     [40.0, 10.0, 20.0],  # solver 1 best; 0 is 4x, 2 is 2x
                     [inf, inf, inf]])    # nobody solves
    rho = performance_profile(cost, np.array([1.0, 2.0, 4.0, 100.0]))
    np.testing.assert_allclose(rho * 3, [[1, 1, 2, 2], [1, 2, 2, 2], [0, 1, 1, 1]])
    d = data_profile(cost, np.array([1.0, 1.0, 3.0]), np.array([5.0, 10.0, 20.0]))
    np.testing.assert_allclose(d * 3, [[1, 1, 2], [1, 2, 2], [0, 1, 1]])


def test_basin_classification():
    minima = np.array([[-1.0], [1.0]])
    assert classify(np.array([0.999]), "converged", minima, 0.05) == 1
    assert classify(np.array([-1.01]), "max_iter", minima, 0.05) == 0
    assert classify(np.array([0.0]), "converged", minima, 0.05) == "elsewhere"
    assert classify(np.array([np.nan]), "diverged", minima, 0.05) == "diverged"
    assert classify(np.array([1.0]), "failed", minima, 0.05) == "failed"


def test_command_line(tree, tmp_path):
    out = subprocess.run([sys.executable, "-m", "optlab.report", str(tree / "0"), "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "r" / "index.html")
    assert len(pd.read_csv(tmp_path / "r" / "summary.csv")) == 1
    missing = subprocess.run([sys.executable, "-m", "optlab.report", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
    assert missing.returncode == 2 and missing.stderr.startswith("optlab.report: error: ")


def test_import_optlab_loads_no_plotting():
    code = ("import sys, optlab, optlab.report; optlab.load; "
            "print(sorted(m for m in ('matplotlib', 'pandas', 'optlab.report.style') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_tree_where_nothing_ran_still_gets_a_page(tmp_path):
    write_invalid(tmp_path / "0", "solver.lr=-1 is out of range; allowed: a number > 0",
                  {"overrides": ["solver.lr=-1"], "choices": {"objective": "rosenbrock", "solver": "gd"}})
    index = build_report(tmp_path, tmp_path / "report")
    assert "No figures" in index.read_text() and not figure_files(index)
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert summary.status.tolist() == ["invalid"] and summary.solver.tolist() == ["gd"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no runs found"):
        build_report(tmp_path / "empty")
    assert not (tmp_path / "empty" / "report").exists()
