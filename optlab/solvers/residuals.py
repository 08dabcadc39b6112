"""Residuals r(x) and their Jacobian J(x) for objectives f = sum_i r_i(x)^2.

The protocol: such an objective defines ``residual(x: Variable) -> Variable``, the vector r
with f(x) = sum_i r_i^2. r and J come from one of two kinds of code (:func:`residual_code`):

* compiled (:class:`CompiledResidual`), wherever the objective's derivatives may be compiled:
  the pairing p(x, u) = u^T r(x), u in R^m, is compiled like any objective
  (:mod:`optlab.autodiff.compile`, one recording per input size). Its gradient holds
  r = dp/du, and its Hessian holds J = d^2 p / du dx, neither depending on u: the
  Hessian-vector products H (e_j, 0) = (., J e_j) give J's columns (one product per column
  in scalar code for small sizes, else all in one batched call). Objectives of one class
  that share their compiled f within a process (:mod:`optlab.objectives.derivatives`
  decides) share this code too.
* eager (:class:`EagerResidual`), where r cannot be replayed (it reads ``x.data`` or is
  random), where the class sets ``compiled = False``, or inside :func:`optlab.autodiff.eager`:
  r records its graph, and J at the same point takes reverse sweeps only: one per residual
  row (m <= n) or, for tall J (m > n), one sweep of the differentiable vector-Jacobian
  product J^T u followed by one reverse sweep per column (d (J^T u)_j / du = J[:, j]).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .. import autodiff as ad
from ..autodiff import compile as ad_compile
from ..errors import NotApplicable
from ..objectives.base import Objective
from ..objectives.derivatives import derivatives_of
from .problem import Problem

BATCHED_MAX = 4_000_000  # J's columns in one batched call while (n + m) n numbers fit (as compiled Hessians)
_SHARED_MAX = 256


def has_residual(objective: Objective) -> bool:
    return callable(getattr(objective, "residual", None))


def require_residual(objective: Objective, solver: str) -> None:
    """A one-line NotApplicable (a ConfigError) unless ``objective`` exposes the residual protocol."""
    if has_residual(objective):
        return
    from ..objectives import OBJECTIVES  # the registry imports every objective: only on this error path

    with_residual = sorted(name for name, cls in OBJECTIVES.items() if callable(getattr(cls, "residual", None)))
    raise NotApplicable(f"solver={solver} needs a sum-of-squares objective with residual(x); objective="
                      f"{objective.name} has none; allowed: {', '.join(with_residual)}")


# -- eager: the define-by-run engine, the reference --------------------------------------------------
def _residual_graph(objective: Objective, x: np.ndarray) -> tuple[ad.Variable, ad.Variable]:
    xv = ad.Variable(np.array(x, dtype=float))
    r = ad.as_variable(objective.residual(xv)).reshape(-1)
    return xv, r


def _grad_of(v: ad.Variable) -> np.ndarray:
    return np.zeros_like(v.data) if v.grad is None else v.grad.data


def _jacobian(xv: ad.Variable, r: ad.Variable) -> np.ndarray:
    """J from a recorded residual graph (reverse sweeps only: the forward pass is done)."""
    m, n = r.size, xv.size
    jacobian = np.empty((m, n))
    if m <= n:
        for i in range(m):
            xv.cleargrad()
            seed = np.zeros(m)
            seed[i] = 1.0
            r.grad = ad.Variable(seed)
            r.backward()
            jacobian[i] = _grad_of(xv).reshape(-1)
        return jacobian
    u = ad.Variable(np.zeros(m))
    xv.cleargrad()
    ad.sum(r * u).backward(create_graph=True)
    jt_u = xv.grad.reshape(-1) if xv.grad is not None else ad.Variable(np.zeros(n))
    for j in range(n):
        u.cleargrad()
        jt_u[j].backward()
        jacobian[:, j] = _grad_of(u)
    return jacobian


class EagerResidual:
    """r and J on the eager engine; the recording of the last r is kept for J at the same point."""

    kind = "eager"

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.x: np.ndarray | None = None
        self.graph: tuple[ad.Variable, ad.Variable] | None = None

    def residual(self, x: np.ndarray) -> np.ndarray:
        self.x, self.graph = np.array(x, dtype=float), _residual_graph(self.objective, x)
        return self.graph[1].data.copy()

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        if self.x is None or not np.array_equal(self.x, x):
            self.residual(x)
        return _jacobian(*self.graph)


# -- compiled: r and J from the compiled derivatives of u^T r(x) ----------------------------------------
def pairing(objective: Objective, n: int) -> Any:
    """p(z) = u^T r(x) for z = (x, u): the scalar function whose derivatives hold r and J."""

    def p(z: ad.Variable) -> ad.Variable:
        return ad.sum(z[n:] * ad.as_variable(objective.residual(z[:n])).reshape(-1))

    return p


class CompiledResidual:
    """r and J of one objective for inputs of one size, from compiled code (module docstring)."""

    kind = "compiled"

    def __init__(self, objective: Objective, x: np.ndarray) -> None:
        x = np.array(x, dtype=float).reshape(-1)
        with ad.no_grad():
            m = ad.as_variable(objective.residual(ad.Variable(x))).size
        self.n, self.m = n, m = x.size, m
        self.compiled = ad_compile.compile_function(pairing(objective, n), np.concatenate([x, np.ones(m)]))
        self.z = np.zeros(n + m)  # u = 0: r and J do not depend on it
        self._columns: Any = None

    def _point(self, x: np.ndarray) -> np.ndarray:
        z = self.z.copy()
        z[: self.n] = x.reshape(-1)
        return z

    def residual(self, x: np.ndarray) -> np.ndarray:
        return self.compiled.value_and_grad(self._point(x))[1][self.n:]

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        if self._columns is None:
            self._columns = self._column_code()
        return self._columns(self._point(x))

    def _column_code(self) -> Any:
        """J's columns H (e_j, 0)[n:] at a point z: for small sizes one product per column in
        scalar code (the whole Hessian's scalar code would take n + m products to write), else
        all columns in one batched call where (n + m) n numbers fit, else one product per column."""
        n, m = self.n, self.m
        units = np.zeros((n + m, n))
        units[:n] = np.eye(n)
        batched = None
        if not self.compiled.scalar and (n + m) * n <= BATCHED_MAX:
            try:
                batched = self.compiled.batched("hvp")
            except ad_compile.NotCompilable:
                pass
        if batched is not None:
            return lambda z: np.ascontiguousarray(batched(np.repeat(z[:, None], n, axis=1), units)[n:])
        hvp = self.compiled.hvp
        return lambda z: np.stack([hvp(z, units[:, j])[n:] for j in range(n)], axis=1)


_OWN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # objective -> {size: CompiledResidual or None}
_SHARED: dict[tuple, CompiledResidual] = {}  # (class, compiled f) -> code, shared as f's code is shared


def residual_code(objective: Objective, x: np.ndarray) -> CompiledResidual | EagerResidual:
    """The code that evaluates ``objective``'s r and J at points shaped like ``x``: compiled where
    possible (made once per objective and size), else eager (see the module docstring)."""
    if not (ad_compile.ENABLED[0] and type(objective).compiled):
        return EagerResidual(objective)
    try:
        own = _OWN.setdefault(objective, {})
    except TypeError:  # an unhashable objective: compiled anew each time would cost more than it saves
        return EagerResidual(objective)
    size = int(np.size(x))
    if size not in own:
        own[size] = _compile(objective, x)
    return own[size] or EagerResidual(objective)


def _compile(objective: Objective, x: np.ndarray) -> CompiledResidual | None:
    # Objectives of one class that share their compiled f (optlab.objectives.derivatives decides:
    # equal state or options, f checked to agree) share their residual's code as well.
    f_code = derivatives_of(objective).compiled(np.array(x, dtype=float))
    key = None if f_code is None else (type(objective), f_code)
    shared = _SHARED.get(key) if key is not None else None
    if shared is not None and shared.n == np.size(x):
        return shared
    try:
        code = CompiledResidual(objective, x)
    except Exception:  # noqa: BLE001 - not replayable, or r fails here: the eager code answers (or raises again)
        return None
    if key is not None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.pop(next(iter(_SHARED)))
        _SHARED[key] = code
    return code


def residual_and_jacobian(objective: Objective, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r(x), J(x)) with J[i, j] = d r_i / d x_j, by autodiff (compiled where possible)."""
    code = residual_code(objective, x)
    return code.residual(x), code.jacobian(x)


def evaluate_residual(problem: Problem, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, J) at x, counted as one function and one gradient evaluation of ``problem``."""
    problem.count("residual")
    problem.count("jacobian")
    return residual_and_jacobian(problem.objective, x)


class ResidualTrials:
    """Points evaluated once: r at a trial (one function evaluation), kept, so that the
    Jacobian of the point a method accepts costs one gradient evaluation and no second r.
    ``value(x) = r^T r`` makes it the ``problem`` of a line search."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.x: np.ndarray | None = None
        self.r: np.ndarray | None = None
        self.f = float("nan")
        self.code: CompiledResidual | EagerResidual | None = None

    def residual_at(self, x: np.ndarray) -> np.ndarray:
        if self.x is None or not np.array_equal(self.x, x):
            if self.code is None:
                self.code = residual_code(self.problem.objective, x)
            self.problem.count("residual")
            self.x, self.r = np.array(x, dtype=float), self.code.residual(x)
            self.f = float(self.r @ self.r)
            # f's target is checked at every evaluation, where Problem does so (it computes no f here itself)
            reached = getattr(self.problem, "reached", None)
            if reached is not None:
                reached(self.x, self.f)
        return self.r.copy()

    def value(self, x: np.ndarray) -> float:
        self.residual_at(x)
        return self.f

    def jacobian_at(self, x: np.ndarray) -> np.ndarray:
        self.residual_at(x)
        self.problem.count("jacobian")
        return self.code.jacobian(x)
