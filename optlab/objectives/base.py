"""The objective role: write ``f`` once on Variables; derivatives follow from autodiff."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .. import autodiff as ad
from ..errors import ConfigError, check_number, describe
from ..options import constructor_options
from .derivatives import derivatives_of, derived

#: What one call of each evaluation costs by default, as (function, gradient, Hessian) evaluations
#: (any other: one Hessian evaluation); see :meth:`Objective.costs`.
_DEFAULT_COSTS = {"value": (1, 0, 0), "residual": (1, 0, 0), "grad": (0, 1, 0), "jacobian": (0, 1, 0),
                  "value_and_grad": (1, 1, 0)}


class Objective:
    """A function to minimise, with what is known about it.

    Subclasses set ``name`` and implement :meth:`f` on :class:`~optlab.autodiff.Variable`
    input of shape ``(dim,)``. They describe the problem through ``dim``, the standard
    start ``x0``, the known ``minimizers`` (rows) and ``f_star`` when known, and ``box``
    (``dim`` rows of ``(low, high)``) for plots. Gradient, Hessian and Hessian-vector
    products come from autodiff; a subclass may override them with analytic forms.
    """

    name: ClassVar[str] = ""
    dim: int
    x0: np.ndarray
    minimizers: np.ndarray = np.empty((0, 0))
    f_star: float | None = None
    box: np.ndarray

    def f(self, x: ad.Variable) -> ad.Variable:
        raise NotImplementedError

    # -- derivatives ----------------------------------------------------------------
    # From autodiff, compiled from one recording of f per input shape (optlab.objectives.derivatives); an
    # f that cannot be replayed (it branches on x.data, or is random) stays on the eager engine,
    # as does every call when ``compiled = False``. A subclass may write any of these out.
    compiled: ClassVar[bool] = True

    @derived
    def value(self, x: np.ndarray) -> float:
        return derivatives_of(self).value(x)

    @derived
    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return derivatives_of(self).value_and_grad(x)

    @derived
    def grad(self, x: np.ndarray) -> np.ndarray:
        return derivatives_of(self).grad(x)

    @derived
    def hessian(self, x: np.ndarray) -> np.ndarray:
        return derivatives_of(self).hessian(x)

    @derived
    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return derivatives_of(self).hvp(x, v)

    def costs(self, name: str) -> tuple[int, int, int]:
        """What one call of ``name`` costs, as (function, gradient, Hessian) evaluations; a black
        box computing gradients by differences of f counts them as function evaluations."""
        return _DEFAULT_COSTS.get(name, (0, 0, 1))

    # -- description --------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The options that define this instance (recorded with every run).

        By default the constructor's arguments, read back from the attributes of the same
        name, so that ``type(self)(**self.params())`` rebuilds the instance. A subclass that
        stores an option under another name overrides this.
        """
        return constructor_options(self)

    def start(self, x0: Any = None) -> np.ndarray:
        """``x0`` checked against this objective, or the standard start when ``None``."""
        if x0 is None:
            return np.array(self.x0, dtype=float)
        try:
            if _holds_bool(x0) or np.ndim(x0) > 1:  # (numpy would take true as 1.0, and flatten [[1, 2]])
                raise TypeError
            x = np.array(x0, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            shown = describe(list(x0) if isinstance(x0, (tuple, np.ndarray)) else x0)
            raise ConfigError(f"x0={shown} is not a list of numbers; allowed: {self.dim} finite numbers") from None
        if x.size != self.dim:
            raise ConfigError(f"x0={_show(x)} has length {x.size}; allowed: length {self.dim} "
                              f"(the dimension of {self.name})")
        if not np.isfinite(x).all():
            raise ConfigError(f"x0={_show(x)} is not finite; allowed: {self.dim} finite numbers")
        return x

    def gap(self, f: float) -> float | None:
        return None if self.f_star is None else f - self.f_star


def _holds_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_bool(v) for v in value)
    return isinstance(value, np.ndarray) and value.dtype == bool


def _show(x: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in x) + "]"


def check_dim(dim: Any) -> int:
    return int(check_number("objective.dim", dim, low=1, strict=False, integer=True))


def as_box(box: Any, dim: int) -> np.ndarray:
    b = np.array(box, dtype=float)
    b = np.broadcast_to(b, (dim, 2)).copy() if b.shape == (2,) else b
    if b.shape != (dim, 2) or not np.all(b[:, 0] < b[:, 1]):
        raise ConfigError(f"box={b.tolist()} is not {dim} rows of (low, high) with low < high")
    return b
