"""Resampling used by the protocols, each matching one reference implementation.

- :func:`pillow_bicubic_u8`: Pillow's 8-bit ``Image.resize(..., BICUBIC)`` (the coursework
  script), reproduced bit for bit: fixed-point coefficients (22 fractional bits),
  horizontal pass then vertical pass, each rounded and clipped to uint8
  (Pillow ``libImaging/Resample.c``).
- :func:`matlab_bicubic`: MATLAB ``imresize(..., 'bicubic')`` for upsampling
  (cubic kernel a = -0.5, pixel-centre aligned, edge replication).
- :func:`gaussian_blur`: ``scipy.ndimage.gaussian_filter`` (reflect mode, truncate 4.0)
  as a separable Numba kernel.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import prange

from salbench._numba import njit

PRECISION_BITS = 32 - 8 - 2  # Pillow: fixed-point fraction bits for 8-bit images


def _cubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


@functools.lru_cache(maxsize=16)
def pillow_coeffs(in_size: int, out_size: int):
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` for the bicubic filter.

    Returns ``(bounds, kk)``: per output pixel the first input index and tap
    count, and the fixed-point integer weights ``(out_size, ksize)``. Cached
    (read-only arrays): a pure-Python loop that costs ~10 ms per call.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    bounds = np.zeros((out_size, 2), dtype=np.int64)
    kk = np.zeros((out_size, ksize), dtype=np.int64)
    ss = 1.0 / filterscale
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = [_cubic((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = sum(w)
        for x in range(xmax):
            v = w[x] / ww if ww != 0.0 else w[x]
            if v < 0:
                kk[xx, x] = int(-0.5 + v * (1 << PRECISION_BITS))
            else:
                kk[xx, x] = int(0.5 + v * (1 << PRECISION_BITS))
        bounds[xx] = (xmin, xmax)
    bounds.flags.writeable = False
    kk.flags.writeable = False
    return bounds, kk


@njit
def _clip8(v):
    v >>= PRECISION_BITS
    if v < 0:
        return 0
    if v > 255:
        return 255
    return v


@njit
def _pillow_resize_one(src, hb, hk, vb, vk, out):
    """One uint8 image (h, w) -> ``out`` (H, W) uint8, Pillow's two passes."""
    h = src.shape[0]
    W = out.shape[1]
    H = out.shape[0]
    tmp = np.empty((h, W), dtype=np.int64)
    half = 1 << (PRECISION_BITS - 1)
    for y in range(h):
        for xx in range(W):
            acc = half
            x0 = hb[xx, 0]
            for x in range(hb[xx, 1]):
                acc += np.int64(src[y, x0 + x]) * hk[xx, x]
            tmp[y, xx] = _clip8(acc)
    for yy in range(H):
        y0 = vb[yy, 0]
        n = vb[yy, 1]
        for xx in range(W):
            acc = half
            for y in range(n):
                acc += tmp[y0 + y, xx] * vk[yy, y]
            out[yy, xx] = _clip8(acc)


@njit(parallel=True)
def _pillow_resize_batch(src, hb, hk, vb, vk, out):
    for i in prange(src.shape[0]):
        _pillow_resize_one(src[i], hb, hk, vb, vk, out[i])


def pillow_bicubic_u8(images, size_hw):
    """Upsample uint8 images ``(N, h, w)`` or ``(h, w)`` to ``size_hw`` exactly as Pillow's bicubic.

    Bit-exact for upsampling (tested); Pillow's downsizing takes other code paths.
    """
    a = np.ascontiguousarray(images, dtype=np.uint8)
    single = a.ndim == 2
    if single:
        a = a[None]
    H, W = size_hw
    hb, hk = pillow_coeffs(a.shape[2], W)
    vb, vk = pillow_coeffs(a.shape[1], H)
    out = np.empty((a.shape[0], H, W), dtype=np.uint8)
    _pillow_resize_batch(a, hb, hk, vb, vk, out)
    return out[0] if single else out


def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy's 1-D Gaussian weights: radius ``int(truncate*sigma + 0.5)``, normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (float(sigma) ** 2) * x**2)
    return phi / phi.sum()


@njit
def _reflect(i, n):
    """scipy 'reflect' (half-sample symmetric) index, for any offset."""
    if n == 1:
        return 0
    period = 2 * n
    i = i % period
    if i < 0:
        i += period
    return i if i < n else period - 1 - i


@njit
def blur_line(t, w, row, o):
    """One row of the axis-1 pass: ``t`` reflect-padded into ``row`` (W + 2r), correlated into ``o``."""
    W = t.size
    r = w.size // 2
    w0 = w[r]
    for x in range(W):
        row[r + x] = t[x]
    for k in range(1, r + 1):
        row[r - k] = t[_reflect(-k, W)]
        row[r + W - 1 + k] = t[_reflect(W - 1 + k, W)]
    for x in range(W):
        o[x] = row[r + x] * w0
    for k in range(r, 0, -1):  # scipy's order: outermost pair first
        wk = w[r + k]
        for x in range(W):
            o[x] += (row[r + x - k] + row[r + x + k]) * wk


