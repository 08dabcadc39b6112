"""Line searches along a direction d from x: pick alpha > 0 and return x + alpha d with f and g there.

One implementation of each, shared by every solver that steps along a direction:

- ``none``: the trial step alpha0 as it is (plain gradient descent, pure Newton).
- ``armijo``: backtracking from alpha0, halving until the sufficient-decrease condition
  f(x + alpha d) <= f(x) + c1 alpha g.d holds (Nocedal and Wright, *Numerical Optimization*,
  2nd ed., 2006, Algorithm 3.1 with rho = 1/2).
- ``wolfe``: a step satisfying the strong Wolfe conditions, sufficient decrease and
  |g(x + alpha d).d| <= c2 |g.d| (ibid., Algorithms 3.5 and 3.6: bracketing, then zoom by
  safeguarded cubic or quadratic interpolation).

Every trial point is evaluated through :class:`~optlab.problem.Problem`, so it is counted.
Backtracking evaluates only f at its trials (and g at the accepted point). The Wolfe search
evaluates f and g at every trial, so both ends of a bracket carry slopes for cubic
interpolation: on the shipped objectives that needs fewer evaluations in all than trials
with f alone (see benchmarks/vs_scipy.py).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from ..errors import SolverFailure
from ..problem import Problem
from .options import check_choice, check_wolfe_constants

# f differences below this multiple of |f| * machine epsilon are rounding, not increase:
# without it a line search near the minimiser rejects steps because f is flat to rounding.
ROUNDING = 8.0 * np.finfo(float).eps


@dataclasses.dataclass(frozen=True)
class Step:
    """The point a line search accepted: x = x_k + alpha d with f and g there (g None if not asked)."""

    alpha: float
    x: np.ndarray
    f: float
    g: np.ndarray | None


def descent_slope(g: np.ndarray, d: np.ndarray, method: str) -> float:
    """g.d, or :class:`SolverFailure` when d does not descend."""
    slope = float(np.dot(g, d))
    if not slope < 0:
        raise SolverFailure(f"{method}: the direction is not a descent direction (g.d = {slope:.3g} >= 0)")
    return slope


class LineSearch:
    """``search(problem, x, f, g, d, alpha0)`` -> :class:`Step`."""

    name: ClassVar[str] = ""

    def __init__(self, c1: float = 1e-4, c2: float = 0.9) -> None:
        self.c1, self.c2 = c1, c2

    def search(self, problem: Problem, x: np.ndarray, f: float, g: np.ndarray, d: np.ndarray,
               alpha0: float, want_grad: bool = True) -> Step:
        raise NotImplementedError

    def _sufficient_decrease(self, f_trial: float, f0: float, alpha: float, slope0: float) -> bool:
        return f_trial <= f0 + self.c1 * alpha * slope0 + ROUNDING * abs(f0)


class FixedStep(LineSearch):
    """alpha = alpha0: no search. With ``want_grad=False`` nothing is evaluated (f is NaN)."""

    name = "none"

    def search(self, problem, x, f, g, d, alpha0, want_grad=True):
        x_new = x + alpha0 * d
        if not want_grad:
            return Step(alpha0, x_new, math.nan, None)
        f_new, g_new = problem.value_and_grad(x_new)
        return Step(alpha0, x_new, f_new, g_new)


class Backtracking(LineSearch):
    """Armijo backtracking: alpha = alpha0, alpha0/2, alpha0/4, ... until sufficient decrease."""

    name = "armijo"
    shrink = 0.5
    max_trials = 60  # alpha0 * 2^-60 ~ 1e-18 alpha0: beyond it no step can make progress

    def search(self, problem, x, f, g, d, alpha0, want_grad=True):
        slope0 = descent_slope(g, d, "armijo line search")
        alpha = alpha0
        for _ in range(self.max_trials):
            x_new = x + alpha * d
            f_new = problem.value(x_new)
            if math.isfinite(f_new) and self._sufficient_decrease(f_new, f, alpha, slope0):
                return Step(alpha, x_new, f_new, problem.grad(x_new) if want_grad else None)
            alpha *= self.shrink
        raise SolverFailure(f"armijo line search: no sufficient decrease after {self.max_trials} halvings "
                            f"of alpha0 = {alpha0:.3g}")


@dataclasses.dataclass(frozen=True)
class _Trial:
    """phi(alpha) = f(x + alpha d) at one alpha; slope phi'(alpha) = g.d and g when computed."""

    alpha: float
    f: float
    slope: float | None = None
    g: np.ndarray | None = None


