"""Objective plugins. Each is selected by ``objective=NAME`` (``conf/objective/NAME.yaml``)."""

from .base import Objective
from .double_well import DoubleWell
from .least_squares import LeastSquares
from .rosenbrock import Rosenbrock

__all__ = ["DoubleWell", "LeastSquares", "Objective", "Rosenbrock"]

OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls for cls in (Rosenbrock, DoubleWell, LeastSquares)
}
