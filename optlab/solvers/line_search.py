"""Line searches along a direction d from x: pick alpha > 0 and return x + alpha d with f and g there.

One implementation of each, shared by every solver that steps along a direction:

- ``none``: the trial step alpha0 as it is (plain gradient descent, pure Newton).
- ``armijo``: backtracking from alpha0, halving until the sufficient-decrease condition
  f(x + alpha d) <= f(x) + c1 alpha g.d holds (Nocedal and Wright, *Numerical Optimization*,
  2nd ed., 2006, Algorithm 3.1 with rho = 1/2).
- ``wolfe``: a step satisfying the strong Wolfe conditions, sufficient decrease and
  |g(x + alpha d).d| <= c2 |g.d|, by the search of Moré and Thuente (ACM TOMS 20, 1994):
  safeguarded cubic, quadratic or secant interpolation in an interval of uncertainty.

A step is accepted only where f decreases: f(x + alpha d) < f(x), besides the condition of
the search. The sufficient-decrease line f(x) + c1 alpha g.d is lowered by the rounding of f
(:data:`ROUNDING`), so that near a minimiser, where the predicted decrease is below what f
can resolve, any real decrease is taken. Where f no longer resolves the decrease at all (f at
the trial equals f(x) within its rounding), the Wolfe search, which has the slope at every
trial, takes the step the slope vouches for: phi'(alpha) <= (1 - 2 c1) |phi'(0)| besides the
curvature condition, Hager and Zhang's approximate Wolfe conditions (SIAM J. Optim. 16, 2005,
for this very purpose: f at 8.6e4 resolves changes of 1e-11 only, so ||grad f|| <= 1e-5 on
Brown and Dennis's function is out of reach of a test on f alone). Where no trial makes
progress, the search says so (:class:`~optlab.errors.NoProgress`) and the run ends
``stalled``, as scipy reports "precision loss". Every trial point is evaluated through
:class:`~optlab.solvers.problem.Problem`, so it is counted.
Backtracking evaluates only f at its trials (and g at the accepted point). The Wolfe search
evaluates f and g at every trial, so every end of the interval carries a slope for cubic
interpolation. It is the search scipy's BFGS, CG, Newton-CG and L-BFGS-B use, so that
benchmarks/vs_scipy.py compares the methods rather than their line searches.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from ..errors import NoProgress, SolverFailure
from .options import check_choice, check_wolfe_constants
from .problem import Problem

# f is computed with a relative error of a few machine epsilons (each operation adds at most
# one half eps); differences below this multiple of |f| cannot be told from rounding.
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
        """f decreases, by at least c1 alpha |g.d| or as far as f's rounding can tell."""
        return f_trial < f0 and f_trial <= f0 + self.c1 * alpha * slope0 + ROUNDING * abs(f0)


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
            if alpha <= unresolved_step(x, d):
                break  # x + alpha d rounds to x: no shorter step can decrease f
            x_new = x + alpha * d
            f_new = problem.value(x_new)
            if math.isfinite(f_new) and self._sufficient_decrease(f_new, f, alpha, slope0):
                return Step(alpha, x_new, f_new, problem.grad(x_new) if want_grad else None)
            alpha *= self.shrink
        raise NoProgress(f"armijo line search: no step decreases f (after {self.max_trials} halvings of alpha0 = "
                         f"{alpha0:.3g})")


@dataclasses.dataclass(frozen=True)
class _Trial:
    """phi(alpha) = f(x + alpha d) at one alpha, its slope phi'(alpha) = g.d and g."""

    alpha: float
    f: float
    slope: float
    g: np.ndarray | None = None

    def tilted(self, rate: float) -> _Trial:
        """The same point on phi(alpha) - rate alpha (rate = c1 phi'(0): Moré and Thuente's psi)."""
        return _Trial(self.alpha, self.f - rate * self.alpha, self.slope - rate, self.g)