class _Line:
    """phi(alpha) = f(x + alpha d) evaluated through the problem, within a budget of trials."""

    def __init__(self, problem: Problem, x: np.ndarray, d: np.ndarray, budget: int, eager: bool) -> None:
        self.problem, self.x, self.d, self.budget, self.eager = problem, x, d, budget, eager

    def at(self, alpha: float) -> _Trial:
        """phi(alpha), with phi'(alpha) too when ``eager`` (one value-and-gradient evaluation)."""
        self.budget -= 1
        if not self.eager:
            return _Trial(alpha, self.problem.value(self.x + alpha * self.d))
        f, g = self.problem.value_and_grad(self.x + alpha * self.d)
        return _Trial(alpha, f, float(np.dot(g, self.d)), g)

    def with_slope(self, t: _Trial) -> _Trial:
        if t.slope is not None:
            return t
        g = self.problem.grad(self.x + t.alpha * self.d)
        return _Trial(t.alpha, t.f, float(np.dot(g, self.d)), g)

    def step(self, t: _Trial) -> Step:
        return Step(t.alpha, self.x + t.alpha * self.d, t.f, t.g)


class StrongWolfe(LineSearch):
    """Bracketing and zoom for the strong Wolfe conditions (Nocedal and Wright, Alg. 3.5, 3.6)."""

    name = "wolfe"
    max_trials = 40
    max_alpha = 1e10
    eager_gradient = True  # phi' at every trial, so every bracket end supports cubic interpolation

    def search(self, problem, x, f, g, d, alpha0, want_grad=True):
        slope0 = descent_slope(g, d, "wolfe line search")
        origin = _Trial(0.0, f, slope0, g)
        line = _Line(problem, x, d, self.max_trials, self.eager_gradient)
        previous, alpha = origin, alpha0
        while line.budget > 0:
            current = line.at(alpha)
            rises = previous is not origin and self._worse(current, previous, origin)
            if rises or not self._decreases(current, origin):
                return self._zoom(line, origin, previous, current)
            current = line.with_slope(current)
            if self._curvature(current, origin):
                return line.step(current)
            if current.slope >= 0:
                return self._zoom(line, origin, current, previous)
            if alpha >= self.max_alpha:
                return line.step(current)  # sufficient decrease holds; phi keeps falling beyond reach
            previous, alpha = current, min(self.max_alpha, _extrapolate(previous, current))
        raise SolverFailure(f"wolfe line search: no acceptable step within {self.max_trials} trials")

    def _decreases(self, t: _Trial, origin: _Trial) -> bool:
        return math.isfinite(t.f) and self._sufficient_decrease(t.f, origin.f, t.alpha, origin.slope)

    def _worse(self, t: _Trial, than: _Trial, origin: _Trial) -> bool:
        """f(t) >= f(than) beyond rounding: where f is flat to rounding the slopes decide."""
        return t.f >= than.f + ROUNDING * abs(origin.f)

    def _curvature(self, t: _Trial, origin: _Trial) -> bool:
        return abs(t.slope) <= -self.c2 * origin.slope

    def _zoom(self, line: _Line, origin: _Trial, lo: _Trial, hi: _Trial) -> Step:
        """Shrink the bracket [lo, hi] (lo: the best point with sufficient decrease) to a strong Wolfe step."""
        while line.budget > 0 and abs(hi.alpha - lo.alpha) > 1e-14 * max(lo.alpha, hi.alpha):
            trial = line.at(_interpolate(lo, hi))
            if not self._decreases(trial, origin) or self._worse(trial, lo, origin):
                hi = trial
                continue
            trial = line.with_slope(trial)
            if self._curvature(trial, origin):
                return line.step(trial)
            if trial.slope * (hi.alpha - lo.alpha) >= 0:
                hi = lo
            lo = trial
        if lo.alpha > 0:
            return line.step(lo)  # sufficient decrease without the curvature condition: still progress
        raise SolverFailure(f"wolfe line search: no decrease found along d (interval shrank to "
                            f"[{min(lo.alpha, hi.alpha):.3g}, {max(lo.alpha, hi.alpha):.3g}])")


