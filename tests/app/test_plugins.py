"""User plugins: an objective and a solver outside optlab, selected by name from the command line.

``examples/`` is laid out like a user's own project: ``my_plugins/`` (the classes) and
``conf/objective``, ``conf/solver`` (their configs), found with ``hydra.searchpath``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import optlab
from optlab.objectives import OBJECTIVES

from ..conftest import REPO, run_cli

EXAMPLES = REPO / "examples"
SEARCHPATH = "hydra.searchpath=[file://conf]"  # relative to the working directory


def run_example(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The README's command, run from ``examples/``: python -m optlab 'hydra.searchpath=[file://conf]' ..."""
    return run_cli(SEARCHPATH, *args, f"hydra.run.dir={tmp_path / 'run'}", cwd=EXAMPLES)


def bowl_gradient(x: np.ndarray, center: float = 1.0) -> np.ndarray:
    """grad of sum_i i (x_i - c)^2, by hand."""
    return 2.0 * np.arange(1, x.shape[-1] + 1) * (x - center)


def test_user_objective_from_the_command_line(tmp_path):
    out = run_example("objective=my_objective", "objective.dim=4", "solver=newton", "stop.max_iter=5",
                      tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    runs, iterates = optlab.load(tmp_path / "run")
    run = runs.iloc[0]
    assert run.objective == "my_objective" and run.solver == "newton" and run.status == "converged"
    assert run["objective.dim"] == 4 and run["objective.center"] == 1.0 and run.f_star == 0.0
    assert run.iterations == 1  # Newton on a quadratic
    np.testing.assert_allclose(run.x_final, np.ones(4), atol=1e-14)
    np.testing.assert_array_equal(iterates.iloc[0][["x_0", "x_1", "x_2", "x_3"]], np.zeros(4))
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["choices"]["objective"] == "my_objective"


def test_user_solver_from_the_command_line_follows_its_update(tmp_path):
    lr, beta = 0.02, 0.5
    out = run_example("objective=my_objective", "solver=my_solver", f"solver.lr={lr}", f"solver.beta={beta}",
                      "stop.max_iter=40", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    runs, iterates = optlab.load(tmp_path / "run")
    assert runs.solver[0] == "my_solver" and runs["solver.lr"][0] == lr and runs["solver.beta"][0] == beta
    assert runs.status[0] == "max_iter" and len(iterates) == 41
    x = iterates[["x_0", "x_1", "x_2"]].to_numpy()
    # heavy ball: x_{k+1} - x_k = beta (x_k - x_{k-1}) - lr grad f(x_k), with v_0 = 0
    previous_step = np.vstack([np.zeros((1, 3)), np.diff(x, axis=0)[:-1]])
    expected = beta * previous_step - lr * bowl_gradient(x[:-1])
    np.testing.assert_allclose(np.diff(x, axis=0), expected, rtol=1e-12, atol=1e-15)
    assert iterates.f.iloc[-1] < 1e-3 * iterates.f.iloc[0]
    assert (iterates.step_size.iloc[1:] == lr).all()


def test_user_solver_on_a_builtin_objective(tmp_path):
    out = run_example("objective=rosenbrock", "solver=my_solver", "solver.lr=0.001", "stop.max_iter=200",
                      tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    runs, iterates = optlab.load(tmp_path / "run")
    assert runs.objective[0] == "rosenbrock" and len(iterates) == 201
    assert iterates.f.iloc[-1] < iterates.f.iloc[0]


def test_user_plugin_mistakes_end_in_one_line_and_pythonpath_works_from_elsewhere(tmp_path):
    for args, expected in [
        (["objective=my_objective", "objective.dim=0"], "objective.dim=0 is out of range"),
        (["solver=my_solver", "solver.lr=-1"], "solver.lr=-1 is out of range"),
        (["objective=my_objectiv"], "my_objective"),  # the allowed names include the user's
    ]:
        out = run_example(*args, tmp_path=tmp_path)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and expected in lines[0], out.stderr
    # the same configs from the repo root: the classes are not importable from there
    out = run_cli("hydra.searchpath=[file://examples/conf]", "objective=my_objective",
                  f"hydra.run.dir={tmp_path / 'root'}")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "No module named 'my_plugins'" in out.stderr and "PYTHONPATH" in out.stderr
    out = run_cli("hydra.searchpath=[file://examples/conf]", "objective=my_objective", "stop.max_iter=3",
                  f"hydra.run.dir={tmp_path / 'root'}", env={"PYTHONPATH": f"{EXAMPLES}{os.pathsep}{REPO}"})
    assert out.returncode == 0 and optlab.load(tmp_path / "root")[0].objective[0] == "my_objective", out.stderr


def test_a_plugin_in_any_folder_with_the_console_script(tmp_path):
    """A new objective in a few lines, in a fresh folder, run with the ``optlab`` command."""
    project = tmp_path / "project"
    (project / "conf" / "objective").mkdir(parents=True)
    (project / "cone.py").write_text(textwrap.dedent('''
        import numpy as np
        from optlab import autodiff as ad
        from optlab.objectives import Objective

        class Tilted(Objective):
            """f(x) = (x_0 - 3)^2 + (x_1 + x_0)^2: minimum 0 at (3, -3)."""
            name = "tilted"

            def __init__(self):
                self.dim, self.x0, self.f_star = 2, np.zeros(2), 0.0
                self.minimizers, self.box = np.array([[3.0, -3.0]]), np.array([[-1.0, 5.0], [-5.0, 1.0]])

            def f(self, x):
                return (x[0] - 3.0) ** 2 + (x[1] + x[0]) ** 2
    '''))
    (project / "conf" / "objective" / "tilted.yaml").write_text("_target_: cone.Tilted\n")
    script = Path(sys.executable).with_name("optlab")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "optlab"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    out = subprocess.run([*command, "hydra.searchpath=[file://conf]", "objective=tilted", "solver=newton",
                          f"hydra.run.dir={tmp_path / 'run'}"], cwd=project, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    runs, _ = optlab.load(tmp_path / "run")
    assert runs.objective[0] == "tilted" and runs.status[0] == "converged"
    np.testing.assert_allclose(runs.x_final[0], [3.0, -3.0], atol=1e-12)


def test_user_plugins_from_python(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from my_plugins.my_objective import WeightedBowl
    from my_plugins.my_solver import HeavyBall

    result = optlab.minimize(WeightedBowl(dim=5, center=-2.0), HeavyBall(lr=0.05, beta=0.7), max_iter=300)
    np.testing.assert_allclose(result.x, np.full(5, -2.0), atol=1e-8)
    assert WeightedBowl(**WeightedBowl(dim=5, center=-2.0).params()).params() == {"dim": 5, "center": -2.0}
    # registered by name, the Python API finds it like a built-in
    monkeypatch.setitem(OBJECTIVES, "my_objective", WeightedBowl)
    assert optlab.minimize("my_objective", "newton", objective_options={"dim": 2}).status == "converged"


def test_a_user_step_solver_runs_fused_and_batched_like_its_generic_runs(monkeypatch):
    from optlab.engine.plan import make_plan
    from optlab.engine.stopping import Stop

    from ..conftest import assert_same_runs, batched, logged

    monkeypatch.syspath_prepend(str(EXAMPLES))
    from my_plugins.my_objective import WeightedBowl
    from my_plugins.my_solver import HeavyBall

    objective, solver, stop = WeightedBowl(dim=3), HeavyBall(lr=0.02, beta=0.8), Stop(max_iter=400)
    assert make_plan(objective, [solver, solver], objective.start(), stop).backend == "batched"

    generic = logged(objective, solver, [2.0, -1.0, 0.5], backend="generic", max_iter=400)
    assert_same_runs(logged(objective, solver, [2.0, -1.0, 0.5], backend="fused", max_iter=400), generic)
    (together, _) = batched(objective, solver, [[2.0, -1.0, 0.5], [1.0, 1.0, 1.0]], stop)
    assert_same_runs(together, generic)


@pytest.mark.parametrize("name", ["my_objective", "my_solver"])
def test_example_configs_name_existing_classes(name):
    group = "objective" if name == "my_objective" else "solver"
    text = (EXAMPLES / "conf" / group / f"{name}.yaml").read_text()
    target = next(ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("_target_"))
    module = EXAMPLES / (target.rpartition(".")[0].replace(".", "/") + ".py")
    assert module.is_file() and f"class {target.rpartition('.')[2]}(" in module.read_text()
