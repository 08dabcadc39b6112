"""An objective's derivatives: written out by the objective, compiled from ``f``, or eager.

:class:`Derivatives` answers value, gradient, Hessian and Hessian-vector product for one
objective. A method the objective's class writes out itself (an analytic gradient) is used
as it is; the rest come from code compiled from one recording of ``f`` per input shape
(:mod:`optlab.autodiff.compile`), or from the eager engine where ``f`` cannot be replayed
(it branches on ``x.data`` or is random; :attr:`Derivatives.eager_reason` says why), where
the class sets ``compiled = False``, or inside :func:`optlab.autodiff.eager`.

Compiled code is kept per objective (:func:`derivatives_of`) and shared within a process by
objectives of the same class and options, so a sweep that builds a new objective per run
compiles once. Before an objective uses code recorded from another one, that code is checked
against a recording of its own ``f`` at the recorded point.
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import numpy as np

from .. import autodiff as ad
from ..autodiff import compile as ad_compile

NAMES = ("value", "value_and_grad", "grad", "hessian", "hvp")
DERIVED = "derived_by_optlab"  # marks Objective's own methods: a subclass's override is analytic


def derived(method: Any) -> Any:
    """Mark a method of :class:`~optlab.objectives.base.Objective` as one this module answers."""
    setattr(method, DERIVED, True)
    return method
_FLOAT = np.dtype(float)
_MISSING = object()
_SHARED: dict[tuple, ad_compile.Compiled] = {}  # (class, options, shape) -> code, shared by equal objectives
_SHARED_MAX = 256


class Derivatives:
    """Value, gradient, Hessian and Hessian-vector product of one objective (see the module docstring)."""

    def __init__(self, objective: Any) -> None:
        self.objective = objective
        cls = type(objective)
        self.analytic = frozenset(n for n in NAMES if not getattr(getattr(cls, n), DERIVED, False))
        self.eager_reason: str | None = None
        self._compiled: dict[tuple[int, ...], ad_compile.Compiled | None] = {}
        self._options = _fingerprint(cls, objective.params) if cls.compiled else None

    def f(self, x: ad.Variable) -> ad.Variable:
        """``f`` checked to return a scalar, as a Variable of shape ()."""
        y = ad.as_variable(self.objective.f(x))
        if y.size != 1:
            raise ValueError(f"objective {self.objective.name!r} returned shape {y.shape}, not a scalar")
        return y.reshape(())

    def compiled(self, x: Any) -> ad_compile.Compiled | None:
        """The compiled derivatives for inputs shaped like ``x``, or None where they stay eager."""
        if type(x) is not np.ndarray or x.dtype is not _FLOAT or not ad_compile.ENABLED[0]:
            return None
        fast = self._compiled.get(x.shape, _MISSING)
        if fast is _MISSING:
            fast = self._compiled[x.shape] = self._compile(x)
        return fast

    def value(self, x: np.ndarray) -> float:
        if "value" in self.analytic:
            return self.objective.value(x)
        fast = self.compiled(x)
        if fast is not None:
            return fast.value(x)
        with ad.no_grad():
            return float(self.f(ad.Variable(x)).data)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if "value_and_grad" in self.analytic:
            return self.objective.value_and_grad(x)
        fast = self.compiled(x)
        if fast is not None:
            return fast.value_and_grad(x)
        return ad.value_and_grad(self.f)(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        if "grad" in self.analytic:
            return self.objective.grad(x)
        if "value_and_grad" in self.analytic:
            return self.objective.value_and_grad(x)[1]
        fast = self.compiled(x)
        if fast is not None:
            return fast.grad(x)
        return ad.grad(self.f)(x)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        if "hessian" in self.analytic:
            return self.objective.hessian(x)
        fast = self.compiled(x)
        if fast is not None:
            return fast.hessian(x)
        return ad.hessian(self.f)(x)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        if "hvp" in self.analytic:
            return self.objective.hvp(x, v)
        fast = self.compiled(x)
        if fast is not None:
            return fast.hvp(x, v)
        return ad.hvp(self.f)(x, v)

    def _compile(self, x: np.ndarray) -> ad_compile.Compiled | None:
        if not type(self.objective).compiled:
            self.eager_reason = f"{type(self.objective).__name__}.compiled is False"
            return None
        key = None if self._options is None else (*self._options, x.shape)
        shared = _SHARED.get(key) if key is not None else None
        try:
            if shared is not None and shared.describes(self.f):
                return shared
            fast = ad_compile.compile_function(self.f, x)
        except ad_compile.NotCompilable as exc:
            self.eager_reason = str(exc)
            return None
        except Exception:  # noqa: BLE001 - f fails here: the eager call raises it again, as a run's error
            return None
        if key is not None:
            if len(_SHARED) >= _SHARED_MAX:
                _SHARED.pop(next(iter(_SHARED)))
            _SHARED[key] = fast
        return fast


_OWN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def derivatives_of(objective: Any) -> Derivatives:
    """The derivatives of ``objective``, made once per objective."""
    try:
        own = _OWN.get(objective)
    except TypeError:  # an unhashable objective: a new object each time (shared code still applies)
        return Derivatives(objective)
    if own is None:
        own = _OWN[objective] = Derivatives(objective)
    return own


def _fingerprint(cls: type, params: Any) -> tuple | None:
    """(class, digest of the options) for sharing compiled code, or None where the options
    cannot be read back exactly."""
    try:
        options = params()
    except Exception:  # noqa: BLE001 - an objective whose params() fails: no sharing
        return None
    digest = hashlib.sha256()

    def feed(value: Any) -> bool:
        if isinstance(value, dict):
            return all(feed(k) and feed(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
        if isinstance(value, (list, tuple)):
            digest.update(b"[")
            return all(feed(v) for v in value)
        if isinstance(value, np.ndarray):
            digest.update(repr((value.dtype.str, value.shape)).encode() + value.tobytes())
            return True
        if value is None or isinstance(value, (bool, int, float, str, np.number)):
            digest.update(repr((type(value).__name__, value)).encode())
            return True
        return False

    return (cls, digest.hexdigest()) if feed(options) else None
