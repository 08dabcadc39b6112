from __future__ import annotations

from ..errors import check_number
from ..problem import Problem
from .base import Solver, State


class GradientDescent(Solver):
    """Gradient descent: x_{k+1} = x_k - lr * grad f(x_k)."""

    name = "gd"

    def __init__(self, lr: float = 0.001) -> None:
        self.lr = check_number("solver.lr", lr, low=0)

    def update(self, problem: Problem, state: State) -> State:
        x = state.x - self.lr * state.g
        f, g = problem.value_and_grad(x)
        return State(x=x, f=f, g=g, step_size=self.lr)

    def params(self) -> dict:
        return {"lr": self.lr}
