"""The solver role: ``init`` makes an explicit state, ``update`` maps a state to the next."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from ..errors import NotApplicable, SolverFailure
from ..norms import norm
from ..objectives.base import Objective
from ..options import constructor_options
from .problem import Problem, answers, missing

#: The option of a first-order method that a sweep or a set of runs varies most: its step size.
LEARNING_RATE = "lr"


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


def stating_the_gradient(update: Callable[..., State]) -> Callable[..., State]:
    """``update`` whose stalls and failures (:class:`~optlab.errors.SolverFailure`, ``NoProgress``
    among them) end their message with ||grad f|| where the run stands, when the method has a
    gradient there: a line search, a trust region, Levenberg-Marquardt or a plugin, each says
    why it stopped, and this says how far from stationary it was."""

    @functools.wraps(update)
    def update_stating_the_gradient(self: Solver, problem: Problem, state: State) -> State:
        try:
            return update(self, problem, state)
        except SolverFailure as exc:
            g = getattr(state, "g", None)
            if g is not None and exc.args and "||grad f||" not in str(exc.args[0]):
                exc.args = (f"{exc.args[0]}, while ||grad f|| = {norm(np.asarray(g)):.3g}", *exc.args[1:])
            raise

    return update_stating_the_gradient


class Solver:
    """Base of all solvers; ``name`` is the plugin name, the docstring the update rule.

    Every subclass's ``update`` states ||grad f|| in the message of a stall or failure
    (:func:`stating_the_gradient`, applied when the class is made)."""

    name: ClassVar[str] = ""
    done_message: ClassVar[str] = "met its own convergence test"  # said when a state comes back ``done``
    uses_gradient: ClassVar[bool] = True  # False: no gtol rule, and the log's grad_norm only when asked
    evaluates: ClassVar[tuple[str, ...]] = ("value_and_grad",)  # compiled before the clock starts

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "update" in cls.__dict__:
            cls.update = stating_the_gradient(cls.__dict__["update"])  # type: ignore[method-assign]

    def check(self, objective: Objective) -> None:
        """Raise :class:`~optlab.errors.ConfigError` if this method cannot treat ``objective``: by
        default, when the objective cannot evaluate what the method ``evaluates`` (a hand-written
        objective with ``value_and_grad`` only, under a method that needs f alone or a Hessian)."""
        lacking = [name for name in self.evaluates if name not in answers(objective)]
        if lacking:
            raise NotApplicable(missing(objective, lacking[0], self.name))

    def init(self, problem: Problem, x0: np.ndarray) -> State:
        f, g = problem.value_and_grad(x0)
        return State(x=x0, f=f, g=g)

    def update(self, problem: Problem, state: State) -> State:
        raise NotImplementedError

    def end(self, state: State) -> None:
        """Called once when a run ends, however it ends (a rule, an error, Ctrl-C), with its last
        state: release what the run holds (scipy's worker thread). Nothing by default."""

    def params(self) -> dict[str, Any]:
        """The options of this instance (recorded with every run): the constructor's arguments,
        each kept under its own name, so ``type(s)(**s.params())`` rebuilds the solver."""
        return constructor_options(self)


@dataclasses.dataclass
class StepState(State):
    """Adds the step index ``k`` and ``carry``, the method's own state (a tuple of arrays,
    e.g. the velocity of momentum)."""

    k: int = 0
    carry: tuple = ()


class StepSolver(Solver):
    """A first-order method written as a pure step with explicit state, Optax-style.

    A subclass gives ``init_carry(x)`` (its own state at the start, a tuple, usually a
    NamedTuple, of arrays shaped like x) and ``step(x, g, carry, k) -> (x_new, carry_new,
    step_size)``, the update written with ordinary arithmetic (and functions of
    :mod:`optlab.autodiff` such as ``sqrt``). The same code then runs on numpy arrays (here,
    one step per :meth:`update`), on Variables (recorded once into a step program that
    advances one run many steps per call, or many runs at once: :mod:`optlab.engine.program`), and
    gives the same numbers on every path.
    """

    def init_carry(self, x: np.ndarray) -> tuple:
        return ()

    def step(self, x: Any, g: Any, carry: tuple, k: Any) -> tuple[Any, tuple, Any]:
        raise NotImplementedError

    def stepwise(self) -> bool:
        """Whether :meth:`step` is the whole update (a subclass may add a line search)."""
        return True

    def init(self, problem: Problem, x0: np.ndarray) -> StepState:
        f, g = problem.value_and_grad(x0)
        return StepState(x0, f, g, carry=self.init_carry(x0))

    def update(self, problem: Problem, state: StepState) -> StepState:
        x, carry, step_size = self.step(state.x, state.g, state.carry, state.k)
        f, g = problem.value_and_grad(x)
        return StepState(x, f, g, float(step_size), False, state.k + 1, carry)
