"""The SALICON challenge server's AUC and shuffled AUC (NUS-VIP/salicon-evaluation).

Both score fixation *points* (every point counts, duplicates too) on the map
``S = (s - min) / max(s - min)`` with the server's ROC: thresholds
``np.arange(0, max(P u Q), step)`` in descending order (the end point is
excluded), ``TP(t) = mean(P >= t)``, ``FP(t)`` = weighted fraction of negatives
``>= t``, the points (0, 0) and (1, 1) added, trapezoid rule.

- :func:`auc_salicon`: negatives are ``n_random`` pixels drawn uniformly with
  replacement (one draw per image; the server uses NumPy's legacy global RNG).
- :func:`sauc_salicon`: negatives are the pixels of a shuffle map (how many
  other images fixate each pixel), weighted by that count, after zeroing the
  pixels of the current image's own points. Deterministic.

The server's CC is :func:`salbench.metrics.cc` against the ground truth its
protocol prepares (``gaussian_filter(fixation map, 19)``, min-max normalised:
Pearson's r ignores the normalisation) and its NSS is
:func:`salbench.metrics.nss_points` (population std, every point).

Counting replaces the server's per-threshold scans: a value ``v`` passes the
``c(v) = #{k : k * step <= v}`` lowest thresholds, found from ``v / step`` and
corrected with the exact comparison, so the counts are those of the server.
"""

from __future__ import annotations

import math

import numpy as np

from salbench._numba import njit
from salbench.metrics._kernels import is_constant_range, minmax
from salbench.metrics._validate import as_float_map, check_same_shape, flat_point_indices

__all__ = ["auc_salicon", "sauc_salicon"]


@njit
def _normalise01(s):
    """The server's ``s - min``, then ``/ max`` when the max is positive."""
    lo, hi = minmax(s)
    out = s - lo
    top = hi - lo  # == max(s - lo): rounding is monotone
    if top > 0.0:
        out /= top
    return out


@njit
def _n_passed(v, step, n_thr):
    """Number of thresholds ``k * step`` (k < n_thr) that are <= ``v`` (``v >= 0``)."""
    k = int(v / step)
    while (k + 1) * step <= v:
        k += 1
    while k > 0 and k * step > v:
        k -= 1
    return min(k + 1, n_thr)


@njit
def _roc_area(u, pos_idx, neg_idx, neg_w, step):
    """Server ROC area: positives ``u[pos_idx]``, negatives ``u[neg_idx]`` with weights ``neg_w``."""
    top = 0.0
    for i in range(pos_idx.size):
        top = max(top, u[pos_idx[i]])
    for i in range(neg_idx.size):
        top = max(top, u[neg_idx[i]])
    n_thr = int(math.ceil(top / step))  # len(np.arange(0, top, step))
    hp = np.zeros(n_thr + 1)
    hn = np.zeros(n_thr + 1)
    for i in range(pos_idx.size):
        hp[_n_passed(u[pos_idx[i]], step, n_thr)] += 1.0
    total = 0.0
    for i in range(neg_idx.size):
        hn[_n_passed(u[neg_idx[i]], step, n_thr)] += neg_w[i]
        total += neg_w[i]
    n_pos = pos_idx.size
    # thresholds in descending order: threshold k keeps the values that pass more than k
    area = 0.0
    cp = 0.0
    cn = 0.0
    tp_prev = 0.0
    fp_prev = 0.0
    for k in range(n_thr - 1, -1, -1):
        cp += hp[k + 1]
        cn += hn[k + 1]
        tp = cp / n_pos
        fp = cn / total
        area += (fp - fp_prev) * (tp + tp_prev) / 2.0
        tp_prev = tp
        fp_prev = fp
    area += (1.0 - fp_prev) * (1.0 + tp_prev) / 2.0
    return area


@njit
def _auc_salicon_kernel(s, idx, draw, step):
    """Server AUC of flat map ``s``: points at flat indices ``idx``, negatives ``s[draw]``."""
    if idx.size == 0:
        return np.nan
    lo, hi = minmax(s)
    if is_constant_range(lo, hi):
        return 0.5  # constant (up to resize rounding): chance, as every other AUC
    u = _normalise01(s)
    return _roc_area(u, idx, draw, np.ones(draw.size), step)


