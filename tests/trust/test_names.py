"""optlab.trust: names are resolved only from trusted places, checked before anything is imported;
a property test draws names from attribute walks over every module optlab imports and finds
none that would be called outside the rule."""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optlab
import optlab.app.cli
import optlab.app.job
import optlab.app.tracking
import optlab.report
from optlab import trust
from optlab.app import hydra_trust
from optlab.app.plugins import KINDS
from optlab.errors import ConfigError
from optlab.objectives import Objective
from optlab.objectives.black_box import load_function
from optlab.solvers import Solver

from ..conftest import REPO

#: Every module optlab brings in (numpy, pandas, pyarrow, pathlib, os, pickle, hydra, ...), and
#: optlab's own; the tests' modules are the project's and left out.
MODULES = sorted(name for name, module in list(sys.modules.items())
                 if isinstance(module, types.ModuleType) and not name.startswith(("tests", "__main__", "_pytest",
                                                                                   "pytest", "hypothesis")))


def walk_name(data: st.DataObject) -> str:
    """A dotted name: a module, then up to three attributes each looked up on the one before."""
    name = data.draw(st.sampled_from(MODULES), label="module")
    obj = sys.modules.get(name)
    for _ in range(data.draw(st.integers(1, 3), label="depth")):
        try:
            attrs = sorted(a for a in vars(obj) if isinstance(a, str) and a.isidentifier())
        except TypeError:
            break
        if not attrs:
            break
        attr = data.draw(st.sampled_from(attrs), label="attribute")
        name, obj = f"{name}.{attr}", vars(obj)[attr]
    return name


def newly_imported(name: str, before: set[str]) -> list[str]:
    """The modules a dotted ``name`` could name (its prefixes) that were imported since ``before``."""
    parts = name.split(".")
    prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
    return sorted(p for p in prefixes if p in sys.modules and p not in before)


def _is_optlab_class(obj: object, base: type) -> bool:
    return inspect.isclass(obj) and issubclass(obj, base) and obj.__module__.startswith("optlab.")


def _callback_base() -> type:
    from hydra.experimental.callback import Callback

    return Callback


CHECKS = {
    # where a config names code: (resolve the name, what an accepted name must be)
    "objective._target_": (lambda n: trust.resolve("objective._target_", n, KINDS["objective"]),
                           lambda obj: _is_optlab_class(obj, Objective)),
    "solver._target_": (lambda n: trust.resolve("solver._target_", n, KINDS["solver"]),
                        lambda obj: _is_optlab_class(obj, Solver)),
    "hydra.callbacks": (lambda n: hydra_trust.check_callback("hydra.callbacks.x", {"_target_": n}),
                        lambda obj: _is_optlab_class(obj, _callback_base())),
    "hydra.job_logging": (lambda n: hydra_trust.check_logging("hydra.job_logging",
                                                              {"handlers": {"h": {"class": n}}}) or n,
                          lambda n: inspect.isclass(obj := _logging_class(n))
                          and issubclass(obj, (logging.Handler, logging.Formatter, logging.Filter))
                          and obj.__module__.split(".")[0] in ("logging", "colorlog")),
    "objective.function": (lambda n: load_function("objective.function", n), lambda fn: False),
}


def _logging_class(name: str) -> object:
    module, _, attr = name.rpartition(".")
    return getattr(sys.modules[module], attr)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), where=st.sampled_from(sorted(CHECKS)))
def test_names_from_attribute_walks_are_refused_before_anything_is_imported(data, where):
    name = walk_name(data)
    resolve, expected = CHECKS[where]
    before = set(sys.modules)
    try:
        accepted = resolve(name)
    except ConfigError as exc:
        assert str(exc).count("\n") == 0
        if "is not allowed (" in str(exc):  # refused by where it is: nothing of it was imported
            assert not newly_imported(name, before), (name, newly_imported(name, before))
        return
    assert expected(accepted), f"{where}={name} was accepted: {accepted!r}"


@pytest.mark.parametrize("name", [
    "optlab.tracking.np.load", "optlab.app.tracking.np.load", "optlab.app.tracking.Path.write_text",
    "optlab.hydra_callbacks.sys.exit", "numpy.load", "pickle.loads", "os.system", "subprocess.getoutput",
    "pathlib.Path.write_text", "pandas.compat.pickle_compat.loads", "logging.os.popen", "logging.os.system",
    "builtins.eval", "this.s", "antigravity.geohash", "optlab.moved.importlib.import_module",
])
@pytest.mark.parametrize("where", sorted(CHECKS))
def test_known_attacks_are_refused_by_every_check_without_importing(name, where):
    before = set(sys.modules)
    with pytest.raises(ConfigError) as caught:
        CHECKS[where][0](name)
    assert "\n" not in str(caught.value)
    assert not newly_imported(name, before)