class StrongWolfe(LineSearch):
    """A step satisfying the strong Wolfe conditions by Moré and Thuente's search.

    Each trial evaluates f and g. The search keeps an interval [best, other] that contains
    a step satisfying both conditions once bracketed: ``best`` the trial with the lowest f
    so far (on the auxiliary psi(alpha) = phi(alpha) - c1 alpha phi'(0) until a trial has
    sufficient decrease and phi' >= 0), ``other`` the far end. The next trial comes from
    cubic, quadratic or secant interpolation chosen by the four cases of the paper's Sec. 4
    (:func:`_safeguarded_step`); beyond the bracket it extrapolates 1.1 to 4 times the last
    advance; inside it a step that does not shrink the interval by a third in two trials is
    replaced by bisection. Reference: Moré and Thuente, "Line search algorithms with
    guaranteed sufficient decrease", ACM TOMS 20 (1994) 286-307 (MINPACK-2 ``dcsrch``, the
    search of L-BFGS-B and of scipy's BFGS, CG and Newton-CG).
    """

    name = "wolfe"
    max_trials = 40
    max_alpha = 1e10
    xtol = 1e-14  # relative width below which the bracket is rounding

    def search(self, problem, x, f, g, d, alpha0, want_grad=True):
        slope0 = descent_slope(g, d, "wolfe line search")
        tiny = unresolved_step(x, d)
        origin = _Trial(0.0, f, slope0, g)
        rate = self.c1 * slope0
        best = other = origin
        bracketed = stage_two = False
        width = previous_width = 2.0 * self.max_alpha
        low, high = 0.0, 5.0 * alpha0  # extrapolation range before a bracket: alpha0 + 4 alpha0
        alpha = min(alpha0, self.max_alpha)
        for _ in range(self.max_trials):
            f_trial, g_trial = problem.value_and_grad(x + alpha * d)
            trial = _Trial(alpha, f_trial, float(np.dot(g_trial, d)), g_trial)
            decrease = self._decreases(trial, origin)
            if (decrease or self._level(trial, origin)) and abs(trial.slope) <= -self.c2 * slope0:
                return _step(x, d, trial)
            if alpha >= self.max_alpha and decrease and trial.slope <= rate:
                return _step(x, d, trial)  # phi keeps falling beyond reach: take the sufficient decrease
            stage_two = stage_two or (decrease and trial.slope >= 0)
            if not (math.isfinite(trial.f) and math.isfinite(trial.slope)):
                other, bracketed = trial, True  # overflow: the step is too long, keep the best end
                alpha = 0.5 * (best.alpha + trial.alpha)
            elif not stage_two and trial.f <= best.f and not decrease:
                b, o, bracketed, alpha = _safeguarded_step(best.tilted(rate), other.tilted(rate),
                                                           trial.tilted(rate), bracketed, low, high)
                best, other = b.tilted(-rate), o.tilted(-rate)
            else:
                best, other, bracketed, alpha = _safeguarded_step(best, other, trial, bracketed, low, high)
            if bracketed:
                if abs(other.alpha - best.alpha) >= 0.66 * previous_width:
                    alpha = best.alpha + 0.5 * (other.alpha - best.alpha)
                previous_width, width = width, abs(other.alpha - best.alpha)
                low, high = min(best.alpha, other.alpha), max(best.alpha, other.alpha)
            else:
                low, high = alpha + 1.1 * (alpha - best.alpha), alpha + 4.0 * (alpha - best.alpha)
            alpha = min(max(alpha, 0.0), self.max_alpha)
            if bracketed and (not low < alpha < high or high - low <= self.xtol * high or high <= tiny):
                break  # the bracket is as narrow as rounding allows, or its steps no longer move x
        if best.alpha > 0 and self._decreases(best, origin):
            return _step(x, d, best)  # sufficient decrease without the curvature condition: still progress
        raise NoProgress(f"wolfe line search: no step decreases f along d within {self.max_trials} trials "
                         f"(bracket [{low:.3g}, {high:.3g}])")

    def _decreases(self, t: _Trial, origin: _Trial) -> bool:
        return math.isfinite(t.f) and self._sufficient_decrease(t.f, origin.f, t.alpha, origin.slope)

    def _level(self, t: _Trial, origin: _Trial) -> bool:
        """f at the trial is f at the origin within f's rounding, and the slope there shows the
        decrease f cannot: phi'(alpha) <= (1 - 2 c1) |phi'(0)|, Hager and Zhang's approximate Wolfe
        condition (a quadratic phi with it has phi(alpha) <= phi(0) + c1 alpha phi'(0))."""
        return (math.isfinite(t.f) and t.alpha > 0 and abs(t.f - origin.f) <= ROUNDING * abs(origin.f)
                and t.slope <= (2.0 * self.c1 - 1.0) * origin.slope)


def unresolved_step(x: np.ndarray, d: np.ndarray) -> float:
    """The step below which x + alpha d cannot differ from x by more than rounding:
    alpha ||d|| <= eps (1 + ||x||)."""
    length = float(np.linalg.norm(d))
    return np.finfo(float).eps * (1.0 + float(np.linalg.norm(x))) / length if length > 0 else math.inf


def _step(x: np.ndarray, d: np.ndarray, t: _Trial) -> Step:
    return Step(t.alpha, x + t.alpha * d, t.f, t.g)


