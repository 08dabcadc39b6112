"""Every callable a config names is checked, Hydra's callbacks and logging included: an experiment
file on the search path cannot make optlab run a function, whatever Hydra's own checks are."""

from __future__ import annotations

import pytest

from ..app.test_bad_values import call, one_line


@pytest.mark.parametrize("override, key", [
    ("+hydra.callbacks.evil._target_=subprocess.getoutput", "hydra.callbacks.evil._target_='subprocess.getoutput'"),
    # (a harmless class Hydra's own blocklist lets through: optlab's allow-list is what refuses it)
    ("+hydra.callbacks.evil._target_=collections.OrderedDict", "hydra.callbacks.evil._target_='collections"),
    ("hydra.callbacks.summary._target_=os.getcwd", "hydra.callbacks.summary._target_='os.getcwd'"),
    ("+hydra.job_logging.handlers.evil.class=subprocess.Popen", "hydra.job_logging.handlers.evil.class"),
])
def test_callbacks_and_logging_factories_are_refused(override, key, tmp_path, capsys, monkeypatch):
    marker = tmp_path / "ran"
    code, out, err = call(["objective=double_well", override, f"+hydra.callbacks.evil.cmd=touch {marker}"
                           if "callbacks.evil" in override else "stop.max_iter=5",
                           f"hydra.run.dir={tmp_path / 'run'}"], capsys, monkeypatch)
    one_line(code, err, key, "is not allowed", "OPTLAB_TRUST_CONFIG=1")
    assert not marker.exists() and not (tmp_path / "run" / "run.json").exists()


def test_experiment_file_on_the_search_path_cannot_add_a_callback(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "ran"
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "innocent.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    evil:\n      _target_: subprocess.getoutput\n"
        f"      cmd: touch {marker}\n")
    for mode in ([], ["-m"]):
        code, _, err = call([*mode, "+experiment=innocent", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                             "objective=double_well", f"hydra.run.dir={tmp_path / 'run'}",
                             f"hydra.sweep.dir={tmp_path / 'sweep'}"], capsys, monkeypatch)
        one_line(code, err, "hydra.callbacks.evil._target_='subprocess.getoutput' is not allowed")
        assert not marker.exists() and not (tmp_path / "sweep").exists()


def test_launchers_and_sweepers_of_hydra_are_allowed(tmp_path, capsys, monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    code, out, err = call(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1", "objective=double_well",
                           "stop.max_iter=5,6", "report.auto=false", f"hydra.sweep.dir={tmp_path / 's'}"],
                          capsys, monkeypatch)
    assert code == 0, err
    assert f"sweep: 2 runs in {tmp_path / 's'}" in out
