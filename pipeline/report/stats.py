"""Statistics for comparison tables: mean ± sd over seeds, bootstrap confidence intervals of a
test score, Welch t-tests between two sets of seeds.

Pure functions on numbers (numpy and `scipy.special` only; no I/O). The bootstrap works on the
per-example sufficient statistics that `pipeline.scoring.score(..., with_examples=True)` emits
and recomputes metrics with `pipeline.metrics.metric_from_sums`, so a resampled score is the
official metric of the resampled test set, not an approximation of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.special import stdtr

from pipeline.metrics import STAT_KINDS, metric_from_sums

#: Bootstrap replicates are summed in blocks of about this many (replicate, example) cells, so
#: memory stays bounded on large test sets while the matrix products stay large enough to be fast.
_BLOCK_CELLS = 1 << 22


def _values(xs) -> np.ndarray:
    arr = np.asarray(xs, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-d sequence of numbers, got shape {arr.shape}")
    return arr


def _mean_var(arr: np.ndarray) -> tuple[float, float]:
    """Mean and sample variance (ddof=1) of >= 2 values. Equal values give exactly their value
    and variance 0: numpy's mean of e.g. [85.3] * 3 can be off by one ulp, which would turn
    "no seed variation" into a tiny variance and a meaningless huge t."""
    if np.all(arr == arr[0]):
        return float(arr[0]), 0.0
    return float(arr.mean()), float(arr.var(ddof=1))


def mean(xs) -> float:
    """Arithmetic mean; nan for no values (a table cell without runs shows nan, not 0)."""
    arr = _values(xs)
    if arr.size == 0:
        return float("nan")
    return float(arr[0]) if np.all(arr == arr[0]) else float(arr.mean())


def sd(xs) -> float:
    """Sample standard deviation (ddof=1, the usual "± sd over seeds"); nan for fewer than 2
    values, where the spread over seeds is unknown rather than 0."""
    arr = _values(xs)
    if arr.size < 2:
        return float("nan")
    return math.sqrt(_mean_var(arr)[1])


def summary(xs) -> dict[str, float | int]:
    """{"mean", "sd", "n"} of per-seed scores: what a table cell prints, with n so a reader
    sees how many seeds the sd rests on."""
    arr = _values(xs)
    return {"mean": mean(arr), "sd": sd(arr), "n": int(arr.size)}


# ---------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------


def _stack_seeds(kind: str, per_seed_values: Sequence) -> np.ndarray:
    """S x n x k float array of the seeds' stats, checked: same examples, k columns of `kind`."""
    if kind not in STAT_KINDS:
        raise ValueError(f"unknown stats kind {kind!r}: expected one of {', '.join(STAT_KINDS)}")
    if len(per_seed_values) == 0:
        raise ValueError("bootstrap needs the stats of at least one seed")
    k = STAT_KINDS[kind]
    arrays = [np.asarray(v, dtype=np.float64) for v in per_seed_values]
    for s, arr in enumerate(arrays):
        if arr.ndim != 2 or arr.shape[1] != k:
            raise ValueError(f"seed {s}: {kind!r} stats must be n x {k}, got shape {arr.shape}")
        if arr.shape[0] != arrays[0].shape[0]:
            raise ValueError(
                f"seed {s} has {arr.shape[0]} examples, seed 0 has {arrays[0].shape[0]}: all "
                "seeds must be scored on the same test examples, in the same order"
            )
    if arrays[0].shape[0] == 0:
        raise ValueError("bootstrap needs at least one test example")
    return np.stack(arrays)


def bootstrap_replicates(
    kind: str, per_seed_values: Sequence, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """The `n_boot` replicates of the seed-averaged metric that `bootstrap_ci` takes percentiles
    of (see there for the method and the order of the random draws); an array of shape (n_boot,).
    """
    values = _stack_seeds(kind, per_seed_values)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    n_seeds, n, k = values.shape
    rng = np.random.Generator(np.random.PCG64(seed))
    seed_idx = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    example_idx = rng.integers(0, n, size=(n_boot, n))

    # Sum of the drawn rows = stats . (how often each example was drawn). All seeds share the
    # draw, so one contraction covers them: stats (S*k x n) with counts (b x n). einsum, not a
    # BLAS product: multithreaded BLAS on these thin matrices slows down tenfold when the report
    # runs next to other jobs. Counts and integer stats are exact in float64, so integer-valued
    # sums are exact whatever the order of the additions.
    flat_t = values.transpose(0, 2, 1).reshape(n_seeds * k, n)  # row s*k + j: column j of seed s
    per_seed = np.empty((n_boot, n_seeds), dtype=np.float64)  # metric of seed s in replicate b
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_boot, block):
        idx = example_idx[start : start + block]
        rows = idx.shape[0]
        counts = np.bincount(
            (idx + n * np.arange(rows)[:, None]).ravel(), minlength=rows * n
        ).reshape(rows, n)
        sums = np.einsum("kn,bn->bk", flat_t, counts.astype(np.float64)).reshape(rows, n_seeds, k)
        per_seed[start : start + rows] = metric_from_sums(kind, sums, n)
    return np.take_along_axis(per_seed, seed_idx, axis=1).mean(axis=1)


