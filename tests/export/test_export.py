"""``python -m optlab.export {coco,ioh}``: the runs of a BBOB sweep read back by COCO's cocopp and by
iohinspector, with the same average runtimes as the report's table; other objectives mapped to
the suite ``optlab``; bad input is one line and exit 2."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import optlab
from optlab.report.repeats import TARGETS, target_name

from ..conftest import REPO, run_cli

pytest.importorskip("cocoex")

BBOB_SWEEP = ["-m", "objective=bbob", "objective.function=1,8", "objective.instance=1,2", "objective.dim=2",
              "solver=bfgs,nelder_mead", "starts=random", "starts.n=3", "stop.max_fev=400", "stop.target=1e-8",
              "report.auto=false"]


def export_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "optlab.export", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def bbob(tmp_path_factory):
    """A BBOB sweep, its runs and iterates, the report's aRT table, and its COCO and IOH exports."""
    from optlab.export import export
    from optlab.report import read
    from optlab.report.comparisons import comparison_of

    base = tmp_path_factory.mktemp("export")
    root = base / "sweep"
    out = run_cli(*BBOB_SWEEP, f"hydra.sweep.dir={root}", cwd=base)
    assert out.returncode == 0, out.stderr
    for fmt in ("coco", "ioh"):  # (the command line's own path: test_other_objectives_map_to_the_optlab_suite)
        assert export(fmt, [root], base / fmt) == base / fmt
    runs, its = optlab.load(root)
    return base, runs, its, comparison_of(read(root)).art


def test_cocopp_reads_the_same_average_runtimes(bbob):
    base, runs, _, art = bbob
    pytest.importorskip("cocopp")  # the export extra
    from cocopp import findfiles, pproc

    folders = sorted((base / "coco" / "bbob").iterdir())
    assert [f.name for f in folders] == ["bfgs", "nelder_mead"]
    compared = 0
    for folder in folders:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            datasets = pproc.DataSetList(findfiles.main(str(folder)))
        assert sorted((ds.funcId, ds.dim) for ds in datasets) == [(1, 2), (8, 2)]
        for ds in datasets:
            assert sorted(ds.instancenumbers) == [1, 1, 1, 2, 2, 2]
            row = art[(art.family == f"bbob (function={ds.funcId})") & (art.solver_setting == folder.name)]
            mine = [row[f"aRT_{target_name(t)}"].iloc[0] for t in TARGETS]
            assert ds.detERT(list(TARGETS)) == mine  # to the evaluation, and beyond: the same floats
            compared += sum(math.isfinite(v) for v in mine)
            here = runs[(runs.solver == folder.name) & (runs["objective.function"] == ds.funcId)]
            assert sorted(ds.maxevals) == sorted(here.nfev)  # every evaluation the runs made
    assert compared >= 10


@pytest.mark.slow
def test_cocopp_post_processes_the_export(bbob):
    """COCO's whole post-processing (figures, tables, HTML) on the export, one folder per algorithm."""
    base, *_ = bbob
    pytest.importorskip("cocopp")
    folders = [str(f) for f in sorted((base / "coco" / "bbob").iterdir())]
    done = subprocess.run([sys.executable, "-m", "cocopp", "-o", str(base / "ppdata"), *folders],
                          capture_output=True, text=True, timeout=1200, cwd=base)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Data consistent" in done.stdout and "Traceback" not in done.stderr
    assert list((base / "ppdata").rglob("index.html"))


