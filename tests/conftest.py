"""Shared test helpers: run the CLI in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
