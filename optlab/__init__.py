"""optlab: pick an objective and a solver by name, run them, keep every iterate, compare."""

from __future__ import annotations

from typing import Any

from . import moved

__version__ = "0.2.0"

__all__ = ["Result", "__version__", "load", "minimize"]

moved.install()  # the modules of 0.1 by their old names, for one more release


def __getattr__(name: str) -> Any:
    # Lazy, so that ``import optlab`` stays cheap (no pandas, no matplotlib).
    if name in ("minimize", "Result"):
        from . import api

        return getattr(api, name)
    if name == "load":
        from .rundir.load import load

        return load
    raise AttributeError(f"module 'optlab' has no attribute {name!r}")
