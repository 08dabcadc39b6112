"""optlab: pick an objective and a solver by name, run them, keep every iterate, compare."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Result", "__version__", "load", "minimize"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``import optlab`` stays cheap (no pandas, no matplotlib).
    if name in ("minimize", "Result"):
        from . import api

        return getattr(api, name)
    if name == "load":
        from .store import load

        return load
    raise AttributeError(f"module 'optlab' has no attribute {name!r}")
