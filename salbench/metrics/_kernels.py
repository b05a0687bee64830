"""Numba helpers shared by the metric kernels (flat float64 maps, bool masks).

Every kernel works on 1-D views of C-contiguous maps. Constant maps are
detected from the range (:func:`is_constant_range`) rather than ``std == 0``:
the floating-point mean of a constant map need not equal the constant, so
``x - mean`` can be a tiny nonzero number and a std test would let noise
through. The range test is relative (``CONSTANT_RTOL``) so that a constant map
spread over a few ulps by a resize (bicubic weights do not sum to 1 exactly in
floating point) is still constant: see :mod:`salbench.metrics.degenerate`.

Sums over a whole map (:func:`total`, :func:`totals`, :func:`mean_std`, :func:`mm_total`,
CC's shifted sums, KLD's and SIM's sums) share one order, :data:`LANES` interleaved partial sums: lane ``j``
adds entries ``j, j + 256, j + 512, ...`` left to right, then the lanes are folded
in halves (lane ``j`` plus lane ``j + 128``, then ``j + 64``, ... down to one). Each
lane is a strict sum, so the compiler vectorises the loop without reassociating
anything (no fastmath): the value is the same double on every machine and vector
width, 3-5x faster than one serial chain, and no less accurate.
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


LANES = 256  # interleaved partial sums / extremes of the whole-map reductions (module docstring)


@njit
def fold_lanes(acc):
    """Sum of the :data:`LANES` partial sums ``acc`` by halving (in place); the lane order's last step."""
    h = acc.size
    while h > 1:
        h //= 2
        for j in range(h):
            acc[j] = acc[j] + acc[j + h]
    return acc[0]


@njit
def minmax(x):
    """Return ``(min, max)`` of a non-empty 1-D array of finite values in one pass.

    Per-lane extremes (vectorised); the extremes of finite values do not depend on the
    order they are visited in.
    """
    lo = np.full(LANES, x[0])
    hi = np.full(LANES, x[0])
    for b0 in range(0, x.size, LANES):
        blk = x[b0:b0 + LANES]  # a slice indexed from 0: contiguous vector loads
        for j in range(blk.size):
            lo[j] = min(lo[j], blk[j])
            hi[j] = max(hi[j], blk[j])
    return lo.min(), hi.max()


@njit
def mm_distribution(x):
    """Min-max normalise ``x`` then divide by its sum (MIT); a constant map becomes uniform."""
    lo, hi = minmax(x)
    out = np.empty(x.size)
    if is_constant_range(lo, hi):
        out[:] = 1.0 / x.size
        return out
    rng = hi - lo
    for i in range(x.size):
        out[i] = (x[i] - lo) / rng
    tot = total(out)  # the lane order: mm_total's double
    for i in range(x.size):
        out[i] /= tot
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
    """Mean and standard deviation (``ddof`` 1: MATLAB's N-1, 0: NumPy's default), two passes.

    The mean is :func:`total` over n, the spread :func:`centred_squares` about it (the
    ``mit`` fused kernel computes NSS from the same two calls).
    """
    n = x.size
    mean = total(x) / n
    return mean, math.sqrt(centred_squares(x, mean) / (n - ddof))


@njit
def true_indices(mask):
    """Ascending indices of the True entries of a contiguous 1-D bool array (``np.flatnonzero``).

    Reads the mask eight entries at a time: fixation masks are mostly False.
    """
    return true_indices_counted(mask, count_true(mask))


@njit
def true_indices_counted(mask, count):
    """:func:`true_indices` when the caller knows ``count``, the number of True entries (one pass, not two)."""
    n = mask.size
    out = np.empty(count, dtype=np.int64)
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
    """``sum(x)`` in the lane order of every whole-map sum (module docstring)."""
    acc = np.zeros(LANES)
    for b0 in range(0, x.size, LANES):
        blk = x[b0:b0 + LANES]
        for j in range(blk.size):
            acc[j] += blk[j]
    return fold_lanes(acc)


@njit
def totals(x, y):
    """``(total(x), total(y))`` in one pass (the same doubles)."""
    a = np.zeros(LANES)
    b = np.zeros(LANES)
    for b0 in range(0, x.size, LANES):
        xb = x[b0:b0 + LANES]
        yb = y[b0:b0 + LANES]
        for j in range(xb.size):
            a[j] += xb[j]
            b[j] += yb[j]
    return fold_lanes(a), fold_lanes(b)


@njit
def centred_squares(x, m):
    """``sum((x - m) ** 2)`` in lane order."""
    acc = np.zeros(LANES)
    for b0 in range(0, x.size, LANES):
        blk = x[b0:b0 + LANES]
        for j in range(blk.size):
            d = blk[j] - m
            acc[j] += d * d
    return fold_lanes(acc)


@njit
def mm_total(x, lo, hi):
    """``sum((x - lo) / (hi - lo))`` in lane order: :func:`mm_distribution`'s normaliser (1.0 if constant)."""
    if is_constant_range(lo, hi):
        return 1.0
    rng = hi - lo
    acc = np.zeros(LANES)
    for b0 in range(0, x.size, LANES):
        blk = x[b0:b0 + LANES]
        for j in range(blk.size):
            acc[j] += (blk[j] - lo) / rng
    return fold_lanes(acc)


@njit
def mm_value(v, lo, hi, tot, n):
    """One entry of :func:`mm_distribution` from ``lo``, ``hi`` and :func:`mm_total`: the same double."""
    if is_constant_range(lo, hi):
        return 1.0 / n
    return ((v - lo) / (hi - lo)) / tot
