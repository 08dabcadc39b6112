"""Experiment trackers: each run's parameters, status and curve sent to MLflow by a Hydra callback.

Enabled from the command line (mlflow is an optional extra, ``pip install 'optlab[mlflow]'``)::

    python -m optlab -m solver=gd,bfgs +hydra.callbacks.mlflow._target_=optlab.app.tracking.MLflowCallback \\
        +hydra.callbacks.mlflow.tracking_uri=sqlite:///mlflow.db +hydra.callbacks.mlflow.experiment=my-sweep

Each job, when it ends, logs every run it made (one MLflow run per optlab run, a multi-start job
one per start), in the process that ran it (so also under joblib, submitit or Ray): parameters
(``objective``, ``solver``, ``objective.NAME``, ``solver.NAME``, ``stop.NAME``, ``x0``), tags
(``optlab.status``, ``optlab.message``, ``optlab.run_id``, ``optlab.path``), final metrics
(``f_final``, ``gap_final``, ``iterations``, ``nfev``, ``ngev``, ``nhev``, ``wall_time_s``) and the
curve: ``f`` (and ``gap`` = f - f* when f* is known) at every iteration as the metric's steps,
evenly thinned to ``max_points`` when longer. MLflow's run status is FINISHED, KILLED for an
``interrupted`` run and FAILED for ``error``; optlab's status is the tag. A tracker that cannot
be reached is one warning and the sweep goes on: the runs are on disk either way. Its server is
tried once when the callback is built (a name that does not resolve, a port nobody listens on:
:data:`PROBE_S` at most), and MLflow's own retries of each request are bounded
(:data:`RETRIES`), so a server that goes away during a sweep costs each job seconds, not
MLflow's default four minutes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ..errors import ConfigError, check_number
from ..rundir.layout import RECORD

MAX_PARAM_CHARS = 500  # a parameter's value is cut there (MLflow limits their length)
BATCH = 1000  # metrics per request, MLflow's limit
#: Record fields logged once, by their metric names ("gap" is the curve's name).
FINALS = {"f_final": "f_final", "gap": "gap_final", "iterations": "iterations", "nfev": "nfev", "ngev": "ngev",
          "nhev": "nhev", "wall_time_s": "wall_time_s"}
#: Seconds to find and reach a tracking server before the sweep goes on without it.
PROBE_S = 3.0
#: MLflow's retries of a request, their backoff and timeout (unless set in the environment).
RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
#: Ports of the URI schemes with a server, when the URI gives none.
PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


def _mlflow() -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("hydra.callbacks.mlflow needs mlflow, which is not installed; allowed: install it with "
                          "pip install 'optlab[mlflow]'") from None
    return MlflowClient


def unreachable(uri: str | None, seconds: float = PROBE_S) -> str | None:
    """Why the server of a tracking ``uri`` cannot be reached (its name does not resolve, nothing
    answers on its port), or None: reachable, or a URI without a server (a local file store).
    Name lookups that hang are given up after ``seconds``."""
    parts = urlsplit(uri or "")
    scheme = parts.scheme.split("+")[0]
    if not parts.hostname or scheme not in PORTS:
        return None
    try:
        port = parts.port or PORTS[scheme]
    except ValueError as exc:
        return str(exc)
    found: list[Any] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            found.append(exc)

    start = time.monotonic()
    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(seconds)
    if not found:
        return f"looking up {parts.hostname} took more than {seconds:g} s"
    if isinstance(found[0], OSError):
        return f"{parts.hostname} cannot be resolved ({found[0]})"
    family, kind, proto, _, address = found[0][0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.settimeout(max(0.1, seconds - (time.monotonic() - start)))
            probe.connect(address)
    except OSError as exc:
        return f"nothing answers at {parts.hostname}:{port} ({exc or type(exc).__name__})"
    return None


@contextlib.contextmanager
def bounded_retries() -> Iterator[None]:
    """MLflow's requests with :data:`RETRIES`, where the environment does not set them."""
    added = {k: v for k, v in RETRIES.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def run_params(record: dict[str, Any]) -> dict[str, str]:
    """A run record's parameters as MLflow takes them: flat names, text values."""
    params: dict[str, Any] = {"objective": record.get("objective"), "solver": record.get("solver"),
                              "x0": record.get("x0")}
    for group in ("objective", "solver"):
        for key, value in (record.get(f"{group}_params") or {}).items():
            params[f"{group}.{key}"] = value
    for key, value in (record.get("stop") or {}).items():
        params[f"stop.{key}"] = value
    return {k: (v if isinstance(v, str) else json.dumps(v))[:MAX_PARAM_CHARS] for k, v in params.items()}


def thinned(n: int, max_points: int) -> np.ndarray:
    """Indices of ``n`` rows kept for a curve: all of them, or ``max_points`` evenly spread (first and last kept)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


class MLflowCallback(Callback):
    """Send each run of a job (or sweep) to MLflow when the job ends (see the module's docstring).

    ``tracking_uri``: where (default: MLflow's own, ``MLFLOW_TRACKING_URI``); ``experiment``: the
    MLflow experiment's name, created when missing; ``max_points``: points of a curve at most.
    A server that cannot be reached when the callback is built is one warning; no job then
    tries it (the callback is copied to the jobs' processes as it is), and a job that fails to
    reach it later stops this process's jobs from trying again.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "optlab", max_points: int = 10_000) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = str(experiment)
        self.max_points = check_number("hydra.callbacks.mlflow.max_points", max_points, low=2, strict=False,
                                       integer=True)
        if importlib.util.find_spec("mlflow") is None:
            _mlflow()  # a missing mlflow is a one-line error when the callback is built, before any run
        self.failed = unreachable(self.uri())
        if self.failed:  # (mlflow, seconds to import, is then not needed)
            self._warn(f"MLflow at {self.uri()} cannot be reached: {self.failed}")
        else:
            _mlflow()

    def uri(self) -> str | None:
        """The tracking URI: given, or MLflow's ``MLFLOW_TRACKING_URI`` (None: MLflow's local default)."""
        return str(self.tracking_uri) if self.tracking_uri is not None else os.environ.get("MLFLOW_TRACKING_URI")

    @staticmethod
    def _warn(text: str) -> None:
        print(f"optlab: warning: {text}; runs are not sent to MLflow (they are on disk)", file=sys.stderr, flush=True)

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        from ..rundir.layout import RECORD

        if self.failed:
            return
        out_dir = Path(HydraConfig.get().runtime.output_dir)
        records = [out_dir / RECORD] if (out_dir / RECORD).is_file() else sorted(out_dir.glob(f"start_*/{RECORD}"))
        try:
            with bounded_retries():
                for path in records:
                    self.log_run(path.parent)
        except Exception as exc:  # noqa: BLE001 - the runs are on disk; the tracker is a copy
            self.failed = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            self._warn(f"runs of {out_dir} not sent, nor those of later jobs here ({self.failed})")

    def log_run(self, run_dir: str | Path) -> str | None:
        """Send the run in ``run_dir`` to MLflow; returns MLflow's run id (None: no finished run there)."""
        from mlflow.entities import Metric, Param, RunTag

        import optlab

        run_dir = Path(run_dir)
        record = json.loads((run_dir / RECORD).read_text())
        if record.get("status") in (None, "running", "invalid"):
            return None
        client = _mlflow()(tracking_uri=self.tracking_uri)
        experiment_id = self._experiment(client)
        name = f"{record.get('solver')} on {record.get('objective')}"
        tags = {"optlab.status": record["status"], "optlab.message": str(record.get("message", ""))[:5000],
                "optlab.run_id": str(record.get("run_id")), "optlab.path": str(run_dir.resolve())}
        run = client.create_run(experiment_id, run_name=name, tags=tags)
        rid = run.info.run_id
        now = int(time.time() * 1000)
        finals = {name: record.get(key) for key, name in FINALS.items()}
        metrics = [Metric(k, float(v), now, 0) for k, v in finals.items()
                   if isinstance(v, (int, float)) and math.isfinite(v)]
        _, its = optlab.load(run_dir)
        keep = thinned(len(its), self.max_points)
        steps, f = its.iter.to_numpy()[keep], its.f.to_numpy(dtype=float)[keep]
        f_star = record.get("f_star")
        curves = {"f": f, **({"gap": f - f_star} if isinstance(f_star, (int, float)) else {})}
        for key, values in curves.items():
            metrics += [Metric(key, float(v), now, int(s)) for s, v in zip(steps, values) if math.isfinite(v)]
        params = [Param(k, v) for k, v in run_params(record).items()]
        client.log_batch(rid, params=params[:100], tags=[RunTag("optlab.points", str(len(keep)))])
        for i in range(0, len(metrics), BATCH):
            client.log_batch(rid, metrics=metrics[i:i + BATCH])
        status = {"interrupted": "KILLED", "error": "FAILED"}.get(record["status"], "FINISHED")
        client.set_terminated(rid, status)
        return rid

    def _experiment(self, client: Any) -> str:
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(self.experiment)
        except Exception:  # noqa: BLE001 - another job created it meanwhile
            return client.get_experiment_by_name(self.experiment).experiment_id
