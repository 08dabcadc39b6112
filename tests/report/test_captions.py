"""What the report's captions and legends say about time, checked against the fields of real runs:
a batched multi-start job and a single run from the command line."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import optlab
from optlab import report
from optlab.engine.stopping import Stop
from optlab.objectives import Rosenbrock
from optlab.report.build import tasks_of
from optlab.solvers import SOLVERS

from ..conftest import multi_start, run_cli

STARTS = 3
# What the captions must say, as checked against the recorded fields below.
SHARE = "record their share of the batch's time (each interval divided among the runs still going)"
CLOCK = "A run's clock starts once its set-up is done"
SETUP = "recorded apart (setup_s)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A job of three starts advanced as one batch (gd), timed from outside, and a Newton run started
    from the command line (a fresh process: its set-up compiles the objective's derivatives)."""
    root = tmp_path_factory.mktemp("timed")
    t0 = time.perf_counter()
    multi_start(root / "batch", Rosenbrock(), SOLVERS["gd"](lr=1e-4), Stop(max_iter=30_000, gtol=0.0),
                {"kind": "random", "n": STARTS, "seed": 0})
    elapsed = time.perf_counter() - t0
    done = run_cli("solver=newton", "objective=rosenbrock", f"hydra.run.dir={root / 'single'}")
    assert done.returncode == 0, done.stderr
    return root, elapsed


def test_batched_runs_record_their_share_of_the_batch_s_time(runs):
    root, elapsed = runs
    records = [json.loads(p.read_text()) for p in sorted((root / "batch").glob("start_*/run.json"))]
    assert len(records) == STARTS and all(r["batch"] == {"size": STARTS} for r in records)
    walls = np.array([r["wall_time_s"] for r in records])
    # Shares add up to the batch's time, which the job's whole time (set-up and files too) includes;
    # were each run's time the whole batch's, they would add up to three times it.
    assert walls.sum() + sum(r["setup_s"] for r in records) <= elapsed
    assert walls.max() < 0.5 * walls.sum()
    _, iterates = optlab.load(root / "batch")
    clocks = [g.time_s.to_numpy() for _, g in iterates.groupby("run_id")]
    n = min(len(c) for c in clocks)  # the runs go on together: each interval divided equally
    assert all(np.array_equal(c[:n], clocks[0][:n]) for c in clocks)


def test_a_run_s_clock_starts_after_its_set_up(runs):
    root, _ = runs
    record = json.loads((root / "single" / "run.json").read_text())
    _, iterates = optlab.load(root / "single")
    assert record["setup_s"] > 0
    assert iterates.time_s.iloc[0] < record["setup_s"]  # the set-up is not on the run's clock
    assert iterates.time_s.iloc[0] < 0.01 and iterates.time_s.iloc[-1] <= record["wall_time_s"]


def test_every_caption_about_time_makes_these_claims_and_no_other(runs):
    root, _ = runs
    for cost in ("evals", "time"):
        data = report.read(root, cost=cost)
        captions = {plot.name: plot.caption for plot, _, _ in tasks_of(data, 25)}
        timed = {name: text for name, text in captions.items() if "clock" in text or "time" in name}
        assert "convergence_time" in timed and (cost != "time" or "profiles" in timed)
        for name, text in timed.items():
            assert CLOCK in text and SETUP in text, name
            assert SHARE in text, name  # the gd runs were batched
            assert "whole batch" not in text and "before" not in text, name
        assert data.valid.batched.tolist().count(STARTS) == STARTS
    legend = [t.get_text() for t in report.convergence_figure(data, x="time").legends[0].get_texts()]
    assert "gd (batched: its share of the batch's time)" in legend
