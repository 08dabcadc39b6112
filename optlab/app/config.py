"""A composed Hydra config read into what one job runs: plugins, start points, stopping rules, log options.

Every mistake is a one-line :class:`~optlab.errors.ConfigError`, raised before anything runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ..engine.log import LogOptions
from ..engine.starts import start_points
from ..engine.stopping import Stop
from ..errors import ConfigError, check_number, describe
from ..objectives.base import Objective
from ..solvers.base import Solver
from .plugins import instantiate

STARTS_OPTIONS = ("n", "seed", "points", "box")
#: The keys of a job's config and, for the groups that hold options, the options each may have.
TOP_KEYS = ("objective", "solver", "starts", "x0", "stop", "log", "report", "overwrite", "options_for")
STOP_KEYS = tuple(f.name for f in dataclasses.fields(Stop))
LOG_KEYS = tuple(f.name for f in dataclasses.fields(LogOptions) if f.name != "memory_bytes")
REPORT_KEYS = ("auto", "tol")
#: Options that name a file: a relative path is taken from where optlab was started, not from a
#: job directory that Hydra may have made the working directory (hydra.job.chdir=true).
PATH_OPTIONS = ("data",)


@dataclasses.dataclass
class JobConfig:
    """What a job runs: one run from ``x0``, or one run per start point when ``starts`` is set,
    its log kept as ``log`` says; ``overwrite`` lets it replace a finished run in its directory."""

    objective: Objective
    solver: Solver
    stop: Stop
    x0: Any
    starts: dict[str, Any] | None
    log: LogOptions
    overwrite: bool = False

    def start_points(self) -> np.ndarray:
        options = {k: v for k, v in self.starts.items() if k != "kind"}
        return start_points(self.objective, self.starts.get("kind"), **options)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _table(key: str, value: Any, allowed_keys: tuple[str, ...], what: str) -> dict[str, Any]:
    """``value`` as a table whose keys are all in ``allowed_keys``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{key}={describe(value)} is not {what}; allowed: {key}.KEY=VALUE with KEY one of "
                          f"{', '.join(allowed_keys)}")
    for name in value:
        if name not in allowed_keys:
            raise ConfigError(f"{key}.{name} is not an option of {key}; allowed: {', '.join(allowed_keys)}")
    return value


def _build(group: str, options: Any, cwd: str | None) -> Any:
    """The plugin of ``group``; an exception while it is built (an array too large for memory, a
    data file of the wrong shape) is a mistake in its options, reported in one line."""
    if not isinstance(options, dict) or "_target_" not in options:
        raise ConfigError(f"{group}={describe(options)} is not a {group} config; allowed: {group}=NAME "
                          f"(python -m optlab --help lists them)")
    options = dict(options)
    for key in PATH_OPTIONS:
        value = options.get(key)
        if cwd is not None and isinstance(value, str) and value and not os.path.isabs(value):
            options[key] = os.path.join(cwd, value)
    try:
        with np.errstate(all="ignore"):  # (data near 1e300: an overflow is the run's to report)
            return instantiate(group, options)
    except ConfigError:
        raise
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - the options are the user's: one line
        given = ", ".join(f"{k}={describe(v, 40)}" for k, v in options.items() if k != "_target_")
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise ConfigError(f"{group} {options['_target_']} cannot be built with {given or 'its defaults'} "
                          f"({reason}); allowed: options it can be built with (see its docstring)") from exc


