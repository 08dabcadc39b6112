"""Every ready experiment in experiments/, run at reduced size as a user would
(``python -m optlab -m +experiment=NAME``), with the report the sweep writes at its end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

import optlab
from optlab.objectives import OBJECTIVES, LeastSquares
from optlab.solvers import SOLVERS

from ..acceptance.test_spine import NEWTON_DOUBLE_WELL
from ..conftest import REPO

EXPERIMENTS = REPO / "experiments"

# Command-line overrides that make each experiment small; the experiment's own sweep stays.
REDUCED = {
    "seed_rosenbrock": ["stop.max_iter=300"],
    "seed_newton_double_well": ["stop.max_iter=300"],
    "seed_least_squares": ["stop.max_iter=300"],
    "lr_sweep": ["stop.max_iter=150", "solver.lr=0.001,0.1"],
    "start_sweep": ["stop.max_iter=150", "starts.n=4"],
    "solver_shootout": ["stop.max_iter=150", "starts.n=2", "objective=rosenbrock,least_squares",
                        "solver=gd,newton,lstsq"],
    "bbob_comparison": ["objective.function=1,8", "objective.instance=1,2", "objective.dim=2", "starts.n=2",
                        "stop.max_fev=300", "solver=bfgs,nelder_mead"],
    "lr_tuning": ["objective=booth,quadratic", "solver=gd,momentum", "solver.lr=0.01,0.1", "starts.n=4",
                  "stop.max_iter=100"],
}
# The report's comparison sections (statistics over repeated runs; tuned comparison): figures and tables.
STATS_FIGURES = {"stats_ranking", "stats_pairs", "stats_profiles", "stats_convergence"}


def sweep_params(name: str) -> dict[str, list[str]]:
    """What the experiment sweeps over, after the reducing overrides, e.g. {"solver": ["gd", "newton"]}."""
    config = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())
    params = {k: str(v).split(",") for k, v in config["hydra"]["sweeper"]["params"].items()}
    for default in config.get("defaults", []):
        if isinstance(default, dict):
            for key, value in default.items():
                params.setdefault(key.replace("override /", ""), [value])
    for override in REDUCED[name]:
        key, value = override.split("=", 1)
        if key in ("objective", "solver"):
            params[key] = value.split(",")
    return params


def missing_plugins(name: str) -> list[str]:
    params = sweep_params(name)
    missing = [f"solver {s}" for s in params.get("solver", []) if s not in SOLVERS]
    missing += [f"objective {o}" for o in params.get("objective", []) if o not in OBJECTIVES | {"bbob": None}]
    for group in ("solver", "objective"):
        missing += [f"{group} config {v}" for v in params.get(group, []) if not (REPO / "conf" / group / f"{v}.yaml")
                    .is_file()]
    return missing


def test_every_experiment_is_covered_and_documented():
    names = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
    assert names == sorted(REDUCED)
    readme = (REPO / "README.md").read_text() + "".join(p.read_text() for p in (REPO / "docs").glob("*.md"))
    for name in names:
        assert f"+experiment={name}" in readme
    assert (REPO / "conf" / "experiment").resolve() == EXPERIMENTS.resolve()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """All runnable experiments, started together (they wait on I/O and start-up as much as on CPU)."""
    root = tmp_path_factory.mktemp("experiments")
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "PYTHONPATH": str(REPO)}
    procs = {}
    for name in REDUCED:
        if missing_plugins(name):
            continue
        args = [sys.executable, "-m", "optlab", "-m", f"+experiment={name}", *REDUCED[name],
                f"hydra.sweep.dir={root / name}"]
        procs[name] = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
    done = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        done[name] = (subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), root / name)
    return done


def experiment(finished, name: str):
    missing = missing_plugins(name)
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)}, not in this checkout")
    out, sweep = finished[name]
    assert out.returncode == 0, out.stderr
    index = sweep / "report" / "index.html"
    assert f"report: {index}" in out.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a sweep of good runs reads without a single warning
        runs, its = optlab.load(sweep)
    return runs, its, index


def check_report(index: Path, runs) -> set[str]:
    """Every figure named in index.html is a valid image; summary.csv has one row per run with the
    runs' status counts. Returns the figure stems."""
    html = index.read_text()
    names = set(re.findall(r"(?:src|href)='([^']+\.(?:png|svg))'", html))
    assert names
    for name in names:
        path = index.parent / name
        if name.endswith(".png"):
            with Image.open(path) as im:
                im.verify()
                assert im.format == "PNG"
        else:
            assert ET.parse(path).getroot().tag.endswith("svg")
    summary = pd.read_csv(index.parent / "summary.csv")
    assert len(summary) == len(runs) and set(summary.run_id) == set(runs.run_id)
    assert summary.status.value_counts().to_dict() == runs.status.value_counts().to_dict()
    assert "item(s) skipped" not in html
    return {Path(n).stem for n in names}


