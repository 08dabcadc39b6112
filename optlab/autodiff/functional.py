"""Derivatives of functions written on Variables, evaluated at plain numpy arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .core import Variable, as_variable

ScalarFn = Callable[..., Any]


def _scalar_output(f: ScalarFn, x: Variable, args: tuple) -> Variable:
    y = as_variable(f(x, *args))
    if y.size != 1:
        raise ValueError(f"the function must return a scalar, got shape {y.shape}")
    return y


def _grad_of(x: Variable) -> np.ndarray:
    return np.zeros_like(x.data) if x.grad is None else x.grad.data


def value_and_grad(f: ScalarFn) -> Callable[..., tuple[float, np.ndarray]]:
    """``value_and_grad(f)(x) -> (f(x), grad f(x))`` by one reverse sweep."""

    def wrapped(x: Any, *args: Any) -> tuple[float, np.ndarray]:
        xv = Variable(np.array(x, dtype=float))
        y = _scalar_output(f, xv, args)
        y.backward()
        return y.data.item(), _grad_of(xv)  # item(): float() rejects shape (1,) in numpy 2

    return wrapped


def grad(f: ScalarFn) -> Callable[..., np.ndarray]:
    """``grad(f)(x) -> grad f(x)``."""
    vg = value_and_grad(f)
    return lambda x, *args: vg(x, *args)[1]


def _differentiable_grad(f: ScalarFn, x: Any, args: tuple) -> tuple[Variable, Variable]:
    xv = Variable(np.array(x, dtype=float))
    y = _scalar_output(f, xv, args)
    y.backward(create_graph=True)
    g = xv.grad if xv.grad is not None else Variable(np.zeros_like(xv.data))
    xv.cleargrad()
    return xv, g


def hvp(f: ScalarFn) -> Callable[..., np.ndarray]:
    """``hvp(f)(x, v) -> H(x) v``: reverse mode over the recorded gradient, one extra sweep."""

    def wrapped(x: Any, v: Any, *args: Any) -> np.ndarray:
        xv, g = _differentiable_grad(f, x, args)
        (g * np.asarray(v, dtype=float)).sum().backward()
        return _grad_of(xv)

    return wrapped


def hessian(f: ScalarFn) -> Callable[..., np.ndarray]:
    """``hessian(f)(x) -> H(x)``, one reverse sweep of the gradient graph per row."""

    def wrapped(x: Any, *args: Any) -> np.ndarray:
        xv, g = _differentiable_grad(f, x, args)
        n = xv.size
        rows = np.empty((n, n))
        flat = g.reshape(-1)
        for i in range(n):
            xv.cleargrad()
            flat[i].backward(retain_grad=False)
            rows[i] = _grad_of(xv).reshape(-1)
        return rows.reshape(xv.shape + xv.shape)

    return wrapped
