"""The trust rule of :mod:`optlab.trust` applied to what Hydra acts on: callbacks, launchers and
sweepers, Python logging's factories and streams, config search paths, and the plugin names of
the app's own config, each checked before Hydra imports or calls anything of it.

* ``hydra.callbacks.NAME._target_``: a Hydra ``Callback`` subclass, by its exact name, that is
  optlab's, registered (entry points ``optlab.callbacks``) or the project's; its options plain
  values (no ``_args_``, ``_partial_`` or nested ``_target_``).
* ``hydra.launcher._target_``, ``hydra.sweeper._target_``: a class Hydra itself registered as a
  plugin; inside the sweeper only Optuna's samplers and pruners; launcher options that run
  commands or install packages (``setup``, ``runtime_env``) only with ``OPTLAB_TRUST_CONFIG=1``.
* ``hydra.job_logging``, ``hydra.hydra_logging``: every ``()`` and ``class`` a
  ``logging.Formatter``, ``Handler`` or ``Filter`` subclass (from ``logging``,
  ``logging.handlers``, ``colorlog`` or a trusted module), written out, not interpolated;
  ``ext://`` only for ``sys.stdout`` and ``sys.stderr``; a handler's file inside the job's
  directory. Checked when the config is composed and again each time Hydra configures logging
  (a job's config may differ from its sweep's: ``+experiment=a,b``).
* ``hydra.searchpath`` entries ``pkg://MODULE``: Hydra imports MODULE, so it must be Hydra's,
  a Hydra plugin's, optlab's, a registered plugin package's or the project's.
"""

from __future__ import annotations

import functools
import logging
import logging.config
import os
import warnings
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.importlib_resources_config_source import (
    ImportlibResourcesConfigSource as _HydraPackageSource,
)
from omegaconf import DictConfig, OmegaConf

from .. import trust
from ..errors import ConfigError, describe

CALLBACK = trust.Kind("a Hydra callback class", "a subclass of hydra.experimental.callback.Callback",
                      trust.subclass_of(lambda: (_callback_base(),)), groups=("optlab.callbacks",))
LOGGING = trust.Kind("a logging class", "a subclass of logging.Formatter, logging.Handler or logging.Filter",
                     trust.subclass_of(logging.Formatter, logging.Handler, logging.Filter),
                     modules=("logging", "logging.handlers", "colorlog"))
SAMPLER = trust.Kind("an Optuna sampler or pruner", "a subclass of optuna.samplers.BaseSampler or "
                     "optuna.pruners.BasePruner", trust.subclass_of(lambda: _optuna_bases()),
                     modules=("optuna.samplers", "optuna.pruners"))
#: The streams a logging config may name with ``ext://`` (what Hydra's own configs use).
STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
#: Launcher options that run shell commands or install packages where the jobs run.
RUNS_CODE = ("setup", "runtime_env")
#: Keys of Hydra's instantiate that call things other than the class itself.
CALLING_KEYS = ("_args_", "_partial_")
#: Names of the black box, whose ``function`` and ``gradient`` name code to run.
BLACK_BOX = ("optlab.objectives.BlackBox", "optlab.objectives.black_box.BlackBox")
#: Packages whose configs Hydra may load with ``pkg://``: its own and its plugins'.
CONFIG_PACKAGES = ("hydra", "hydra_plugins")


def _callback_base() -> type:
    from hydra.experimental.callback import Callback

    return Callback


def _optuna_bases() -> tuple[type, ...]:
    import optuna

    return optuna.samplers.BaseSampler, optuna.pruners.BasePruner


def _where(*path: Any) -> str:
    return ".".join(str(p) for p in path)


def _written_out(key: str, value: Any, kind: trust.Kind) -> str:
    """A class name as it stands in the config: interpolations are refused (their value could
    change per job, where it is not checked)."""
    if isinstance(value, str) and "${" in value:
        raise ConfigError(f"{key}={describe(value)} is an interpolation; allowed: {kind.allowed}, its name "
                          "written out")
    return value


