"""Classic unconstrained test problems no optlab method was tuned on: sums of squares from Moré,
Garbow and Hillstrom, "Testing unconstrained optimization software", ACM TOMS 7 (1981) 17-41,
each at its standard start (the problem number of the paper in the docstring).

Used by ``benchmarks/vs_scipy.py`` to choose CG's line-search constant and restart rule on
evidence beyond the shipped objectives. Each is an ordinary optlab objective written as
``residual(x)``, f = sum r_i^2.
"""

from __future__ import annotations

import numpy as np

from optlab import autodiff as ad
from optlab.objectives.base import Objective


class SumOfSquares(Objective):
    """f = sum r_i(x)^2 from ``residual``; ``dim``, ``x0`` and the box are set by each problem."""

    def f(self, x: ad.Variable) -> ad.Variable:
        r = self.residual(x)
        return ad.sum(r * r)

    def _describe(self, x0: list[float], radius: float) -> None:
        self.x0 = np.array(x0, dtype=float)
        self.dim = self.x0.size
        self.box = np.array([[-radius, radius]] * self.dim)


class BrownDennis(SumOfSquares):
    """Brown and Dennis (16): f* = 85822.2 is large, so f resolves ||grad f|| ~ 1e-5 only by its slope."""

    name = "brown_dennis"

    def __init__(self) -> None:
        self._describe([25.0, 5.0, -5.0, -1.0], 30.0)

    def residual(self, x):
        t = np.arange(1, 21) / 5.0
        a = x[0] + t * x[1] - np.exp(t)
        b = x[2] + x[3] * np.sin(t) - np.cos(t)
        return a * a + b * b


class PowellSingular(SumOfSquares):
    """Powell's singular function (13): the Hessian at the minimiser is singular."""

    name = "powell_singular"

    def __init__(self) -> None:
        self._describe([3.0, -1.0, 0.0, 1.0], 4.0)

    def residual(self, x):
        return ad.stack([x[0] + 10 * x[1], 5 ** 0.5 * (x[2] - x[3]), (x[1] - 2 * x[2]) ** 2,
                         10 ** 0.5 * (x[0] - x[3]) ** 2])


class Wood(SumOfSquares):
    """Wood's function (14)."""

    name = "wood"

    def __init__(self) -> None:
        self._describe([-3.0, -1.0, -3.0, -1.0], 4.0)

    def residual(self, x):
        return ad.stack([10 * (x[1] - x[0] ** 2), 1 - x[0], 90 ** 0.5 * (x[3] - x[2] ** 2), 1 - x[2],
                         10 ** 0.5 * (x[1] + x[3] - 2), 10 ** -0.5 * (x[1] - x[3])])


class BiggsExp6(SumOfSquares):
    """Biggs' EXP6 function (18)."""

    name = "biggs_exp6"

    def __init__(self) -> None:
        self._describe([1.0, 2.0, 1.0, 1.0, 1.0, 1.0], 20.0)

    def residual(self, x):
        t = 0.1 * np.arange(1, 14)
        y = np.exp(-t) - 5 * np.exp(-10 * t) + 3 * np.exp(-4 * t)
        return x[2] * ad.exp(-t * x[0]) - x[3] * ad.exp(-t * x[1]) + x[5] * ad.exp(-t * x[4]) - y


class Box3D(SumOfSquares):
    """Box's three-dimensional function (12)."""

    name = "box_3d"

    def __init__(self) -> None:
        self._describe([0.0, 10.0, 20.0], 20.0)

    def residual(self, x):
        t = 0.1 * np.arange(1, 11)
        return ad.exp(-t * x[0]) - ad.exp(-t * x[1]) - x[2] * (np.exp(-t) - np.exp(-10 * t))


class KowalikOsborne(SumOfSquares):
    """Kowalik and Osborne's function (15)."""

    name = "kowalik_osborne"

    def __init__(self) -> None:
        self._describe([0.25, 0.39, 0.415, 0.39], 1.0)

    def residual(self, x):
        y = np.array([.1957, .1947, .1735, .16, .0844, .0627, .0456, .0342, .0323, .0235, .0246])
        u = np.array([4, 2, 1, .5, .25, .167, .125, .1, .0833, .0714, .0625])
        return y - x[0] * (u * u + u * x[1]) / (u * u + u * x[2] + x[3])


class Osborne1(SumOfSquares):
    """Osborne 1 (17)."""

    name = "osborne_1"

    def __init__(self) -> None:
        self._describe([0.5, 1.5, -1.0, 0.01, 0.02], 3.0)

    def residual(self, x):
        y = np.array([.844, .908, .932, .936, .925, .908, .881, .85, .818, .784, .751, .718, .685, .658, .628,
                      .603, .58, .558, .538, .522, .506, .49, .478, .467, .457, .448, .438, .431, .424, .42, .414,
                      .411, .406])
        t = 10.0 * np.arange(33)
        return y - (x[0] + x[1] * ad.exp(-t * x[3]) + x[2] * ad.exp(-t * x[4]))


