"""Plugin options as recorded with every run."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np


def constructor_options(obj: Any) -> dict[str, Any]:
    """``{name: obj.name}`` for each named argument of ``type(obj)``'s constructor that ``obj`` stores.

    Plugins keep each option under its own name, so this is their ``params()`` and
    ``type(obj)(**obj.params())`` rebuilds the instance.
    """
    return {name: _plain(getattr(obj, name)) for name in _named_arguments(type(obj)) if hasattr(obj, name)}


@functools.cache
def _named_arguments(cls: type) -> tuple[str, ...]:
    """The names a constructor takes by name (read once per class: ``inspect.signature`` is slow)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in inspect.signature(cls).parameters.values() if p.kind in named)


def _plain(value: Any) -> Any:
    # numpy scalars and arrays as Python numbers and lists, so the record is plain JSON
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value
