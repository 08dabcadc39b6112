"""The stopping rules, written once: one run (floats) and many (arrays) are judged by the same predicates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optlab.engine.stopping import (
    NAMES,
    RULES,
    Standing,
    Stop,
    active_rules,
    first_rule,
    holds_non_finite,
    message,
    not_finite,
    point_kind,
    row_norms,
    rule_codes,
    step_lengths,
)
from optlab.norms import SMALL, norm

VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.sampled_from([0.0, 1e-300, 1e-150, 1e-8, 1.0, 1e300]))
STOPS = st.builds(Stop, max_iter=st.integers(0, 20), gtol=st.sampled_from([0.0, 1e-8, 1.0]),
                  xtol=st.sampled_from([0.0, 1e-6, 1.0]), max_fev=st.sampled_from([None, 1, 10]),
                  target=st.sampled_from([None, -1.0, 0.0, 1.0]), ftol=st.sampled_from([0.0, 1e-6, 0.5]),
                  patience=st.integers(1, 5))


@settings(max_examples=300, deadline=None)
@given(stop=STOPS, rows=st.lists(st.tuples(st.integers(0, 25), VALUES, VALUES, VALUES, VALUES, VALUES, VALUES,
                                           st.booleans()), min_size=1, max_size=12))
def test_one_run_and_many_agree_on_every_rule(stop, rows):
    """Rows of (k, f, ||g||, x_0, x_1, previous x_0, f_back, late): the first rule of each row alone
    (floats) is the code the arrays give it."""
    rules = active_rules(stop, True, stop.limit(0.0))
    k = np.array([r[0] for r in rows])[:, None]
    f, gn = np.array([[r[1]] for r in rows]), np.array([[r[2]] for r in rows])
    x = np.array([[[r[3]], [r[4]]] for r in rows])  # (rows, n, runs)
    previous = np.array([[[r[5]], [r[4]]] for r in rows])
    f_back = np.array([[r[6]] for r in rows])
    late = np.array([[r[7]] for r in rows])
    with np.errstate(all="ignore"):
        step, previous_norm = step_lengths(x, previous, axis=1, exact=stop.xtol == 0.0)
        many = rule_codes(rules, Standing(k, f, gn, not_finite(gn), holds_non_finite(x, axis=1), step, previous_norm,
                                          f_back, k + 1, late), f.shape)
        for i, r in enumerate(rows):
            one_x, one_previous = x[i, :, 0], previous[i, :, 0]
            small = norm(one_x - one_previous) if stop.xtol or abs(one_x[0] - one_previous[0]) < 1e-150 else math.inf
            one = Standing(r[0], r[1], r[2], not_finite(r[2]), holds_non_finite(one_x), small, norm(one_previous), r[6],
                           r[0] + 1, r[7])
            name = first_rule(rules, one)
            assert many[i, 0] == (0 if name is None else NAMES.index(name) + 1), (r, name)


def test_rules_whose_option_is_off_are_left_out():
    names = [name for name, _ in active_rules(Stop(), uses_gradient=False, limit=-math.inf)]
    assert names == ["diverged", "done", "xtol", "max_iter", "max_seconds"]
    names = [name for name, _ in active_rules(Stop(ftol=1e-3, max_fev=5, target=1.0), True, 1.0)]
    assert names == list(RULES)


def test_sums_run_first_to_last_on_every_path():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((16, 7))
    assert [norm(v[:, j]) for j in range(7)] == row_norms(v, axis=0).tolist()
    big = np.array([1e308, 1e308])  # finite entries whose squares overflow: not a divergence
    with np.errstate(all="ignore"):
        assert not holds_non_finite(big) and not holds_non_finite(big[:, None, None], axis=0).any()
        assert holds_non_finite(np.array([1.0, math.nan])) and holds_non_finite(np.array([[1.0], [math.inf]]), axis=0)


@settings(max_examples=300, deadline=None)
@given(x=st.lists(VALUES, min_size=1, max_size=SMALL))
def test_a_small_x_is_judged_finite_as_many_runs_are(x):
    """holds_non_finite looks at a small vector's entries as Python floats: the same verdict as the
    many-runs path (numpy) on the same vector as one run."""
    v = np.array(x)
    with np.errstate(all="ignore"):
        assert holds_non_finite(v) == bool(holds_non_finite(v[:, None], axis=0)[0])


EIGENVALUES = st.one_of(VALUES, st.sampled_from([-0.0, -1e-8, 1e-8, -1.1e-8, 1.1e-8, -1.0, -1e300, -math.inf]))


@settings(max_examples=500, deadline=None)
@given(eigenvalues=st.lists(EIGENVALUES, min_size=1, max_size=SMALL))
def test_a_few_eigenvalues_are_judged_as_many_are(eigenvalues):
    """point_kind judges up to SMALL values as Python floats: the same verdict as numpy's on the
    same values repeated past SMALL (the same smallest, largest, finiteness)."""
    few = np.array(eigenvalues)
    many = np.tile(few, SMALL // len(few) + 1)
    assert few.size <= SMALL < many.size
    with np.errstate(all="ignore"):
        assert point_kind(few) == point_kind(many)


@pytest.mark.parametrize("name, expected", [
    ("gtol", ("converged", "||grad f|| = 0.001 <= gtol = 0.01")),
    ("xtol", ("stalled", "x stopped changing at iteration 7, while ||grad f|| = 0.001 > gtol = 0.01")),
    ("target", ("target", "f = 0.5 <= 1 (stop.target = 1) at function evaluation 9 (at iteration 7)")),
    ("done", ("converged", "nelder_mead met its own convergence test")),
])
def test_every_rule_says_its_status_and_why(name, expected):
    assert message(name, 7, 1e-3, Stop(gtol=1e-2, target=1.0), 0.5, 1.0, "nelder_mead",
                   "met its own convergence test", nfev=9) == expected


def test_a_method_without_gradients_says_nothing_of_them():
    status, text = message("ftol", 3, None, Stop(ftol=1e-3))
    assert status == "stalled" and "grad" not in text