class ExtendedRosenbrock(SumOfSquares):
    """The extended Rosenbrock function (21) in ``dim`` (even) dimensions."""

    name = "extended_rosenbrock"

    def __init__(self, dim: int = 10) -> None:
        self._describe(np.tile([-1.2, 1.0], dim // 2).tolist(), 2.0)

    def residual(self, x):
        odd, even = x[0::2], x[1::2]
        return ad.concatenate([10 * (even - odd * odd), 1 - odd])


class Trigonometric(SumOfSquares):
    """The trigonometric function (26) in ``dim`` dimensions."""

    name = "trigonometric"

    def __init__(self, dim: int = 10) -> None:
        self._describe([1.0 / dim] * dim, 1.0)

    def residual(self, x):
        c = ad.cos(x)
        return self.dim - ad.sum(c) + np.arange(1, self.dim + 1) * (1 - c) - ad.sin(x)


class PenaltyI(SumOfSquares):
    """Penalty function I (23) in ``dim`` dimensions."""

    name = "penalty_1"

    def __init__(self, dim: int = 10) -> None:
        self._describe(np.arange(1.0, dim + 1).tolist(), 10.0)

    def residual(self, x):
        return ad.concatenate([1e-5 ** 0.5 * (x - 1), ad.reshape(ad.sum(x * x) - 0.25, (1,))])


class VariablyDimensioned(SumOfSquares):
    """The variably dimensioned function (25) in ``dim`` dimensions."""

    name = "variably_dimensioned"

    def __init__(self, dim: int = 10) -> None:
        self._describe((1 - np.arange(1.0, dim + 1) / dim).tolist(), 2.0)

    def residual(self, x):
        s = ad.sum(np.arange(1.0, self.dim + 1) * (x - 1))
        return ad.concatenate([x - 1, ad.reshape(s, (1,)), ad.reshape(s * s, (1,))])


class Watson(SumOfSquares):
    """Watson's function (20) in ``dim`` dimensions."""

    name = "watson"

    def __init__(self, dim: int = 6) -> None:
        self._describe([0.0] * dim, 2.0)

    def residual(self, x):
        rows = []
        for i in range(1, 30):
            t = i / 29.0
            slope = sum((j - 1) * x[j - 1] * t ** (j - 2) for j in range(2, self.dim + 1))
            value = sum(x[j - 1] * t ** (j - 1) for j in range(1, self.dim + 1))
            rows.append(slope - value * value - 1)
        return ad.stack([*rows, x[0], x[1] - x[0] * x[0] - 1])


class Gaussian(SumOfSquares):
    """The Gaussian function (9)."""

    name = "gaussian"

    def __init__(self) -> None:
        self._describe([0.4, 1.0, 0.0], 2.0)

    def residual(self, x):
        y = np.array([.0009, .0044, .0175, .054, .1295, .242, .3521, .3989, .3521, .242, .1295, .054, .0175,
                      .0044, .0009])
        d = (8 - np.arange(1, 16)) / 2.0 - x[2]
        return x[0] * ad.exp(-x[1] * d * d / 2) - y


class Bard(SumOfSquares):
    """Bard's function (8)."""

    name = "bard"

    def __init__(self) -> None:
        self._describe([1.0, 1.0, 1.0], 2.0)

    def residual(self, x):
        y = np.array([.14, .18, .22, .25, .29, .32, .35, .39, .37, .58, .73, .96, 1.34, 2.1, 4.39])
        u = np.arange(1.0, 16)
        v, w = 16 - u, np.minimum(u, 16 - u)
        return y - (x[0] + u / (v * x[1] + w * x[2]))


class FreudensteinRoth(SumOfSquares):
    """Freudenstein and Roth's function (2)."""

    name = "freudenstein_roth"

    def __init__(self) -> None:
        self._describe([0.5, -2.0], 20.0)

    def residual(self, x):
        return ad.stack([-13 + x[0] + ((5 - x[1]) * x[1] - 2) * x[1], -29 + x[0] + ((x[1] + 1) * x[1] - 14) * x[1]])


class JennrichSampson(SumOfSquares):
    """Jennrich and Sampson's function (6)."""

    name = "jennrich_sampson"

    def __init__(self) -> None:
        self._describe([0.3, 0.4], 1.0)

    def residual(self, x):
        i = np.arange(1.0, 11)
        return 2 + 2 * i - (ad.exp(i * x[0]) + ad.exp(i * x[1]))


PROBLEMS = (BrownDennis, PowellSingular, Wood, BiggsExp6, Box3D, KowalikOsborne, Osborne1, ExtendedRosenbrock,
            Trigonometric, PenaltyI, VariablyDimensioned, Watson, Gaussian, Bard, FreudensteinRoth, JennrichSampson)
