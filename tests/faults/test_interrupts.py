"""Interruptions: Ctrl-C keeps the run, kill -9 keeps its written chunks, a re-run redoes only the rest."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import optlab

from ..conftest import REPO

CHUNK = 20_000
# A tiny learning rate: x keeps changing for millions of steps, so only a signal ends the run.
LONG_RUN = ["solver=gd", "solver.lr=1e-7", "stop.max_iter=1000000000", "stop.gtol=0", f"log.chunk_rows={CHUNK}"]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen([sys.executable, "-m", "optlab", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


def parts(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "iterates.parts").glob("part-*.parquet"))


def test_ctrl_c_ends_the_run_as_interrupted_with_every_iterate(tmp_path):
    run_dir = tmp_path / "run"
    proc = start([*LONG_RUN, f"hydra.run.dir={run_dir}"], tmp_path)
    wait_for(lambda: len(parts(run_dir)) >= 1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stdout and "Traceback" not in stderr
    runs, its = optlab.load(run_dir)
    assert runs.status[0] == "interrupted" and "interrupted by the user" in runs.message[0]
    assert len(its) == runs.iterations[0] + 1 >= CHUNK  # every row, the written chunk included
    assert its.iter.tolist() == list(range(len(its)))
    assert (run_dir / "iterates.parquet").exists() and not (run_dir / "iterates.parts").exists()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_leaves_written_chunks_readable(tmp_path, seed):
    run_dir = tmp_path / "run"
    proc = start([*LONG_RUN, f"hydra.run.dir={run_dir}"], tmp_path)
    wait_for(lambda: (run_dir / "run.json").exists())
    time.sleep(random.Random(seed).uniform(0.2, 2.5))
    seen = len(parts(run_dir))
    proc.kill()
    proc.communicate(timeout=60)
    # Nothing under a final name is half written: every part and the record parse.
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "running"
    written = parts(run_dir)
    assert len(written) >= seen
    for p in written:
        assert pq.read_metadata(p).num_rows == CHUNK
    assert not (run_dir / "iterates.parquet").exists()
    with_warnings = []
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs, its = optlab.load(run_dir)
        with_warnings.extend(caught)
    assert not with_warnings
    assert runs.status[0] == "running" and len(its) == CHUNK * len(written)
    assert its.iter.tolist() == list(range(len(its)))


@pytest.mark.slow  # (4 to 6 s: whole sweeps in subprocesses; the README's command stays under 6 minutes)
def test_rerun_of_a_killed_sweep_redoes_only_the_incomplete_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "stop.max_iter=100,50000000,200", "solver.lr=1e-7", "stop.gtol=0", "stop.max_seconds=2",
            "report.auto=false",
            f"hydra.sweep.dir={sweep}"]
    proc = start(args, tmp_path)
    wait_for(lambda: (sweep / "1" / "run.json").exists())
    proc.kill()
    proc.communicate(timeout=60)
    first = json.loads((sweep / "0" / "run.json").read_text())
    assert first["status"] == "max_iter"
    assert json.loads((sweep / "1" / "run.json").read_text())["status"] == "running"
    assert not (sweep / "2").exists()
    stamp = (sweep / "0" / "run.json").stat().st_mtime_ns

    again = start(args, tmp_path)
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    assert "[0] already complete (max_iter), skipped" in stdout
    assert (sweep / "0" / "run.json").stat().st_mtime_ns == stamp
    runs, _ = optlab.load(sweep)
    by_job = {Path(p).name: row for p, row in zip(runs.path, runs.itertuples())}
    assert by_job["0"].run_id == first["run_id"]
    assert by_job["1"].status == "max_seconds" and by_job["2"].status == "max_iter"


@pytest.mark.parametrize("solver, options", [("gd", {"line_search": "armijo"}), ("gd", {})])  # generic, fused
def test_ctrl_c_while_a_chunk_is_written_loses_no_rows(tmp_path, monkeypatch, solver, options):
    from optlab.engine.stopping import Stop
    from optlab.objectives import Rosenbrock
    from optlab.rundir.chunks import ChunkFiles
    from optlab.solvers import SOLVERS

    from ..conftest import to_dir

    write = ChunkFiles._write_part

    def write_and_press_ctrl_c(self, table):
        if self.count == 1:  # during the second part file
            os.kill(os.getpid(), signal.SIGINT)
        write(self, table)

    monkeypatch.setattr(ChunkFiles, "_write_part", write_and_press_ctrl_c)
    record = to_dir(tmp_path, Rosenbrock(), SOLVERS[solver](**options), None, Stop(max_iter=2_000, gtol=0),
                    chunk_rows=300)
    runs, its = optlab.load(tmp_path)
    assert record["status"] == runs.status[0] == "interrupted"
    assert len(its) == runs.iterations[0] + 1 >= 600
    assert its.iter.tolist() == list(range(len(its)))


def test_ctrl_c_while_a_finished_run_is_written_completes_its_files_first(tmp_path, monkeypatch):
    from optlab.engine.stopping import Stop
    from optlab.objectives import Rosenbrock
    from optlab.rundir.chunks import ChunkFiles
    from optlab.solvers import SOLVERS

    from ..conftest import to_dir

    merge = ChunkFiles.merge

    def press_ctrl_c_and_merge(self):
        os.kill(os.getpid(), signal.SIGINT)
        merge(self)

    monkeypatch.setattr(ChunkFiles, "merge", press_ctrl_c_and_merge)
    with pytest.raises(KeyboardInterrupt):
        to_dir(tmp_path, Rosenbrock(), SOLVERS["gd"](lr=1e-3), None, Stop(max_iter=700, gtol=0), chunk_rows=300)
    runs, its = optlab.load(tmp_path)
    assert runs.status[0] == "max_iter" and len(its) == 701 and its.iter.tolist() == list(range(701))
    assert (tmp_path / "iterates.parquet").exists() and not (tmp_path / "iterates.parts").exists()


def test_a_job_raises_only_the_first_of_several_interrupts():
    """Ctrl-C to the process group, then the sweep's stop signal: the second must not break
    the job while it writes its record."""
    from optlab.interrupts import STOP_SIGNAL, interrupt_signals

    raised = 0
    with interrupt_signals():
        for number in (signal.SIGINT, STOP_SIGNAL, signal.SIGTERM):
            try:
                os.kill(os.getpid(), number)
                time.sleep(0.05)  # (delivered at the next bytecode)
            except KeyboardInterrupt:
                raised += 1
    assert raised == 1