@njit
def _sauc_salicon_kernel(s, idx, weights, step):
    """Server sAUC: negatives are the pixels with ``weights > 0`` once ``idx``'s pixels are zeroed."""
    if idx.size == 0:
        return np.nan
    w = weights.astype(np.float64)
    for i in range(idx.size):
        w[idx[i]] = 0.0
    n_neg = 0
    for i in range(w.size):
        if w[i] != 0.0:
            n_neg += 1
    if n_neg == 0:
        return np.nan
    neg = np.empty(n_neg, dtype=np.int64)
    neg_w = np.empty(n_neg)
    j = 0
    for i in range(w.size):
        if w[i] != 0.0:
            neg[j] = i
            neg_w[j] = w[i]
            j += 1
    lo, hi = minmax(s)
    if is_constant_range(lo, hi):
        return 0.5
    u = _normalise01(s)
    return _roc_area(u, idx, neg, neg_w, step)


def _check_step(step) -> float:
    if isinstance(step, bool) or not isinstance(step, (int, float, np.floating)) or not 0 < step <= 1:
        raise ValueError(f"step must be a number in (0, 1], got {step!r}")
    return float(step)


def _rng(seed):
    if isinstance(seed, np.random.RandomState):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"seed must be an integer, None or a numpy.random.RandomState, got {seed!r}")
    return np.random.RandomState(None if seed is None else int(seed) % 2**32)


def auc_salicon(saliency, points, *, n_random=100000, step=0.01, seed=None) -> float:
    """AUC of the SALICON challenge server: one draw of ``n_random`` uniform negatives.

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Saliency map (any real dtype).
    points : array_like of int, shape (K, 2)
        0-based ``(row, col)`` of every fixation point (duplicates count every time).
    n_random : int, default 100000
        Number of negative pixels, drawn uniformly with replacement.
    step : float, default 0.01
        Threshold spacing; thresholds ``np.arange(0, max, step)``.
    seed : int, None or numpy.random.RandomState
        Seed of NumPy's legacy ``RandomState`` (the server's generator); pass a
        ``RandomState`` to continue one stream over many images, as the server
        (seeded once per evaluation, images in order). The draw,
        ``rng.randint(H * W, size=n_random)``, is made even when there are no
        points, so a shared stream stays aligned.

    Returns
    -------
    float
        Area under the server's ROC curve; NaN without points; 0.5 for a constant
        map (:func:`salbench.metrics.is_constant_map`).

    Raises
    ------
    ValueError
        Bad map, points outside it, bad ``n_random``, ``step`` or ``seed``.
    """
    s = as_float_map(saliency, "saliency")
    idx = flat_point_indices(s.shape, points)
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise ValueError(f"n_random must be a positive integer, got {n_random!r}")
    step = _check_step(step)
    draw = _rng(seed).randint(s.size, size=int(n_random)).astype(np.int64)
    return float(_auc_salicon_kernel(s.ravel(), idx, draw, step))


def sauc_salicon(saliency, points, other_weights, *, step=0.01) -> float:
    """Shuffled AUC of the SALICON challenge server: weighted negatives from other images.

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Saliency map (any real dtype).
    points : array_like of int, shape (K, 2)
        0-based ``(row, col)`` of every fixation point of this image.
    other_weights : array_like, shape (H, W)
        Shuffle map: for each pixel, how many (other) images fixate it. The pixels
        of this image's own points are zeroed first (as the server), so the sum
        of the binary fixation maps of all evaluated images can be passed as is.
    step : float, default 0.01
        Threshold spacing; thresholds ``np.arange(0, max, step)``.

    Returns
    -------
    float
        Area under the server's ROC curve (negatives weighted by their count);
        NaN without points or without negatives; 0.5 for a constant map.

    Raises
    ------
    ValueError
        Bad maps, mismatched shapes, negative or non-finite weights, bad points or ``step``.
    """
    s = as_float_map(saliency, "saliency")
    w = as_float_map(other_weights, "other_weights")
    check_same_shape(s, w, "saliency", "other_weights")
    if (w < 0).any():
        raise ValueError("other_weights must be non-negative counts")
    idx = flat_point_indices(s.shape, points)
    return float(_sauc_salicon_kernel(s.ravel(), idx, w.ravel(), _check_step(step)))
