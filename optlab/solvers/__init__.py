"""Solver plugins. Each is selected by ``solver=NAME`` (``conf/solver/NAME.yaml``)."""

from .base import Solver, State
from .gd import GradientDescent
from .lstsq import LeastSquaresSolver
from .newton import Newton

__all__ = ["GradientDescent", "LeastSquaresSolver", "Newton", "Solver", "State"]

SOLVERS: dict[str, type[Solver]] = {
    cls.name: cls for cls in (GradientDescent, Newton, LeastSquaresSolver)
}
