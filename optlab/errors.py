"""The two kinds of failure optlab tells apart: a user's mistake, and a method that cannot go on."""

from __future__ import annotations

import math


class ConfigError(ValueError):
    """A bad option or input: the message is one line naming the value and what is allowed."""


class NotApplicable(ConfigError):
    """The solver cannot treat this objective (lstsq on a nonlinear problem, ...).

    Alone, a mistake like any other; in a sweep's grid of solvers x objectives, a
    combination that is recorded and skipped without counting as a failure.
    """


class SolverFailure(RuntimeError):
    """The method cannot continue from here (singular Hessian, no descent step, ...)."""


def describe(value: object, limit: int = 60) -> str:
    """``value`` as a message shows it, in the command line's words: strings quoted, null, long
    values (a 400-digit number) cut."""
    text = repr(value) if isinstance(value, str) else "null" if value is None else str(value)
    return text if len(text) <= limit else f"{text[: limit // 2]}...({len(text)} characters)"


def check_number(key: str, value: object, *, low: float | None = None, strict: bool = True,
                 integer: bool = False, allow_none: bool = False) -> float | int | None:
    """Return ``value`` as a finite number or raise a one-line :class:`ConfigError`.

    ``low`` is the lower bound (exclusive when ``strict``); ``integer`` asks for a whole number.
    NaN and infinities are refused: every accepted value can be recorded in JSON and compared.
    """
    kind = "a whole number" if integer else "a number"
    if value is None and allow_none:
        return None
    if isinstance(value, bool):  # (Python would take true as 1: a mistake in a config)
        raise ConfigError(f"{key}={str(value).lower()} is not {kind}; allowed: "
                          f"{_allowed(kind, low, strict, allow_none)} (true and false are not numbers)")
    if not isinstance(value, (int, float)):
        try:
            value = float(value) if not integer else int(str(value))
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={describe(value)} is not {kind}; allowed: "
                              f"{_allowed(kind, low, strict, allow_none)}") from None
    try:
        as_float = float(value)  # a Python int may be too large for a float (a 400-digit number)
    except OverflowError:
        raise ConfigError(f"{key}={describe(value)} is out of range; allowed: "
                          f"{_allowed(kind, low, strict, allow_none)} of at most 1.8e308 in size") from None
    if not math.isfinite(as_float):
        what = kind if integer else "finite"
        allowed = _allowed(kind, low, strict, allow_none)
        raise ConfigError(f"{key}={describe(value)} is not {what}; allowed: "
                          f"{allowed if integer else allowed.replace('a number', 'a finite number', 1)}")
    if integer and value != int(value):
        raise ConfigError(f"{key}={describe(value)} is not {kind}; allowed: {_allowed(kind, low, strict, allow_none)}")
    if low is not None and (as_float <= low if strict else as_float < low):
        raise ConfigError(f"{key}={describe(value)} is out of range; allowed: "
                          f"{_allowed(kind, low, strict, allow_none)}")
    return int(value) if integer else as_float


def _allowed(kind: str, low: float | None, strict: bool, allow_none: bool) -> str:
    """What :func:`check_number` allows, in words (made only for a message: a run checks its
    options every time it starts)."""
    bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
    return f"{kind}{bound}" + (" or null" if allow_none else "")


class NoProgress(SolverFailure):
    """The method can make no more progress from here (no step decreases f): the run ends as
    ``stalled``, a verdict about this run rather than a failure of the method."""


class EndRun(Exception):
    """Raised by an objective (a simulator out of budget, a benchmark suite's own stop) or a
    solver to end the run cleanly: it ends with ``status`` (one of the statuses of
    :mod:`optlab.engine.stopping`, ``failed`` by default) and ``message``, its iterates kept.

    ``x`` and ``f``, when given, are the point and value of the evaluation that ended the run
    (the first to reach ``stop.target``, inside a line search or a finite difference): the
    run's last row; ``g``, when that evaluation made it too, the gradient there."""

    def __init__(self, message: str, status: str = "failed", *, x: object = None, f: float | None = None,
                 g: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.x, self.f, self.g = x, f, g