def test_a_refused_module_is_not_executed(tmp_path, monkeypatch):
    """A module outside the trusted places is never run to find out what it holds."""
    site = tmp_path / "site-packages"
    site.mkdir()
    marker = tmp_path / "imported"
    (site / "noisy.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass X: pass\n")
    monkeypatch.syspath_prepend(str(site))
    for where in CHECKS:
        with pytest.raises(ConfigError, match="outside optlab and the project"):
            CHECKS[where][0]("noisy.X")
    assert not marker.exists() and "noisy" not in sys.modules


def test_places():
    assert trust.place_of(optlab.__file__) == "optlab"
    assert trust.place_of(inspect.getfile(importlib)) is None  # the standard library
    assert trust.place_of(inspect.getfile(pytest)) is None  # an installed package
    assert trust.place_of(REPO / "examples" / "my_plugins" / "my_black_box.py") == "project"
    assert trust.module_place("optlab.app.tracking")[0] == "optlab"
    assert trust.module_place("os")[0] is None  # frozen
    assert trust.module_place("optlab.tracking")[0] is None  # an alias module of optlab.moved
    with pytest.raises(ModuleNotFoundError):
        trust.module_place("optlab.no_such_module")


def test_optlab_plugins_and_logging_classes_resolve():
    assert trust.resolve("objective._target_", "optlab.objectives.Rosenbrock", KINDS["objective"]).name == "rosenbrock"
    assert hydra_trust.check_callback("k", {"_target_": "optlab.app.tracking.MLflowCallback"}).__name__ == \
        "MLflowCallback"
    with pytest.warns(DeprecationWarning, match="optlab.app.tracking.MLflowCallback"):
        hydra_trust.check_callback("k", {"_target_": "optlab.tracking.MLflowCallback"})
    hydra_trust.check_logging("hydra.job_logging", {
        "formatters": {"simple": {"format": "%(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
                     "file": {"class": "logging.FileHandler", "filename": "x.log"},
                     "rotating": {"()": "logging.handlers.RotatingFileHandler", "filename": "y.log"}}})


@pytest.mark.parametrize("node, words", [
    ({"handlers": {"h": {"class": "logging.os.popen"}}}, "is not allowed"),
    ({"handlers": {"h": {"class": "logging.handlers.os.system"}}}, "is not allowed"),
    ({"formatters": {"f": {"()": "logging.makeLogRecord"}}}, "is not a logging class"),
    ({"handlers": {"h": {"class": "${oc.env:HANDLER}"}}}, "is an interpolation"),
    ({"handlers": {"h": {"class": "logging.StreamHandler", "stream": "ext://os.system"}}}, "ext://sys.stdout"),
])
def test_logging_factories_and_streams(node, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        hydra_trust.check_logging("hydra.job_logging", node)


def test_log_files_stay_in_the_job_directory(tmp_path):
    inside = {"handlers": {"file": {"class": "logging.FileHandler", "filename": str(tmp_path / "job" / "a.log")}}}
    hydra_trust.check_log_files("hydra.job_logging", inside, str(tmp_path / "job"))
    for filename in (tmp_path / "elsewhere.log", tmp_path / "job" / ".." / "escape.log"):
        node = {"handlers": {"file": {"class": "logging.FileHandler", "filename": str(filename)}}}
        with pytest.raises(ConfigError, match="is not allowed \\(outside the job's directory"):
            hydra_trust.check_log_files("hydra.job_logging", node, str(tmp_path / "job"))
    with pytest.raises(ConfigError, match="is not allowed"):  # Hydra's own logging: no job directory, no file
        hydra_trust.check_log_files("hydra.hydra_logging", inside, None)


@pytest.mark.slow  # (Hydra's plugin scan imports every installed launcher: Ray's too)
def test_launchers_and_sweepers_are_hydra_registered_plugins():
    optlab.app.cli._register_sweeper()
    hydra_trust.check_hydra({"launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"},
                             "sweeper": {"_target_": "hydra_plugins.optlab_sweeper.optlab_sweeper.OptlabSweeper"}})
    with pytest.raises(ConfigError, match="a launcher plugin registered with Hydra"):
        hydra_trust.check_hydra({"launcher": {"_target_": "hydra_plugins.optlab_sweeper.optlab_sweeper.os.system"}})
    with pytest.raises(ConfigError, match="hydra.job._target_ is not used by optlab"):
        hydra_trust.check_hydra({"job": {"_target_": "os.system"}})
    pytest.importorskip("optuna")
    hydra_trust.check_hydra_plugin("hydra.sweeper", {"sampler": {"_target_": "optuna.samplers.TPESampler"}})
    with pytest.raises(ConfigError, match="is not allowed"):
        hydra_trust.check_hydra_plugin("hydra.sweeper", {"sampler": {"_target_": "optuna.samplers._tpe.sampler.np"}})


def test_a_black_box_that_exits_ends_its_run_with_a_status():
    def quits(x):
        raise SystemExit(3)

    result = optlab.minimize(optlab.objectives.BlackBox(quits, dim=2), "nelder_mead", max_iter=5)
    assert result.status == "error" and "objective.function raised SystemExit(3)" in result.message