def _safeguarded_step(best: _Trial, other: _Trial, trial: _Trial, bracketed: bool, low: float,
                      high: float) -> tuple[_Trial, _Trial, bool, float]:
    """One update of Moré and Thuente's interval and their next trial step (1994, Sec. 4).

    ``best`` has the lowest f so far and descends towards ``trial``; ``other`` is the far end
    of the interval once a minimiser is bracketed; [low, high] bounds the next trial. Returns
    the new (best, other, bracketed, next alpha).
    """
    opposite = (trial.slope > 0 > best.slope) or (trial.slope < 0 < best.slope)
    cubic = _cubic_minimiser(best, trial)
    if trial.f > best.f:
        # case 1: f rose, a minimiser lies between; the cubic step unless the quadratic one is nearer best
        quadratic = _quadratic_minimiser(best, trial)
        nearer = abs(cubic - best.alpha) < abs(quadratic - best.alpha)
        step = cubic if nearer else cubic + 0.5 * (quadratic - cubic)
        bracketed = True
    elif opposite:
        # case 2: the slopes change sign, a minimiser lies between; the step farther from trial
        secant = _secant_minimiser(best, trial)
        step = cubic if abs(cubic - trial.alpha) >= abs(secant - trial.alpha) else secant
        bracketed = True
    elif abs(trial.slope) < abs(best.slope):
        # case 3: phi still falls, less steeply; the cubic's minimiser if it lies beyond trial
        ahead = trial.alpha > best.alpha
        beyond = cubic if math.isfinite(cubic) and (cubic > trial.alpha if ahead else cubic < trial.alpha) \
            else (high if ahead else low)
        secant = _secant_minimiser(best, trial)
        if bracketed:
            step = beyond if abs(beyond - trial.alpha) < abs(secant - trial.alpha) else secant
            limit = trial.alpha + 0.66 * (other.alpha - trial.alpha)
            step = min(step, limit) if ahead else max(step, limit)
        else:
            step = beyond if abs(beyond - trial.alpha) > abs(secant - trial.alpha) else secant
            step = min(max(step, low), high)
    elif bracketed:
        # case 4: phi falls more steeply; within a bracket the cubic through trial and other
        step = _cubic_minimiser(trial, other)
    else:
        step = high if trial.alpha > best.alpha else low
    if trial.f > best.f:
        other = trial
    else:
        if opposite:
            other = best
        best = trial
    if not math.isfinite(step):
        step = 0.5 * (best.alpha + other.alpha) if bracketed else high
    return best, other, bracketed, step


def _cubic_minimiser(a: _Trial, b: _Trial) -> float:
    """The local minimiser of the cubic through phi and phi' at a and b (Nocedal and Wright,
    eq. 3.59), NaN when the cubic has none."""
    d1 = a.slope + b.slope - 3.0 * (a.f - b.f) / (a.alpha - b.alpha)
    scale = max(abs(d1), abs(a.slope), abs(b.slope))  # against overflow in the squares
    radicand = (d1 / scale) ** 2 - (a.slope / scale) * (b.slope / scale) if scale > 0 else -1.0
    if not radicand >= 0:
        return math.nan
    d2 = math.copysign(scale * math.sqrt(radicand), b.alpha - a.alpha)
    denominator = b.slope - a.slope + 2.0 * d2
    return b.alpha - (b.alpha - a.alpha) * (b.slope + d2 - d1) / denominator if denominator != 0 else math.nan


def _quadratic_minimiser(a: _Trial, b: _Trial) -> float:
    """The minimiser of the quadratic through phi(a), phi'(a) and phi(b)."""
    h = b.alpha - a.alpha
    curvature = b.f - a.f - a.slope * h
    return a.alpha - a.slope * h * h / (2.0 * curvature) if curvature > 0 else math.nan


def _secant_minimiser(a: _Trial, b: _Trial) -> float:
    """The zero of the line through phi'(a) and phi'(b): the quadratic through both slopes."""
    return b.alpha + b.slope / (b.slope - a.slope) * (a.alpha - b.alpha) if b.slope != a.slope else math.nan


LINE_SEARCHES: dict[str, type[LineSearch]] = {cls.name: cls for cls in (FixedStep, Backtracking, StrongWolfe)}


def make_line_search(name: object, c1: object = 1e-4, c2: object = 0.9,
                     allowed: tuple[str, ...] = tuple(LINE_SEARCHES)) -> LineSearch:
    """The line search ``name`` (key ``solver.line_search``) with checked constants c1, c2."""
    name = check_choice("solver.line_search", name, allowed)
    c1, c2 = check_wolfe_constants(c1, c2)
    return LINE_SEARCHES[name](c1, c2)


def first_step(g: np.ndarray) -> float:
    """A first trial along -g of length at most 1, min(1, 1/||g||): the unscaled gradient
    can be far longer than any sensible step (L-BFGS-B starts the same way)."""
    norm = float(np.linalg.norm(g))
    return min(1.0, 1.0 / norm) if norm > 0 else 1.0


def interpolated_step(f: float, f_previous: float, slope: float) -> float:
    """alpha0 = min(1, 1.01 * 2 (f_k - f_{k-1}) / g.d): the step that repeats the last decrease
    under a quadratic model (Nocedal and Wright, eq. 3.60); 1 when that is not positive."""
    if not (math.isfinite(f_previous) and slope < 0):
        return 1.0
    guess = 1.01 * 2.0 * (f - f_previous) / slope
    return min(1.0, guess) if guess > 0 else 1.0
