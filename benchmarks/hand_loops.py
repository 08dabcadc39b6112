"""The methods written by hand on Python floats and numpy: the references of benchmarks/speed.py."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from optlab.objectives import DoubleWell, Rosenbrock


def note_loop(steps: int, lr: float) -> tuple[float, float]:
    """The first note's gradient descent, written by hand on Python floats."""
    def f(x0, x1):
        return 100 * (x1 - x0**2) ** 2 + (1 - x0) ** 2

    def grad(x0, x1):
        return -400 * x0 * (x1 - x0**2) - 2 * (1 - x0), 200 * (x1 - x0**2)

    x0, x1 = 0.0, 2.0
    for _ in range(steps):
        y = f(x0, x1)  # noqa: F841 - the note's loop evaluates f at every step
        g0, g1 = grad(x0, x1)
        x0 -= lr * g0
        x1 -= lr * g1
    return x0, x1


def hand_newton(x: np.ndarray, grad: Callable, hess: Callable, gtol: float, max_iter: int) -> np.ndarray:
    for _ in range(max_iter):
        g = grad(x)
        if math.sqrt(float(g @ g)) <= gtol:
            break
        step = np.linalg.solve(hess(x), g)
        if not np.any(step):
            break
        x = x - step
    return x


NEWTON = {
    "double_well": (
        DoubleWell,
        lambda x: np.array([4 * x[0] ** 3 - 4 * x[0]]),
        lambda x: np.array([[12 * x[0] ** 2 - 4]]),
        lambda rng, n: np.concatenate([rng.uniform(1.2, 3.0, n // 2), rng.uniform(-3.0, -1.2, n - n // 2)])[:, None],
    ),
    "rosenbrock": (
        Rosenbrock,
        lambda x: np.array([-400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0]), 200 * (x[1] - x[0] ** 2)]),
        lambda x: np.array([[1200 * x[0] ** 2 - 400 * x[1] + 2, -400 * x[0]], [-400 * x[0], 200.0]]),
        lambda rng, n: np.column_stack([rng.uniform(-2, 2, n), rng.uniform(-1, 3, n)]),
    ),
}


def hand_momentum(steps: int, lr: float, beta: float = 0.9, nesterov: bool = False) -> tuple[float, float]:
    """Heavy ball (or Nesterov's look-ahead form) on Rosenbrock, written by hand on Python floats."""
    x0, x1, v0, v1 = 0.0, 2.0, 0.0, 0.0
    for _ in range(steps):
        y = 100 * (x1 - x0**2) ** 2 + (1 - x0) ** 2  # noqa: F841 - evaluated at every step, as in the runs
        g0, g1 = -400 * x0 * (x1 - x0**2) - 2 * (1 - x0), 200 * (x1 - x0**2)
        v0, v1 = beta * v0 - lr * g0, beta * v1 - lr * g1
        if nesterov:
            x0, x1 = x0 + beta * v0 - lr * g0, x1 + beta * v1 - lr * g1
        else:
            x0, x1 = x0 + v0, x1 + v1
    return x0, x1


def hand_adam(steps: int, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> tuple[float, float]:
    x0, x1, m0, m1, s0, s1 = 0.0, 2.0, 0.0, 0.0, 0.0, 0.0
    for k in range(steps):
        y = 100 * (x1 - x0**2) ** 2 + (1 - x0) ** 2  # noqa: F841
        g0, g1 = -400 * x0 * (x1 - x0**2) - 2 * (1 - x0), 200 * (x1 - x0**2)
        m0, m1 = b1 * m0 + (1 - b1) * g0, b1 * m1 + (1 - b1) * g1
        s0, s1 = b2 * s0 + (1 - b2) * g0 * g0, b2 * s1 + (1 - b2) * g1 * g1
        c1, c2 = 1 - b1 ** (k + 1), 1 - b2 ** (k + 1)
        x0, x1 = x0 - lr * (m0 / c1) / (math.sqrt(s0 / c2) + eps), x1 - lr * (m1 / c1) / (math.sqrt(s1 / c2) + eps)
    return x0, x1