# -- the hydra subtree -------------------------------------------------------------------------
def check_hydra(tree: dict[str, Any]) -> None:
    """Refuse anything in ``tree`` (the ``hydra`` node of a composed config, unresolved) that
    would make Hydra import or call code outside the trust rule."""
    for name, node in (tree.get("callbacks") or {}).items():
        check_callback(_where("hydra.callbacks", name), node)
    for part in ("launcher", "sweeper"):
        check_hydra_plugin(f"hydra.{part}", tree.get(part))
    for part in ("job_logging", "hydra_logging"):
        check_logging(f"hydra.{part}", tree.get(part))
    for key, _ in _targets({k: v for k, v in tree.items() if k not in (
            "callbacks", "launcher", "sweeper", "job_logging", "hydra_logging")}, ("hydra",)):
        raise ConfigError(f"{key} is not used by optlab; allowed: _target_ in hydra.callbacks, hydra.launcher "
                          "and hydra.sweeper only")


def _nested(node: Any, path: tuple[str, ...]) -> list[tuple[str, Any, str]]:
    """``(key, value, where)`` of every entry of ``node``'s dicts and lists, at any depth."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        here = (*path, str(key))
        found += [(key, value, _where(*here)), *_nested(value, here)]
    return found


def _targets(node: Any, path: tuple[str, ...]) -> list[tuple[str, Any]]:
    """``(where, value)`` of every ``_target_`` under ``node``."""
    return [(where, value) for key, value, where in _nested(node, path) if key == "_target_"]


def check_callback(key: str, node: Any) -> type:
    """The callback class ``node`` names, checked (see the module's docstring)."""
    if not isinstance(node, dict) or "_target_" not in node:
        raise ConfigError(f"{key}={describe(node)} is not a callback; allowed: {key}._target_=package.module.Class")
    for special in CALLING_KEYS:
        if special in node:
            raise ConfigError(f"{key}.{special} is not allowed; allowed: _target_ and the class's own options")
    nested = _targets({k: v for k, v in node.items() if k != "_target_"}, (key,))
    if nested:
        raise ConfigError(f"{nested[0][0]}={describe(nested[0][1])} is not allowed; allowed: plain values as a "
                          "callback's options (Hydra would call a nested _target_)")
    name = _written_out(f"{key}._target_", node["_target_"], CALLBACK)
    cls = trust.resolve(f"{key}._target_", _current_name(name), CALLBACK)
    _same_for_hydra(f"{key}._target_", name, cls)
    return cls


def _current_name(name: Any) -> Any:
    """A callback's name from before optlab 0.2 (``optlab.tracking.MLflowCallback``), as its
    module now spells it: only the names :mod:`optlab.moved` lists are handed on."""
    from ..moved import MOVED

    module, _, attr = str(name).rpartition(".")
    new = MOVED.get(module, {}).get(attr)
    if new is None:
        return name
    warnings.warn(f"{name} is deprecated and will be removed in the next release; use {new}.{attr}",
                  DeprecationWarning, stacklevel=3)
    return f"{new}.{attr}"


def _same_for_hydra(key: str, name: str, obj: Any) -> None:
    """Hydra finds a ``_target_`` by its own walk (attributes first, then imports); it must
    arrive at the class just checked."""
    from hydra._internal.utils import _locate

    try:
        found = _locate(name)
    except Exception:  # noqa: BLE001 - (a bare entry-point name: Hydra has no registry of them)
        found = None
    if found is not obj:
        raise ConfigError(f"{key}={describe(name)} is not allowed (Hydra finds another object, or none, by this "
                          "name); allowed: the full name module.Class of the class where it is defined")


def check_hydra_plugin(key: str, node: Any) -> None:
    """A launcher's or sweeper's config: its class registered with Hydra; inside it, only
    Optuna's samplers and pruners, and nothing that runs commands."""
    if not isinstance(node, dict):
        return
    target = node.get("_target_")
    if target is not None:
        from hydra.core.plugins import Plugins

        registered = Plugins.instance().class_name_to_class
        if target not in registered:
            raise ConfigError(f"{key}._target_={describe(target)} is not allowed; allowed: a {key.split('.')[1]} "
                              "plugin registered with Hydra (hydra/launcher=NAME, hydra/sweeper=NAME)")
    for inner, value in _targets({k: v for k, v in node.items() if k != "_target_"}, (key,)):
        trust.resolve(inner, _written_out(inner, value, SAMPLER), SAMPLER)
        parent = _select(node, inner[len(key) + 1:].rsplit(".", 1)[0])
        for special in CALLING_KEYS:
            if isinstance(parent, dict) and special in parent:
                raise ConfigError(f"{inner.rsplit('.', 1)[0]}.{special} is not allowed; allowed: the class's own "
                                  "options")
    if key == "hydra.launcher" and not trust.opted_in():
        for option, value in [(where, v) for k, v, where in _nested(node, (key,)) if k in RUNS_CODE]:
            if value not in (None, [], {}, ""):
                raise ConfigError(f"{option}={describe(value)} is not allowed (it runs commands or installs "
                                  f"packages where the jobs run); allowed: null, or any with {trust.OPT_IN}=1")


def _select(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else node[int(part)] if isinstance(node, list) else None
    return node


# -- logging -----------------------------------------------------------------------------------
def check_logging(key: str, node: Any) -> None:
    """Python logging's dict config ``node`` (unresolved): every factory trusted and of the right
    kind, streams from ``STREAMS`` only."""
    if not isinstance(node, dict):
        return
    for where, value in [(where, v) for k, v, where in _nested(node, (key,)) if k in ("()", "class")]:
        name = _written_out(where, value, LOGGING)
        obj = trust.resolve(where, name, LOGGING)
        if logging.config.BaseConfigurator({}).resolve(name) is not obj:
            raise ConfigError(f"{where}={describe(name)} is not allowed (logging finds another object by this "
                              "name); allowed: the name of the class where it is defined")
    for _, value, where in _nested(node, (key,)):
        if isinstance(value, str) and value.startswith("ext://") and value not in STREAMS:
            raise ConfigError(f"{where}={describe(value)} is not allowed; allowed: {', '.join(STREAMS)}")


def check_log_files(key: str, node: Any, output_dir: str | None) -> None:
    """Every handler's file in logging's dict config ``node`` (resolved) inside ``output_dir``
    (none at all without one): a shared config may not append to ``~/.bashrc``."""
    if not isinstance(node, dict) or trust.opted_in():
        return
    for name, handler in (node.get("handlers") or {}).items():
        if isinstance(handler, dict) and handler.get("filename") is not None:
            _check_log_file(_where(key, "handlers", name, "filename"), handler["filename"], output_dir)


def _check_log_file(key: str, filename: Any, output_dir: str | None) -> None:
    where = Path(os.path.realpath(str(filename)))
    inside = output_dir is not None and trust._under(where, Path(os.path.realpath(output_dir)))
    if not inside:
        place = f"the job's directory {output_dir}" if output_dir else "the job's directory"
        raise ConfigError(f"{key}={str(filename)!r} is not allowed (outside {place}); allowed: a file in "
                          f"{place}, or anywhere with {trust.OPT_IN}=1")


def checked_configure_log(configure: Any) -> Any:
    """Hydra's ``configure_log``, refusing a logging config the rule does not allow; for a job's
    logging, its files must be in the job's output directory."""
    if getattr(configure, "checked", False):
        return configure

    @functools.wraps(configure)
    def configure_log(log_config: DictConfig | None, verbose_config: Any = False) -> None:
        if log_config is not None:
            key = f"hydra.{log_config._key()}"
            root = log_config._get_root()
            output_dir = OmegaConf.select(root, "hydra.runtime.output_dir", default=None,
                                          throw_on_missing=False) if isinstance(root, DictConfig) else None
            check_logging(key, OmegaConf.to_container(log_config, resolve=False))
            check_log_files(key, OmegaConf.to_container(log_config, resolve=True),
                            None if output_dir is None else str(output_dir))
        configure(log_config, verbose_config)

    configure_log.checked = True  # type: ignore[attr-defined]
    return configure_log


# -- config search paths -----------------------------------------------------------------------
def check_config_package(key: str, module: str) -> None:
    """``pkg://MODULE`` in Hydra's search path: Hydra imports MODULE to read its files."""
    top = module.split(".")[0]
    if top in CONFIG_PACKAGES or trust.opted_in():
        return
    if trust.module_place(module)[0] is not None:
        return
    packages = {ep.module.split(".")[0] for ep in trust._entry_points(trust.PLUGIN_GROUPS)}
    if top in packages:
        return
    raise ConfigError(f"{key}='pkg://{module}' is not allowed ({trust.module_place(module)[1]}); allowed: "
                      "file://FOLDER, or pkg:// of Hydra, a Hydra plugin, optlab, a registered plugin package or "
                      f"the project; or any with {trust.OPT_IN}=1")


class ImportlibResourcesConfigSource(_HydraPackageSource):
    """Hydra's ``pkg://`` config source, checking MODULE before Hydra imports it. (Named as Hydra's
    class, which its plugin scan then leaves in place; a module attribute, so that a sweep's config
    loader pickles for worker processes.)"""

    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        check_config_package("hydra.searchpath", self.path)


# -- the app's own names -----------------------------------------------------------------------
def check_app_names(config: DictConfig) -> None:
    """The objective's and solver's ``_target_`` and a black box's functions, where they are
    written out in ``config`` or swept over in its overrides: their places, before any job
    (each job resolves them again when it builds its plugins)."""
    from ..objectives.black_box import FUNCTION
    from .plugins import KINDS

    names = {f"{group}._target_": KINDS[group] for group in KINDS}
    if _value(config, "objective._target_") in BLACK_BOX:
        names.update({"objective.function": FUNCTION, "objective.gradient": FUNCTION})
    swept = _swept_values(list(OmegaConf.select(config, "hydra.overrides.task", default=None) or []))
    for key, kind in names.items():
        for value in [_value(config, key), *swept.get(key, [])]:
            if isinstance(value, str) and "${" not in value:
                trust.check_place(key, value, kind)


def _value(config: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(config, key, default=None)
    except Exception:  # noqa: BLE001 - an interpolation that does not resolve here: the job checks it
        return None


def _swept_values(overrides: list[str]) -> dict[str, list[Any]]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    values: dict[str, list[Any]] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override() and override.is_discrete_sweep():
            key = override.get_key_element().lstrip("+~")
            values[key] = list(override.sweep_iterator())
    return values


def refuse_rerun(file_path: str, overrides: list[str]) -> Any:
    """Hydra's ``--experimental-rerun FILE`` unpickles FILE, which runs any code a pickle holds."""
    raise ConfigError(f"--experimental-rerun {file_path} is not allowed (it unpickles the file, which can run "
                      f"any code); allowed: the same overrides on the command line, or {trust.OPT_IN}=1")


def install_checks() -> None:
    """Put the checks where Hydra configures logging, reads ``pkg://`` search paths and reruns
    pickled configs, in this process (also in a worker process that runs a sweep's jobs: see
    :mod:`optlab.app.guard`)."""
    import importlib

    import hydra._internal.hydra as hydra_run
    import hydra.core.utils as core_utils
    from hydra._internal.sources_registry import SourcesRegistry

    for module in (core_utils, hydra_run):
        module.configure_log = checked_configure_log(module.configure_log)
    SourcesRegistry.instance().types["pkg"] = ImportlibResourcesConfigSource
    hydra_main = importlib.import_module("hydra.main")
    if not trust.opted_in() and hasattr(hydra_main, "_get_rerun_conf"):
        hydra_main._get_rerun_conf = refuse_rerun
