"""The solver role: ``init`` makes an explicit state, ``update`` maps a state to the next."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from ..objectives.base import Objective
from ..options import constructor_options
from ..problem import Problem


@dataclasses.dataclass
class State:
    """Where a solver stands: the iterate with its value and gradient.

    ``step_size`` is the multiplier applied in the step that produced ``x`` (NaN at the
    start): the line-search alpha or the learning rate lr_k; for trust-region methods the
    length of the step. ``done`` is set by a method whose own convergence test holds (an
    exact method at its solution, Nelder-Mead's simplex collapsed); ``g`` is None for a
    method that uses no gradient.
    Solvers that carry more (momentum, curvature pairs, ...) subclass this.
    """

    x: np.ndarray
    f: float
    g: np.ndarray | None
    step_size: float = float("nan")
    done: bool = False


class Solver:
    """Base of all solvers; ``name`` is the plugin name, the docstring the update rule."""

    name: ClassVar[str] = ""
    done_message: ClassVar[str] = "met its own convergence test"  # said when a state comes back ``done``

    def check(self, objective: Objective) -> None:
        """Raise :class:`~optlab.errors.ConfigError` if this method cannot treat ``objective``."""

    def init(self, problem: Problem, x0: np.ndarray) -> State:
        f, g = problem.value_and_grad(x0)
        return State(x=x0, f=f, g=g)

    def update(self, problem: Problem, state: State) -> State:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The options of this instance (recorded with every run): the constructor's arguments,
        each kept under its own name, so ``type(s)(**s.params())`` rebuilds the solver."""
        return constructor_options(self)
