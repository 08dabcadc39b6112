"""Plugins by name: a config's ``_target_`` and options turned into an objective or solver.

Only :class:`~optlab.objectives.Objective` and :class:`~optlab.solvers.Solver` subclasses
are called, so a config cannot name an arbitrary function to run; every option must be an
argument of the class. Mistakes are one-line :class:`~optlab.errors.ConfigError`s.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ..errors import ConfigError
from ..objectives.base import Objective
from ..solvers.base import Solver

PLUGIN_BASES: dict[str, type] = {"objective": Objective, "solver": Solver}


def plugin_class(group: str, target: Any) -> type:
    """The class ``target`` ("package.module.Class") names, checked to be a ``group`` plugin."""
    if not target:
        raise ConfigError(f"{group} has no _target_; allowed: a config with _target_: package.module.Class")
    module_name, _, class_name = str(target).rpartition(".")
    try:  # a missing module, a typo, or an error inside the user's module
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as exc:  # noqa: BLE001 - reported in one line
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ConfigError(f"{group}._target_={target!r} cannot be imported ({reason}); allowed: a class "
                          "importable from the working directory, PYTHONPATH or an installed package") from None
    base = PLUGIN_BASES[group]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{group}._target_={target!r} is not a {group} class; allowed: a subclass of "
                          f"{base.__module__.rsplit('.', 1)[0]}.{base.__name__}")
    return cls


def instantiate(group: str, options: dict[str, Any]) -> Any:
    """The plugin of ``group`` ("objective" or "solver") that ``options["_target_"]`` names,
    built with the other options."""
    options = dict(options)
    target = options.pop("_target_", None)
    cls = plugin_class(group, target)
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in options:
            if key not in params:
                allowed = ", ".join(params) or "none"
                raise ConfigError(f"{group}.{key} is not an option of {group} {target}; allowed: {allowed}")
    return cls(**options)
