"""What a config may name: one rule for every class or function a config asks optlab to call.

Experiment files, sweep configs and command lines are shared like data, so a name in them is
resolved only when it is

* **optlab's own**: a class or function defined in the ``optlab`` package;
* **registered by an installed package** as an entry point in one of :data:`PLUGIN_GROUPS`
  (the standard Python plugin mechanism: ``[project.entry-points."optlab.objectives"]`` in the
  package's ``pyproject.toml``), by the entry point's target ``module.attr`` or its bare name;
* **your project's**: defined in a module found under the directory optlab was started from or a
  ``PYTHONPATH`` entry, but not in the standard library or an installed package (``site-packages``,
  a virtual environment inside the project included);

and anything else only when the environment says ``OPTLAB_TRUST_CONFIG=1``. Module locations are
checked *before* anything is imported: each dotted step of the module is looked up with the
import system's finders, which read the file system but run no module code. A name is always
``module.Attribute``, one attribute after a real module (no walk through attributes such as
``optlab.app.tracking.np.load``), and what it resolves to must be of the kind the place calls for
(an :class:`~optlab.objectives.Objective` subclass, a Hydra callback class, a logging handler
class, a Python function): a :class:`Kind`.

This module imports nothing of optlab but :mod:`optlab.errors`, so every layer can use it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import inspect
import os
import re
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError, describe

#: The environment variable that lifts the location rule (kinds and exact names still hold).
OPT_IN = "OPTLAB_TRUST_CONFIG"
#: Entry-point groups whose entries a config may name.
PLUGIN_GROUPS = ("optlab.objectives", "optlab.solvers", "optlab.callbacks")
OPTLAB_DIR = Path(__file__).resolve().parent
#: The directory optlab was started from (Hydra may change the working directory for a job).
START_DIR = os.getcwd()
DOCS = "docs/trust.md"

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


@dataclasses.dataclass(frozen=True)
class Kind:
    """What a name must resolve to where it is used.

    ``what`` names it in messages ("an objective class"), ``allowed`` says what qualifies ("a
    subclass of optlab.objectives.Objective"), ``accepts(obj)`` tells; ``groups`` are the
    entry-point groups whose entries are trusted here; ``modules`` are modules outside optlab and
    the project whose own objects of this kind are trusted here too (``logging.handlers`` for
    logging handlers); ``optlab`` says whether optlab's own objects are (its plugin classes are;
    its internal functions are no black boxes).
    """

    what: str
    allowed: str
    accepts: Callable[[Any], bool]
    groups: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    optlab: bool = True

    def trusts(self, place: str | None) -> bool:
        return place == "project" or (place == "optlab" and self.optlab)


def subclass_of(*bases: type | Callable[[], tuple[type, ...]]) -> Callable[[Any], bool]:
    """``accepts`` for classes derived from ``bases`` (or from what a callable returns, for bases
    that are imported only once a name is trusted)."""

    def accepts(obj: Any) -> bool:
        wanted: list[type] = []
        for base in bases:
            wanted += [base] if isinstance(base, type) else list(base())
        return isinstance(obj, type) and issubclass(obj, tuple(wanted))

    return accepts


def opted_in() -> bool:
    """``OPTLAB_TRUST_CONFIG=1``: the user trusts the config's names wherever they are."""
    return os.environ.get(OPT_IN, "").strip() == "1"


