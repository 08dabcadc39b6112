"""optlab: pick an objective and a solver by name, run them, keep every iterate, compare."""

from __future__ import annotations

import importlib
from typing import Any

from . import moved

__version__ = "0.2.0"

#: The public names, each loaded when first used so that ``import optlab`` stays cheap (no
#: pandas, no matplotlib): name -> module.
PUBLIC = {
    "minimize": "optlab.api", "Result": "optlab.api", "run_set": "optlab.engine.run_set",
    "load": "optlab.rundir.load", "Stop": "optlab.engine.stopping", "LogOptions": "optlab.engine.log",
    "Outcome": "optlab.engine.outcome", "InMemory": "optlab.engine.run_set", "RunDirs": "optlab.rundir.store",
    "Objective": "optlab.objectives.base", "Solver": "optlab.solvers.base", "StepSolver": "optlab.solvers.base",
}
__all__ = ["__version__", *PUBLIC]

moved.install()  # the modules of 0.1 by their old names, for one more release


def __getattr__(name: str) -> Any:
    if name in PUBLIC:
        return getattr(importlib.import_module(PUBLIC[name]), name)
    raise AttributeError(f"module 'optlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *PUBLIC])