def test_seed_rosenbrock(finished):
    runs, its, index = experiment(finished, "seed_rosenbrock")
    assert sorted(runs.solver) == ["gd", "newton"]
    gd = runs[runs.solver == "gd"].iloc[0]
    assert gd["solver.lr"] == 0.001 and gd.x0 == [0.0, 2.0] and gd.status == "max_iter" and gd.iterations == 300
    newton = runs[runs.solver == "newton"].iloc[0]
    assert newton.status == "converged" and newton.x_final == pytest.approx([1.0, 1.0], abs=1e-10)
    config = yaml.safe_load((EXPERIMENTS / "seed_rosenbrock.yaml").read_text())
    assert config["stop"]["max_iter"] == 50_000 and config["x0"] == [0, 2]  # the note's run, in full
    stems = check_report(index, runs)
    assert {"convergence_iteration", "grad_norm_iter"} <= stems
    assert any(s.startswith("paths_rosenbrock") for s in stems)


def test_seed_newton_double_well(finished):
    runs, its, index = experiment(finished, "seed_newton_double_well")
    newton = runs[runs.solver == "newton"].iloc[0]
    path = its[its.run_id == newton.run_id].sort_values("iter").x_0.to_numpy()
    np.testing.assert_allclose(path, NEWTON_DOUBLE_WELL, rtol=0, atol=1e-12)
    gd = runs[runs.solver == "gd"].iloc[0]
    assert gd.x0 == [2.0] and 1.0 < gd.x_final[0] < 2.0  # slower, from the same side
    assert any(s.startswith("paths_double_well") for s in check_report(index, runs))


def test_seed_least_squares(finished):
    runs, its, index = experiment(finished, "seed_least_squares")
    assert sorted(runs.solver) == ["gd", "lstsq", "newton"]
    obj = LeastSquares()
    expected, *_ = np.linalg.lstsq(obj.A, obj.z, rcond=None)
    for solver in ("newton", "lstsq"):
        r = runs[runs.solver == solver].iloc[0]
        assert r.status == "converged"
        np.testing.assert_allclose(r.x_final, expected, rtol=1e-9)
    gd = runs[runs.solver == "gd"].iloc[0]
    assert np.linalg.norm(np.array(gd.x_final) - expected) < 1e-3
    summary = pd.read_csv(index.parent / "summary.csv")
    assert set(summary.solver) == {"gd", "newton", "lstsq"}
    check_report(index, runs)


def test_lr_sweep(finished):
    runs, its, index = experiment(finished, "lr_sweep")
    assert len(runs) == 3 * 2 * 2  # solvers x rates x starts
    assert (runs.status == "diverged").any()  # gd at 0.1 leaves Rosenbrock's valley
    assert runs[(runs.solver == "gd") & (runs["solver.lr"] == 0.1)].status.eq("diverged").all()
    stems = check_report(index, runs)
    assert any(s.startswith("heatmap_rosenbrock") for s in stems)
    summary = pd.read_csv(index.parent / "summary.csv")
    assert (summary.status == "diverged").sum() == (runs.status == "diverged").sum()


def test_start_sweep(finished):
    runs, its, index = experiment(finished, "start_sweep")
    assert len(runs) == 2 * (4 + 16)  # gd and newton from 4 starts (double well) and 4 x 4 (Himmelblau)
    assert runs.start.map(lambda s: s["kind"]).eq("grid").all()
    newton_dw = runs[(runs.solver == "newton") & (runs.objective == "double_well")]
    for x0, x in zip(newton_dw.x0, newton_dw.x_final):  # each start ends in the minimum on its side
        assert x[0] == pytest.approx(np.sign(x0[0]), abs=1e-8)
    stems = check_report(index, runs)
    assert any(s.startswith("basins_double_well") for s in stems)
    assert any(s.startswith("basins_himmelblau") for s in stems)
    # Newton is drawn to saddles and maxima too: the sweep's line and the report count them apart
    newton_hb = runs[(runs.solver == "newton") & (runs.objective == "himmelblau")]
    saddles, maxima = int((newton_hb.point == "saddle").sum()), int((newton_hb.point == "maximum").sum())
    assert saddles >= 1 and maxima >= 1
    out, sweep = finished["start_sweep"]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("sweep: "))
    assert f"{saddles} converged at a saddle" in line and f"{maxima} converged at a maximum" in line
    import pandas as pd

    summary = pd.read_csv(sweep / "report" / "summary.csv")
    newton_rows = summary[(summary.solver == "newton") & (summary.objective == "himmelblau")]
    assert (newton_rows.verdict == "converged at a saddle").sum() == saddles
    assert (newton_rows.verdict == "converged at a maximum").sum() == maxima


