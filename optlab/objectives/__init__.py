"""Objective plugins. Each is selected by ``objective=NAME`` (``conf/objective/NAME.yaml``)."""

from .ackley import Ackley
from .base import Objective
from .beale import Beale
from .black_box import BlackBox
from .booth import Booth
from .brown_badly_scaled import BrownBadlyScaled
from .curve_fit import CurveFit
from .double_well import DoubleWell
from .himmelblau import Himmelblau
from .least_squares import LeastSquares
from .powell_badly_scaled import PowellBadlyScaled
from .quadratic import Quadratic
from .rastrigin import Rastrigin
from .rosenbrock import Rosenbrock
from .six_hump_camel import SixHumpCamel
from .styblinski_tang import StyblinskiTang

__all__ = [
    "Ackley", "Beale", "BlackBox", "Booth", "BrownBadlyScaled", "CurveFit", "DoubleWell", "Himmelblau",
    "LeastSquares", "Objective", "PowellBadlyScaled", "Quadratic", "Rastrigin", "Rosenbrock", "SixHumpCamel",
    "StyblinskiTang",
]

OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls
    for cls in (Rosenbrock, DoubleWell, LeastSquares, Quadratic, Himmelblau, Beale, Booth, SixHumpCamel,
                Rastrigin, Ackley, StyblinskiTang, CurveFit, BrownBadlyScaled, PowellBadlyScaled)
}  # BlackBox, a form rather than a problem, is selected by config (objective=black_box) or built from Python
