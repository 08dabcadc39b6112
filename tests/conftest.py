"""Shared test helpers: run the CLI in a subprocess, as a user would."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import optlab.autodiff as ad
from optlab.engine.log import LogOptions
from optlab.engine.run_set import InMemory, run_set
from optlab.engine.stopping import Stop
from optlab.objectives.base import Objective

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    """``python -m optlab ARGS`` with its output captured (never a terminal, so no progress bar)."""
    full_env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    full_env.update({"PYTHONPATH": str(REPO), **(env or {})})
    return subprocess.run([sys.executable, "-m", "optlab", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli(tmp_path):
    """Run the CLI with its single-run directory at ``tmp_path/run``."""

    def call(*args: str, **kw) -> subprocess.CompletedProcess:
        return run_cli(*args, f"hydra.run.dir={tmp_path / 'run'}", **kw)

    call.run_dir = tmp_path / "run"
    return call


def logged(objective, solver, x0=None, *, backend=None, chunk_rows=10_000, log_grad_norm=False, **stop):
    """One run from ``x0`` through :func:`run_set` (``backend`` forces a path): its outcome and
    iterates (a DataFrame, every coordinate kept)."""
    log = LogOptions(max_coords=objective.dim, chunk_rows=chunk_rows, grad_norm=log_grad_norm)
    sinks = InMemory(log)
    (out,) = run_set(objective, solver, None if x0 is None else [x0], Stop(**stop), sinks, log=log, backend=backend)
    return out, sinks.tables[0].to_pandas()


def batched(objective, solver, starts, stop=None, *, lrs=None, backend="batched", **options):
    """Runs from every start as one set (batched unless ``backend`` says otherwise): (outcome, iterates) pairs."""
    log = LogOptions(**{"max_coords": objective.dim, **options})
    sinks = InMemory(log)
    outcomes = run_set(objective, solver, starts, stop, sinks, lrs=lrs, log=log, backend=backend)
    return [(o, sinks.tables[i].to_pandas()) for i, o in enumerate(outcomes)]


def to_dir(run_dir, objective, solver, x0=None, stop=None, *, extra=None, overwrite=False, **log):
    """One run kept in ``run_dir`` through :func:`run_set` and :class:`RunDirs`: its final record."""
    from optlab.rundir.store import RunDirs

    options = LogOptions(**log)
    sinks = RunDirs([run_dir], [extra], options.chunk_rows, overwrite)
    run_set(objective, solver, None if x0 is None else [x0], stop, sinks, log=options)
    return sinks.records[0]


def multi_start(job_dir, objective, solver, stop, starts, *, resume_key=None, extra=None):
    """A multi-start job (``starts`` is its spec, e.g. ``{"kind": "grid", "n": 5}``) run into
    ``job_dir`` as the command line runs it: its records and how many starts were not run."""
    from optlab.app.config import JobConfig
    from optlab.app.job import run_job

    job = JobConfig(objective, solver, stop, None, starts, LogOptions())
    return run_job(job, Path(job_dir), extra or {}, resume_key, progress=False)


class Branching(Objective):
    """A Python branch on x.data: x^2 summed where x_0 > 0, else x^4 summed (stays on the eager engine)."""

    name = "branching"

    def __init__(self) -> None:
        self.dim, self.x0, self.box = 2, np.array([1.0, 1.0]), np.array([[-2.0, 2.0]] * 2)

    def f(self, x):
        return ad.sum(x * x) if x.data[0] > 0 else ad.sum(x**4)


def interrupting_clock(at: int) -> type:
    """A stand-in for the ``time`` module whose perf_counter raises KeyboardInterrupt at call ``at``,
    as Ctrl-C would, and otherwise reads 0."""

    class Clock:
        calls = 0

        @classmethod
        def perf_counter(cls) -> float:
            cls.calls += 1
            if cls.calls == at:
                raise KeyboardInterrupt
            return 0.0

    return Clock


def assert_same_runs(a, b, exact: bool = True) -> None:
    """Two (outcome, iterates DataFrame) pairs are the same run: outcome, log rows and final state."""
    (out_a, log_a), (out_b, log_b) = a, b
    assert (out_a.status, out_a.message, out_a.iterations, out_a.nfev, out_a.ngev, out_a.nhev) == (
        out_b.status, out_b.message, out_b.iterations, out_b.nfev, out_b.ngev, out_b.nhev)
    assert list(log_a.columns) == list(log_b.columns) and len(log_a) == len(log_b) == out_a.iterations + 1
    cols = [c for c in log_a.columns if c != "time_s"]
    if exact:
        np.testing.assert_array_equal(log_a[cols].to_numpy(), log_b[cols].to_numpy())
        assert type(out_a.state) is type(out_b.state)
        for field in dataclasses.fields(out_a.state):
            a_value, b_value = getattr(out_a.state, field.name), getattr(out_b.state, field.name)
            if field.name == "carry":  # the solver's own state: a tuple of arrays
                assert type(a_value) is type(b_value) and len(a_value) == len(b_value)
                for u, v in zip(a_value, b_value):
                    np.testing.assert_array_equal(u, v)
            else:
                np.testing.assert_array_equal(a_value, b_value)
    else:
        np.testing.assert_allclose(log_a[cols].to_numpy(), log_b[cols].to_numpy(), rtol=1e-12, atol=1e-12)
