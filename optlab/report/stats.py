"""Statistics over repeated runs, on plain arrays: bootstrap intervals, COCO's average runtime,
paired signed-rank tests with Holm's correction, and ranks with their uncertainty.

Nothing here knows about runs or files (see :mod:`.repeats` for that), so every function can be
checked against an independent computation. The tests use ``scipy.stats`` when it is installed
(the ``scipy`` extra); without it, :func:`signed_rank_test` gives counts and no p-value.

- **Bootstrap** (Efron and Tibshirani, 1993): percentile intervals from ``N_BOOT`` resamples drawn
  with replacement, from a fixed seed, so that a report is the same every time it is built.
- **Average runtime** (aRT, COCO's ERT; Hansen et al., COCO: performance assessment, 2022): the
  evaluations of all runs (until the target for those that reached it, all they spent for the
  others) divided by the number of runs that reached it; inf when none did.
- **Holm's step-down correction** (Holm, 1979) of the p-values of a family of tests.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

N_BOOT = 1000
LEVEL = 0.95
SEED = 0
ALPHA = 0.05


def rng_of(seed: int = SEED) -> np.random.Generator:
    return np.random.default_rng(seed)


def resample_indices(n: int, n_boot: int = N_BOOT, rng: np.random.Generator | None = None) -> np.ndarray:
    """``n_boot`` rows of ``n`` indices drawn with replacement."""
    return (rng or rng_of()).integers(0, n, size=(n_boot, n))


def percentile_interval(replicates: np.ndarray, level: float = LEVEL, axis: int = 0) -> tuple[Any, Any]:
    """The central ``level`` interval of bootstrap replicates (no NaN; inf sorts last, and a quantile
    next to an inf replicate is inf)."""
    tail = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        linear = np.quantile(replicates, [tail, 1.0 - tail], axis=axis, method="linear")
    above = np.quantile(replicates, [tail, 1.0 - tail], axis=axis, method="higher")
    lo, hi = np.where(np.isinf(above), above, linear)
    return lo, hi


def bootstrap_interval(values: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], n_boot: int = N_BOOT,
                       level: float = LEVEL, rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` (vectorised: rows of samples -> one value per row)."""
    values = np.asarray(values, dtype=float)
    replicates = statistic(values[resample_indices(values.size, n_boot, rng)])
    lo, hi = percentile_interval(replicates, level)
    return float(lo), float(hi)


# -- average runtime ---------------------------------------------------------------------------
def average_runtime(runtimes: np.ndarray, spent: np.ndarray) -> np.ndarray:
    """COCO's aRT along the last axis: ``runtimes`` (inf where the run never reached the target) and
    ``spent`` (everything the run spent) of the same runs. inf where no run reached the target."""
    runtimes, spent = np.asarray(runtimes, dtype=float), np.asarray(spent, dtype=float)
    reached = np.isfinite(runtimes)
    total = np.where(reached, runtimes, spent).sum(axis=-1)
    hits = reached.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hits > 0, total / np.maximum(hits, 1), np.inf)


