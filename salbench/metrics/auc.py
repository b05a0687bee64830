"""Deterministic AUCs: AUC-Judd (MIT) and the exact AUCs over all thresholds.

Neither sorts the whole map per threshold. Fixated values are sorted once
(n of them, n << H*W) and every pixel is placed among them by binary search:
O(H*W log n) for the whole curve.
"""

from __future__ import annotations

import numpy as np

from salbench._numba import njit
from salbench.metrics._kernels import count_le, count_lt, is_constant_range, masked_values, minmax, true_indices
from salbench.metrics._validate import flat_inputs

_BLOCK = 512  # pixels normalised at a time (stays in L1; the division loop vectorises)


@njit
def _group_by_bucket(x, nb):
    """Counting sort of values in [0, 1] by bucket ``min(int(x * nb), nb - 1)``, unsorted within.

    Returns ``(grouped, start)``: bucket ``k`` is ``grouped[start[k]:start[k + 1]]``.
    """
    count = np.zeros(nb + 1, dtype=np.int64)
    for i in range(x.size):
        count[min(int(x[i] * nb), nb - 1) + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    grouped = np.empty(x.size)
    for i in range(x.size):
        k = min(int(x[i] * nb), nb - 1)
        grouped[fill[k]] = x[i]
        fill[k] += 1
    return grouped, start


@njit
def _bucket_sort_unit(u):
    """Sort values in [0, 1] ascending: counting sort into buckets, then each bucket.

    Returns ``(sorted, start, nb)``: bucket ``k`` (values with ``int(x * nb) == k``,
    1.0 in the last bucket) is ``sorted[start[k]:start[k + 1]]``. ``nb`` is a power
    of two, so ``x * nb`` is exact and the bucket is monotone in ``x``.
    """
    n = u.size
    nb = 1024
    while nb < n // 4:  # about four values a bucket: small tables, short scans
        nb *= 2
    out, start = _group_by_bucket(u, nb)
    for k in range(nb):
        a = start[k]
        b = start[k + 1]
        if b - a > 32:
            out[a:b] = np.sort(out[a:b])
        else:
            for i in range(a + 1, b):  # insertion sort
                v = out[i]
                j = i - 1
                while j >= a and out[j] > v:
                    out[j + 1] = out[j]
                    j -= 1
                out[j + 1] = v
    return out, start, nb


@njit
def _distinct_sorted(u, start, nb):
    """The distinct values of ascending ``u`` (bucketed by ``start``), their bucket starts, and
    for each ``u[j]`` the index of its value among them."""
    m = u.size
    uq = np.empty(m)
    which = np.empty(m, dtype=np.int64)
    qstart = np.empty(nb + 1, dtype=np.int64)
    q = 0
    for k in range(nb):
        qstart[k] = q
        for j in range(start[k], start[k + 1]):
            if q == qstart[k] or u[j] != uq[q - 1]:  # a new value (buckets are disjoint)
                uq[q] = u[j]
                q += 1
            which[j] = q - 1
    qstart[nb] = q
    return uq[:q], qstart, which


@njit
def _count_at_least(s, lo, rng, u, start, nb):
    """``above[j]`` = number of pixels whose ``(s - lo) / rng`` is >= ``u[j]`` (``u`` bucket-sorted).

    One pass over the pixels, nothing stored per pixel: each pixel adds one to its bucket's
    count and, when its bucket holds thresholds, is compared with that bucket's distinct
    threshold values only (lower buckets hold smaller values, higher ones larger), marking
    the first one above it. Tied thresholds share one count. Exact integers.
    """
    n_pix = s.size
    uq, qstart, which = _distinct_sorted(u, start, nb)
    m = uq.size
    hist = np.zeros(nb, dtype=np.int64)
    first_above = np.zeros(m, dtype=np.int64)  # pixels of a bucket below uq[j] but not below uq[j - 1]
    blk = np.empty(_BLOCK)
    for b0 in range(0, n_pix, _BLOCK):
        b1 = min(b0 + _BLOCK, n_pix)
        for i in range(b0, b1):  # the divisions, vectorised
            blk[i - b0] = (s[i] - lo) / rng
        for i in range(b1 - b0):
            v = blk[i]
            k = min(int(v * nb), nb - 1)
            hist[k] += 1
            t0 = qstart[k]
            t1 = qstart[k + 1]
            if t0 == t1:
                continue
            if t1 - t0 <= 8:
                j = t0
                while j < t1 and uq[j] <= v:
                    j += 1
            else:
                j = t0
                z = t1
                while j < z:
                    mid = (j + z) >> 1
                    if uq[mid] <= v:
                        j = mid + 1
                    else:
                        z = mid
            if j < t1:
                first_above[j] += 1
    above_q = np.empty(m, dtype=np.int64)
    below = 0  # pixels in lower buckets
    for k in range(nb):
        less = 0
        for j in range(qstart[k], qstart[k + 1]):
            less += first_above[j]
            above_q[j] = n_pix - below - less
        below += hist[k]
    above = np.empty(u.size, dtype=np.int64)
    for j in range(u.size):
        above[j] = above_q[which[j]]
    return above


@njit
def _auc_judd_kernel(s, f):
    lo, hi = minmax(s)
    return _auc_judd_core(s, true_indices(f), lo, hi)


@njit
def _auc_judd_core(s, fix_idx, lo, hi):
    """AUC-Judd from the fixated pixels' indices and the map's extremes."""
    n_pix = s.size
    pos = s[fix_idx]
    n_fix = pos.size
    if n_fix == 0 or n_fix == n_pix:
        return np.nan  # no positives, or no negatives for the FP rate
    if is_constant_range(lo, hi):
        return 0.5  # constant map: every threshold keeps every pixel; chance level
    rng = hi - lo
    # MIT min-max normalises first; do the same so ties created by rounding match.
    u, start, nb = _bucket_sort_unit((pos - lo) / rng)
    above = _count_at_least(s, lo, rng, u, start, nb)
    n_neg = n_pix - n_fix
    area = 0.0
    tp_prev = 0.0
    fp_prev = 0.0
    for i in range(1, n_fix + 1):  # thresholds in descending order, as MIT
        tp = i / n_fix
        fp = (above[n_fix - i] - i) / n_neg
        area += (fp - fp_prev) * (tp + tp_prev) / 2.0
        tp_prev = tp
        fp_prev = fp
    area += (1.0 - fp_prev) * (1.0 + tp_prev) / 2.0
    return area


def _constant(s) -> bool:
    return bool(is_constant_range(s.min(), s.max()))


@njit
def _auc_pairs_kernel(pos, neg):
    """P(pos > neg) + P(pos == neg) / 2 over all pairs, from integer counts."""
    n_pos = pos.size
    n_neg = neg.size
    if n_pos == 0 or n_neg == 0:
        return np.nan
    u = np.sort(pos)
    greater = 0
    equal = 0
    for i in range(n_neg):
        le = count_le(u, neg[i])
        lt = count_lt(u, neg[i])
        greater += n_pos - le
        equal += le - lt
    return (greater + 0.5 * equal) / (float(n_pos) * float(n_neg))


@njit
def _auc_exact_kernel(s, f):
    pos = masked_values(s, f)
    if pos.size == 0:
        return np.nan
    lo, hi = minmax(s)
    if is_constant_range(lo, hi):
        return 0.5  # constant (up to resize rounding): every pair ties
    return _auc_pairs_kernel(pos, s)


@njit
def _auc_shuffled_exact_kernel(s, f, other):
    pos = masked_values(s, f)
    neg = masked_values(s, other)
    if pos.size == 0 or neg.size == 0:
        return np.nan
    lo, hi = minmax(s)
    if is_constant_range(lo, hi):
        return 0.5
    return _auc_pairs_kernel(pos, neg)


def auc_judd(saliency, fixations, *, jitter=False, seed=None) -> float:
    """AUC-Judd: ROC area with the fixated values as thresholds (MIT ``AUC_Judd``).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map.
    fixations : array_like, shape (H, W)
        Fixation map; nonzero pixels are fixated (positives).
    jitter : bool, default False
        Add ``uniform(0, 1) * 1e-7`` to every pixel before scoring, as MIT does by
        default to break ties. Off by default so the metric is deterministic.
    seed : int or numpy.random.Generator, optional
        Seed of the jitter (ignored when ``jitter`` is False).

    Returns
    -------
    float
        Area under the ROC curve; higher is better, 0.5 is chance.

    Raises
    ------
    ValueError
        Bad shapes, empty maps, NaN/inf.

    Notes
    -----
    ``S = mm(s)``; thresholds are the ``n`` fixated values of ``S`` in descending
    order; ``TP_i = i / n``, ``FP_i = (#{S >= t_i} - i) / (N - n)``; the points
    ``(0, 0)`` and ``(1, 1)`` are added and the curve integrated with the
    trapezoid rule. Ties among fixated values follow MIT exactly.

    Edge cases: no fixated pixel, or every pixel fixated (no negatives), returns
    ``NaN``; a single fixated pixel is well defined and scored. A constant map
    (:func:`salbench.metrics.is_constant_map`: also a constant spread over a few
    ulps by a resize) returns exactly ``0.5``, with or without ``jitter``: MIT
    divides by ``max - min = 0`` and returns NaN, and with its jitter on scores
    random tie-breaking, whose expectation is 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([[0.0, 0.2], [0.4, 1.0]])
    >>> auc_judd(s, s == 1.0)
    1.0
    """
    s, f = flat_inputs(saliency, fixations=fixations)
    if jitter and not _constant(s):  # a constant map scores 0.5: the expectation over MIT's jitter
        rng = np.random.default_rng(seed)
        s = s + rng.random(s.size) / 1e7  # the same stream as rng.random((H, W)), flat
    return float(_auc_judd_kernel(s, f))


def auc_exact(saliency, fixations) -> float:
    """Exact AUC against all pixels as negatives (pysaliency ``general_roc``, uniform).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map.
    fixations : array_like, shape (H, W)
        Fixation map; nonzero pixels are the positives (each pixel once).

    Returns
    -------
    float
        ``P(s[pos] > s[neg]) + P(s[pos] == s[neg]) / 2`` where ``neg`` ranges over
        *all* pixels, fixated ones included (as pysaliency's uniform AUC); this is
        the ROC area over every threshold, ties counting half.

    Raises
    ------
    ValueError
        Bad shapes, empty maps, NaN/inf.

    Notes
    -----
    Also the expectation of the sampled AUC-Borji in the limit of a fine
    threshold grid. Pair counts are exact integers, so the result does not
    depend on summation order. Edge cases: no fixated pixel returns ``NaN``; a
    constant map returns ``0.5``.
    """
    return float(_auc_exact_kernel(*flat_inputs(saliency, fixations=fixations)))


def auc_shuffled_exact(saliency, fixations, other) -> float:
    """Exact shuffled AUC: negatives are the pixels fixated in ``other``.

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map.
    fixations : array_like, shape (H, W)
        Fixation map of this image; nonzero pixels are the positives.
    other : array_like, shape (H, W)
        Fixation map of other images (e.g. their union); its nonzero pixels are
        the negatives. Pixels fixated in both are kept on both sides, as MIT.

    Returns
    -------
    float
        ``P(s[pos] > s[neg]) + P(s[pos] == s[neg]) / 2``; higher is better.

    Raises
    ------
    ValueError
        Bad shapes, empty maps, NaN/inf.

    Notes
    -----
    Edge cases: no fixated pixel in ``fixations`` or in ``other`` returns ``NaN``;
    a constant map returns ``0.5``.
    """
    return float(_auc_shuffled_exact_kernel(*flat_inputs(saliency, fixations=fixations, other=other)))
