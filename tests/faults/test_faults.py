"""Faults: SIGTERM, a full disk, a read-only folder, Ctrl-C at start-up, in a batch's final
records, in the sweep report and with parallel workers: every record ends with a true status."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import optlab

from ..app.test_bad_values import call
from ..conftest import REPO
from .test_interrupts import CHUNK, LONG_RUN, parts, start, wait_for


def test_sigterm_ends_the_run_as_interrupted_with_its_partial_chunk(tmp_path):
    """``timeout`` (as Slurm's time limit and docker stop) sends SIGTERM: treated as Ctrl-C. (Sent
    once the run has written a chunk; a SIGTERM before the run starts is in test_signals.py.)"""
    run_dir = tmp_path / "run"
    proc = start([*LONG_RUN, f"hydra.run.dir={run_dir}"], tmp_path)
    wait_for(lambda: len(parts(run_dir)) >= 1)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stdout
    runs, its = optlab.load(run_dir)
    assert runs.status[0] == "interrupted"
    assert len(its) == runs.iterations[0] + 1 and its.iter.tolist() == list(range(len(its)))
    assert len(its) % CHUNK != 0  # the last, partial chunk is there too
    assert (run_dir / "iterates.parquet").exists() and not (run_dir / "iterates.parts").exists()


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_at_the_merge_is_recorded_and_keeps_the_chunks(tmp_path, monkeypatch):
    from optlab.engine.stopping import Stop
    from optlab.objectives import Rosenbrock
    from optlab.rundir.chunks import ChunkFiles
    from optlab.solvers import SOLVERS

    from ..conftest import to_dir

    monkeypatch.setattr(ChunkFiles, "merge", full_disk)
    record = to_dir(tmp_path, Rosenbrock(), SOLVERS["gd"](lr=1e-3), None, Stop(max_iter=700, gtol=0), chunk_rows=300)
    assert record["status"] == "error" and "No space left on device" in record["message"]
    assert "max_iter" in record["message"] and "2 chunk(s) of 300 rows are kept" in record["message"]
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk["status"] == "error"  # not left "running"
    runs, its = optlab.load(tmp_path)
    assert runs.status[0] == "error" and its.iter.tolist() == list(range(len(its)))
    assert 600 <= len(its) < 701  # the chunks written; the rows still in memory are what is lost
    assert not (tmp_path / ".optlab.lock").exists()


@pytest.mark.parametrize("backend", ["generic", "fused"])
def test_a_wide_logs_parts_hold_one_chunk_each(tmp_path, monkeypatch, backend):
    """A part is written once another row would pass MAX_CHUNK_BYTES: a wide log's parts are its
    chunks, whatever tables arrive (a part of two chunks doubled what a run and its merge take)."""
    from optlab.engine import log
    from optlab.engine.stopping import Stop
    from optlab.objectives import Rosenbrock
    from optlab.rundir import chunks
    from optlab.rundir.store import RunDirs
    from optlab.solvers import SOLVERS

    from ..conftest import run_set

    monkeypatch.setattr(log, "MAX_CHUNK_BYTES", 2**15)
    monkeypatch.setattr(chunks, "MAX_CHUNK_BYTES", 2**15)
    capacity = 2**15 // (8 * (len(log.FIELDS) + 16))  # the log's chunk: 170 rows of 24 columns
    written, write = [], chunks.ChunkFiles._write_part
    monkeypatch.setattr(chunks.ChunkFiles, "_write_part", lambda self, table: (written.append(table.num_rows),
                                                                                write(self, table)))
    options = log.LogOptions(max_coords=16)
    (out,) = run_set(Rosenbrock(dim=16), SOLVERS["gd"](lr=1e-4), None, Stop(max_iter=1000, gtol=0),
                     RunDirs([tmp_path], chunk_rows=options.chunk_rows), log=options, backend=backend)
    assert out.backend == backend and written == [capacity] * (1001 // capacity)
    runs, its = optlab.load(tmp_path)
    assert its.iter.tolist() == list(range(1001)) and runs.status[0] == "max_iter"


def test_full_disk_while_a_chunk_is_written_ends_the_run_with_a_record(tmp_path, monkeypatch):
    from optlab.engine.stopping import Stop
    from optlab.objectives import Rosenbrock
    from optlab.rundir import chunks
    from optlab.solvers import SOLVERS

    from ..conftest import to_dir

    monkeypatch.setattr(chunks, "write_table", full_disk)
    record = to_dir(tmp_path, Rosenbrock(), SOLVERS["gd"](lr=1e-3, line_search="armijo"), None,
                    Stop(max_iter=700, gtol=0), chunk_rows=300)
    assert record["status"] == "error" and "No space left on device" in record["message"]
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "error"


def test_unwritable_output_is_one_line(tmp_path, capsys, monkeypatch):
    import optlab.rundir.store

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "run" / "run.json"))

    monkeypatch.setattr(optlab.rundir.store, "write_record", read_only)
    code, _, err = call(["objective=double_well", f"hydra.run.dir={tmp_path / 'run'}"], capsys, monkeypatch)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot write the run to {tmp_path / 'run'}" in err and "Permission denied" in err


def test_output_folder_that_cannot_be_created_is_one_line(tmp_path):
    """/sys refuses new folders even to root: Hydra's own writes fail there."""
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("no /sys here")
    out = subprocess.run([sys.executable, "-m", "optlab", "objective=double_well", "hydra.run.dir=/sys/optlab/run"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 1 and out.stderr.startswith("optlab: error: cannot write /sys/optlab")
    assert out.stderr.count("\n") == 1


def test_ctrl_c_at_start_up_is_one_line(capsys, monkeypatch):
    import optlab.app.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(optlab.app.cli, "register_resolvers", interrupted)
    code, _, err = call(["objective=double_well"], capsys, monkeypatch)
    assert code == 130 and err.strip() == "optlab: interrupted"


def test_ctrl_c_during_a_batch_final_records_completes_them(tmp_path, monkeypatch):
    from optlab.engine.stopping import Stop
    from optlab.objectives import DoubleWell
    from optlab.rundir.store import RunFiles
    from optlab.solvers import SOLVERS

    from ..conftest import multi_start

    close = RunFiles.close
    calls = []

    def close_with_ctrl_c(self, outcome):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return close(self, outcome)

    monkeypatch.setattr(RunFiles, "close", close_with_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        multi_start(tmp_path, DoubleWell(), SOLVERS["gd"](lr=0.01), Stop(max_iter=50), {"kind": "grid", "n": 5})
    runs, its = optlab.load(tmp_path)
    assert len(runs) == 5 and "running" not in set(runs.status)
    assert (its.groupby("run_id").size().loc[list(runs.run_id)].to_numpy() == runs.iterations.to_numpy() + 1).all()


def test_ctrl_c_in_the_sweep_report_still_ends_with_the_status_line(tmp_path, capsys, monkeypatch):
    import optlab.report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(optlab.report, "build_report", interrupted)
    sweep = tmp_path / "sweep"
    code, out, err = call(["-m", "objective=double_well", "solver.lr=0.001,0.002", "stop.max_iter=20",
                           f"hydra.sweep.dir={sweep}"], capsys, monkeypatch)
    assert code == 0 and "Traceback" not in err
    assert "report interrupted; build it with: python -m optlab.report" in err
    assert f"sweep: 2 runs in {sweep}: 2 max_iter" in out


@pytest.mark.parametrize("to_group", [True, False])
def test_ctrl_c_with_parallel_workers_records_every_job_interrupted(tmp_path, to_group):
    """A terminal's Ctrl-C reaches every process of the group; a signal to the sweep's process alone
    is passed on to the workers by the sweep."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "optlab", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             *LONG_RUN[:3], "solver.lr=1e-7,2e-7", "stop.gtol=0", "log.chunk_rows=5000",
                             "report.auto=false", f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    wait_for(lambda: all(parts(sweep / j) for j in "01"), timeout=120)
    time.sleep(0.2)
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to every process of the group
    else:
        os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    runs, its = optlab.load(sweep)
    assert sorted(runs.status) == ["interrupted", "interrupted"]
    for r in runs.itertuples():
        assert its[its.run_id == r.run_id].iter.tolist() == list(range(r.iterations + 1))


def test_interrupted_sweep_job_exits_130_and_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "solver=gd", "solver.lr=1e-7", "stop.gtol=0", "stop.max_iter=100000000,20", "report.auto=false",
            f"hydra.sweep.dir={sweep}"]
    proc = start(args, tmp_path)
    wait_for(lambda: (sweep / "0" / "run.json").exists())
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert json.loads((sweep / "0" / "run.json").read_text())["status"] == "interrupted"