def test_iohinspector_reads_the_runs(bbob):
    base, runs, its, _ = bbob
    iohinspector = pytest.importorskip("iohinspector")  # the export extra

    manager = iohinspector.DataManager()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not one file skipped
        manager.add_folder(str(base / "ioh"))
    overview = manager.overview.to_pandas()
    assert len(overview) == len(runs) == 24
    assert sorted(overview.function_name.unique()) == ["Rosenbrock", "Sphere"]
    data = manager.load(monotonic=True, include_meta_data=True).to_pandas()
    ids = {}  # iohinspector's (algorithm, function, run number) -> optlab's run id, from the JSON files
    for path in (base / "ioh").rglob("*.json"):
        meta = json.loads(path.read_text())
        for scenario in meta["scenarios"]:
            for k, run in enumerate(scenario["runs"], 1):
                ids[(meta["algorithm"]["name"], meta["function_id"], k)] = run["optlab_run_id"]
    by_id = runs.set_index("run_id")
    for (algorithm, function, number), g in data.groupby(["algorithm_name", "function_id", "run_id"]):
        run_id = ids[(algorithm, function, number)]
        r = by_id.loc[run_id]
        assert g.evals.iloc[0] == r.nfev and g.instance.iloc[0] == r["objective.instance"]
        mine = its[its.run_id == run_id].sort_values("iter")
        best = np.minimum.accumulate(np.maximum(mine.f.to_numpy() - r.f_star, 0.0))
        nfev = mine.nfev.to_numpy().copy()
        nfev[0] = 1
        for t in (1e-1, 1e-5):  # the evaluations to reach a target, in both
            hit = np.flatnonzero(best <= t)
            theirs = g.evaluations[g.raw_y <= t]
            assert (theirs.iloc[0] if len(theirs) else None) == (nfev[hit[0]] if hit.size else None)


@pytest.mark.slow
def test_other_objectives_map_to_the_optlab_suite(tmp_path):
    root = tmp_path / "sweep"
    out = run_cli("-m", "objective=quadratic", "objective.seed=3,1", "objective.cond=10,100", "solver=bfgs",
                  "x0=[0.5,-1],[2,2]", "report.auto=false", f"hydra.sweep.dir={root}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    done = export_cli("coco", str(root), "--out", str(tmp_path / "coco"), "--cost", "evals")
    assert done.returncode == 0 and done.stdout.strip() == str(tmp_path / "coco"), done.stderr
    problems = pd.read_csv(tmp_path / "coco" / "problems.csv")
    assert set(problems.suite) == {"optlab"} and problems.f_star_known.all()
    # each condition number is a function, each seed an instance (in numeric order: seed 1 -> 1, seed 3 -> 2)
    assert sorted(zip(problems.function_id, problems.instance)) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for row in problems.itertuples():
        options = json.loads(row.options)
        assert row.instance == {1: 1, 3: 2}[options["seed"]]
        assert row.function == f"quadratic_cond={options['cond']}"
    info = (tmp_path / "coco" / "optlab" / "bfgs" / "bbobexp_f1.info").read_text()
    assert info.startswith("suite = 'optlab', funcId = 1, DIM = 2,")
    items = info.splitlines()[2].split(", ")[1:]  # instance:evaluations|precision, for 2 seeds x 2 starts
    assert sorted(item.split(":")[0] for item in items) == ["1", "1", "2", "2"]
    iohinspector = pytest.importorskip("iohinspector")
    manager = iohinspector.DataManager()
    manager.add_folder(str(tmp_path / "coco"))  # its reader of COCO's format
    assert len(manager.overview) == 8


def test_improvements_by_hand():
    from optlab.export.runs import improvements

    f = np.array([9.0, 7.0, 8.0, np.nan, 3.0, 3.0, 2.5, 1.0])  # f* = 1
    counts = np.array([5, 10, 15, 20, 20, 25, 25, 31])
    evals, best, values = improvements(f, counts, 1.0)
    # the start at evaluation 1; 8.0, NaN and the repeated 3.0 are no improvement; two at count 25: the last
    np.testing.assert_array_equal(evals, [1, 10, 20, 25, 31])
    np.testing.assert_array_equal(best, [8.0, 6.0, 2.0, 1.5, 0.0])
    np.testing.assert_array_equal(values, [9.0, 7.0, 3.0, 2.5, 1.0])


@pytest.mark.parametrize("args, message", [
    (["coco", "no/such/sweep", "--out", "x"], "no/such/sweep does not exist"),
    (["coco", ".", "--out", "x"], "no runs with iterates"),
    (["coco", ".", "--out", "."], "is not an empty folder"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    (tmp_path / "something").write_text("")
    done = export_cli(*args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr
    assert done.stderr.startswith("optlab.export: error:") and done.stderr.count("\n") == 1
    assert not (tmp_path / "x").exists()
