"""Summary statistics for per-image scores."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _stats


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
    half = float(_stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, [mean - half, mean + half]
