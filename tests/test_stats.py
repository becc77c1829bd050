"""pipeline.report.stats by hand: mean/sd, Welch's t-test against SciPy, the two-level bootstrap
against a plain loop over the same random draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from pipeline import metrics
from pipeline.report import stats

# --- mean, sd, summary -------------------------------------------------------------------------


def test_mean_and_sd_by_hand():
    assert stats.mean([1, 2, 3, 4]) == 2.5
    # deviations -1.5, -0.5, 0.5, 1.5: squares sum to 5, over n - 1 = 3
    assert stats.sd([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3))
    assert stats.sd([2, 4]) == pytest.approx(math.sqrt(2))
    assert stats.mean([7.5]) == 7.5


def test_sd_needs_two_values_and_equal_values_have_no_spread():
    assert math.isnan(stats.sd([3.0]))
    assert math.isnan(stats.sd([]))
    assert math.isnan(stats.mean([]))
    # numpy's mean of three 85.3 is one ulp off; the spread must still be exactly 0
    assert stats.sd([85.3, 85.3, 85.3]) == 0.0
    assert stats.mean([85.3, 85.3, 85.3]) == 85.3


def test_summary():
    assert stats.summary([1, 2, 3, 4]) == {
        "mean": 2.5,
        "sd": pytest.approx(math.sqrt(5 / 3)),
        "n": 4,
    }
    one = stats.summary([5.0])
    assert one["mean"] == 5.0 and one["n"] == 1 and math.isnan(one["sd"])


# --- Welch's t-test ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ([1, 2, 3, 4], [5, 7, 6]),  # unequal n
        ([80.1, 81.3, 79.9], [82.0, 82.5, 83.1]),  # three seeds each
        ([1, 2, 3, 4, 5, 6, 7], [2, 9]),  # unequal n and variances
        ([5, 7, 6], [1, 2, 3, 4]),  # order flips the sign
        ([2, 2], [1, 3]),  # one zero variance, equal means
        ([70, 70, 70], [71, 72, 75, 74]),  # one zero variance
        ([60.5, 61.0, 59.5, 60.0], [60.0, 60.0, 60.0]),
    ],
)
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, zero var
def test_welch_matches_scipy(a, b):
    ref = scipy.stats.ttest_ind(a, b, equal_var=False)
    t, df, p = stats.welch_t(a, b)
    assert t == pytest.approx(float(ref.statistic), rel=1e-10, abs=1e-12)
    assert df == pytest.approx(float(ref.df), rel=1e-10)
    assert p == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-15)


def test_welch_by_hand():
    # a: mean 2.5, var 5/3; b: mean 6, var 1 -> se^2 = 5/12 + 1/3 = 3/4
    t, df, p = stats.welch_t([1, 2, 3, 4], [5, 6, 7])
    assert t == pytest.approx(-3.5 / math.sqrt(0.75))
    assert df == pytest.approx(0.75**2 / ((5 / 12) ** 2 / 3 + (1 / 3) ** 2 / 2))
    assert 0 < p < 0.05
    # one zero variance: df is n - 1 of the other sample
    assert stats.welch_t([70, 70, 70], [71, 72, 75, 74]).df == pytest.approx(3.0)


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_welch_degenerate_cases():
    for a, b in [([1.0], [1.0, 2.0]), ([1.0, 2.0], []), ([3, 3, 3], [3, 3])]:
        assert all(math.isnan(x) for x in stats.welch_t(a, b)), (a, b)
    # both variances 0, different means: scipy's t and p (df is undefined: nan, scipy says 1)
    res = stats.welch_t([1, 1, 1], [2, 2, 2])
    ref = scipy.stats.ttest_ind([1, 1, 1], [2, 2, 2], equal_var=False)
    assert res.t == -math.inf == float(ref.statistic)
    assert res.p == 0.0 == float(ref.pvalue)
    assert math.isnan(res.df)
    # equal float scores per seed are no variance even when numpy's mean is an ulp off
    assert stats.welch_t([85.3] * 3, [86.1] * 3).t == -math.inf


# --- bootstrap ---------------------------------------------------------------------------------


def _loop_replicates(kind, per_seed, n_boot, seed):
    """The method of `bootstrap_ci`, written out one replicate and one seed at a time, with the
    same draws in the same order."""
    rng = np.random.Generator(np.random.PCG64(seed))
    n_seeds, n = len(per_seed), len(per_seed[0])
    seed_idx = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    example_idx = rng.integers(0, n, size=(n_boot, n))
    reps = []
    for b in range(n_boot):
        drawn = [
            metrics.metric_from_stats(kind, np.asarray(per_seed[s])[example_idx[b]])
            for s in seed_idx[b]
        ]
        reps.append(np.mean(np.array(drawn)))
    return np.array(reps)


def _loop_ci(kind, per_seed, n_boot, level, seed):
    reps = _loop_replicates(kind, per_seed, n_boot, seed)
    low, high = np.percentile(reps, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(low), float(high)


def _random_stats(rng, kind, n):
    """Integer stats of `kind` with the shapes scoring emits (counts, 0/1 correctness)."""
    if kind == "mean":
        return rng.integers(0, 2, size=(n, 1))
    if kind == "ratio":
        total = rng.integers(0, 6, size=n)
        return np.stack([rng.integers(0, total + 1), total], axis=1)
    gold = rng.integers(0, 4, size=n)
    pred = rng.integers(0, 4, size=n)
    tp = rng.integers(0, np.minimum(gold, pred) + 1)
    counts = np.stack([tp, pred, gold], axis=1)
    if kind == "f1":
        return counts
    return np.concatenate([rng.integers(0, 2, size=(n, 1)), counts], axis=1)


@pytest.mark.parametrize("kind", sorted(metrics.STAT_KINDS))
@pytest.mark.parametrize("n_seeds", [1, 3])
def test_bootstrap_equals_loop_over_the_same_draws(kind, n_seeds):
    rng = np.random.default_rng(7)
    per_seed = [_random_stats(rng, kind, 37) for _ in range(n_seeds)]
    for level, seed in [(0.95, 0), (0.9, 11)]:
        got = stats.bootstrap_ci(kind, per_seed, n_boot=300, level=level, seed=seed)
        assert got == _loop_ci(kind, per_seed, 300, level, seed)  # exactly: integer sums


def test_bootstrap_blocks_and_float_stats(monkeypatch):
    # small blocks: the replicates are summed in several blocks; QA-like float stats in [0, 1]
    monkeypatch.setattr(stats, "_BLOCK_CELLS", 7 * 50)
    rng = np.random.default_rng(3)
    per_seed = [np.round(rng.random((50, 1)), 3) for _ in range(3)]
    got = stats.bootstrap_replicates("mean", per_seed, n_boot=100, seed=5)
    want = _loop_replicates("mean", per_seed, 100, 5)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    ints = [_random_stats(rng, "f1", 50) for _ in range(3)]
    assert np.array_equal(
        stats.bootstrap_replicates("f1", ints, n_boot=100, seed=5),
        _loop_replicates("f1", ints, 100, 5),
    )


def test_bootstrap_all_correct_is_a_point():
    ones = [np.ones((200, 1), dtype=int) for _ in range(3)]
    assert stats.bootstrap_ci("mean", ones) == (100.0, 100.0)
    perfect = [np.tile([[1, 1, 1]], (200, 1)) for _ in range(3)]
    assert stats.bootstrap_ci("f1", perfect) == (100.0, 100.0)


def test_seed_variation_widens_the_interval():
    rng = np.random.default_rng(0)
    low_seed = (rng.random((400, 1)) < 0.6).astype(int)
    high_seed = (rng.random((400, 1)) < 0.9).astype(int)
    same = stats.bootstrap_ci("mean", [low_seed, low_seed])
    apart = stats.bootstrap_ci("mean", [low_seed, high_seed])
    # identical seeds: only the examples vary (about ±4.8 points at 60% on 400 examples)
    assert same == stats.bootstrap_ci("mean", [low_seed])
    assert same[0] < 100 * low_seed.mean() < same[1]
    # 60 vs 90: a replicate may draw the low seed twice, the high one twice, or both
    assert apart[1] - apart[0] > 2 * (same[1] - same[0])
    assert apart[0] < 100 * low_seed.mean() + 5 and apart[1] > 100 * high_seed.mean() - 5


def test_bootstrap_is_deterministic_given_seed():
    rng = np.random.default_rng(1)
    per_seed = [_random_stats(rng, "f1", 120) for _ in range(3)]
    a = stats.bootstrap_ci("f1", per_seed, seed=42)
    assert a == stats.bootstrap_ci("f1", [p.copy() for p in per_seed], seed=42)
    assert a != stats.bootstrap_ci("f1", per_seed, seed=43)
    # the point estimate (mean over seeds of the metric) lies inside
    point = np.mean([metrics.metric_from_stats("f1", p) for p in per_seed])
    assert a[0] < point < a[1]


def test_bootstrap_accepts_json_lists():
    values = [[1], [0], [1], [1]]
    assert stats.bootstrap_ci("mean", [values, values], n_boot=50) == stats.bootstrap_ci(
        "mean", [np.array(values)] * 2, n_boot=50
    )


def test_bootstrap_input_errors():
    with pytest.raises(ValueError, match="same test examples"):
        stats.bootstrap_ci("mean", [np.ones((3, 1)), np.ones((4, 1))])
    with pytest.raises(ValueError, match="n x 3"):
        stats.bootstrap_ci("f1", [np.ones((3, 2))])
    with pytest.raises(ValueError, match="unknown stats kind"):
        stats.bootstrap_ci("auc", [np.ones((3, 1))])
    with pytest.raises(ValueError, match="at least one seed"):
        stats.bootstrap_ci("mean", [])
    with pytest.raises(ValueError, match="at least one test example"):
        stats.bootstrap_ci("mean", [np.ones((0, 1))])
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_ci("mean", [np.ones((3, 1))], level=95)
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_ci("mean", [np.ones((3, 1))], n_boot=0)
