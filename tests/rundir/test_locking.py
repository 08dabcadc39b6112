"""One writer per directory: a second sweep or run into a directory being written is refused in
one line naming the holder; a different sweep into a used sweep directory is refused; stale locks
are taken over; parts of different writers never mix; jobs resume by their settings."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings

import pyarrow as pa
import pytest

import optlab
from optlab.rundir.layout import LOCK
from optlab.rundir.lock import LockHeld, acquire, release

from ..conftest import run_cli
from ..faults.test_interrupts import start, wait_for

# Two jobs of about 1 s each (a tiny rate never converges; the clock ends them).
SLOW_SWEEP = ["-m", "objective=rosenbrock", "solver=gd", "solver.lr=1e-7,2e-7", "stop.gtol=0",
              "stop.max_iter=100000000", "stop.max_seconds=1", "log.chunk_rows=5000", "report.auto=false"]


def assert_whole(root) -> None:
    """Every run's log is whole and counted once: one row per iteration from 0, no warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs, its = optlab.load(root)
    for r in runs.itertuples():
        assert its[its.run_id == r.run_id].iter.tolist() == list(range(r.iterations + 1)), r.path


@pytest.mark.slow  # (4 to 6 s: whole sweeps in subprocesses; the README's command stays under 6 minutes)
def test_the_same_sweep_started_twice_runs_once(tmp_path):
    """Resuming in two terminals: the second process is refused at once, naming the first."""
    sweep = tmp_path / "sweep"
    first = start([*SLOW_SWEEP, f"hydra.sweep.dir={sweep}"], tmp_path)
    wait_for(lambda: (sweep / "0" / "run.json").exists())
    second = start([*SLOW_SWEEP, f"hydra.sweep.dir={sweep}"], tmp_path)
    other = start([*SLOW_SWEEP, "solver.lr=3e-7", f"hydra.sweep.dir={sweep}"], tmp_path)  # a different sweep
    _, err2 = second.communicate(timeout=120)
    _, err3 = other.communicate(timeout=120)
    assert other.returncode == 1 and f"{sweep} is being written by process {first.pid}" in err3
    out1, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 1
    assert err2.strip() == err2.strip().splitlines()[0] and "Traceback" not in err2
    assert f"{sweep} is being written by process {first.pid} on {socket.gethostname()}" in err2
    assert f"sweep: 2 runs in {sweep}: 2 max_seconds" in out1
    assert_whole(sweep)
    assert not (sweep / LOCK).exists()


def test_a_different_sweep_into_a_used_directory_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    base = ["objective=double_well", "stop.max_iter=30", f"hydra.sweep.dir={sweep}"]
    assert run_cli("-m", "solver.lr=0.001,0.002", "report.auto=false", *base).returncode == 0
    before = {p: p.read_bytes() for p in sweep.rglob("run.json")}
    out = run_cli("-m", "solver.lr=0.003,0.004", *base)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"hydra.sweep.dir={sweep} holds another sweep" in out.stderr and "allowed:" in out.stderr
    assert {p: p.read_bytes() for p in sweep.rglob("run.json")} == before  # nothing overwritten
    # A record left `running` by another sweep (copied in by hand) is not this sweep's to count.
    (sweep / "9").mkdir()
    (sweep / "9" / "run.json").write_text(json.dumps({"run_id": "abc", "status": "running", "sweep_id": "other"}))
    # The same sweep again, its arguments and values in another order and the report switched
    # on: the same jobs, matched by their settings; nothing runs again.
    again = run_cli("-m", "report.auto=false", *reversed(base), "solver.lr=0.002,0.001")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already complete (max_iter), skipped") == 2
    assert {p: p.read_bytes() for p in sweep.rglob("run.json") if p.parent.name != "9"} == before
    assert f"sweep: 2 runs in {sweep}: 2 max_iter" in again.stdout


def test_a_folder_of_other_runs_is_not_a_sweep_directory(tmp_path):
    assert run_cli("objective=double_well", "stop.max_iter=5", f"hydra.run.dir={tmp_path / 'runs' / 'a'}"
                   ).returncode == 0
    out = run_cli("-m", "objective=double_well", "stop.max_iter=5,6", f"hydra.sweep.dir={tmp_path / 'runs'}")
    assert out.returncode == 2 and "already holds runs that are not of this sweep" in out.stderr


def test_two_runs_into_one_directory(tmp_path):
    run_dir = tmp_path / "run"
    long = ["solver=gd", "solver.lr=1e-7", "stop.gtol=0", "stop.max_iter=100000000", "stop.max_seconds=1.2",
            f"hydra.run.dir={run_dir}"]
    first = start(long, tmp_path)
    wait_for(lambda: (run_dir / "run.json").exists())
    out = run_cli(*long)
    assert out.returncode == 1 and f"{run_dir} is being written by process {first.pid}" in out.stderr
    assert out.stderr.count("\n") == 1
    first.communicate(timeout=60)
    assert first.returncode == 0
    assert_whole(run_dir)


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    out = run_cli("objective=double_well", "stop.max_iter=5", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "run" / LOCK).exists()


def test_lock_of_another_host_is_respected(tmp_path):
    (tmp_path / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "2026-01-01T00:00:00"}))
    with pytest.raises(LockHeld, match=f"process 1 on elsewhere .*remove {tmp_path / LOCK}"):
        acquire(tmp_path)
    text = acquire(tmp_path / "inner")  # a directory of its own is free
    release(tmp_path / "inner", text)
    assert not (tmp_path / "inner" / LOCK).exists()


def test_lock_is_exclusive_between_processes(tmp_path):
    code = ("import sys\nfrom optlab.rundir.lock import acquire, LockHeld\n"
            "try:\n    acquire(sys.argv[1])\nexcept LockHeld as e:\n    print(e)\n    sys.exit(3)\n")
    held = acquire(tmp_path)
    try:
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=60)
        assert other.returncode == 3 and f"process {os.getpid()}" in other.stdout
    finally:
        release(tmp_path, held)
    assert not (tmp_path / LOCK).exists()


def test_writers_touch_only_their_own_parts(tmp_path):
    from optlab.rundir.chunks import ChunkFiles

    def table(start: int, n: int) -> pa.Table:
        return pa.table({"iter": pa.array(range(start, start + n), pa.int64()), "f": pa.array([1.0] * n)})

    a, b = ChunkFiles(tmp_path, 4, run_id="aaaa"), ChunkFiles(tmp_path, 4, run_id="bbbb")
    a(table(0, 4))
    b(table(0, 4))
    a(table(4, 4))
    assert sorted(p.name for p in (tmp_path / "iterates.parts").iterdir()) == [
        "part-aaaa-000000.parquet", "part-aaaa-000001.parquet", "part-bbbb-000000.parquet"]
    a.merge()
    import pyarrow.parquet as pq

    merged = pq.read_table(tmp_path / "iterates.parquet")
    assert merged.column("iter").to_pylist() == list(range(8)) and set(merged.column("run_id").to_pylist()) == {
        "aaaa"}
    assert [p.name for p in (tmp_path / "iterates.parts").iterdir()] == ["part-bbbb-000000.parquet"]
