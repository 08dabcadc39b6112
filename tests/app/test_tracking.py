"""optlab.app.tracking.MLflowCallback: each run's parameters, status and curve in MLflow (a local file store)."""

from __future__ import annotations

import builtins
import json
import sys

import numpy as np
import pytest

import optlab
from optlab.engine.stopping import Stop
from optlab.errors import ConfigError
from optlab.objectives import Rosenbrock
from optlab.solvers import SOLVERS

from ..conftest import run_cli, to_dir
from .test_bad_values import call

pytest.importorskip("mlflow", reason="optlab.app.tracking.MLflowCallback needs mlflow (the mlflow extra)")

from mlflow.tracking import MlflowClient  # noqa: E402

from optlab.app.tracking import MLflowCallback, thinned  # noqa: E402

CALLBACK = "+hydra.callbacks.mlflow._target_=optlab.app.tracking.MLflowCallback"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A local MLflow file store (MLflow 3 asks for this variable before it writes one)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return f"file://{tmp_path / 'mlruns'}"


def mlflow_runs(uri: str, experiment: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {uri}"
    return client.search_runs([found.experiment_id])


def test_a_sweep_sends_every_run_with_its_curve(tmp_path, store, capsys, monkeypatch):
    sweep = tmp_path / "sweep"
    code, out, err = call(["-m", "solver=gd,newton", "objective=double_well", "stop.max_iter=40", "report.auto=false",
                           CALLBACK, f"+hydra.callbacks.mlflow.tracking_uri={store}",
                           "+hydra.callbacks.mlflow.experiment=lab", f"hydra.sweep.dir={sweep}"], capsys, monkeypatch)
    assert code == 0, err
    runs, its = optlab.load(sweep)
    sent = {r.data.tags["optlab.run_id"]: r for r in mlflow_runs(store, "lab")}
    assert sorted(sent) == sorted(runs.run_id)
    client = MlflowClient(tracking_uri=store)
    for row in runs.itertuples():
        mine = sent[row.run_id]
        assert mine.data.tags["optlab.status"] == row.status and mine.info.status == "FINISHED"
        assert mine.data.params["solver"] == row.solver and mine.data.params["objective"] == "double_well"
        assert mine.data.params["stop.max_iter"] == "40" and mine.data.params["x0"] == "[2.0]"
        assert mine.data.metrics["iterations"] == row.iterations and mine.data.metrics["nfev"] == row.nfev
        curve = sorted(client.get_metric_history(mine.info.run_id, "f"), key=lambda m: m.step)
        mine_its = its[its.run_id == row.run_id]
        assert [m.step for m in curve] == mine_its.iter.tolist()
        np.testing.assert_array_equal([m.value for m in curve], mine_its.f.to_numpy())
        gap = sorted(client.get_metric_history(mine.info.run_id, "gap"), key=lambda m: m.step)
        assert [m.step for m in gap] == mine_its.iter.tolist()
        np.testing.assert_allclose([m.value for m in gap], mine_its.f.to_numpy() + 1.0, rtol=0, atol=1e-12)  # f* = -1
    assert sent[runs[runs.solver == "newton"].run_id.iloc[0]].data.params["solver"] == "newton"


def test_long_curves_are_thinned_and_statuses_mapped(tmp_path, store):
    run_dir = tmp_path / "run"
    record = to_dir(run_dir, Rosenbrock(), SOLVERS["gd"](lr=1e-3), [0.0, 2.0], Stop(max_iter=500, gtol=0))
    callback = MLflowCallback(tracking_uri=store, experiment="thin", max_points=20)
    rid = callback.log_run(run_dir)
    client = MlflowClient(tracking_uri=store)
    curve = sorted(client.get_metric_history(rid, "f"), key=lambda m: m.step)
    assert len(curve) == 20 and curve[0].step == 0 and curve[-1].step == record["iterations"] == 500
    assert client.get_run(rid).data.tags["optlab.points"] == "20"
    assert thinned(5, 20).tolist() == [0, 1, 2, 3, 4] and thinned(1001, 3).tolist() == [0, 500, 1000]
    # an interrupted run is KILLED in MLflow, its status kept as a tag
    on_disk = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**on_disk, "status": "interrupted"}))
    killed = client.get_run(callback.log_run(run_dir))
    assert killed.info.status == "KILLED" and killed.data.tags["optlab.status"] == "interrupted"


def test_missing_mlflow_is_one_line(monkeypatch):
    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name.startswith("mlflow"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    with pytest.raises(ConfigError, match=r"^hydra.callbacks.mlflow needs mlflow, which is not installed; allowed: "
                                          r"install it with pip install 'optlab\[mlflow\]'$"):
        MLflowCallback()


def test_the_command_line_accepts_the_callback(tmp_path, store):
    out = run_cli("solver=newton", "objective=double_well", CALLBACK, f"+hydra.callbacks.mlflow.tracking_uri={store}",
                  f"hydra.run.dir={tmp_path / 'run'}", env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    assert out.returncode == 0, out.stderr
    assert len(mlflow_runs(store, "optlab")) == 1
