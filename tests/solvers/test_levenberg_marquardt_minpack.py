"""Levenberg-Marquardt against MINPACK's ``lmder`` (scipy's ``least_squares(method='lm')``),
on the shipped least-squares objectives and MINPACK's own test problems.

Both sides evaluate the same residuals (optlab's residual code, also handed to scipy) and
count the same things: residual vectors (nfev) and Jacobians (njev). Two counts per problem:
each method run to its own stopping rules (optlab's defaults, scipy's defaults with MINPACK's
scaling), and the number of residual evaluations until the first one whose f reaches a fixed
target f_ref + 1e-10 (f(x0) - f_ref), f_ref the lowest f either side found (as COCO and Moré
and Wild count a run's cost).
"""

from __future__ import annotations

import numpy as np
import pytest

from optlab.engine.stopping import Stop
from optlab.objectives import OBJECTIVES
from optlab.solvers.levenberg_marquardt import shrink_factor

from ..least_squares_problems import first_at_most, minpack_problems, optlab_lm, scipy_lm

pytest.importorskip("scipy")

SHIPPED = [name for name, cls in OBJECTIVES.items() if callable(getattr(cls, "residual", None))]
TARGET = 1e-10


def problems():
    return [OBJECTIVES[name]() for name in SHIPPED] + minpack_problems()


def test_the_problem_set_has_the_published_minima():
    # Moré, Garbow and Hillstrom (1981): f at the (local) minimiser MINPACK reaches from the standard start
    published = {"bard": 8.21487e-3, "kowalik_osborne": 3.07506e-4, "meyer": 87.9458, "watson_6": 2.28767e-3,
                 "watson_9": 1.39976e-6, "jennrich_sampson": 124.362, "brown_dennis": 85822.2,
                 "chebyquad_8": 3.51687e-3, "chebyquad_10": 6.50395e-3, "osborne_1": 5.46489e-5,
                 "osborne_2": 4.01377e-2, "freudenstein_roth": 48.9842, "linear_full_rank": 5.0,
                 "linear_rank_one": 90 / 42, "linear_rank_one_zero_columns": 124 / 34}
    for objective in minpack_problems():
        result, _ = scipy_lm(objective)
        f = 2.0 * result.cost
        assert f == pytest.approx(published.get(objective.name, 0.0), rel=1e-5, abs=1e-12), objective.name


def test_evaluations_within_one_and_a_half_times_minpack():
    totals = np.zeros(4)  # scipy nfev, njev; optlab nfev, ngev (Jacobians)
    for objective in problems():
        theirs, _ = scipy_lm(objective)
        ours, _ = optlab_lm(objective)
        assert ours.status in ("converged", "stalled"), (objective.name, ours.message)
        # as far down: within 1e-8 of the way from f(x0) to scipy's final f
        f0, f_theirs = objective.value(objective.start()), 2.0 * theirs.cost
        assert ours.state.f - f_theirs <= 1e-8 * (f0 - f_theirs), objective.name
        totals += [theirs.nfev, theirs.njev, ours.nfev, ours.ngev]
    assert totals[2] <= 1.5 * totals[0], totals
    assert totals[3] <= 1.5 * totals[1], totals


def test_evaluations_to_a_fixed_target_within_one_and_a_half_times_minpack():
    tight = {"ftol": 1e-15, "xtol": 1e-15, "gtol": 1e-15, "max_nfev": 2000}
    total_theirs = total_ours = 0
    for objective in problems():
        _, theirs = scipy_lm(objective, **tight)
        _, ours = optlab_lm(objective, Stop(gtol=0.0, max_iter=2000))
        f0, f_ref = theirs[0], min(min(theirs), min(ours))
        limit = f_ref + TARGET * (f0 - f_ref)
        n_theirs, n_ours = first_at_most(theirs, limit), first_at_most(ours, limit)
        assert n_theirs is not None and n_ours is not None, (objective.name, f_ref, min(theirs), min(ours))
        total_theirs += n_theirs
        total_ours += n_ours
    assert total_ours <= 1.5 * total_theirs, (total_ours, total_theirs)


@pytest.mark.parametrize(("f", "f_trial", "slope"), [(1.0, 1.5, -1.0), (1.0, 3.0, -0.2), (2.0, 2.1, -4.0),
                                                    (1.0, 150.0, -1.0), (1.0, 0.9, -1.0), (1.0, np.inf, -1.0)])
def test_shrink_factor_is_the_minimiser_of_the_quadratic_fit_within_bounds(f, f_trial, slope):
    # phi(t) = ||r(x + t p)||^2 fitted by phi(0) = f, phi'(0) = 2 r^T J p, phi(1) = f_trial
    factor = shrink_factor(f, f_trial, slope)
    if f_trial <= f:
        assert factor == 0.5
    elif not f_trial < 100 * f:
        assert factor == 0.1
    else:
        a = f_trial - f - 2.0 * slope  # phi(t) = f + 2 slope t + a t^2
        t = np.linspace(0.0, 1.0, 100001)
        best = t[np.argmin(f + 2.0 * slope * t + a * t * t)]
        assert factor == pytest.approx(min(0.5, max(0.1, best)), abs=1e-5)