def runtime_interval(runtimes: np.ndarray, spent: np.ndarray, n_boot: int = N_BOOT, level: float = LEVEL,
                     rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the aRT, runs resampled with replacement (a resample in which
    no run reached the target has aRT inf, so an interval may be open above)."""
    runtimes, spent = np.asarray(runtimes, dtype=float), np.asarray(spent, dtype=float)
    if runtimes.size == 0:
        return math.nan, math.nan
    idx = resample_indices(runtimes.size, n_boot, rng)
    replicates = average_runtime(runtimes[idx], spent[idx])
    lo, hi = percentile_interval(replicates, level)
    return float(lo), float(hi)


# -- paired tests --------------------------------------------------------------------------------
def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's adjusted p-values: the k-th smallest of m is multiplied by (m - k + 1), made monotone
    and capped at 1; NaN entries (no test) stay NaN and do not count in m."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = order.size
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


@dataclasses.dataclass
class PairTest:
    """Setting a against b over the units both ran: ``wins_a`` where a was cheaper, ``ties`` where
    they cost the same or neither reached the target (left out of the test)."""

    n: int
    wins_a: int
    wins_b: int
    ties: int
    statistic: float
    p: float  # NaN: no untied unit, or scipy is not installed


def scipy_stats() -> Any:
    """``scipy.stats``, or None when scipy is not installed."""
    try:
        import scipy.stats
    except ImportError:
        return None
    return scipy.stats


def signed_rank_test(cost_a: np.ndarray, cost_b: np.ndarray) -> PairTest:
    """Wilcoxon's signed-rank test (two-sided) on log(cost_a / cost_b) over paired units.

    A cost is inf where the run did not reach the target: a unit one setting solves and the other
    does not is a difference larger than any finite one (the test uses ranks of |d| only, so it
    is given as such), and a unit neither solves is a tie. Ties are left out (Wilcoxon's rule).
    """
    a, b = np.asarray(cost_a, dtype=float), np.asarray(cost_b, dtype=float)
    both = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[both], b[both]
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(np.isinf(a) & np.isinf(b), 0.0, np.log(np.maximum(a, 1e-300)) - np.log(np.maximum(b, 1e-300)))
    d = np.where(np.isnan(d), 0.0, d)
    untied = d[d != 0]
    wins_a, wins_b = int((d < 0).sum()), int((d > 0).sum())
    result = PairTest(int(d.size), wins_a, wins_b, int(d.size - untied.size), math.nan, math.nan)
    stats = scipy_stats()
    if stats is None or untied.size == 0:
        return result
    finite = np.abs(untied[np.isfinite(untied)])
    big = (finite.max() if finite.size else 1.0) * 2.0 + 1.0
    untied = np.where(np.isinf(untied), np.sign(untied) * big, untied)
    # The test depends on the signs and the ranks of |d| only: pairs with the same signed ranks share one
    # call (with ties and up to 13 units scipy enumerates all 2^n signs, which takes a while).
    signed = tuple(sorted(zip(stats.rankdata(np.abs(untied)).tolist(), np.sign(untied).tolist())))
    result.statistic, result.p = _wilcoxon(signed)
    return result


@functools.lru_cache(maxsize=4096)
def _wilcoxon(signed: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    ranks = [r for r, _ in signed]
    if len(signed) <= EXACT_TIED_MAX and len(set(ranks)) < len(ranks):
        return _exact_tied(signed)
    test = scipy_stats().wilcoxon([r * s for r, s in signed], zero_method="wilcox", alternative="two-sided")
    return float(test.statistic), float(test.pvalue)


EXACT_TIED_MAX = 13  # scipy's own limit for enumerating every sign when ranks are tied


def _exact_tied(signed: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """What scipy's wilcoxon gives with tied ranks and at most 13 differences, where it enumerates all
    2^n signs in a permutation test (slowly): the same exact distribution of the sum of positive ranks,
    counted over the doubled (integer) ranks, and p = 2 min(P(W <= w), P(W >= w))."""
    doubled = [round(2 * r) for r, _ in signed]
    counts = np.zeros(sum(doubled) + 1)
    counts[0] = 1.0
    for d in doubled:
        counts[d:] = counts[d:] + counts[: counts.size - d].copy()
    w = sum(d for d, (_, s) in zip(doubled, signed) if s > 0)
    total = counts.sum()
    p = min(1.0, 2.0 * min(counts[: w + 1].sum(), counts[w:].sum()) / total)
    r_plus = w / 2.0
    return float(min(r_plus, sum(doubled) / 2.0 - r_plus)), p


# -- ranks ---------------------------------------------------------------------------------------
def unit_ranks(cost: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Per row (a unit: problem and start), the settings (columns) ranked from 0 (best) to 1 (worst)
    among those that ran there (NaN cost: did not run): by cost, those that did not reach the target
    (inf) after those that did, by their gap; equal ones share the mean rank. A row with one
    setting gives it 0."""
    cost, gap = np.asarray(cost, dtype=float), np.asarray(gap, dtype=float)
    out = np.full(cost.shape, np.nan)
    for i in range(cost.shape[0]):
        ran = np.flatnonzero(~np.isnan(cost[i]))
        if ran.size == 0:
            continue
        if ran.size == 1:
            out[i, ran] = 0.0
            continue
        keys = list(zip(cost[i, ran], np.where(np.isfinite(cost[i, ran]), 0.0, np.nan_to_num(gap[i, ran], nan=np.inf))))
        order = sorted(range(ran.size), key=lambda k: keys[k])
        ranks = np.empty(ran.size)
        k = 0
        while k < ran.size:  # equal keys share the mean of their positions
            j = k
            while j + 1 < ran.size and keys[order[j + 1]] == keys[order[k]]:
                j += 1
            ranks[[order[t] for t in range(k, j + 1)]] = (k + j) / 2.0
            k = j + 1
        out[i, ran] = ranks / (ran.size - 1)
    return out


@dataclasses.dataclass
class RankSummary:
    mean: np.ndarray  # per setting: mean normalised rank over the units it ran (0 best, 1 worst)
    lo: np.ndarray
    hi: np.ndarray
    p_best: np.ndarray  # fraction of bootstrap replicates in which the setting has the lowest mean rank
    units: np.ndarray  # units each setting ran


def rank_uncertainty(ranks: np.ndarray, n_boot: int = N_BOOT, level: float = LEVEL,
                     rng: np.random.Generator | None = None) -> RankSummary:
    """Mean ranks per setting with percentile bootstrap intervals, units (rows) resampled with
    replacement, and how often each setting comes out first."""
    ranks = np.asarray(ranks, dtype=float)
    ran = ~np.isnan(ranks)
    filled = np.nan_to_num(ranks)
    with np.errstate(invalid="ignore"):
        mean = filled.sum(axis=0) / ran.sum(axis=0)
        idx = resample_indices(ranks.shape[0], n_boot, rng)
        sums = filled[idx].sum(axis=1)  # (n_boot, settings)
        counts = ran[idx].sum(axis=1)
        reps = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    lo, hi = np.nanquantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=0) if reps.size else (mean, mean)
    best = np.nanmin(np.where(np.isnan(reps), np.inf, reps), axis=1, keepdims=True)
    firsts = (reps == best) & np.isfinite(reps)
    p_best = (firsts / np.maximum(firsts.sum(axis=1, keepdims=True), 1)).mean(axis=0)
    return RankSummary(mean, np.asarray(lo), np.asarray(hi), p_best, ran.sum(axis=0))