def _cubic_minimiser(a: _Trial, b: _Trial) -> float:
    """The minimiser of the cubic through phi and phi' at a and b (Nocedal and Wright, eq. 3.59)."""
    d1 = a.slope + b.slope - 3.0 * (a.f - b.f) / (a.alpha - b.alpha)
    radicand = d1 * d1 - a.slope * b.slope
    if radicand < 0:
        return math.nan
    d2 = math.copysign(math.sqrt(radicand), b.alpha - a.alpha)
    return b.alpha - (b.alpha - a.alpha) * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2)


def _quadratic_minimiser(a: _Trial, b: _Trial) -> float:
    """The minimiser of the quadratic through phi(a), phi'(a) and phi(b)."""
    h = b.alpha - a.alpha
    curvature = b.f - a.f - a.slope * h
    return a.alpha - a.slope * h * h / (2.0 * curvature) if curvature > 0 else math.nan


def _interpolate(lo: _Trial, hi: _Trial, margin: float = 0.01) -> float:
    """A trial inside the bracket: the interpolant's minimiser, kept ``margin`` of the width away
    from the ends (so the bracket shrinks), or the midpoint when there is no such minimiser."""
    guess = _cubic_minimiser(lo, hi) if hi.slope is not None else _quadratic_minimiser(lo, hi)
    left, right = min(lo.alpha, hi.alpha), max(lo.alpha, hi.alpha)
    if not (math.isfinite(hi.f) and math.isfinite(guess) and left < guess < right):
        return 0.5 * (left + right)
    width = right - left
    return min(max(guess, left + margin * width), right - margin * width)


def _extrapolate(previous: _Trial, current: _Trial) -> float:
    """The next trial beyond ``current``: the cubic's step kept within 1.1 to 4 times the last
    advance (the bounds of Moré and Thuente, ACM TOMS 20, 1994)."""
    advance = current.alpha - previous.alpha
    low, high = current.alpha + 1.1 * advance, current.alpha + 4.0 * advance
    if abs(current.slope) >= abs(previous.slope):
        return high  # phi steepens: no minimiser in sight, go as far as allowed
    guess = _cubic_minimiser(previous, current)
    return min(max(guess, low), high) if math.isfinite(guess) else high


LINE_SEARCHES: dict[str, type[LineSearch]] = {cls.name: cls for cls in (FixedStep, Backtracking, StrongWolfe)}


def make_line_search(name: object, c1: object = 1e-4, c2: object = 0.9,
                     allowed: tuple[str, ...] = tuple(LINE_SEARCHES)) -> LineSearch:
    """The line search ``name`` (key ``solver.line_search``) with checked constants c1, c2."""
    name = check_choice("solver.line_search", name, allowed)
    c1, c2 = check_wolfe_constants(c1, c2)
    return LINE_SEARCHES[name](c1, c2)


def first_step(g: np.ndarray) -> float:
    """A first trial along -g of length at most 1, min(1, 1/||g||): the unscaled gradient
    can be far longer than any sensible step (scipy's BFGS and CG start the same way)."""
    norm = float(np.linalg.norm(g))
    return min(1.0, 1.0 / norm) if norm > 0 else 1.0


def interpolated_step(f: float, f_previous: float, slope: float) -> float:
    """alpha0 = min(1, 1.01 * 2 (f_k - f_{k-1}) / g.d): the step that repeats the last decrease
    under a quadratic model (Nocedal and Wright, eq. 3.60); 1 when that is not positive."""
    if not (math.isfinite(f_previous) and slope < 0):
        return 1.0
    guess = 1.01 * 2.0 * (f - f_previous) / slope
    return min(1.0, guess) if guess > 0 else 1.0
