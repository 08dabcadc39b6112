"""Concurrency: parallel jobs keep to their own files; sweeps started together never collide."""

from __future__ import annotations

import json

import pytest

import optlab

from .test_interrupts import start


def test_two_sweeps_started_in_the_same_second_do_not_collide(tmp_path):
    args = ["-m", "solver=gd,newton", "objective=double_well", "stop.max_iter=100", "report.auto=false"]
    procs = [start(args, tmp_path) for _ in range(2)]
    for p in procs:
        _, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
    sweeps = sorted((tmp_path / "outputs" / "sweeps").glob("*/*"))
    assert len(sweeps) == 2
    for sweep in sweeps:
        runs, its = optlab.load(sweep)
        assert sorted(runs.solver) == ["gd", "newton"]
        assert set(its.run_id) == set(runs.run_id)


def test_parallel_joblib_jobs_write_only_their_own_files(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    lrs = ["0.001", "0.002", "0.003", "0.004"]
    proc = start(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"solver.lr={','.join(lrs)}",
                  "stop.max_iter=300", "report.auto=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    for job, lr in enumerate(lrs):
        record = json.loads((tmp_path / "sweep" / str(job) / "run.json").read_text())
        assert record["overrides"][:2] == [f"solver.lr={lr}", "stop.max_iter=300"]
        assert record["solver_params"]["lr"] == float(lr) and record["status"] == "max_iter"
    runs, its = optlab.load(tmp_path / "sweep")
    assert runs.run_id.nunique() == 4
    assert (its.groupby("run_id").size() == 301).all()
    # Each job's log holds its own trajectory: its first step uses its own learning rate.
    for run_id, lr in zip(runs.run_id, runs["solver.lr"]):
        assert its[(its.run_id == run_id) & (its.iter == 1)].step_size.item() == lr
