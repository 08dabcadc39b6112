"""Plugins by name: a config's ``_target_`` and options turned into an objective or solver.

A ``_target_`` is resolved by the trust rule of :mod:`optlab.trust` (optlab's plugins, plugins
registered by installed packages, the project's own modules; the module checked before it is
imported) and must name an :class:`~optlab.objectives.Objective` or
:class:`~optlab.solvers.Solver` subclass; every option must be an argument of the class.
Mistakes are one-line :class:`~optlab.errors.ConfigError`s.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from .. import trust
from ..errors import ConfigError
from ..objectives.base import Objective
from ..solvers.base import Solver

PLUGIN_BASES: dict[str, type] = {"objective": Objective, "solver": Solver}
KINDS: dict[str, trust.Kind] = {
    group: trust.Kind(f"{'an' if group == 'objective' else 'a'} {group} class",
                      f"a subclass of {base.__module__.rsplit('.', 1)[0]}.{base.__name__}",
                      trust.subclass_of(base), groups=(f"optlab.{group}s",))
    for group, base in PLUGIN_BASES.items()}


def plugin_class(group: str, target: Any) -> type:
    """The class ``target`` ("package.module.Class") names, checked to be a ``group`` plugin."""
    if not target:
        raise ConfigError(f"{group} has no _target_; allowed: a config with _target_: package.module.Class")
    return trust.resolve(f"{group}._target_", target, KINDS[group])


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
    for key, value in options.items():
        if isinstance(value, bool) and key in params and takes_number(params[key]):
            raise ConfigError(f"{group}.{key}={str(value).lower()} is not a number; allowed: a number "
                              f"(true and false are not numbers)")
    return cls(**options)


def takes_number(param: inspect.Parameter) -> bool:
    """Whether an option is a number (by its annotation, else its default): there a boolean is a
    mistake, although Python would take true as 1."""
    annotation = param.annotation
    if annotation is not inspect.Parameter.empty:
        words = set(re.findall(r"\w+", annotation if isinstance(annotation, str) else
                               getattr(annotation, "__name__", str(annotation))))
        return bool(words & {"int", "float"}) and not words & {"bool", "Any", "object"}
    default = param.default
    return isinstance(default, (int, float)) and not isinstance(default, bool)
