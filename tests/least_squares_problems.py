"""The classic nonlinear least-squares test problems of MINPACK's ``lmder`` test driver.

Moré, Garbow and Hillstrom, "Testing unconstrained optimization software", ACM TOMS 7 (1981)
17-41, as MINPACK-1's test of ``lmder`` defines them (Moré, Garbow and Hillstrom, Argonne
report ANL-80-74, 1980), from their standard starts: the 18 functions at standard sizes
(Watson at n = 6, Chebyquad at n = m = 8), and Watson at n = 9 and Chebyquad at n = 10 (20
problems). Each
residual is written on :mod:`optlab.autodiff` Variables, so that one definition serves
optlab's solvers and, evaluated on numbers, scipy's ``least_squares``.

:func:`scipy_lm` and :func:`optlab_lm` run Levenberg-Marquardt on one problem and list f at
every residual evaluation, in order, so that both sides are counted alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np

import optlab.solvers.residuals as residuals
from optlab import autodiff as ad
from optlab.engine.outcome import Outcome
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.objectives.base import Objective
from optlab.solvers import SOLVERS


class ResidualProblem(Objective):
    """f(x) = ||r(x)||^2 for a residual function ``r`` of Variables, from the start ``x0``."""

    def __init__(self, name: str, residual: Callable, x0) -> None:
        self.name = name
        self._residual = residual
        self.x0 = np.array(x0, dtype=float)
        self.dim = self.x0.size
        self.box = np.stack([self.x0 - 1.0, self.x0 + 1.0], axis=1)

    def params(self) -> dict:
        return {"name": self.name}

    def residual(self, x: ad.Variable) -> ad.Variable:
        return ad.as_variable(self._residual(x)).reshape(-1)

    def f(self, x: ad.Variable) -> ad.Variable:
        r = self.residual(x)
        return ad.sum(r * r)


def _linear_full_rank(n: int, m: int) -> Callable:
    def r(x):
        t = 2.0 * ad.sum(x) / m + 1.0
        return ad.concatenate([x - t, ad.broadcast_to(-t, (m - n,))])
    return r


def _linear_rank_one(n: int, m: int, zero_columns: bool) -> Callable:
    if zero_columns:  # x_1 and x_n unused; rows 1 and m constant
        weights = np.r_[0.0, np.arange(2.0, n), 0.0]
        rows = np.r_[np.arange(0.0, m - 1), 0.0]
    else:
        weights, rows = np.arange(1.0, n + 1), np.arange(1.0, m + 1)
    return lambda x: rows * ad.sum(weights * x) - 1.0


def _rosenbrock(x):
    return ad.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])


def _helical_valley(x):
    theta = ad.arctan(x[1] / x[0]) / (2.0 * np.pi) + 0.5 * (x[0] < 0.0)
    return ad.stack([10.0 * (x[2] - 10.0 * theta), 10.0 * (ad.sqrt(x[0] ** 2 + x[1] ** 2) - 1.0), x[2]])


def _powell_singular(x):
    return ad.stack([x[0] + 10.0 * x[1], np.sqrt(5.0) * (x[2] - x[3]), (x[1] - 2.0 * x[2]) ** 2,
                     np.sqrt(10.0) * (x[0] - x[3]) ** 2])


def _freudenstein_roth(x):
    return ad.stack([-13.0 + x[0] + ((5.0 - x[1]) * x[1] - 2.0) * x[1],
                     -29.0 + x[0] + ((x[1] + 1.0) * x[1] - 14.0) * x[1]])


BARD_Y = np.array([0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34, 2.10, 4.39])


def _bard(x):
    u = np.arange(1.0, 16.0)
    v = 16.0 - u
    w = np.minimum(u, v)
    return BARD_Y - (x[0] + u / (v * x[1] + w * x[2]))


KOWALIK_U = np.array([4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625])
KOWALIK_Y = np.array([0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235, 0.0246])


def _kowalik_osborne(x):
    u = KOWALIK_U
    return KOWALIK_Y - x[0] * (u * (u + x[1])) / (u * (u + x[2]) + x[3])


MEYER_Y = np.array([34780.0, 28610.0, 23650.0, 19630.0, 16370.0, 13720.0, 11540.0, 9744.0, 8261.0, 7030.0,
                    6005.0, 5147.0, 4427.0, 3820.0, 3307.0, 2872.0])


def _meyer(x):
    t = 45.0 + 5.0 * np.arange(1.0, 17.0)
    return x[0] * ad.exp(x[1] / (t + x[2])) - MEYER_Y


def _watson(n: int) -> Callable:
    t = np.arange(1.0, 30.0) / 29.0
    powers = np.arange(n)
    values = t[:, None] ** powers  # t_i^(j-1)
    slopes = np.zeros((29, n))
    slopes[:, 1:] = powers[1:] * t[:, None] ** (powers[1:] - 1)  # (j-1) t_i^(j-2)

    def r(x):
        fit = ad.matmul(slopes, x) - ad.matmul(values, x) ** 2 - 1.0
        return ad.concatenate([fit, ad.stack([x[0], x[1] - x[0] ** 2 - 1.0])])
    return r


def _box_3d(m: int) -> Callable:
    t = np.arange(1.0, m + 1) / 10.0
    return lambda x: ad.exp(-t * x[0]) - ad.exp(-t * x[1]) - x[2] * (np.exp(-t) - np.exp(-10.0 * t))


def _jennrich_sampson(m: int) -> Callable:
    i = np.arange(1.0, m + 1)
    return lambda x: 2.0 + 2.0 * i - ad.exp(i * x[0]) - ad.exp(i * x[1])


def _brown_dennis(m: int) -> Callable:
    t = np.arange(1.0, m + 1) / 5.0
    return lambda x: (x[0] + t * x[1] - np.exp(t)) ** 2 + (x[2] + np.sin(t) * x[3] - np.cos(t)) ** 2


def _chebyquad(n: int, m: int) -> Callable:
    i = np.arange(1.0, m + 1)
    integrals = np.zeros(m)  # of T_i(y) over x in [0, 1]: -1 / (i^2 - 1) for even i, 0 for odd i
    integrals[1::2] = -1.0 / (i[1::2] ** 2 - 1.0)

    def r(x):
        y = 2.0 * x - 1.0
        previous, current, means = 1.0, y, []
        for _ in range(m):
            means.append(ad.sum(current) / n)
            previous, current = current, 2.0 * y * current - previous
        return ad.stack(means) - integrals
    return r


def _brown_almost_linear(n: int) -> Callable:
    def r(x):
        product = x[0]
        for j in range(1, n):
            product = product * x[j]
        linear = x[:-1] + ad.sum(x) - (n + 1.0)
        return ad.concatenate([linear, ad.reshape(product - 1.0, (1,))])
    return r


OSBORNE1_Y = np.array([0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751, 0.718,
                       0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490, 0.478, 0.467,
                       0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411, 0.406])


def _osborne1(x):
    t = 10.0 * np.arange(33.0)
    return OSBORNE1_Y - (x[0] + x[1] * ad.exp(-t * x[3]) + x[2] * ad.exp(-t * x[4]))


OSBORNE2_Y = np.array([
    1.366, 1.191, 1.112, 1.013, 0.991, 0.885, 0.831, 0.847, 0.786, 0.725, 0.746, 0.679, 0.608, 0.655, 0.616,
    0.606, 0.602, 0.626, 0.651, 0.724, 0.649, 0.649, 0.694, 0.644, 0.624, 0.661, 0.612, 0.558, 0.533, 0.495,
    0.500, 0.423, 0.395, 0.375, 0.372, 0.391, 0.396, 0.405, 0.428, 0.429, 0.523, 0.562, 0.607, 0.653, 0.672,
    0.708, 0.633, 0.668, 0.645, 0.632, 0.591, 0.559, 0.597, 0.625, 0.739, 0.710, 0.729, 0.720, 0.636, 0.581,
    0.428, 0.292, 0.162, 0.098, 0.054])


def _osborne2(x):
    t = np.arange(65.0) / 10.0
    model = x[0] * ad.exp(-t * x[4])
    for a, rate, centre in ((1, 5, 8), (2, 6, 9), (3, 7, 10)):
        model = model + x[a] * ad.exp(-x[rate] * (t - x[centre]) ** 2)
    return OSBORNE2_Y - model


#: (name, residual, standard start), in MINPACK's order.
MINPACK_PROBLEMS: list[tuple[str, Callable, list[float]]] = [
    ("linear_full_rank", _linear_full_rank(5, 10), [1.0] * 5),
    ("linear_rank_one", _linear_rank_one(5, 10, False), [1.0] * 5),
    ("linear_rank_one_zero_columns", _linear_rank_one(5, 10, True), [1.0] * 5),
    ("rosenbrock", _rosenbrock, [-1.2, 1.0]),
    ("helical_valley", _helical_valley, [-1.0, 0.0, 0.0]),
    ("powell_singular", _powell_singular, [3.0, -1.0, 0.0, 1.0]),
    ("freudenstein_roth", _freudenstein_roth, [0.5, -2.0]),
    ("bard", _bard, [1.0, 1.0, 1.0]),
    ("kowalik_osborne", _kowalik_osborne, [0.25, 0.39, 0.415, 0.39]),
    ("meyer", _meyer, [0.02, 4000.0, 250.0]),
    ("watson_6", _watson(6), [0.0] * 6),
    ("box_3d", _box_3d(10), [0.0, 10.0, 20.0]),
    ("jennrich_sampson", _jennrich_sampson(10), [0.3, 0.4]),
    ("brown_dennis", _brown_dennis(20), [25.0, 5.0, -5.0, -1.0]),
    ("chebyquad_8", _chebyquad(8, 8), list(np.arange(1.0, 9.0) / 9.0)),
    ("brown_almost_linear", _brown_almost_linear(10), [0.5] * 10),
    ("osborne_1", _osborne1, [0.5, 1.5, -1.0, 0.01, 0.02]),
    ("osborne_2", _osborne2, [1.3, 0.65, 0.65, 0.7, 0.6, 3.0, 5.0, 7.0, 2.0, 4.5, 5.5]),
    ("watson_9", _watson(9), [0.0] * 9),
    ("chebyquad_10", _chebyquad(10, 10), list(np.arange(1.0, 11.0) / 11.0)),
]


def minpack_problems() -> list[ResidualProblem]:
    return [ResidualProblem(name, residual, x0) for name, residual, x0 in MINPACK_PROBLEMS]


def scipy_lm(objective: Objective, **tolerances) -> tuple[object, list[float]]:
    """scipy's MINPACK ``lmder`` (``least_squares(method='lm')``) with MINPACK's scaling of the
    variables (``x_scale='jac'``, as ``lmder1``), on optlab's residual code; f at each evaluation."""
    from scipy.optimize import least_squares

    x0 = objective.start()
    code = residuals.residual_code(objective, x0)
    seen: list[float] = []

    def fun(x):
        r = code.residual(x)
        seen.append(float(r @ r))
        return r

    result = least_squares(fun, x0, jac=code.jacobian, method="lm", x_scale="jac", **tolerances)
    return result, seen


@contextlib.contextmanager
def watching_residuals(seen: list[float]) -> Iterator[None]:
    """Inside the block, f of every residual evaluation (compiled or eager code) goes to ``seen``."""
    code_for = residuals.residual_code

    class Watched:
        def __init__(self, code):
            self.code = code

        def residual(self, x):
            r = self.code.residual(x)
            seen.append(float(r @ r))
            return r

        def jacobian(self, x):
            return self.code.jacobian(x)

    residuals.residual_code = lambda objective, x: Watched(code_for(objective, x))
    try:
        yield
    finally:
        residuals.residual_code = code_for


def optlab_lm(objective: Objective, stop: Stop | None = None, solver: str = "levenberg_marquardt"
              ) -> tuple[Outcome, list[float]]:
    """optlab's ``levenberg_marquardt`` (or another residual method) from the standard start;
    f at each residual evaluation."""
    seen: list[float] = []
    with watching_residuals(seen):
        out = run_set(objective, SOLVERS[solver](), None, stop or Stop())[0]
    return out, seen


def first_at_most(values: list[float], limit: float) -> int | None:
    """The number of evaluations up to the first one at or below ``limit`` (None: never)."""
    return next((i + 1 for i, v in enumerate(values) if v <= limit), None)
