"""Numba helpers shared by the metric kernels (flat float64 maps, bool masks).

Every kernel works on 1-D views of C-contiguous maps. Constant maps are
detected with ``max == min`` rather than ``std == 0``: the floating-point mean
of a constant map need not equal the constant, so ``x - mean`` can be a tiny
nonzero number and a std test would let noise through.
"""

from __future__ import annotations

import math

import numpy as np

from salbench._numba import njit

# MATLAB's eps, as used by the MIT benchmark code.
EPS = 2.220446049250313e-16


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
    if hi == lo:
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
def masked_values(x, mask):
    """``x[mask]`` for 1-D arrays, as a new array."""
    out = np.empty(count_true(mask))
    j = 0
    for i in range(mask.size):
        if mask[i]:
            out[j] = x[i]
            j += 1
    return out
