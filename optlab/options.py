"""Plugin options as recorded with every run."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


def constructor_options(obj: Any) -> dict[str, Any]:
    """``{name: obj.name}`` for each named argument of ``type(obj)``'s constructor that ``obj`` stores.

    Plugins keep each option under its own name, so this is their ``params()`` and
    ``type(obj)(**obj.params())`` rebuilds the instance.
    """
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(type(obj)).parameters.values()
    return {p.name: _plain(getattr(obj, p.name)) for p in params if p.kind in named and hasattr(obj, p.name)}


def _plain(value: Any) -> Any:
    # numpy scalars and arrays as Python numbers and lists, so the record is plain JSON
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value
