"""An objective's derivatives: written out by the objective, compiled from ``f``, or eager.

:class:`Derivatives` answers value, gradient, Hessian and Hessian-vector product for one
objective. A method the objective's class writes out itself (an analytic gradient) is used
as it is; the rest come from code compiled from one recording of ``f`` per input shape
(:mod:`optlab.autodiff.compile`), or from the eager engine where ``f`` cannot be replayed
(it branches on ``x.data`` or is random; :attr:`Derivatives.eager_reason` says why), where
the class sets ``compiled = False``, or inside :func:`optlab.autodiff.eager`.

Compiled code is kept per objective (:func:`derivatives_of`) and shared within a process by
objectives of the same class and state (their attributes, or their options where those cannot
be digested), so a sweep that builds a new objective per run compiles once. Whether objectives
of one class and state may share code is checked once: the first objective that would use code
recorded from another one compares it with a recording of its own ``f`` at the recorded point
(re-recording ``f`` costs as much as a short run); once one has passed, later ones take the
code unchecked, and once one has failed (its ``f`` depends on more than its state: random
numbers, a class attribute changed meanwhile), each of them compiles its own.
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import numpy as np

from .. import autodiff as ad
from ..autodiff import compile as ad_compile
from ..errors import ConfigError

NAMES = ("value", "value_and_grad", "grad", "hessian", "hvp")
DERIVED = "derived_by_optlab"  # marks Objective's own methods: a subclass's override is analytic


def derived(method: Any) -> Any:
    """Mark a method of :class:`~optlab.objectives.base.Objective` as one this module answers."""
    setattr(method, DERIVED, True)
    return method
_FLOAT = np.dtype(float)
_MISSING = object()
_SHARED: dict[tuple, ad_compile.Compiled] = {}  # (class, state, shape) -> code, shared by equal objectives
_SHARED_MAX = 256
_CHECKED: dict[tuple, bool] = {}  # (class, state) -> whether an instance agreed with another's code


class Derivatives:
    """Value, gradient, Hessian and Hessian-vector product of one objective (see the module docstring)."""

    def __init__(self, objective: Any) -> None:
        self.objective = objective
        cls = type(objective)
        self.analytic = frozenset(n for n in NAMES if not getattr(getattr(cls, n), DERIVED, False))
        self.eager_reason: str | None = None
        self._compiled: dict[tuple[int, ...], ad_compile.Compiled | None] = {}

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
        self._identity = _fingerprint(self.objective)
        key = None if self._identity is None else (*self._identity, x.shape)
        shared = _SHARED.get(key) if key is not None else None
        try:
            if shared is not None and self._agrees(shared):
                return shared
            fast = ad_compile.compile_function(self.f, x)
        except ad_compile.NotCompilable as exc:
            self.eager_reason = str(exc)
            return None
        except ConfigError:  # a bad setting (OPTLAB_JIT) is the user's to fix, not a reason to go eager
            raise
        except Exception:  # noqa: BLE001 - f fails here: the eager call raises it again, as a run's error
            return None
        if key is not None and _CHECKED.get(self._identity, True):
            if len(_SHARED) >= _SHARED_MAX:
                _SHARED.pop(next(iter(_SHARED)))
            _SHARED[key] = fast
        return fast

    def _agrees(self, shared: ad_compile.Compiled) -> bool:
        """Whether this objective may use ``shared`` (compiled from another one of its class and
        state): checked for the first such objective only, the answer kept for the others."""
        verdict = _CHECKED.get(self._identity)
        if verdict is None:
            if len(_CHECKED) >= 16 * _SHARED_MAX:
                _CHECKED.pop(next(iter(_CHECKED)))
            verdict = _CHECKED[self._identity] = shared.describes(self.f)
            if not verdict:  # equal states, other functions: none shares
                for key in [k for k in _SHARED if k[:2] == self._identity]:
                    del _SHARED[key]
        return verdict


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


def _fingerprint(objective: Any) -> tuple | None:
    """(class, digest of the state) for sharing compiled code: the instance's attributes (all that
    its ``f`` reads besides the class), or its options (``params()``) where those cannot be
    digested; None where neither can be read back exactly."""
    digest = hashlib.sha256()

    def feed(value: Any) -> bool:
        if isinstance(value, dict):
            digest.update(b"{")
            done = all(feed(k) and feed(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
            digest.update(b"}")
            return done
        if isinstance(value, (list, tuple)):
            digest.update(b"[")
            done = all(feed(v) for v in value)
            digest.update(b"]")
            return done
        if isinstance(value, np.ndarray):
            digest.update(repr((value.dtype.str, value.shape)).encode() + np.ascontiguousarray(value).tobytes())
            return value.dtype != object
        if value is None or isinstance(value, (bool, int, float, str, np.number)):
            digest.update(repr((type(value).__name__, value)).encode())
            return True
        return False

    cls, state = type(objective), getattr(objective, "__dict__", None)
    if isinstance(state, dict) and feed(state):
        return cls, "state " + digest.hexdigest()
    digest = hashlib.sha256()
    try:
        options = objective.params()
    except Exception:  # noqa: BLE001 - an objective whose params() fails: no sharing
        return None
    return (cls, "options " + digest.hexdigest()) if feed(options) else None
