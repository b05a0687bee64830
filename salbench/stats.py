"""Statistics over per-image scores: summaries and paired comparisons between two models.

Pure functions over arrays (the bottom layer: no results files, no tables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def mean_ci95(values) -> tuple[float, list[float]]:
    """Mean and two-sided 95% Student-t confidence interval of per-image scores.

    NaN entries (a metric undefined for an image, e.g. fewer than two
    fixations) are left out. With fewer than two finite values the interval
    is ``[mean, mean]``.

    Returns
    -------
    mean : float
    ci95 : list of two floats
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), [float("nan"), float("nan")]
    mean = float(v.mean())
    if v.size < 2:
        return mean, [mean, mean]
    # scipy.special, not scipy.stats: the same quantile (t.ppf calls stdtrit), and every eval
    # prints a summary: importing scipy.stats would add ~0.4 s to each run's start-up
    from scipy.special import stdtrit

    half = float(stdtrit(v.size - 1, 0.975) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, [mean - half, mean + half]


# -- paired comparisons --------------------------------------------------------------------------
# The settings every paired comparison uses, recorded with its results.
BOOTSTRAP_METHOD = "BCa"
DEFAULT_RESAMPLES = 9999
DEFAULT_SEED = 0
WILCOXON_SETTINGS = {"zero_method": "wilcox", "correction": False, "alternative": "two-sided", "method": "auto"}
# Resamples drawn per batch: memory stays near batch x n_images floats however many are asked for.
_BOOTSTRAP_BATCH = 1000


def finite_pairs(a, b) -> tuple[np.ndarray, np.ndarray, int]:
    """The pairs ``(a[i], b[i])`` where both values are finite, and how many pairs were dropped.

    An image whose score is NaN in either entry (a metric undefined on it, e.g.
    no fixations) cannot be paired and is excluded from every paired statistic.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values need two 1-D arrays of one length, not {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep], int(a.size - keep.sum())


def _mean_difference(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def paired_bootstrap_ci(a, b, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                        confidence_level: float = 0.95) -> tuple[float, float]:
    """BCa bootstrap confidence interval of ``mean(a - b)``, resampling images in pairs.

    ``scipy.stats.bootstrap((a, b), paired=True, method="BCa")`` with a generator
    seeded by ``seed``: the same inputs and seed give the same interval.

    Parameters
    ----------
    a, b : array_like
        Per-image values of two models on the same images, finite, in the same order
        (see :func:`finite_pairs`).
    n_resamples, seed, confidence_level
        Passed to scipy (``rng=numpy.random.default_rng(seed)``).

    Returns
    -------
    (low, high) : tuple of float
        ``(d, d)`` when every difference equals ``d`` up to rounding (relative range
        1e-12; the bootstrap distribution is a point: two entries made from the same
        predictions give ``(0, 0)``);
        ``(nan, nan)`` with fewer than two pairs, or when BCa is undefined (nearly
        all differences equal).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = a - b
    if d.size < 2:
        return float("nan"), float("nan")
    if np.ptp(d) <= 1e-12 * max(float(np.abs(d).max()), np.finfo(np.float64).tiny):
        return float(d.mean()), float(d.mean())  # equal up to rounding: every resample has this mean
    import warnings

    import scipy

    rng = np.random.default_rng(seed)
    seeding = {"rng": rng} if _scipy_at_least(scipy.__version__, 1, 15) else {"random_state": rng}
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # a degenerate or one-sided bootstrap distribution warns and gives NaN: reported as NaN
        warnings.simplefilter("ignore")
        from scipy import stats as _stats

        res = _stats.bootstrap((a, b), _mean_difference, paired=True, vectorized=True, method=BOOTSTRAP_METHOD,
                               n_resamples=int(n_resamples), confidence_level=confidence_level,
                               batch=_BOOTSTRAP_BATCH, **seeding)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return float("nan"), float("nan")
    return low, high


def _scipy_at_least(version: str, major: int, minor: int) -> bool:
    parts = version.split(".")
    return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)) >= (major, minor)


def wilcoxon_signed_rank(differences) -> tuple[float, float, int]:
    """Two-sided Wilcoxon signed-rank test that the per-image differences are centred on 0.

    ``scipy.stats.wilcoxon(differences, **WILCOXON_SETTINGS)``: zero differences
    are dropped before ranking (``zero_method="wilcox"``), scipy chooses the exact
    or the normal-approximation p-value (``method="auto"``).

    Returns
    -------
    statistic : float
        The smaller of the positive- and negative-rank sums (NaN when no difference is nonzero).
    p : float
        1.0 when every difference is zero: nothing distinguishes the two (two
        entries made from the same predictions), and scipy's own answer there is
        undefined. NaN for an empty input.
    n_zero : int
        Differences equal to zero (left out of the ranks).
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or not np.isfinite(d).all():
        raise ValueError("the Wilcoxon test needs a 1-D array of finite differences")
    n_zero = int((d == 0).sum())
    if d.size == 0:
        return float("nan"), float("nan"), 0
    if n_zero == d.size:
        return float("nan"), 1.0, n_zero
    from scipy import stats as _stats

    res = _stats.wilcoxon(d, **WILCOXON_SETTINGS)
    return float(res.statistic), float(res.pvalue), n_zero


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), for a family of tests.

    The i-th smallest of m p-values becomes ``max_{j<=i} min(1, (m - j + 1) p_(j))``;
    a hypothesis is rejected at family-wise level alpha when its adjusted p-value
    is ``<= alpha``. NaN p-values are left out of the family and stay NaN.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("holm takes a 1-D array of p-values")
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    if idx.size == 0:
        return out
    if np.any((p[idx] < 0) | (p[idx] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = idx.size
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


@dataclass(frozen=True)
class PairedComparison:
    """How two models differ on paired per-image values (see :func:`paired_comparison`)."""

    n: int  #: pairs used (both values finite)
    n_excluded: int  #: pairs dropped (NaN in either)
    mean_a: float
    mean_b: float
    mean_difference: float  #: mean of a - b over the pairs used
    ci95: tuple[float, float]  #: paired BCa bootstrap interval of mean_difference
    wilcoxon_statistic: float
    p_value: float  #: Wilcoxon signed-rank, two-sided
    n_zero_differences: int


def paired_comparison(a, b, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                      bootstrap: bool = True) -> PairedComparison:
    """Mean difference ``a - b``, its paired bootstrap 95% CI and the Wilcoxon p on per-image values.

    ``a`` and ``b`` are aligned per image; pairs with a NaN on either side are
    excluded and counted. ``bootstrap=False`` skips the interval (NaN), e.g. when
    only the test is needed.
    """
    x, y, dropped = finite_pairs(a, b)
    nan = float("nan")
    if x.size == 0:
        return PairedComparison(0, dropped, nan, nan, nan, (nan, nan), nan, nan, 0)
    d = x - y
    stat, p, n_zero = wilcoxon_signed_rank(d)
    ci = paired_bootstrap_ci(x, y, n_resamples=n_resamples, seed=seed) if bootstrap else (nan, nan)
    return PairedComparison(int(x.size), dropped, float(x.mean()), float(y.mean()), float(d.mean()), ci, stat, p,
                            n_zero)
