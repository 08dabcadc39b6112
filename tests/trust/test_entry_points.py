"""What the trust rule lets through: a user's own module under the working directory, and an
installed package's plugins registered as entry points (a small package in a ``site-packages``
folder on PYTHONPATH, with its ``dist-info``; nothing is installed into the environment)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

import optlab
from optlab import trust
from optlab.errors import ConfigError
from optlab.objectives.black_box import FUNCTION, BlackBox

from ..conftest import REPO, run_cli

PACKAGE = {
    "optlab_extra/__init__.py": "",
    "optlab_extra/problems.py": '''
        import numpy as np
        from optlab import autodiff as ad
        from optlab.objectives import Objective

        def sphere(x):
            """Registered: sum (x_i - 1)^2."""
            return float(np.sum((np.asarray(x) - 1.0) ** 2))

        def unregistered(x):
            """In the same package, but not an entry point."""
            return 0.0

        class Shifted(Objective):
            """Registered: sum (x_i - 2)^2, minimum 0 at (2, ..., 2)."""
            name = "shifted"

            def __init__(self, dim: int = 2):
                self.dim, self.x0, self.f_star = dim, np.zeros(dim), 0.0
                self.box = np.array([[-5.0, 5.0]] * dim)

            def f(self, x):
                return ad.sum((x - 2.0) ** 2)
    ''',
    "optlab_extra/callbacks.py": '''
        from pathlib import Path
        from hydra.experimental.callback import Callback

        class Marker(Callback):
            """Registered: writes a file when a run ends."""
            def __init__(self, path: str):
                self.path = path

            def on_run_end(self, config, **kwargs):
                Path(self.path).write_text("ran")
    ''',
    "optlab_extra-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: optlab-extra\nVersion: 0.1\n",
    "optlab_extra-0.1.dist-info/entry_points.txt": '''
        [optlab.objectives]
        shifted = optlab_extra.problems:Shifted
        sphere = optlab_extra.problems:sphere

        [optlab.callbacks]
        marker = optlab_extra.callbacks:Marker
    ''',
}


@pytest.fixture
def installed(tmp_path) -> Path:
    """A folder laid out as site-packages, holding the package and its metadata."""
    site = tmp_path / "lib" / "site-packages"
    for name, text in PACKAGE.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(textwrap.dedent(text).lstrip())
    return site


def env_with(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": f"{REPO}{os.pathsep}{site}"}


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.mark.slow  # (several optlab processes)
def test_registered_plugins_run_from_the_command_line(installed, tmp_path):
    marker = tmp_path / "callback-ran"
    runs = {
        "class by target": ["objective._target_=optlab_extra.problems.Shifted", "solver=newton"],
        "class by name": ["objective._target_=shifted", "objective.dim=3", "solver=newton"],
        "function by target": ["objective=black_box", "objective.function=optlab_extra.problems.sphere",
                               "solver=bfgs", "stop.gtol=1e-6"],
        "function by name": ["objective=black_box", "objective.function=sphere", "solver=bfgs", "stop.gtol=1e-6"],
    }
    for label, args in runs.items():
        where = tmp_path / label.replace(" ", "_")
        out = run_cli(*args, f"hydra.run.dir={where}", env=env_with(installed), cwd=tmp_path)
        assert out.returncode == 0, (label, out.stderr)
        rec = record(where)
        assert rec["status"] == "converged" and rec["f_final"] < 1e-10, (label, rec["status"], rec["message"])
    assert record(tmp_path / "class_by_name")["x_final"] == pytest.approx([2.0, 2.0, 2.0])
    out = run_cli("objective=double_well", "stop.max_iter=3",
                  "+hydra.callbacks.m._target_=optlab_extra.callbacks.Marker", f"+hydra.callbacks.m.path={marker}",
                  f"hydra.run.dir={tmp_path / 'with_callback'}", env=env_with(installed), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert marker.read_text() == "ran"


def test_what_a_registered_package_did_not_register_is_refused(installed, tmp_path):
    out = run_cli("objective=black_box", "objective.function=optlab_extra.problems.unregistered",
                  f"hydra.run.dir={tmp_path / 'run'}", env=env_with(installed), cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "objective.function='optlab_extra.problems.unregistered' is not allowed" in out.stderr
    assert "site-packages" in out.stderr and not (tmp_path / "run").exists()


def test_registered_names_resolve_in_process(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    fn = trust.resolve("objective.function", "sphere", FUNCTION)
    assert fn.__module__ == "optlab_extra.problems" and fn([1.0, 1.0]) == 0.0
    assert trust.check_place("k", "optlab_extra.problems.sphere", FUNCTION) == "entry point"
    with pytest.raises(ConfigError, match="is not allowed"):
        trust.check_place("k", "optlab_extra.problems.unregistered", FUNCTION)


@pytest.mark.slow  # (several optlab processes)
def test_a_users_own_module_under_the_working_directory(tmp_path):
    """The black box of the README: ``mymodule.f`` next to where optlab is started."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "mymodule.py").write_text(textwrap.dedent('''
        import numpy as np
        from shutil import rmtree  # handed on, not defined here: not the project's code

        def f(x):
            return float(np.sum((x - 3.0) ** 2))
    '''))
    out = run_cli("objective=black_box", "objective.function=mymodule.f", "objective.dim=2", "solver=bfgs",
                  "stop.gtol=1e-6", f"hydra.run.dir={tmp_path / 'run'}", cwd=project)
    assert out.returncode == 0, out.stderr
    rec = record(tmp_path / "run")
    assert rec["status"] == "converged" and rec["x_final"] == pytest.approx([3.0, 3.0], abs=1e-5)
    assert rec["objective_params"]["function"] == "mymodule.f"
    out = run_cli("objective=black_box", "objective.function=mymodule.rmtree", f"hydra.run.dir={tmp_path / 'bad'}",
                  cwd=project)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "objective.function='mymodule.rmtree' is not allowed (it is defined in" in out.stderr


def test_a_virtual_environment_inside_the_project_is_not_the_project(tmp_path, monkeypatch):
    """Installed packages stay installed packages when their folder lies under the working directory."""
    site = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages"
    (site / "helper").mkdir(parents=True)
    (site / "helper" / "__init__.py").write_text("def f(x):\n    return 0.0\n")
    (tmp_path / "mine.py").write_text("def f(x):\n    return 0.0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert trust.place_of(site / "helper" / "__init__.py") is None
    assert trust.place_of(tmp_path / "mine.py") == "project"
    with pytest.raises(ConfigError, match="outside optlab and the project"):
        BlackBox("helper.f")
    assert BlackBox("mine.f").value([1.0, 2.0]) == 0.0


def test_user_plugins_of_the_examples_still_run(tmp_path):
    out = run_cli("hydra.searchpath=[file://conf]", "objective=my_objective", "solver=my_solver", "stop.max_iter=5",
                  f"hydra.run.dir={tmp_path / 'run'}", cwd=REPO / "examples")
    assert out.returncode == 0, out.stderr
    assert optlab.load(tmp_path / "run")[0].objective[0] == "my_objective"


def test_a_callback_is_named_in_full(installed, monkeypatch):
    """Hydra looks a callback up by the name itself, so a registered callback's bare name is refused."""
    from optlab.app.hydra_trust import check_callback

    monkeypatch.syspath_prepend(str(installed))
    assert check_callback("hydra.callbacks.m", {"_target_": "optlab_extra.callbacks.Marker"}).__name__ == "Marker"
    with pytest.raises(ConfigError, match="allowed: the full name module.Class"):
        check_callback("hydra.callbacks.m", {"_target_": "marker"})
