"""MATLAB ``imresize`` (bicubic, antialiased when shrinking) to a few cells, for EMD.

:func:`matlab_resize_matrix` is MATLAB's ``contributions`` along one axis as a dense
matrix; :func:`resize` applies the two axes with a Numba kernel that reads only each
output cell's band of input pixels (a 1/32 shrink reads 130 of 600 rows per cell). Not
BLAS: a small matrix product in multithreaded OpenBLAS was 10-30x slower than this on a
busy machine (its threads spin), and the kernel releases the GIL, so scoring threads run
in parallel.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from salbench._numba import njit

__all__ = ["matlab_resize_matrix", "resize"]


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB imresize's cubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=32)
def matlab_resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """``(out_len, in_len)`` matrix of MATLAB ``imresize``'s bicubic resize along one axis.

    MATLAB's ``contributions``: output pixel ``x`` (1-based) reads input coordinate
    ``u = x / scale + 0.5 * (1 - 1 / scale)``; when shrinking (``scale < 1``) the
    kernel is ``scale * cubic(scale * d)`` with width ``4 / scale`` (antialiasing);
    weights are normalised to sum 1 and out-of-range taps are mirrored
    (symmetric padding). Read-only (cached).
    """
    if scale < 1:
        width = 4.0 / scale
        kernel = lambda d: scale * _cubic(scale * d)  # noqa: E731
    else:
        width = 4.0
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    m = np.zeros((out_len, in_len))
    np.add.at(m, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
    m.flags.writeable = False
    return m


@functools.lru_cache(maxsize=32)
def _banded(in_len: int, out_len: int, scale: float):
    """The resize matrix with each row's first and one-past-last nonzero column."""
    m = matlab_resize_matrix(in_len, out_len, scale)
    nz = m != 0
    lo = np.argmax(nz, axis=1).astype(np.int64)
    hi = (in_len - np.argmax(nz[:, ::-1], axis=1)).astype(np.int64)
    lo.flags.writeable = hi.flags.writeable = False
    return m, lo, hi


@njit
def _resize_kernel(a, rows, r_lo, r_hi, cols, c_lo, c_hi):  # pragma: no cover - compiled
    oh, ow = rows.shape[0], cols.shape[0]
    w = a.shape[1]
    tmp = np.zeros((oh, w))
    for i in range(oh):  # rows: each output row sums its band of input rows
        for k in range(r_lo[i], r_hi[i]):
            wk = rows[i, k]
            for x in range(w):
                tmp[i, x] += wk * a[k, x]
    out = np.empty((oh, ow))
    for i in range(oh):  # then columns
        for j in range(ow):
            acc = 0.0
            for x in range(c_lo[j], c_hi[j]):
                acc += cols[j, x] * tmp[i, x]
            out[i, j] = acc
    return out


def resize(a: np.ndarray, out_shape, scales) -> np.ndarray:
    """MATLAB ``imresize(a, ...)`` bicubic (antialiased when shrinking), rows then columns.

    Parameters
    ----------
    a : ndarray, shape (H, W), float64
    out_shape : (int, int)
    scales : (float, float)
        Scale per axis, as MATLAB derives it (``1/32``, or ``out / in`` for a given size).

    Notes
    -----
    MATLAB resizes the dimension with the smaller scale first; the two orders agree
    up to rounding (about 1e-16 relative).
    """
    rows, r_lo, r_hi = _banded(a.shape[0], int(out_shape[0]), float(scales[0]))
    cols, c_lo, c_hi = _banded(a.shape[1], int(out_shape[1]), float(scales[1]))
    return _resize_kernel(np.ascontiguousarray(a, dtype=np.float64), rows, r_lo, r_hi, cols, c_lo, c_hi)