@njit
def blur_rows_cols(a, w, tmp, out, truncate_passes=False):
    """Separable correlation with symmetric ``w``: axis 0 then axis 1, scipy reflect mode.

    ``truncate_passes`` mimics scipy on integer input: each pass is stored in the
    integer output array, i.e. truncated toward zero after axis 0 and after axis 1.
    """
    H, W = a.shape
    r = w.size // 2
    w0 = w[r]
    # axis 0, row by row (1-D row views let LLVM vectorise the inner loops)
    for y in range(H):
        t = tmp[y]
        c = a[y]
        for x in range(W):
            t[x] = c[x] * w0
        for k in range(r, 0, -1):  # scipy's order: outermost pair first
            ra = a[_reflect(y - k, H)]
            rb = a[_reflect(y + k, H)]
            wk = w[r + k]
            for x in range(W):
                t[x] += (ra[x] + rb[x]) * wk
        if truncate_passes:
            for x in range(W):
                t[x] = math.trunc(t[x])
    # axis 1, through a padded row buffer
    row = np.empty(W + 2 * r)
    for y in range(H):
        o = out[y]
        blur_line(tmp[y], w, row, o)
        if truncate_passes:
            for x in range(W):
                o[x] = math.trunc(o[x])


@njit(parallel=True)
def _blur_batch(a, w, out, truncate_passes):
    for i in prange(a.shape[0]):
        tmp = np.empty(a.shape[1:])
        blur_rows_cols(a[i], w, tmp, out[i], truncate_passes)


def gaussian_blur(images, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(image, sigma)`` for one map or a stack, as float64.

    Integer input behaves as scipy's: the result of each axis pass is truncated
    to an integer (scipy writes it into an output array of the input dtype).
    """
    arr = np.asarray(images)
    truncate_passes = bool(np.issubdtype(arr.dtype, np.integer))
    a = np.ascontiguousarray(arr, dtype=np.float64)
    single = a.ndim == 2
    if single:
        a = a[None]
    out = np.empty_like(a)
    _blur_batch(a, gaussian_weights(sigma, truncate), out, truncate_passes)
    return out[0] if single else out


def matlab_bicubic(image, size_hw) -> np.ndarray:
    """MATLAB ``imresize(image, size_hw, 'bicubic')`` for upsampling (no antialiasing needed).

    Output pixel centre ``u`` maps to input ``x = u/scale + 0.5*(1 - 1/scale)``
    (1-based); weights from the a = -0.5 cubic on the 4 nearest inputs,
    normalised; out-of-range indices replicate the edge (MATLAB's symmetric
    padding gives the same for the 4-tap upsampling case except at the border,
    where MATLAB mirrors: we mirror as MATLAB does).
    """
    a = np.asarray(image, dtype=np.float64)
    H, W = size_hw
    out = _matlab_axis(a, H, 0)
    return _matlab_axis(out, W, 1)


def _matlab_axis(a, out_len, axis):
    in_len = a.shape[axis]
    if in_len == out_len:
        return a.copy()
    weights, idx = _matlab_weights(in_len, out_len)
    moved = np.moveaxis(a, axis, 0)
    res = np.einsum("ok,ok...->o...", weights, moved[idx])
    return np.moveaxis(res, 0, axis)


@functools.lru_cache(maxsize=16)
def _matlab_weights(in_len, out_len):
    """imresize's cubic weights and (mirrored) source indices for one axis (cached, read-only)."""
    scale = out_len / in_len
    kernel_width = 4.0
    if scale < 1:  # downsampling: antialiased kernel, as MATLAB
        kernel_width /= scale
    u = np.arange(1, out_len + 1, dtype=np.float64)
    x = u / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(x - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    ind = left[:, None] + np.arange(p)[None, :]
    dist = x[:, None] - ind
    if scale < 1:
        weights = scale * np.vectorize(_cubic)(scale * dist)
    else:
        weights = np.vectorize(_cubic)(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    # MATLAB: symmetric padding, aux = [1:n, n:-1:1]
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx = aux[np.mod(ind.astype(np.int64) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)
    weights = np.ascontiguousarray(weights[:, keep])
    idx = np.ascontiguousarray(idx[:, keep])
    weights.flags.writeable = False
    idx.flags.writeable = False
    return weights, idx


def bilinear(image, size_hw) -> np.ndarray:
    """Pixel-centre-aligned bilinear resize (edge replicated), for upsampling."""
    a = np.asarray(image, dtype=np.float64)
    for axis, n_out in enumerate(size_hw):
        n_in = a.shape[axis]
        if n_in == n_out:
            continue
        x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        x = np.clip(x, 0.0, n_in - 1.0)
        i0 = np.floor(x).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        f = x - i0
        moved = np.moveaxis(a, axis, 0)
        shape = (-1,) + (1,) * (moved.ndim - 1)
        res = moved[i0] * (1.0 - f).reshape(shape) + moved[i1] * f.reshape(shape)
        a = np.moveaxis(res, 0, axis)
    return np.ascontiguousarray(a)
