"""Black boxes: objectives given as a plain function of a numpy vector, derivatives by differences."""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
import sysconfig
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import autodiff as ad
from ..errors import ConfigError
from .base import Objective, as_box, check_dim

DIFFERENCES = ("central", "forward")
_EPS = np.finfo(float).eps
# who is shown each value of f a black box computes in this thread (see watching)
_OBSERVER: contextvars.ContextVar[Callable[[np.ndarray, float], None] | None] = contextvars.ContextVar(
    "optlab_black_box_observer", default=None)


@contextlib.contextmanager
def watching(observer: Callable[[np.ndarray, float], None]) -> Iterator[None]:
    """Within the block, every value of f a black box computes, those of its finite differences
    included, is shown to ``observer(x, f)`` as it is made, in order. One gradient by
    differences is 2n values of f: a run that stops at the first value reaching its target
    (:class:`~optlab.solvers.problem.Problem`) can stop inside it, as COCO counts."""
    token = _OBSERVER.set(observer)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


class BlackBox(Objective):
    """A function optlab cannot look into: a simulator, a benchmark suite's function, code
    written for scipy. ``function(x) -> float`` takes a numpy vector of ``dim`` numbers;
    ``gradient(x)``, when given, its gradient. From a config, both are dotted names of Python
    functions (``objective.function=my_module.my_function``), imported from the working
    directory, ``PYTHONPATH`` or an installed package (never from the standard library).

    Without ``gradient``, derivatives come from finite differences of f (Nocedal and Wright,
    *Numerical Optimization*, 2006, Sec. 8.1), each difference counted as a function
    evaluation:

    * ``central`` (default): g_i = (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i), with
      h_i = eps^(1/3) max(1, |x_i|): error O(h^2), 2n evaluations;
    * ``forward``: g_i = (f(x + h_i e_i) - f(x)) / h_i, h_i = sqrt(eps) max(1, |x_i|):
      error O(h), n evaluations beyond f(x).

    The Hessian (and Hessian-vector products) are central differences of the gradient, with
    h_j = eps^(1/3) max(1, |x_j|) (the step suits an exact gradient; with a differenced one it
    is rough, and costs 2n gradients). The function may raise :class:`optlab.errors.EndRun` to
    end a run cleanly (a simulator out of budget). ``x0`` (default 0), ``box`` (default
    [-5, 5] per axis, the domain of COCO's functions), ``f_star`` and ``minimizers`` describe
    the problem when known.
    """

    name = "black_box"
    compiled = False

    def __init__(self, function: Callable | str | None = None, dim: int = 2, x0: Any = None, box: Any = None,
                 gradient: Callable | str | None = None, f_star: float | None = None, minimizers: Any = None,
                 differences: str = "central") -> None:
        if function is None:
            raise ConfigError("objective.function is missing; allowed: a Python function f(x) -> float, or its "
                              "dotted name module.function")
        self.function, self.call = function, load_function("objective.function", function)
        self.gradient = gradient
        self.call_gradient = None if gradient is None else load_function("objective.gradient", gradient)
        self.dim = check_dim(dim)
        if differences not in DIFFERENCES:
            raise ConfigError(f"objective.differences={differences!r} is unknown; allowed: {', '.join(DIFFERENCES)}")
        self.differences = differences
        self.x0 = np.zeros(self.dim) if x0 is None else np.asarray(x0, dtype=float)
        self.x0 = self.start(self.x0)
        self.box = as_box([-5.0, 5.0] if box is None else box, self.dim)
        self.f_star = None if f_star is None else float(f_star)
        self.minimizers = (np.empty((0, self.dim)) if minimizers is None
                           else np.asarray(minimizers, dtype=float).reshape(-1, self.dim))

    def params(self) -> dict[str, Any]:
        options = super().params()
        for key in ("function", "gradient"):
            if callable(options.get(key)):
                options[key] = dotted_name(options[key])
        return options

    def f(self, x: ad.Variable) -> ad.Variable:
        raise TypeError(f"objective {self.name!r} is a black box: it has values, not a recordable f")

    def value(self, x: np.ndarray) -> float:
        value = self.call(np.array(x, dtype=float))
        if np.size(value) != 1:
            raise ValueError(f"objective.function returned shape {np.shape(value)}, not a number")
        f = float(np.asarray(value).reshape(()))
        observer = _OBSERVER.get()
        if observer is not None:
            observer(x, f)
        return f

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self._gradient(np.asarray(x, dtype=float), None)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.asarray(x, dtype=float)
        f = self.value(x)
        return f, self._gradient(x, f)

    def _gradient(self, x: np.ndarray, f: float | None) -> np.ndarray:
        if self.call_gradient is not None:
            return np.asarray(self.call_gradient(x.copy()), dtype=float).reshape(x.shape)
        g = np.empty_like(x)
        if self.differences == "forward":
            f = self.value(x) if f is None else f
            h = np.sqrt(_EPS) * np.maximum(1.0, np.abs(x))
            for i in range(x.size):
                e = np.zeros_like(x)
                e.flat[i] = h.flat[i]
                g.flat[i] = (self.value(x + e) - f) / h.flat[i]
            return g
        h = _EPS ** (1 / 3) * np.maximum(1.0, np.abs(x))
        for i in range(x.size):
            e = np.zeros_like(x)
            e.flat[i] = h.flat[i]
            g.flat[i] = (self.value(x + e) - self.value(x - e)) / (2 * h.flat[i])
        return g

    def hessian(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        n = x.size
        rows = np.array([self.hvp(x, np.eye(n)[j].reshape(x.shape)).ravel() for j in range(n)])
        return 0.5 * (rows + rows.T)  # symmetric, as a Hessian is

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        x, v = np.asarray(x, dtype=float), np.asarray(v, dtype=float)
        h = _EPS ** (1 / 3) * max(1.0, float(np.max(np.abs(x)))) / max(float(np.max(np.abs(v))), 1e-300)
        return (self._gradient(x + h * v, None) - self._gradient(x - h * v, None)) / (2 * h)

    def costs(self, name: str) -> tuple[int, int, int]:
        n = self.dim
        if self.call_gradient is not None:
            grad, with_value = (0, 1, 0), (1, 1, 0)
        elif self.differences == "forward":
            grad, with_value = (n + 1, 0, 0), (n + 1, 0, 0)  # f(x) serves the value and the differences
        else:
            grad, with_value = (2 * n, 0, 0), (2 * n + 1, 0, 0)
        hvp = tuple(2 * c for c in grad)
        return {"value": (1, 0, 0), "grad": grad, "value_and_grad": with_value, "hvp": hvp,
                "hessian": tuple(n * c for c in hvp)}.get(name, super().costs(name))


def dotted_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def load_function(key: str, spec: Callable | str) -> Callable:
    """``spec`` itself if callable; else the Python function its dotted name names, imported,
    and checked to be a function defined outside the standard library (a config names code
    to run; it may not name ``os.system`` or ``subprocess.getoutput``)."""
    if callable(spec):
        return spec
    module_name, _, name = str(spec).rpartition(".")
    try:
        fn = getattr(importlib.import_module(module_name), name)
    except Exception as exc:  # noqa: BLE001 - a missing module, a typo, an error inside the user's module
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ConfigError(f"{key}={spec!r} cannot be imported ({reason}); allowed: module.function importable "
                          "from the working directory, PYTHONPATH or an installed package") from None
    if not isinstance(fn, types.FunctionType) or _in_standard_library(fn):
        raise ConfigError(f"{key}={spec!r} is not a Python function of your own; allowed: a function f(x) -> "
                          "float defined in your module or package (not a built-in or standard-library one)")
    return fn


def _in_standard_library(fn: types.FunctionType) -> bool:
    try:
        path = Path(inspect.getfile(fn)).resolve()
    except TypeError:
        return True
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    return stdlib in path.parents and "site-packages" not in path.parts
