from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import NoProgress, check_number
from .base import Solver, State
from .options import check_flag
from .problem import Problem

# Simplex iterations without a new best vertex, per vertex, before the method is stalled: by then
# contractions have shrunk the simplex by orders of magnitude without finding a lower f.
STALL_PER_VERTEX = 100


@dataclasses.dataclass
class SimplexState(State):
    """Adds the ``simplex`` (n + 1 vertices as rows, best first), their ``values``, the number of
    ``simplex_iterations`` so far and ``restarted_at``, the best f when the simplex last restarted
    (None: no restart under way, or the last one found a lower f). ``x``, ``f`` are the best
    vertex; ``g`` is None."""

    simplex: np.ndarray | None = None
    values: np.ndarray | None = None
    simplex_iterations: int = 0
    restarted_at: float | None = None


def initial_simplex(x0: np.ndarray) -> np.ndarray:
    """x0 and n vertices x0 + 5% of x0_i along each axis i (0.00025 where x0_i = 0)."""
    simplex = np.tile(x0, (x0.size + 1, 1))
    for i in range(x0.size):
        simplex[i + 1, i] = 1.05 * x0[i] if x0[i] != 0 else 0.00025
    return simplex


class NelderMead(Solver):
    """Nelder-Mead simplex search, derivative free. With the centroid c of the n best vertices
    and the worst x_w, trial points c + t (c - x_w): reflection t = rho, expansion t = rho chi,
    outside contraction t = rho psi, inside contraction t = -psi; if no trial improves, the
    simplex shrinks towards the best vertex by sigma. Coefficients (rho, chi, psi, sigma) =
    (1, 2, 1/2, 1/2), or Gao and Han's (1, 1 + 2/n, 3/4 - 1/(2n), 1 - 1/n) with ``adaptive``
    (default: for n > 2, where the standard ones let the simplex collapse away from any
    minimiser; for n = 2 they are the same).

    The simplex test: max |x_i - x_best| <= ``xatol`` and max |f_i - f_best| <= ``fatol`` over
    the vertices. A simplex can pass it without being near a minimiser (on the 5-D sphere the
    standard method stops at f - f* = 1.09, as scipy's does), so with ``restart`` the method
    then starts again from a fresh simplex around its best vertex (as it started from x0), and
    is ``done`` (converged) only once a restart has passed the test again without lowering f by
    more than ``fatol``; a restart that finds lower f is followed by another. One iteration is
    one new best vertex: the simplex iterations in between (one to n + 2 function evaluations
    each, n for a restart) are counted in ``state.simplex_iterations``; ``g`` is None and
    ``step_size`` NaN. Without ``restart``, scipy's method step for step. References: Nelder and
    Mead, Computer Journal 7, 1965; Lagarias, Reeds, Wright and Wright, SIAM J. Optim. 9,
    1998; adaptive: Gao and Han, Comput. Optim. Appl. 51, 2012; restarts: Kelley, SIAM J.
    Optim. 10, 1999.
    """

    name = "nelder_mead"
    evaluates = ("value",)
    done_message = ("shrank its simplex within xatol in x and fatol in f, and a restart from a fresh simplex "
                    "around its best vertex found no lower f")
    uses_gradient = False

    def __init__(self, xatol: float = 1e-4, fatol: float = 1e-4, adaptive: bool | None = None,
                 restart: bool = True) -> None:
        self.xatol = check_number("solver.xatol", xatol, low=0, strict=False)
        self.fatol = check_number("solver.fatol", fatol, low=0, strict=False)
        self.adaptive = check_flag("solver.adaptive", adaptive, allow_none=True)
        self.restart = check_flag("solver.restart", restart)

    def _coefficients(self, n: int) -> tuple[float, float, float, float]:
        if self.adaptive or (self.adaptive is None and n > 2):
            return 1.0, 1.0 + 2.0 / n, 0.75 - 0.5 / n, 1.0 - 1.0 / n
        return 1.0, 2.0, 0.5, 0.5

    def _converged(self, simplex: np.ndarray, values: np.ndarray) -> bool:
        return bool(np.max(np.abs(simplex[1:] - simplex[0])) <= self.xatol
                    and np.max(np.abs(values[1:] - values[0])) <= self.fatol)

    def _state(self, simplex: np.ndarray, values: np.ndarray, iterations: int,
               restarted_at: float | None) -> SimplexState:
        order = np.argsort(values, kind="stable")
        simplex, values = simplex[order], values[order]
        if restarted_at is not None and values[0] < restarted_at - self.fatol:
            restarted_at = None  # the restart found lower f: the test passed too early, the next one restarts again
        return SimplexState(x=simplex[0].copy(), f=float(values[0]), g=None, done=self._converged(simplex, values),
                            simplex=simplex, values=values, simplex_iterations=iterations,
                            restarted_at=restarted_at)

    def init(self, problem: Problem, x0: np.ndarray) -> SimplexState:
        simplex = initial_simplex(x0)
        return self._state(simplex, np.array([problem.value(v) for v in simplex]), 0, None)

    def _restarted(self, problem: Problem, state: SimplexState) -> SimplexState:
        """A fresh simplex around the best vertex (whose value is known)."""
        simplex = initial_simplex(state.x)
        values = np.array([state.f] + [problem.value(v) for v in simplex[1:]])
        return dataclasses.replace(self._state(simplex, values, state.simplex_iterations, state.f), done=False)

    def _iterate(self, problem: Problem, simplex: np.ndarray, values: np.ndarray) -> None:
        """One simplex iteration, in place (simplex sorted best first on entry)."""
        rho, chi, psi, sigma = self._coefficients(simplex.shape[1])
        centroid = np.add.reduce(simplex[:-1], 0) / (simplex.shape[0] - 1)
        worst = simplex[-1]

        def along(t: float) -> tuple[np.ndarray, float]:
            point = (1.0 + t) * centroid - t * worst  # c + t (c - x_w), rounded as scipy rounds it
            return point, problem.value(point)

        reflected, f_reflected = along(rho)
        if f_reflected < values[0]:
            expanded, f_expanded = along(rho * chi)
            simplex[-1], values[-1] = (expanded, f_expanded) if f_expanded < f_reflected else (reflected, f_reflected)
            return
        if f_reflected < values[-2]:
            simplex[-1], values[-1] = reflected, f_reflected
            return
        if f_reflected < values[-1]:  # contract outside, towards the reflected point
            contracted, f_contracted = along(rho * psi)
            improves = f_contracted <= f_reflected
        else:  # contract inside, towards the worst vertex
            contracted, f_contracted = along(-psi)
            improves = f_contracted < values[-1]
        if improves:
            simplex[-1], values[-1] = contracted, f_contracted
            return
        for i in range(1, simplex.shape[0]):
            simplex[i] = simplex[0] + sigma * (simplex[i] - simplex[0])
            values[i] = problem.value(simplex[i])

    def update(self, problem: Problem, state: SimplexState) -> SimplexState:
        limit = STALL_PER_VERTEX * state.simplex.shape[0]
        new = state
        for _ in range(limit):
            simplex, values = new.simplex.copy(), new.values.copy()
            self._iterate(problem, simplex, values)
            new = self._state(simplex, values, new.simplex_iterations + 1, new.restarted_at)
            if new.done and self.restart and new.restarted_at is None:
                new = self._restarted(problem, new)
            if new.done or new.f < state.f or not np.array_equal(new.x, state.x):
                return new
        raise NoProgress(f"nelder_mead: no new best vertex in {limit} simplex iterations")
