"""Checks for solver options: each bad value ends in a one-line :class:`ConfigError`.

Numbers go through :func:`optlab.errors.check_number`; the checks here add the kinds of
option solvers have beyond it (a name from a list, a fraction in [0, 1), a flag).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import ConfigError, check_number, describe


def check_choice(key: str, value: object, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``, else a one-line ConfigError listing them."""
    names = list(allowed)
    if not isinstance(value, str) or value not in names:
        raise ConfigError(f"{key}={describe(value)} is unknown; allowed: {', '.join(names)}")
    return value


def check_interval(key: str, value: object, low: float, high: float, *, closed_low: bool = True,
                   closed_high: bool = False) -> float:
    """``value`` as a float in the interval from ``low`` to ``high`` (ends as asked)."""
    shown = f"{'[' if closed_low else '('}{low:g}, {high:g}{']' if closed_high else ')'}"
    number = check_number(key, value)
    above = number >= low if closed_low else number > low
    below = number <= high if closed_high else number < high
    if not (above and below):
        raise ConfigError(f"{key}={describe(value)} is out of range; allowed: a number in {shown}")
    return float(number)


def check_fraction(key: str, value: object) -> float:
    """A decay or momentum factor: a number in [0, 1)."""
    return check_interval(key, value, 0.0, 1.0)


def check_flag(key: str, value: object, *, allow_none: bool = False) -> bool | None:
    """``value`` as a bool (or None when allowed: the method decides)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{key}={describe(value)} is not a flag; allowed: "
                          + ("true, false or null" if allow_none else "true or false"))
    return bool(value)


def check_count(key: str, value: object, *, low: int = 1, allow_none: bool = False) -> int | None:
    """A whole number >= ``low`` (or None when allowed)."""
    return check_number(key, value, low=low, strict=False, integer=True, allow_none=allow_none)


def check_wolfe_constants(c1: object, c2: object) -> tuple[float, float]:
    """Line-search constants with 0 < c1 < c2 < 1 (Nocedal and Wright, 2006, eq. 3.7)."""
    c1 = check_interval("solver.c1", c1, 0.0, 1.0, closed_low=False)
    c2 = check_interval("solver.c2", c2, 0.0, 1.0, closed_low=False)
    if c2 <= c1:
        raise ConfigError(f"solver.c2={c2:g} is out of range; allowed: a number in (c1, 1) = ({c1:g}, 1)")
    return c1, c2