def read_config(cfg: DictConfig, cwd: str | None = None, choices: dict[str, Any] | None = None) -> JobConfig:
    """The job of a composed config (raises :class:`ConfigError`). ``cwd`` is the directory optlab
    was started from, against which relative data paths are taken; ``choices`` the names of the
    objective and solver chosen (``objective=NAME``), to which ``options_for.NAME.KEY=VALUE`` applies."""
    for key in cfg:
        if key not in TOP_KEYS:
            raise ConfigError(f"{key} is not an option; allowed: {', '.join(TOP_KEYS)}")
    stop_options = dict(_table("stop", _plain(cfg.get("stop")), STOP_KEYS, "a table of stopping rules"))
    if stop_options.get("max_seconds") == math.inf:  # no wall-clock limit, recorded as null
        stop_options["max_seconds"] = None
    stop = Stop(**stop_options)
    log = _table("log", _plain(cfg.get("log")), LOG_KEYS, "a table of log options")
    report = _plain(cfg.get("report"))
    if report is not None:
        _table("report", report, REPORT_KEYS, "a table of report options")
        check_number("report.tol", report.get("tol", 1e-6), low=0, strict=False)
        if not isinstance(report.get("auto", True), bool):
            raise ConfigError(f"report.auto={describe(report['auto'])} is not true or false; allowed: true, false")
    extra = options_for(_plain(cfg.get("options_for")), choices or {})
    objective = _build("objective", _with(_plain(cfg.get("objective")), extra["objective"]), cwd)
    solver = _build("solver", _with(_plain(cfg.get("solver")), extra["solver"]), cwd)
    x0 = _plain(cfg.get("x0"))  # (checked against the objective when the run starts)
    starts = _plain(cfg.get("starts"))
    if starts is not None:
        if x0 is not None:
            raise ConfigError(f"x0={x0} is given together with starts; allowed: one of x0 and starts")
        if not isinstance(starts, dict):
            raise ConfigError(f"starts={starts!r} is not a starts config; allowed: starts=grid, random or list")
        for key in starts:
            if key != "kind" and key not in STARTS_OPTIONS:
                raise ConfigError(f"starts.{key} is not an option of starts; "
                                  f"allowed: kind, {', '.join(STARTS_OPTIONS)}")
    overwrite = _plain(cfg.get("overwrite", False))
    if not isinstance(overwrite, bool):
        raise ConfigError(f"overwrite={describe(overwrite)} is not true or false; allowed: true, false")
    return JobConfig(objective, solver, stop, x0, starts, LogOptions(**log), overwrite)


def options_for(given: Any, choices: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The options ``options_for.NAME`` gives the objective or solver chosen as NAME in this job
    (a sweep over objectives or solvers with options of their own: ``objective=rosenbrock,quadratic
    +options_for.quadratic.cond=100``); a NAME that is no objective or solver is a mistake."""
    found: dict[str, dict[str, Any]] = {"objective": {}, "solver": {}}
    if not given:
        return found
    if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
        raise ConfigError(f"options_for={describe(given)} is not a table of tables; allowed: "
                          "+options_for.NAME.KEY=VALUE with NAME an objective or solver")
    names = {group: set(config_names(group)) for group in found}
    for name, options in given.items():
        groups = [g for g in found if name in names[g]]
        if not groups:
            allowed = ", ".join(sorted(names["objective"] | names["solver"]))
            raise ConfigError(f"options_for.{name} names no objective or solver; allowed: {allowed}")
        for group in groups:
            if choices.get(group) == name:
                found[group] = options
    return found


def config_dir() -> str:
    """The packaged configs (``optlab/conf``) or, in a source checkout, the top-level ``conf/``."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"optlab's configs are missing: neither {package / 'conf'} nor {package.parent / 'conf'}")


def config_names(group: str) -> list[str]:
    """The names of a config group's options (``conf/objective/*.yaml``)."""
    return sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml"))


def _with(options: Any, extra: dict[str, Any]) -> Any:
    return {**options, **extra} if isinstance(options, dict) and extra else options


def settings_key(cfg: DictConfig) -> str:
    """A job's identity: a hash of its resolved settings (the report's options aside), the same
    whatever the order or spelling of the overrides that led to them (``solver.lr=1e-3`` and
    ``solver.lr=0.001``, a default given explicitly). A resumed sweep matches jobs by it."""
    try:
        settings = {k: _plain(cfg.get(k)) for k in cfg if k not in ("report", "overwrite")}
        text = json.dumps(settings, sort_keys=True, default=str)
    except Exception as exc:  # noqa: BLE001 - an interpolation that does not resolve
        raise ConfigError(f"the config cannot be resolved ({type(exc).__name__}: {exc}); "
                          "allowed: values and ${...} interpolations that resolve") from None
    return hashlib.sha256(text.encode()).hexdigest()[:16]
