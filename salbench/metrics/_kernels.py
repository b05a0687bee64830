"""Numba helpers shared by the metric kernels (flat float64 maps, bool masks).

Every kernel works on 1-D views of C-contiguous maps. Constant maps are
detected from the range (:func:`is_constant_range`) rather than ``std == 0``:
the floating-point mean of a constant map need not equal the constant, so
``x - mean`` can be a tiny nonzero number and a std test would let noise
through. The range test is relative (``CONSTANT_RTOL``) so that a constant map
spread over a few ulps by a resize (bicubic weights do not sum to 1 exactly in
floating point) is still constant: see :mod:`salbench.metrics.degenerate`.
"""

from __future__ import annotations

import math

import numpy as np

from salbench._numba import njit

# MATLAB's eps, as used by the MIT benchmark code.
EPS = 2.220446049250313e-16

# A map is constant when max - min <= CONSTANT_RTOL * max(|max|, |min|, TINY).
CONSTANT_RTOL = 1e-12
TINY = 2.2250738585072014e-308  # smallest normal float64


@njit
def is_constant_range(lo, hi):
    """True when a map with minimum ``lo`` and maximum ``hi`` counts as constant.

    ``hi - lo <= 1e-12 * max(|hi|, |lo|, tiny)``: exact constants, and constants
    spread over a few ulps by resampling. Every metric kernel (and the fused
    protocol kernels) decides "constant" with this one test.
    """
    scale = max(abs(hi), abs(lo), TINY)
    return hi - lo <= CONSTANT_RTOL * scale


@njit
def minmax(x):
    """Return ``(min, max)`` of a non-empty 1-D array in one pass."""
    lo = x[0]
    hi = x[0]
    for i in range(1, x.size):
        v = x[i]
        if v < lo:
            lo = v
        elif v > hi:
            hi = v
    return lo, hi


@njit
def mm_distribution(x):
    """Min-max normalise ``x`` then divide by its sum (MIT); a constant map becomes uniform."""
    lo, hi = minmax(x)
    out = np.empty(x.size)
    if is_constant_range(lo, hi):
        out[:] = 1.0 / x.size
        return out
    rng = hi - lo
    total = 0.0
    for i in range(x.size):
        out[i] = (x[i] - lo) / rng
        total += out[i]
    for i in range(x.size):
        out[i] /= total
    return out


@njit
def _bisect(sorted_values, v, strict):
    lo = 0
    hi = sorted_values.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if sorted_values[mid] < v or (not strict and sorted_values[mid] == v):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit
def count_le(sorted_values, v):
    """Number of entries of ascending ``sorted_values`` that are <= ``v`` (searchsorted right)."""
    return _bisect(sorted_values, v, False)


@njit
def count_lt(sorted_values, v):
    """Number of entries of ascending ``sorted_values`` that are < ``v`` (searchsorted left)."""
    return _bisect(sorted_values, v, True)


@njit
def count_true(mask):
    """Number of True entries of a 1-D bool array."""
    n = 0
    for i in range(mask.size):
        if mask[i]:
            n += 1
    return n


@njit
def mean_std(x, ddof):
    """Mean and standard deviation (``ddof`` 1: MATLAB's N-1, 0: NumPy's default), two passes."""
    n = x.size
    mean = 0.0
    for i in range(n):
        mean += x[i]
    mean /= n
    ss = 0.0
    for i in range(n):
        d = x[i] - mean
        ss += d * d
    return mean, math.sqrt(ss / (n - ddof))


@njit
def true_indices(mask):
    """Ascending indices of the True entries of a contiguous 1-D bool array (``np.flatnonzero``).

    Reads the mask eight entries at a time: fixation masks are mostly False.
    """
    n = mask.size
    out = np.empty(count_true(mask), dtype=np.int64)
    k = 0
    n8 = n - n % 8
    words = mask[:n8].view(np.uint64)
    for w in range(words.size):
        if words[w] != 0:
            for i in range(8 * w, 8 * w + 8):
                if mask[i]:
                    out[k] = i
                    k += 1
    for i in range(n8, n):
        if mask[i]:
            out[k] = i
            k += 1
    return out


@njit
def masked_values(x, mask):
    """``x[mask]`` for 1-D arrays, as a new array."""
    return x[true_indices(mask)]


@njit
def total(x):
    """``sum(x)`` accumulated in index order (the order every kernel's sums use)."""
    acc = 0.0
    for i in range(x.size):
        acc += x[i]
    return acc


@njit
def totals(x, y):
    """``(sum(x), sum(y))``, each accumulated in index order, in one pass."""
    a = 0.0
    b = 0.0
    for i in range(x.size):
        a += x[i]
        b += y[i]
    return a, b


@njit
def mm_total(x, lo, hi):
    """``sum((x - lo) / (hi - lo))`` in index order: :func:`mm_distribution`'s normaliser (1.0 if constant)."""
    if is_constant_range(lo, hi):
        return 1.0
    rng = hi - lo
    buf = np.empty(256)
    acc = 0.0
    for b0 in range(0, x.size, 256):  # a block at a time: the divisions vectorise, the sum stays in order
        m = min(256, x.size - b0)
        for j in range(m):
            buf[j] = (x[b0 + j] - lo) / rng
        for j in range(m):
            acc += buf[j]
    return acc


@njit
def mm_value(v, lo, hi, tot, n):
    """One entry of :func:`mm_distribution` from ``lo``, ``hi`` and :func:`mm_total`: the same double."""
    if is_constant_range(lo, hi):
        return 1.0 / n
    return ((v - lo) / (hi - lo)) / tot
