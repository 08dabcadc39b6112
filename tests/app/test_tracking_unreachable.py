"""Trackers fail fast: an MLflow server that cannot be reached is one warning and the sweep goes
on, finishing within 30 s of the same sweep without the callback (issue 18, item 8: the README's
example URI, a name that does not resolve, stalled each job about four minutes)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import optlab
from optlab.app.tracking import unreachable

from ..conftest import run_cli

pytest.importorskip("mlflow", reason="optlab.app.tracking.MLflowCallback needs mlflow (the mlflow extra)")

README_URI = "http://mlflow-server:5000"


@pytest.fixture
def closing_server():
    """A port that accepts connections and closes them at once: a server that went wrong."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


def test_which_uris_are_probed(closing_server):
    assert unreachable(None) is None and unreachable("file:///tmp/mlruns") is None
    assert unreachable("sqlite:///mlflow.db") is None and unreachable("databricks") is None
    assert "mlflow-server cannot be resolved" in unreachable(README_URI)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    assert f"nothing answers at 127.0.0.1:{port}" in unreachable(f"http://127.0.0.1:{port}")
    assert unreachable(closing_server) is None  # something listens: MLflow's requests decide


def sweep(tmp_path, name: str, *extra: str) -> tuple[float, object]:
    start = time.monotonic()
    out = run_cli("-m", "solver=gd,bfgs", "objective=double_well,rosenbrock", "stop.max_iter=20", "report.auto=false",
                  f"hydra.sweep.dir={tmp_path / name}", *extra, env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    return time.monotonic() - start, out


@pytest.mark.slow
@pytest.mark.parametrize("uri", ["readme", "server that closes"])
def test_a_sweep_with_an_unreachable_tracker_goes_on(uri, tmp_path, closing_server):
    target = README_URI if uri == "readme" else closing_server
    plain_s, plain = sweep(tmp_path, "plain")
    assert plain.returncode == 0, plain.stderr
    tracked_s, tracked = sweep(tmp_path, "tracked", f"+hydra.callbacks.mlflow.tracking_uri={target}",
                               "+hydra.callbacks.mlflow._target_=optlab.app.tracking.MLflowCallback")
    assert tracked.returncode == 0, tracked.stderr
    warnings = [line for line in tracked.stderr.splitlines() if "MLflow" in line]
    assert len(warnings) == 1 and warnings[0].startswith("optlab: warning: "), tracked.stderr
    assert "runs are not sent to MLflow (they are on disk)" in warnings[0]
    runs, _ = optlab.load(tmp_path / "tracked")
    assert len(runs) == 4 and not set(runs.status) & {"error", "running"}
    assert tracked_s <= plain_s + 30, (tracked_s, plain_s)
    print(f"{uri}: sweep of 4 jobs {plain_s:.1f} s without the callback, {tracked_s:.1f} s with it")
