"""The statistics of the report's comparison sections, checked against independent computations:
scipy.stats.bootstrap, average runtimes by hand, Holm's correction on known p-values, scipy's
signed-rank test (also its exact enumeration with ties) and ranks by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optlab.report import stats
from optlab.report.repeats import runtimes_to
from optlab.report.stats import (
    average_runtime,
    bootstrap_interval,
    holm,
    rank_uncertainty,
    runtime_interval,
    signed_rank_test,
    unit_ranks,
)

scipy_stats = pytest.importorskip("scipy.stats")


def test_average_runtime_by_hand():
    inf = math.inf
    # COCO's aRT: evaluations of all runs (until the target for those that reached it) over the successes
    assert average_runtime([10, inf, 30], [10, 100, 30]) == (10 + 100 + 30) / 2
    assert average_runtime([inf, 5], [50, 5]) == 55.0
    assert average_runtime([inf, inf], [50, 60]) == inf
    assert average_runtime([7.0], [9.0]) == 7.0
    np.testing.assert_array_equal(average_runtime([[1, inf], [inf, inf]], [[1, 4], [3, 4]]), [5.0, inf])


def test_runtimes_to_targets_by_hand():
    f = np.array([10.0, 4.0, 5.0, 0.5, np.nan, 0.01])  # f* = 0; a NaN iterate does not count
    cost = np.array([3.0, 8.0, 12.0, 20.0, 25.0, 31.0])
    got = runtimes_to(f, cost, 0.0, np.array([100.0, 5.0, 1.0, 0.1, 1e-3]))
    # the start reaches 100 at the first evaluation; 5 at iteration 1 (cost 8); 1 and 0.1 at iteration 3, 5
    np.testing.assert_array_equal(got, [1.0, 8.0, 20.0, 31.0, math.inf])
    seconds = runtimes_to(f, cost, 0.0, np.array([100.0]), counted=False)
    assert seconds[0] == 3.0  # a clock is read as it is


def test_bootstrap_interval_agrees_with_scipy():
    values = np.random.default_rng(3).normal(size=40)
    mine = bootstrap_interval(values, lambda s: s.mean(axis=-1), n_boot=20_000)
    ref = scipy_stats.bootstrap((values,), np.mean, n_resamples=20_000, method="percentile", confidence_level=0.95,
                                rng=np.random.default_rng(7)).confidence_interval
    assert mine == pytest.approx((ref.low, ref.high), abs=0.02)  # Monte Carlo error of 20,000 resamples


def test_runtime_interval_agrees_with_scipy():
    rng = np.random.default_rng(5)
    runtimes = rng.integers(20, 400, size=30).astype(float)
    runtimes[[3, 11]] = math.inf  # two runs never reached the target
    spent = np.where(np.isfinite(runtimes), runtimes, 1000.0)
    mine = runtime_interval(runtimes, spent, n_boot=20_000)

    def art(r, s, axis=-1):
        reached = np.isfinite(r)
        return np.where(reached, r, s).sum(axis=axis) / reached.sum(axis=axis)

    ref = scipy_stats.bootstrap((runtimes, spent), art, paired=True, n_resamples=20_000, method="percentile",
                                rng=np.random.default_rng(9)).confidence_interval
    point = average_runtime(runtimes, spent)
    assert mine[0] < point < mine[1]
    assert mine == pytest.approx((ref.low, ref.high), rel=0.03)


def test_runtime_interval_open_above_when_successes_are_rare():
    runtimes = np.array([5.0] + [math.inf] * 9)
    lo, hi = runtime_interval(runtimes, np.full(10, 100.0))
    assert math.isfinite(lo) and hi == math.inf  # a third of the resamples hold no success


def test_holm_on_known_p_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> made monotone: 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.001, 0.01, 0.02, 0.03, 0.2]), [0.005, 0.04, 0.06, 0.06, 0.2])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    out = holm([0.01, math.nan, 0.02])  # no test: not counted in m
    assert math.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)
    assert holm([]).size == 0


def test_signed_rank_test_is_scipys_on_log_ratios():
    rng = np.random.default_rng(0)
    a = rng.uniform(10, 100, size=20)
    b = a * rng.uniform(0.7, 1.6, size=20)
    t = signed_rank_test(a, b)
    ref = scipy_stats.wilcoxon(np.log(a) - np.log(b))
    assert (t.n, t.ties) == (20, 0) and t.wins_a + t.wins_b == 20
    assert t.p == pytest.approx(ref.pvalue, rel=1e-12) and t.statistic == ref.statistic


def test_signed_rank_test_unsolved_runs_and_missing_units():
    inf, nan = math.inf, math.nan
    a = np.array([10.0, 20.0, inf, inf, 5.0, 8.0, nan, 30.0])
    b = np.array([12.0, inf, inf, 7.0, 9.0, 8.0, 4.0, 45.0])
    t = signed_rank_test(a, b)
    # unit 6: a did not run; units 2 (neither solved) and 5 (equal cost) are ties
    assert (t.n, t.wins_a, t.wins_b, t.ties) == (7, 4, 1, 2)
    # solved by one only: larger than any finite log ratio, which the test sees only through ranks
    d = np.array([math.log(10 / 12), 99.0, -99.0, math.log(5 / 9), math.log(30 / 45)])
    ref = scipy_stats.wilcoxon(d, method=scipy_stats.PermutationMethod())
    assert t.p == pytest.approx(ref.pvalue, rel=1e-12)


def test_tied_ranks_are_counted_exactly_as_scipy_enumerates_them():
    rng = np.random.default_rng(1)
    for _ in range(12):
        n = int(rng.integers(2, 11))  # (scipy's enumeration of 2^n signs is slow; 13 is the code's limit)
        d = rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 5.0, -5.0], size=n)
        if len(set(np.abs(d))) == n:
            continue
        t = signed_rank_test(np.exp(d), np.ones(n))
        ref = scipy_stats.wilcoxon(d, method=scipy_stats.PermutationMethod())
        assert t.p == pytest.approx(ref.pvalue, abs=1e-12) and t.statistic == ref.statistic


def test_without_scipy_there_are_counts_and_no_p_value(monkeypatch):
    monkeypatch.setattr(stats, "scipy_stats", lambda: None)
    t = signed_rank_test(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 1.0]))
    assert (t.wins_a, t.wins_b) == (2, 1) and math.isnan(t.p)


def test_unit_ranks_by_hand():
    inf, nan = math.inf, math.nan
    cost = np.array([[10.0, 20.0, inf, 30.0],
                     [inf, inf, 5.0, nan],    # setting 3 did not run: ranks among three
                     [7.0, 7.0, inf, inf],    # equal costs share a rank
                     [nan, 3.0, nan, nan]])   # alone: rank 0
    gap = np.array([[0, 0, 1e-3, 0], [1e-2, 1e-5, 0, 0], [0, 0, 1e-1, 1e-1], [0, 0, 0, 0]], dtype=float)
    expected = np.array([[0, 1 / 3, 1, 2 / 3],
                         [1, 0.5, 0, nan],    # unsolved ones after, the smaller final gap first
                         [1 / 6, 1 / 6, 5 / 6, 5 / 6],
                         [nan, 0, nan, nan]])
    np.testing.assert_allclose(unit_ranks(cost, gap), expected)


def test_rank_uncertainty():
    ranks = np.tile([0.0, 0.5, 1.0], (12, 1))
    ranks[::3, :2] = [[0.5, 0.0]]  # setting 1 wins a third of the units
    r = rank_uncertainty(ranks, n_boot=2000)
    np.testing.assert_allclose(r.mean, [1 / 6, 1 / 3, 1.0])
    assert np.all(r.lo <= r.mean) and np.all(r.mean <= r.hi)
    # setting 0 comes first in a resample with fewer than 6 of the 12 units setting 1 wins (k ~ Binomial(12, 1/3)),
    # and shares first place at 6
    pmf = [math.comb(12, k) * (1 / 3) ** k * (2 / 3) ** (12 - k) for k in range(13)]
    assert r.p_best[0] == pytest.approx(sum(pmf[:6]) + pmf[6] / 2, abs=0.03)
    assert r.p_best.sum() == pytest.approx(1.0) and r.p_best[2] == 0
    np.testing.assert_array_equal(r.units, [12, 12, 12])
