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
