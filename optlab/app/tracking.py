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
be reached is a warning: the runs are on disk either way.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ..errors import ConfigError, check_number

MAX_PARAM_CHARS = 500  # a parameter's value is cut there (MLflow limits their length)
BATCH = 1000  # metrics per request, MLflow's limit
#: Record fields logged once, by their metric names ("gap" is the curve's name).
FINALS = {"f_final": "f_final", "gap": "gap_final", "iterations": "iterations", "nfev": "nfev", "ngev": "ngev",
          "nhev": "nhev", "wall_time_s": "wall_time_s"}


def _mlflow() -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("hydra.callbacks.mlflow needs mlflow, which is not installed; allowed: install it with "
                          "pip install 'optlab[mlflow]'") from None
    return MlflowClient


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
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "optlab", max_points: int = 10_000) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = str(experiment)
        self.max_points = check_number("hydra.callbacks.mlflow.max_points", max_points, low=2, strict=False,
                                       integer=True)
        _mlflow()  # a missing mlflow is a one-line error when the callback is built, before any run

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        from ..rundir.layout import RECORD

        out_dir = Path(HydraConfig.get().runtime.output_dir)
        records = [out_dir / RECORD] if (out_dir / RECORD).is_file() else sorted(out_dir.glob(f"start_*/{RECORD}"))
        try:
            for path in records:
                self.log_run(path.parent)
        except Exception as exc:  # noqa: BLE001 - the runs are on disk; the tracker is a copy
            print(f"optlab: warning: runs of {out_dir} not sent to MLflow ({type(exc).__name__}: {exc})",
                  file=sys.stderr)

    def log_run(self, run_dir: str | Path) -> str | None:
        """Send the run in ``run_dir`` to MLflow; returns MLflow's run id (None: no finished run there)."""
        from mlflow.entities import Metric, Param, RunTag

        import optlab

        run_dir = Path(run_dir)
        record = json.loads((run_dir / "run.json").read_text())
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
