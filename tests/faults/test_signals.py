"""Ctrl-C and SIGTERM at every moment of a command: no traceback, never lost, every started run kept.

From the process's first moment (Python importing optlab, Hydra composing the config) to its
last, a signal ends ``python -m optlab`` with exit 130 and one line; a run that had started is
recorded ``interrupted`` with one log row per iteration counted, and nothing else is written. A
sweep stopped by Ctrl-C starts no job after the signal: those jobs say they were not run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ..conftest import REPO

LONG_RUN = ["solver=gd", "solver.lr=1e-7", "stop.max_iter=100000000", "stop.gtol=0"]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "optlab", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def signalled_run(tmp_path: Path, number: int, after: float) -> tuple[int, str, Path]:
    run_dir = tmp_path / f"{signal.Signals(number).name}-{after:.2f}"
    proc = start([*LONG_RUN, f"hydra.run.dir={run_dir}"], tmp_path)
    time.sleep(after)
    os.killpg(proc.pid, number)  # as a terminal's Ctrl-C, or a batch system's time limit
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, stderr, run_dir


@pytest.mark.slow
def test_a_signal_at_any_moment_of_start_up_ends_the_command_cleanly(tmp_path):
    moments = [(number, after) for after in np.linspace(0.0, 3.0, 20) for number in (signal.SIGINT, signal.SIGTERM)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda case: signalled_run(tmp_path, *case), moments))
    started = 0
    for (number, after), (code, stderr, run_dir) in zip(moments, results):
        where = f"{signal.Signals(number).name} after {after:.2f} s: {stderr[-500:]}"
        if code == -number or (code == 1 and stderr.rstrip().endswith("KeyboardInterrupt")):
            # the interpreter's own start-up, before any of optlab runs: killed by the signal's default
            # action, or Python's KeyboardInterrupt from site's imports; nothing began, nothing written
            assert after < 0.5 and "optlab" not in stderr and not run_dir.exists(), where
            continue
        assert code == 130 and "Traceback" not in stderr and "Error" not in stderr, where
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        assert last == "optlab: interrupted" or last == f"interrupted: {run_dir}", where
        record_path = run_dir / "run.json"
        if not record_path.exists():
            assert not (run_dir / "iterates.parquet").exists(), where  # not started: nothing of it written
            continue
        started += 1
        record = json.loads(record_path.read_text())
        rows = pq.ParquetFile(run_dir / "iterates.parquet").metadata.num_rows
        assert record["status"] == "interrupted" and rows == record["iterations"] + 1, where
    assert started > 0  # the later signals reach a run going


@pytest.mark.slow
def test_jobs_a_stopped_sweep_had_not_begun_are_not_run(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    proc = start(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *LONG_RUN[:3], "stop.gtol=0",
                  "solver.lr=1e-7,2e-7,3e-7,4e-7", "report.auto=false", f"hydra.sweep.dir={sweep}"], tmp_path)
    try:
        end = time.monotonic() + 120
        while not all((sweep / j / "iterates.parts").exists() for j in "01") and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    statuses = {j: json.loads((sweep / j / "run.json").read_text())["status"] for j in "0123"
                if (sweep / j / "run.json").exists()}
    assert statuses == {"0": "interrupted", "1": "interrupted"}, (statuses, stderr[-2000:])
    assert "not run: the sweep was stopped" in stderr or not any((sweep / j).exists() for j in "23")
