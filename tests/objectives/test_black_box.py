"""Black boxes: a plain numpy function as an objective, derivatives by differences, every call counted.

The recipe of the README: an external function (``examples/my_plugins/my_black_box.py``),
Nelder-Mead and BFGS with finite differences, a budget (``stop.max_fev``) and a fixed target
(``stop.target``), from Python and from the command line, with the evaluation counts equal to
the calls the function really received.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

import optlab
from optlab.errors import ConfigError, EndRun
from optlab.objectives import BlackBox

from ..conftest import REPO, run_cli


class Counted:
    """A function that counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, x):
        self.calls += 1
        return self.fn(x)


@pytest.mark.parametrize("differences, rtol", [("central", 1e-8), ("forward", 1e-6)])
def test_differences_give_the_gradient(differences, rtol):
    box = BlackBox(rosen, dim=4, differences=differences)
    for x in np.random.default_rng(0).uniform(-2, 2, (5, 4)):
        f, g = box.value_and_grad(x)
        assert f == rosen(x)
        np.testing.assert_allclose(g, rosen_der(x), rtol=rtol, atol=rtol * np.abs(rosen_der(x)).max())


@pytest.mark.parametrize("solver, differences, status", [
    ("nelder_mead", "central", "target"), ("bfgs", "central", "target"), ("lbfgs", "central", "target"),
    ("bfgs", "forward", "target"),  # an evaluation of the differences reaches the target before ||g|| <= 1e-5
])
def test_every_call_of_the_function_is_counted_and_the_target_ends_the_run(solver, differences, status):
    fn = Counted(rosen)
    result = optlab.minimize(BlackBox(fn, dim=2, x0=[-1.2, 1.0], f_star=0.0, differences=differences), solver,
                             gtol=1e-5, max_fev=5_000, target=1e-8)
    assert result.status == status and result.success and (result.f <= 1e-8 or status == "converged")
    assert result.nfev == fn.calls and result.ngev == 0
    assert result.iterates.nfev.is_monotonic_increasing and result.iterates.nfev.iloc[-1] == fn.calls


@pytest.mark.parametrize("solver", ["nelder_mead", "bfgs", "gd"])
def test_the_budget_of_function_evaluations_is_never_exceeded(solver):
    fn = Counted(rosen)
    result = optlab.minimize(BlackBox(fn, dim=3), solver, max_fev=97, gtol=0)
    assert result.status == "max_fev" and fn.calls == result.nfev <= 97
    assert result.nfev > 97 - 7  # the last call that fits was made (central differences: 7 per gradient)


def test_a_user_gradient_is_used_and_counted_as_a_gradient():
    fn, grad = Counted(rosen), Counted(rosen_der)
    result = optlab.minimize(BlackBox(fn, dim=2, x0=[-1.2, 1.0], gradient=grad), "bfgs", gtol=1e-6)
    assert result.status == "converged" and (result.nfev, result.ngev) == (fn.calls, grad.calls)


def test_the_function_may_end_a_run_cleanly():
    def simulator(x):
        simulator.calls = getattr(simulator, "calls", 0) + 1
        if simulator.calls > 30:
            raise EndRun("the simulator's licence ran out", status="failed")
        return rosen(x)

    result = optlab.minimize(BlackBox(simulator, dim=2), "nelder_mead")
    assert result.status == "failed" and result.message.startswith("the simulator's licence ran out")
    assert len(result.iterates) == result.iterations + 1


@pytest.mark.parametrize("spec, words", [
    ("os.system", "is not allowed"),
    ("subprocess.getoutput", "is not allowed"),
    ("no_such_module.f", "cannot be imported"),
    (None, "objective.function is missing"),
])
def test_the_function_must_be_one_of_your_own(spec, words):
    with pytest.raises(ConfigError, match=words):
        BlackBox(spec, dim=2)


def test_black_box_recipe_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    args = ["objective=black_box", "objective.function=my_plugins.my_black_box.rosenbrock", "objective.x0=[-1.2,1]",
            "objective.f_star=0", "stop.max_fev=400", "stop.target=1e-8", "stop.gtol=1e-6"]
    for solver in ("nelder_mead", "bfgs"):
        out = run_cli(*args, f"solver={solver}", f"hydra.run.dir={tmp_path / solver}", cwd=REPO / "examples")
        assert out.returncode == 0, out.stderr
        record = json.loads((tmp_path / solver / "run.json").read_text())
        assert record["status"] == "target" and record["nfev"] <= 400 and record["ngev"] == 0
        assert record["objective_params"]["function"] == "my_plugins.my_black_box.rosenbrock"
        here = optlab.minimize(BlackBox("my_plugins.my_black_box.rosenbrock", dim=2, x0=[-1.2, 1.0], f_star=0.0),
                               solver, max_fev=400, target=1e-8, gtol=1e-6)  # the same run from Python
        assert (here.status, here.iterations, here.nfev) == (record["status"], record["iterations"], record["nfev"])
    bad = run_cli("objective=black_box", "objective.function=os.system", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("optlab: error: objective.function='os.system'")