def bootstrap_ci(
    kind: str,
    per_seed_values: Sequence,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Confidence interval (low, high), in metric points, of the test score averaged over seeds,
    from a two-level (hierarchical) percentile bootstrap over seeds and test examples.

    `per_seed_values[s]` is the n x k array of per-example sufficient statistics of seed s
    (`scoring.score(..., with_examples=True)["examples"]["stats"][key]["values"]`, of that key's
    `kind`), every seed scored on the same n test examples in the same order (same ids).

    Why two levels: the score a table shows for a cell, the metric averaged over the S seeds,
    would change with another sample of test examples and with other training seeds. Each of
    the `n_boot` replicates therefore resamples both:

    1. S seeds drawn uniformly with replacement from the S seeds;
    2. n test examples drawn uniformly with replacement from the n examples, one draw per
       replicate shared by all its seeds: every seed was scored on the same test set, so the
       examples that are hard for one seed are hard for the others, and drawing examples
       independently per seed would average that shared difficulty away and narrow the interval;
    3. the metric of each drawn seed recomputed on the drawn examples from the sums of their
       sufficient statistics (exactly the official corpus metric of the resampled test set:
       `metrics.metric_from_sums`), and the replicate is the mean over the S drawn seeds.

    The interval is the (1 - level)/2 and (1 + level)/2 percentiles of the replicates (numpy's
    linear interpolation). With one seed it is the ordinary percentile bootstrap over test
    examples; with few seeds (e.g. 3) the seed level can only recombine those few scores, so the
    interval is a description of both sources of variation, not an exact-coverage guarantee.

    Deterministic given `seed`: the draws come from `np.random.Generator(np.random.PCG64(seed))`
    in this order: seed indices `integers(0, S, size=(n_boot, S))`, then example indices
    `integers(0, n, size=(n_boot, n))`. It is vectorized (a count matrix of the drawn examples
    times the stats, in blocks): about 10 ms for 3 seeds x 500 examples x 1000 replicates.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    reps = bootstrap_replicates(kind, per_seed_values, n_boot=n_boot, seed=seed)
    low, high = np.percentile(reps, [100.0 * (1.0 - level) / 2.0, 100.0 * (1.0 + level) / 2.0])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------
# Welch's t-test
# ---------------------------------------------------------------------------------------------


class TTest(NamedTuple):
    """Welch's t statistic, Welch-Satterthwaite degrees of freedom, two-sided p-value."""

    t: float
    df: float
    p: float


_NAN_TEST = TTest(float("nan"), float("nan"), float("nan"))


def welch_t(a, b) -> TTest:
    """Welch's unequal-variance t-test of mean(a) vs mean(b), e.g. per-seed scores of a method
    vs the baseline of the column; a (t, df, p) tuple, p two-sided.

    Welch rather than Student because nothing makes the seed variance of two methods equal (a
    meta-learner can be much less stable than plain fine-tuning). Computed by hand so the edge
    cases are ours: t = (m_a - m_b) / sqrt(v_a/n_a + v_b/n_b) with sample variances (ddof=1),
    Welch-Satterthwaite df, p = 2 * stdtr(df, -|t|). Equals `scipy.stats.ttest_ind(a, b,
    equal_var=False)` (statistic, df, pvalue), also when exactly one variance is 0 (df = n - 1 of
    the other sample). All nan when either sample has fewer than 2 values (no variance to test
    against) or both variances are 0 with equal means (0/0). Both variances 0 with different
    means: t = ±inf, p = 0 as scipy, but df nan (undefined; scipy puts 1 there). Equal values
    count as variance exactly 0 (see `_mean_var`).
    """
    xa, xb = _values(a), _values(b)
    na, nb = xa.size, xb.size
    if na < 2 or nb < 2:
        return _NAN_TEST
    (ma, va), (mb, vb) = _mean_var(xa), _mean_var(xb)
    qa, qb = va / na, vb / nb
    se2 = qa + qb
    if se2 == 0.0:
        if ma == mb:
            return _NAN_TEST
        return TTest(math.copysign(math.inf, ma - mb), float("nan"), 0.0)
    t = (ma - mb) / math.sqrt(se2)
    df = se2**2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))
    p = 2.0 * float(stdtr(df, -abs(t)))
    return TTest(float(t), float(df), min(p, 1.0))
