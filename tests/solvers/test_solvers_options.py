"""Every solver is a plugin (config, class, docstring) and rejects bad options in one line."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from optlab.errors import ConfigError
from optlab.objectives import OBJECTIVES
from optlab.solvers import SOLVERS

from ..conftest import REPO

CONF = REPO / "conf" / "solver"


def _config(name: str) -> dict:
    return yaml.safe_load((CONF / f"{name}.yaml").read_text())


def test_every_config_is_a_registered_solver_and_back():
    assert {p.stem for p in CONF.glob("*.yaml")} == set(SOLVERS) | {"scipy"}  # scipy's methods: not one class each
    for name, cls in SOLVERS.items():
        assert cls.name == name


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_config_targets_the_class_and_lists_every_option_with_its_default(name):
    cls = SOLVERS[name]
    config = _config(name)
    module, _, attr = config.pop("_target_").rpartition(".")
    assert getattr(importlib.import_module(module), attr) is cls
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    assert config == defaults
    first_line = (CONF / f"{name}.yaml").read_text().splitlines()[0]
    assert first_line.startswith("# ") and len(first_line) > 20  # says what the method does


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_docstring_states_update_and_reference_and_params_rebuild(name):
    cls = SOLVERS[name]
    doc = inspect.getdoc(cls)
    assert "=" in doc or "<-" in doc, "the docstring states the update rule"
    assert any(ch.isdigit() for ch in doc) and ("Reference" in doc or "et al" in doc or "(19" in doc), \
        "the docstring names a reference with its year"
    solver = cls()
    params = solver.params()
    assert params == {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    assert cls(**params).params() == params


BAD_OPTIONS = [
    ("gd", {"schedule": "cosine"}, "solver.schedule='cosine' is unknown; allowed: constant, exponential, "
                                   "inverse_time, step"),
    ("gd", {"line_search": "exact"}, "solver.line_search='exact' is unknown; allowed: none, armijo, wolfe"),
    ("gd", {"lr": 0}, "solver.lr=0 is out of range; allowed: a number > 0"),
    ("gd", {"lr": -1}, "solver.lr=-1 is out of range; allowed: a number > 0"),
    ("gd", {"lr": "fast"}, "solver.lr='fast' is not a number; allowed: a number > 0"),
    ("gd", {"schedule": "exponential", "decay_rate": 2}, "solver.decay_rate=2 is out of range for "
                                                         "schedule=exponential; allowed: a number in (0, 1]"),
    ("gd", {"schedule": "step", "decay_steps": 0},
     "solver.decay_steps=0 is out of range; allowed: a whole number >= 1"),
    ("gd", {"c1": 0}, "solver.c1=0 is out of range; allowed: a number in (0, 1)"),
    ("gd", {"line_search": "wolfe", "c1": 0.5, "c2": 0.4}, "solver.c2=0.4 is out of range; allowed: a number in "
                                                            "(c1, 1) = (0.5, 1)"),
    ("momentum", {"beta": 1}, "solver.beta=1 is out of range; allowed: a number in [0, 1)"),
    ("nesterov", {"beta": -0.1}, "solver.beta=-0.1 is out of range; allowed: a number in [0, 1)"),
    ("adam", {"beta1": 1.0}, "solver.beta1=1.0 is out of range; allowed: a number in [0, 1)"),
    ("adam", {"beta2": 1.5}, "solver.beta2=1.5 is out of range; allowed: a number in [0, 1)"),
    ("adam", {"eps": 0}, "solver.eps=0 is out of range; allowed: a number > 0"),
    ("rmsprop", {"rho": 1}, "solver.rho=1 is out of range; allowed: a number in [0, 1)"),
    ("adagrad", {"lr": -0.1}, "solver.lr=-0.1 is out of range; allowed: a number > 0"),
    ("newton", {"line_search": "goldstein"}, "solver.line_search='goldstein' is unknown; allowed: none, armijo, wolfe"),
    ("newton", {"hessian_modification": "abs"}, "solver.hessian_modification='abs' is unknown; allowed: none, "
                                                "eigenvalue, cholesky"),
    ("newton_cg", {"max_cg_iter": 0}, "solver.max_cg_iter=0 is out of range; allowed: a whole number >= 1 or null"),
    ("trust_region", {"subproblem": "dogleg"}, "solver.subproblem='dogleg' is unknown; allowed: steihaug, exact"),
    ("trust_region", {"eta": 0.5}, "solver.eta=0.5 is out of range; allowed: a number in [0, 0.25)"),
    ("trust_region", {"initial_radius": 0}, "solver.initial_radius=0 is out of range; allowed: a number > 0"),
    ("trust_region", {"initial_radius": 10, "max_radius": 5}, "solver.max_radius=5 is out of range; allowed: a "
                                                              "number >= solver.initial_radius = 10"),
    ("bfgs", {"line_search": "none"}, "solver.line_search='none' is unknown; allowed: wolfe, armijo"),
    ("lbfgs", {"m": 0}, "solver.m=0 is out of range; allowed: a whole number >= 1"),
    ("lbfgs", {"m": 2.5}, "solver.m=2.5 is not a whole number; allowed: a whole number >= 1"),
    ("cg", {"beta": "hestenes_stiefel"}, "solver.beta='hestenes_stiefel' is unknown; allowed: polak_ribiere_plus, "
                                         "fletcher_reeves"),
    ("gauss_newton", {"line_search": "wolfe"}, "solver.line_search='wolfe' is unknown; allowed: none, armijo"),
    ("levenberg_marquardt", {"factor": 0}, "solver.factor=0 is out of range; allowed: a number > 0"),
    ("nelder_mead", {"xatol": -1}, "solver.xatol=-1 is out of range; allowed: a number >= 0"),
    ("nelder_mead", {"adaptive": "yes"}, "solver.adaptive='yes' is not a flag; allowed: true, false or null"),
]


@pytest.mark.parametrize(("name", "options", "message"), BAD_OPTIONS, ids=[f"{n}-{list(o)}" for n, o, _ in BAD_OPTIONS])
def test_bad_option_is_one_line_naming_key_value_and_allowed(name, options, message):
    with pytest.raises(ConfigError) as err:
        SOLVERS[name](**options)
    text = str(err.value)
    assert text == message
    assert "\n" not in text


def test_every_solver_has_a_bad_option_case():
    covered = {name for name, _, _ in BAD_OPTIONS}
    assert covered >= set(SOLVERS) - {"lstsq"}  # lstsq has no options


@pytest.mark.parametrize("name", ["gauss_newton", "levenberg_marquardt"])
def test_residual_solvers_refuse_other_objectives_in_one_line(name):
    with pytest.raises(ConfigError) as err:
        SOLVERS[name]().check(OBJECTIVES["six_hump_camel"]())
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"solver={name} needs a sum-of-squares objective with residual(x); objective=six_hump_camel")
    with_residual = [n for n, cls in OBJECTIVES.items() if callable(getattr(cls, "residual", None))]
    assert with_residual and all(n in text.split("allowed: ")[1] for n in with_residual)
    SOLVERS[name]().check(OBJECTIVES["curve_fit"]())  # accepted


def test_cli_reports_a_bad_solver_option_in_one_line(cli):
    out = cli("solver=lbfgs", "solver.m=0")
    assert out.returncode == 2
    assert out.stderr.strip() == "optlab: error: solver.m=0 is out of range; allowed: a whole number >= 1"


def test_configs_compose_through_the_cli_for_a_new_solver(cli):
    out = cli("solver=bfgs", "objective=rosenbrock", "x0=[-1.2,1]", "stop.gtol=1e-5")
    assert out.returncode == 0, out.stderr
    assert Path(cli.run_dir / "run.json").is_file()
