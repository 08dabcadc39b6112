"""Solver plugins. Each is selected by ``solver=NAME`` (``conf/solver/NAME.yaml``)."""

from .adaptive import Adagrad, Adam, RMSprop
from .base import Solver, State, StepSolver, StepState
from .bfgs import BFGS
from .cg import ConjugateGradient
from .gauss_newton import GaussNewton
from .gd import GradientDescent
from .lbfgs import LBFGS
from .levenberg_marquardt import LevenbergMarquardt
from .lstsq import LeastSquaresSolver
from .momentum import Momentum, Nesterov
from .nelder_mead import NelderMead
from .newton import Newton
from .newton_cg import NewtonCG
from .trust_region import TrustRegion

__all__ = [
    "BFGS", "LBFGS", "Adagrad", "Adam", "ConjugateGradient", "GaussNewton", "GradientDescent",
    "LeastSquaresSolver", "LevenbergMarquardt", "Momentum", "NelderMead", "Nesterov", "Newton", "NewtonCG",
    "RMSprop", "Solver", "State", "StepSolver", "StepState", "TrustRegion",
]

SOLVERS: dict[str, type[Solver]] = {
    cls.name: cls
    for cls in (
        # first order
        GradientDescent, Momentum, Nesterov, Adagrad, RMSprop, Adam,
        # second order
        Newton, NewtonCG, TrustRegion,
        # quasi-Newton and conjugate gradient
        BFGS, LBFGS, ConjugateGradient,
        # least squares
        GaussNewton, LevenbergMarquardt, LeastSquaresSolver,
        # derivative free
        NelderMead,
    )
}