# -- places ------------------------------------------------------------------------------------
def project_roots() -> list[Path]:
    """The directories whose modules are the project's: where optlab was started, the current
    working directory and the ``PYTHONPATH`` entries."""
    entries = [START_DIR, os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return [Path(os.path.realpath(e)) for e in dict.fromkeys(entries) if e]


@functools.lru_cache(maxsize=1)
def _installed_dirs() -> tuple[Path, ...]:
    """The standard library's and installed packages' directories, of this environment and its base."""
    dirs = set()
    for base in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        paths = sysconfig.get_paths(vars={"base": base, "platbase": base, "installed_base": base,
                                          "installed_platbase": base})
        dirs |= {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return tuple(Path(os.path.realpath(d)) for d in dirs)


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def place_of(file: str | os.PathLike) -> str | None:
    """Whose code ``file`` is: ``"optlab"``, ``"project"``, or None (the standard library, an
    installed package, anywhere else)."""
    real = Path(os.path.realpath(file))
    if _under(real, OPTLAB_DIR):
        return "optlab"
    if {"site-packages", "dist-packages"} & set(real.parts) or any(_under(real, d) for d in _installed_dirs()):
        return None
    return "project" if any(_under(real, root) for root in project_roots()) else None


def _find_spec(fullname: str, path: Any) -> Any:
    """The spec the import system would use for ``fullname`` (a submodule: in its parent's
    ``path``), asked of the finders only, so no module code runs. (setuptools' distutils shim
    imports a package when asked; its names are never trusted, so it is not asked.)"""
    for finder in sys.meta_path:
        if type(finder).__module__.startswith("_distutils_hack"):
            continue
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(fullname, path)
        except (ImportError, ValueError, OSError):
            spec = None
        if spec is not None:
            return spec
    return None


def _is_namespace(spec: Any) -> bool:
    """A folder without ``__init__.py``: importing it runs nothing."""
    return spec.origin in (None, "namespace") and spec.submodule_search_locations is not None and (
        spec.loader is None or "NamespaceLoader" in type(spec.loader).__name__)


def module_place(module: str) -> tuple[str | None, str]:
    """``(place, where)`` of the module named ``module``, found without importing it: the place of
    its file (None when any package on the way is not optlab's or the project's, or is not a
    file at all: a built-in, a frozen or an alias module), and a few words saying where. A module
    that is not found raises :class:`ModuleNotFoundError`."""
    path = None
    parts = module.split(".")
    place: str | None = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        spec = _find_spec(name, path)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        if _is_namespace(spec) and i < len(parts) - 1:
            path = spec.submodule_search_locations  # a folder without code: the next step decides
            continue
        if not spec.has_location or not spec.origin:
            return None, f"{name} is not a module file (a built-in, frozen or alias module)"
        place = place_of(spec.origin)
        if place is None:
            return None, f"{name} is at {spec.origin}, outside optlab and the project"
        path = spec.submodule_search_locations
        if path is None and i < len(parts) - 1:
            return None, f"{name} is a module, not a package holding {parts[i + 1]}"
    return place, f"{module} is {'optlab' if place == 'optlab' else 'project'} code"


# -- entry points ------------------------------------------------------------------------------
def _entry_points(groups: tuple[str, ...]) -> list[importlib.metadata.EntryPoint]:
    return _entry_points_on(groups, tuple(sys.path))


@functools.lru_cache(maxsize=8)
def _entry_points_on(groups: tuple[str, ...], path: tuple[str, ...]) -> list[importlib.metadata.EntryPoint]:
    """(read once per search path: every installed package's metadata is scanned)"""
    found = []
    for group in groups:
        found += list(importlib.metadata.entry_points(group=group))
    return found


def registered(name: str, groups: tuple[str, ...]) -> importlib.metadata.EntryPoint | None:
    """The entry point of ``groups`` that ``name`` names: by its target ``module.attr`` or its
    bare name (read from the installed packages' metadata: nothing is imported)."""
    if not groups:
        return None
    points = _entry_points(groups)
    by_target = [ep for ep in points if ep.attr and f"{ep.module}.{ep.attr}" == name]
    by_name = [ep for ep in points if "." not in name and ep.name == name]
    matches = {(ep.module, ep.attr): ep for ep in by_target or by_name}
    if len(matches) > 1:
        shown = ", ".join(f"{m}:{a}" for m, a in matches)
        raise ConfigError(f"{name!r} names {len(matches)} registered plugins ({shown}); allowed: one of them "
                          "by its module.attr")
    return next(iter(matches.values()), None)


# -- names -------------------------------------------------------------------------------------
def _refuse(key: str, name: Any, why: str, kind: Kind) -> ConfigError:
    sources = ["optlab's own"] if kind.optlab else []
    if kind.groups:
        sources.append(f"registered by an installed package (entry points {', '.join(kind.groups)})")
    if kind.modules:
        sources.append(f"from {', '.join(kind.modules)}")
    sources.append("defined under the working directory or PYTHONPATH")
    return ConfigError(f"{key}={describe(name)} is not allowed ({why}); allowed: {kind.allowed} that is "
                       f"{', '.join(sources[:-1])} or {sources[-1]}; or any, with {OPT_IN}=1 (see {DOCS})")


def split_name(key: str, name: Any, kind: Kind) -> tuple[str, str]:
    """``(module, attribute)`` of a ``module.Attribute`` name; anything else is refused."""
    if not isinstance(name, str) or not _DOTTED.match(name) or "." not in name:
        raise ConfigError(f"{key}={describe(name)} is not a name module.Name; allowed: {kind.allowed} "
                          f"given as package.module.Name (see {DOCS})")
    module, _, attr = name.rpartition(".")
    return module, attr


def check_place(key: str, name: Any, kind: Kind) -> str:
    """Why ``name`` may be resolved for ``kind`` (``"optlab"``, ``"project"``, ``"entry point"``,
    ``"module"``, ``"opt-in"``), checked without importing anything; else a one-line
    :class:`ConfigError`."""
    if isinstance(name, str) and "." not in name and registered(name, kind.groups) is not None:
        return "entry point"
    module, _ = split_name(key, name, kind)
    if module in kind.modules:
        return "module"
    try:
        place, where = module_place(module)
    except ModuleNotFoundError as exc:
        if registered(name, kind.groups) is not None:
            return "entry point"
        raise ConfigError(f"{key}={describe(name)} cannot be imported ({exc}); allowed: {kind.allowed} "
                          "importable from the working directory, PYTHONPATH or an installed package") from None
    if kind.trusts(place):
        return place
    if place is not None:
        where = f"{module} is optlab's own module"
    if registered(name, kind.groups) is not None:
        return "entry point"
    if opted_in():
        return "opt-in"
    raise _refuse(key, name, where, kind)


def resolve(key: str, name: Any, kind: Kind) -> Any:
    """The object ``name`` names, imported only once its place is trusted (:func:`check_place`)
    and returned only when it is of ``kind`` and, unless registered or opted in, defined in a
    trusted place too (a project module may not hand on ``pickle.loads``)."""
    why = check_place(key, name, kind)
    try:
        if why == "entry point":
            obj = registered(name, kind.groups).load()
        else:
            module, attr = split_name(key, name, kind)
            obj = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # noqa: BLE001 - a missing module or name, an error inside the user's module
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        raise ConfigError(f"{key}={describe(name)} cannot be imported ({reason}); allowed: {kind.allowed} "
                          "importable from the working directory, PYTHONPATH or an installed package") from None
    if not kind.accepts(obj):
        raise ConfigError(f"{key}={describe(name)} is not {kind.what}; allowed: {kind.allowed} (see {DOCS})")
    if why in ("optlab", "project", "module") and not _defined_in_trusted(obj, kind):
        raise _refuse(key, name, f"it is {_defined_where(obj)}, handed on by {name.rpartition('.')[0]}", kind)
    return obj


def _defined_where(obj: Any) -> str:
    try:
        return f"defined in {inspect.getfile(obj)}"
    except TypeError:
        return "built in"


def _defined_in_trusted(obj: Any, kind: Kind) -> bool:
    module = getattr(obj, "__module__", None) or ""
    if any(module == m or module.startswith(f"{m}.") for m in kind.modules):
        return True
    try:
        return kind.trusts(place_of(inspect.getfile(obj)))
    except TypeError:  # a built-in
        return False