def test_solver_shootout(finished):
    runs, its, index = experiment(finished, "solver_shootout")
    solvers = sweep_params("solver_shootout")["solver"]
    ran = runs[runs.status != "invalid"]
    assert set(ran.solver) == set(solvers) and len(ran) == (len(solvers) - 1) * 2 * 2 + 2  # lstsq: least squares
    skipped = runs[runs.status == "invalid"]  # lstsq on rosenbrock: one record for the job
    assert skipped.objective.tolist() == ["rosenbrock"] and skipped.solver.tolist() == ["lstsq"]
    assert skipped.not_applicable.all()
    full = yaml.safe_load((EXPERIMENTS / "solver_shootout.yaml").read_text())["hydra"]["sweeper"]["params"]
    assert set(full["solver"].split(",")) == set(SOLVERS)  # every solver
    stems = check_report(index, runs)
    assert {"profiles"} | STATS_FIGURES <= stems
    for table in ("art.csv", "pairs.csv", "ranking.csv"):
        assert len(pd.read_csv(index.parent / table))


def test_bbob_comparison(finished):
    pytest.importorskip("cocoex")  # objective=bbob: the bbob extra
    runs, its, index = experiment(finished, "bbob_comparison")
    assert len(runs) == 2 * 2 * 2 * 2  # functions x instances x solvers x starts
    assert set(runs["objective.instance"]) == {1, 2} and set(runs.solver) == {"bfgs", "nelder_mead"}
    assert {"profiles_coco"} | STATS_FIGURES <= check_report(index, runs)
    art = pd.read_csv(index.parent / "art.csv")
    assert len(art) == 4 and (art.runs == 4).all() and {"aRT_1e-7", "aRT_1e-7_lo", "aRT_1e-7_hi"} <= set(art)
    pairs = pd.read_csv(index.parent / "pairs.csv")
    assert len(pairs) == 1 and pairs.units.iloc[0] == 8 and "p_holm" in pairs
    full = yaml.safe_load((EXPERIMENTS / "bbob_comparison.yaml").read_text())
    params = full["hydra"]["sweeper"]["params"]  # the ready experiment: 4 functions x 3 instances x 3 solvers x 5
    assert [len(str(params[k]).split(",")) for k in ("objective.function", "objective.instance", "solver")] == [
        4, 3, 3] and full["starts"]["n"] == 5


def test_lr_tuning(finished):
    runs, its, index = experiment(finished, "lr_tuning")
    assert len(runs) == 2 * 2 * 2 * 4  # objectives x solvers x rates x starts
    assert {"tuned_profiles"} | STATS_FIGURES <= check_report(index, runs)
    tuned = pd.read_csv(index.parent / "tuned.csv")
    assert len(tuned) == 4 and (tuned.candidates == 2).all() and (tuned.tuning_runs == 2 * 2).all()
    assert set(tuned.chosen) <= {"lr=0.01", "lr=0.1"} and (tuned.tuning_cost > 0).all()
    assert "cost including tuning" in index.read_text()


@pytest.mark.slow
def test_experiments_ship_in_the_wheel(tmp_path):
    """A plain install (no source tree) finds +experiment=NAME: conf/experiment is packaged."""
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(wheels)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("optlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in EXPERIMENTS.glob("*.yaml"):
        assert f"optlab/conf/experiment/{path.name}" in names
    assert {"optlab/report/__init__.py", "optlab/app/callbacks.py", "optlab/conf/starts/grid.yaml"} <= names
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    elsewhere.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-m", "optlab", "-m", "+experiment=seed_newton_double_well",
                          "stop.max_iter=20", "hydra.sweep.dir=sweep"], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    runs, _ = optlab.load(elsewhere / "sweep")
    assert sorted(runs.solver) == ["gd", "newton"] and (elsewhere / "sweep" / "report" / "index.html").is_file()
