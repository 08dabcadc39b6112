"""Objective plugins. Each is selected by ``objective=NAME`` (``conf/objective/NAME.yaml``)."""

from .ackley import Ackley
from .base import Objective
from .beale import Beale
from .black_box import BlackBox
from .booth import Booth
from .curve_fit import CurveFit
from .double_well import DoubleWell
from .himmelblau import Himmelblau
from .least_squares import LeastSquares
from .quadratic import Quadratic
from .rastrigin import Rastrigin
from .rosenbrock import Rosenbrock
from .six_hump_camel import SixHumpCamel
from .styblinski_tang import StyblinskiTang

__all__ = [
    "Ackley", "Beale", "BlackBox", "Booth", "CurveFit", "DoubleWell", "Himmelblau", "LeastSquares", "Objective",
    "Quadratic", "Rastrigin", "Rosenbrock", "SixHumpCamel", "StyblinskiTang",
]

OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls
    for cls in (Rosenbrock, DoubleWell, LeastSquares, Quadratic, Himmelblau, Beale, Booth, SixHumpCamel,
                Rastrigin, Ackley, StyblinskiTang, CurveFit, BlackBox)
}
