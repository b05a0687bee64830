"""Linear metrics: CC (Pearson correlation) and NSS (normalised scanpath saliency)."""

from __future__ import annotations

import math

import numpy as np

from salbench._numba import njit
from salbench.metrics._kernels import is_constant_range, mean_std, minmax, totals, true_indices
from salbench.metrics._validate import as_float_map, flat_inputs, flat_point_indices


@njit
def centred_sums(s, g, ms, mg):
    """``(sum(ds * dg), sum(ds * ds), sum(dg * dg))`` with ``ds = s - ms``, ``dg = g - mg``, in index order."""
    sxy = 0.0
    sxx = 0.0
    syy = 0.0
    for i in range(s.size):
        ds = s[i] - ms
        dg = g[i] - mg
        sxy += ds * dg
        sxx += ds * ds
        syy += dg * dg
    return sxy, sxx, syy


@njit
def _cc_from_sums(sxy, sxx, syy):
    # Spreads that underflow to zero (denormal maps) mean "constant" as above.
    if syy == 0.0:
        return np.nan
    if sxx == 0.0:
        return 0.0
    r = sxy / (math.sqrt(sxx) * math.sqrt(syy))
    return min(1.0, max(-1.0, r))


@njit
def _cc_kernel(s, g):
    s_lo, s_hi = minmax(s)
    g_lo, g_hi = minmax(g)
    if is_constant_range(g_lo, g_hi):
        return np.nan  # correlation with a constant ground truth is undefined
    if is_constant_range(s_lo, s_hi):
        return 0.0  # a constant prediction carries no information: chance level
    n = s.size
    s_sum, g_sum = totals(s, g)
    sxy, sxx, syy = centred_sums(s, g, s_sum / n, g_sum / n)
    return _cc_from_sums(sxy, sxx, syy)


@njit
def _nss_from(s, fix_idx, mean, std):
    acc = 0.0
    for k in range(fix_idx.size):
        acc += (s[fix_idx[k]] - mean) / std
    return acc / fix_idx.size


@njit
def _nss_kernel(s, f):
    fix_idx = true_indices(f)
    if fix_idx.size == 0:
        return np.nan
    lo, hi = minmax(s)
    if is_constant_range(lo, hi):
        return 0.0
    mean, std = mean_std(s, 1)  # MATLAB std: N-1
    return _nss_from(s, fix_idx, mean, std)


def cc(saliency, density) -> float:
    """Pearson correlation coefficient between a saliency map and a density map (MIT CC).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map, any real dtype (uint8, float32, bool, ...).
    density : array_like, shape (H, W)
        Continuous ground-truth density (e.g. blurred fixations).

    Returns
    -------
    float
        Correlation in [-1, 1]; higher is better.

    Raises
    ------
    ValueError
        If a map is not 2-D, is empty, contains NaN/inf, or the shapes differ.

    Notes
    -----
    MIT z-scores both maps and calls ``corr2``; both steps reduce to Pearson's
    correlation, computed here in one two-pass kernel.

    Edge cases: a constant ``saliency`` (:func:`salbench.metrics.is_constant_map`,
    which includes a constant spread over a few ulps by a resize) returns ``0.0``
    (no information, chance level; MIT's ``CC.m`` returns NaN, pysaliency 0.0); a
    constant ``density`` (all zero: an image without fixations) returns ``NaN``
    (correlation with a degenerate ground truth is undefined, and
    :func:`salbench.stats.mean_ci95` skips NaN).

    Examples
    --------
    >>> import numpy as np
    >>> s = np.arange(12.0).reshape(3, 4)
    >>> round(cc(s, 2 * s + 1), 12)
    1.0
    """
    return float(_cc_kernel(*flat_inputs(saliency, density=density)))


def nss(saliency, fixations) -> float:
    """Normalised scanpath saliency: mean z-scored saliency at fixated pixels (MIT NSS).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map.
    fixations : array_like, shape (H, W)
        Fixation map; nonzero pixels are fixated. Each fixated *pixel* counts once.

    Returns
    -------
    float
        Higher is better; 0 is chance.

    Raises
    ------
    ValueError
        Bad shapes, empty maps, NaN/inf.

    Notes
    -----
    ``z(s) = (s - mean(s)) / std(s)`` with MATLAB's ``N - 1`` std. For pysaliency's
    variant (every fixation point, population std) see :func:`nss_points`.

    Edge cases: no fixated pixel returns ``NaN``; a constant ``saliency``
    (:func:`salbench.metrics.is_constant_map`) returns ``0.0`` (chance level; MIT
    would divide by zero and return NaN).

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([[0.0, 1.0], [0.0, 1.0]])
    >>> round(nss(s, s > 0), 6)
    0.866025
    """
    return float(_nss_kernel(*flat_inputs(saliency, fixations=fixations)))


@njit
def _nss_points_kernel(s, idx):
    lo, hi = minmax(s)
    if idx.size == 0:
        return np.nan
    if is_constant_range(lo, hi):
        return 0.0
    mean, std = mean_std(s, 0)  # population std, as pysaliency (numpy default)
    acc = 0.0
    for k in range(idx.size):
        acc += (s[idx[k]] - mean) / std
    return acc / idx.size


def nss_points(saliency, rows, cols=None) -> float:
    """NSS over fixation *points* (pysaliency ``NSS``): duplicates count every time.

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map.
    rows, cols : array_like of int, shape (K,)
        0-based row (y) and column (x) of every fixation point. Alternatively
        ``nss_points(saliency, points)`` with ``points`` of shape (K, 2), 0-based
        ``(row, col)`` pairs (the registry's ``points`` input).

    Returns
    -------
    float
        Mean of ``(s - mean(s)) / std(s)`` over the points, population std
        (``ddof=0``) as in pysaliency.

    Raises
    ------
    ValueError
        Bad map, non-integer coordinates, ``rows``/``cols`` of different lengths,
        or a point outside the map (negative indices are not wrapped).

    Notes
    -----
    Edge cases: no points returns ``NaN``; a constant ``saliency`` returns ``0.0``
    (pysaliency skips the division by a zero std, giving 0).
    """
    s = as_float_map(saliency, "saliency")
    return float(_nss_points_kernel(s.ravel(), flat_point_indices(s.shape, rows, cols)))
