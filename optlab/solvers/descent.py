"""Line-search methods: x_{k+1} = x_k + alpha_k d_k, a direction rule plus a shared line search.

A subclass says how it picks the direction d_k (:meth:`DescentSolver.direction`), the first
trial step (:meth:`DescentSolver.initial_step`) and what it remembers from a step
(:meth:`DescentSolver.advance`); the line search is one of :mod:`optlab.solvers.line_search`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from ..errors import NoProgress
from .base import Solver, State
from .line_search import LINE_SEARCHES, LineSearch, Step, make_line_search
from .problem import Problem


@dataclasses.dataclass
class DescentState(State):
    """Adds the iteration count ``k`` and the previous value ``f_previous`` (for initial steps)."""

    k: int = 0
    f_previous: float = math.nan


class DescentSolver(Solver):
    """Base of the line-search methods; subclasses set ``line_search`` (a :class:`LineSearch`)."""

    state_type: ClassVar[type[DescentState]] = DescentState
    search: LineSearch

    def _init_line_search(self, line_search: object, c1: object, c2: object,
                          allowed: tuple[str, ...] = tuple(LINE_SEARCHES)) -> None:
        """Options line_search, c1, c2, checked and kept under their names."""
        self.search = make_line_search(line_search, c1, c2, allowed)
        self.line_search, self.c1, self.c2 = line_search, self.search.c1, self.search.c2

    def init(self, problem: Problem, x0: np.ndarray) -> DescentState:
        f, g = problem.value_and_grad(x0)
        return self.state_type(x=x0, f=f, g=g)

    def direction(self, problem: Problem, state: DescentState) -> np.ndarray:
        raise NotImplementedError

    def initial_step(self, state: DescentState, d: np.ndarray) -> float:
        """The line search's first trial: 1, the natural step of Newton-type directions."""
        return 1.0

    def update(self, problem: Problem, state: DescentState) -> DescentState:
        try:
            return self._step(problem, state)
        except NoProgress:
            fresh = self.forget(state)
            if fresh is None:
                raise
            return self._step(problem, fresh)  # once more along -g; a second stall ends the run

    def _step(self, problem: Problem, state: DescentState) -> DescentState:
        d = self.direction(problem, state)
        step = self.search.search(problem, state.x, state.f, state.g, d, self.initial_step(state, d))
        return self.advance(state, step, d)

    def forget(self, state: DescentState) -> DescentState | None:
        """``state`` without what the method has learnt (curvature pairs, the previous direction),
        so that its next direction is -g; None if it has nothing to forget. Where the line search
        finds no decrease along d, the method retries once from there, as L-BFGS-B refreshes its
        memory: d may be spoilt by that memory (rounding, a differenced gradient across a kink)."""
        return None

    def advance(self, state: DescentState, step: Step, d: np.ndarray) -> DescentState:
        """The state after ``step``; subclasses add what they remember (curvature pairs, d_k)."""
        if type(state) is DescentState:  # (made directly: dataclasses.replace costs five times as much)
            return DescentState(x=step.x, f=step.f, g=step.g, step_size=step.alpha, done=state.done, k=state.k + 1,
                                f_previous=state.f)
        return dataclasses.replace(state, x=step.x, f=step.f, g=step.g, step_size=step.alpha,
                                   k=state.k + 1, f_previous=state.f)
