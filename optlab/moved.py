"""Modules that moved in 0.2, importable by their old names for one more release.

``optlab.batch``, ``optlab.runner``, ``optlab.store`` and the other modules that stood side by
side in ``optlab/`` now live in the subpackages ``engine``, ``rundir`` and ``app``. Code that
imports a name from an old module still gets it, with a :class:`DeprecationWarning` naming the new
place. Only the names listed here are handed on: an old module is no door to anything else.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import Any

#: old module -> {name: new module}
MOVED: dict[str, dict[str, str]] = {
    "optlab.runner": {"Outcome": "optlab.engine.outcome", "Stop": "optlab.engine.stopping",
                      "STATUSES": "optlab.engine.stopping", "run": "optlab.legacy"},
    "optlab.batch": {"batchable": "optlab.legacy", "BatchRun": "optlab.legacy",
                     "run_batch": "optlab.legacy", "run_batch_to_dirs": "optlab.legacy"},
    "optlab.stopping": {name: "optlab.engine.stopping" for name in (
        "Stop", "STATUSES", "FINISHED", "SUCCESSES", "PROBLEMS", "FAILURES", "POINTS", "point_kind", "verdict")},
    "optlab.log": {"IterateLog": "optlab.engine.log", "FIELDS": "optlab.engine.log", "columns": "optlab.engine.log",
                   "ChunkFiles": "optlab.rundir.chunks", "SCHEMA_VERSION": "optlab.rundir.chunks"},
    "optlab.starts": {"start_points": "optlab.engine.starts", "run_starts": "optlab.legacy"},
    "optlab.problem": {"Problem": "optlab.solvers.problem"},
    "optlab.derivatives": {"Derivatives": "optlab.objectives.derivatives",
                           "derivatives_of": "optlab.objectives.derivatives"},
    "optlab.program": {"StepProgram": "optlab.engine.program", "program_for": "optlab.engine.program"},
    "optlab.store": {"load": "optlab.rundir.load", "status_counts": "optlab.rundir.load",
                     "job_records": "optlab.rundir.load", "RunFiles": "optlab.rundir.store",
                     "run_to_dir": "optlab.legacy"},
    "optlab.reading": {"RECORD": "optlab.rundir.layout", "ITERATES": "optlab.rundir.layout"},
    "optlab.lock": {name: "optlab.rundir.lock" for name in ("LockHeld", "acquire", "release", "locked")},
    "optlab.cli": {"main": "optlab.app.cli", "config_dir": "optlab.app.cli"},
    "optlab.config": {"read_config": "optlab.app.config", "JobConfig": "optlab.app.config"},
    "optlab.hydra_callbacks": {"SweepSummary": "optlab.app.callbacks", "SweepReport": "optlab.app.callbacks",
                               "write_runs_table": "optlab.app.callbacks"},
    "optlab.hydra_compose": {"ComposeOnce": "optlab.app.compose"},
    "optlab.tracking": {"MLflowCallback": "optlab.app.tracking"},
    "optlab.plugins": {"instantiate": "optlab.app.plugins", "plugin_class": "optlab.app.plugins"},
    "optlab.scoring": {"score": "optlab.app.scoring"},
}


class MovedModule(types.ModuleType):
    """An old module's name: each listed name is fetched from its new module, with a warning."""

    def __getattr__(self, name: str) -> Any:
        new = MOVED[self.__name__].get(name)
        if new is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r} (the module moved in "
                                 f"optlab 0.2; allowed: {', '.join(sorted(MOVED[self.__name__]))})")
        warnings.warn(f"{self.__name__}.{name} is deprecated and will be removed in the next release; "
                      f"use {new}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(new), name)

    def __dir__(self) -> list[str]:
        return sorted(MOVED[self.__name__])


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        return MovedModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__doc__ = f"Moved in optlab 0.2 (see optlab.moved); names: {', '.join(sorted(MOVED[module.__name__]))}"


def install() -> None:
    """Let the old module names be imported (once per process)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
