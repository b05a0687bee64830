"""Fused per-image kernel of the coursework protocol (Numba, parallel over images).

Each thread takes a contiguous block of images and reuses its buffers (no
per-image allocation). Per image:

1. Pillow-exact bicubic upsampling of the uint8 prediction (integer arithmetic
   as Pillow's, int32 when the weights allow it so the vertical pass vectorises
   16 lanes wide), written as ``uint8 / 255`` floats into a buffer padded with
   the blur's reflected rows;
2. the sigma-2 Gaussian blur row by row, same operation order as scipy (so the
   values are bit-identical), with min/max taken from the row
   while it is in L1 (per-column accumulators, so the loops vectorise); CC against the
   min-max normalised target through the registry's CC kernel (:func:`_cc_kernel`);
3. the threshold-cell histogram of the fixated / other / all pixels, with the
   cell of a pixel found from precomputed cell boundaries in saliency units
   (exact: the min-max map is monotone in the saliency value), no division;
4. binned AUC-Borji and sAUC draws (:mod:`salbench.metrics.auc_sampled`), with
   a log-factorial table instead of ``lgamma`` calls (same values).

Ground-truth-side arrays (uint8 CC targets, packed fixation bits) are prepared once per
dataset and cached on disk (:mod:`salbench.protocols.coursework`).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from salbench._numba import njit
from salbench.metrics.auc_sampled import _sampled_auc, cell_boundaries, cell_in
from salbench.metrics.correlation import _cc_kernel
from salbench.protocols._resize import PRECISION_BITS, _reflect, blur_line

U8_TO_FLOAT = np.arange(256) / 255.0


@njit
def _pillow_horizontal(src, hb, hk, tmp):
    """Pillow's horizontal pass (8-bit): ``tmp[y, xx]`` = clipped fixed-point sum."""
    half = 1 << (PRECISION_BITS - 1)
    for y in range(src.shape[0]):
        for xx in range(tmp.shape[1]):
            acc = half
            x0 = hb[xx, 0]
            for x in range(hb[xx, 1]):
                acc += np.int64(src[y, x0 + x]) * hk[xx, x]
            v = acc >> PRECISION_BITS
            tmp[y, xx] = 0 if v < 0 else (255 if v > 255 else v)


@njit
def _pillow_vertical_row(tmp, y0, n, k, acc, out_row):
    """One output row of Pillow's vertical pass, as ``uint8 / 255`` floats."""
    W = acc.size
    half = 1 << (PRECISION_BITS - 1)
    for x in range(W):
        acc[x] = half
    for y in range(n):
        kk = k[y]
        src = tmp[y0 + y]
        for x in range(W):
            acc[x] += src[x] * kk
    for x in range(W):
        v = acc[x] >> PRECISION_BITS
        acc[x] = 0 if v < 0 else (255 if v > 255 else v)
    for x in range(W):
        out_row[x] = U8_TO_FLOAT[acc[x]]  # v / 255.0 from a table: no division


@njit
def _upsample_padded(src, hb, hk, vb, vk, tmp, acc, a, r):
    """Upsampled map in ``a[r:r+H]``; rows ``a[:r]`` and ``a[r+H:]`` are scipy-reflect copies."""
    H = a.shape[0] - 2 * r
    _pillow_horizontal(src, hb, hk, tmp)
    for yy in range(H):
        _pillow_vertical_row(tmp, vb[yy, 0], vb[yy, 1], vk[yy], acc, a[r + yy])
    for i in range(-r, 0):
        a[r + i, :] = a[r + _reflect(i, H)]
    for i in range(H, H + r):
        a[r + i, :] = a[r + _reflect(i, H)]


@njit
def _blur_row(a, y, w, t, row, out_row):
    """Row ``y`` of scipy's ``gaussian_filter`` (axis 0 then axis 1, reflect) of padded ``a``.

    Same operations in the same order as scipy's symmetric ``correlate1d``: centre tap
    times its weight, then the tap pairs from the outermost in.
    """
    W = t.size
    r = w.size // 2
    w0 = w[r]
    c = a[y + r]
    for x in range(W):
        t[x] = c[x] * w0
    for k in range(r, 0, -1):
        ra = a[y + r - k]
        rb = a[y + r + k]
        wk = w[r + k]
        for x in range(W):
            t[x] += (ra[x] + rb[x]) * wk
    blur_line(t, w, row, out_row)


@njit
def _blur_row_r8(a, y, w, row, o, st):
    """:func:`_blur_row` for 17 taps (sigma 2, truncate 4), then the row's min/max, fused.

    Unrolled, with the same operations in the same order as scipy: keeping the
    running value in a register instead of a row buffer is ~3x faster.
    """
    W = o.size
    lo = st[0]
    hi = st[1]
    w0 = w[8]
    w1 = w[9]
    w2 = w[10]
    w3 = w[11]
    w4 = w[12]
    w5 = w[13]
    w6 = w[14]
    w7 = w[15]
    w8 = w[16]
    m8, m7, m6, m5, m4, m3, m2, m1 = a[y], a[y + 1], a[y + 2], a[y + 3], a[y + 4], a[y + 5], a[y + 6], a[y + 7]
    c = a[y + 8]
    p1, p2, p3, p4 = a[y + 9], a[y + 10], a[y + 11], a[y + 12]
    p5, p6, p7, p8 = a[y + 13], a[y + 14], a[y + 15], a[y + 16]
    for x in range(W):
        v = c[x] * w0
        v += (m8[x] + p8[x]) * w8
        v += (m7[x] + p7[x]) * w7
        v += (m6[x] + p6[x]) * w6
        v += (m5[x] + p5[x]) * w5
        v += (m4[x] + p4[x]) * w4
        v += (m3[x] + p3[x]) * w3
        v += (m2[x] + p2[x]) * w2
        v += (m1[x] + p1[x]) * w1
        row[8 + x] = v
    for k in range(1, 9):
        row[8 - k] = row[8 + _reflect(-k, W)]
        row[8 + W - 1 + k] = row[8 + _reflect(W - 1 + k, W)]
    for x in range(W):
        v = row[x + 8] * w0
        v += (row[x] + row[x + 16]) * w8
        v += (row[x + 1] + row[x + 15]) * w7
        v += (row[x + 2] + row[x + 14]) * w6
        v += (row[x + 3] + row[x + 13]) * w5
        v += (row[x + 4] + row[x + 12]) * w4
        v += (row[x + 5] + row[x + 11]) * w3
        v += (row[x + 6] + row[x + 10]) * w2
        v += (row[x + 7] + row[x + 9]) * w1
        o[x] = v
        lo[x] = min(lo[x], v)  # the min/max of _row_minmax, while v is in a register
        hi[x] = max(hi[x], v)


@njit
def _row_minmax(v, st):
    """Fold row ``v`` into per-column min/max accumulators ``st`` (2, W).

    Element-wise across columns, so it vectorises; :func:`_total_minmax` reduces the columns.
    """
    lo = st[0]
    hi = st[1]
    for x in range(v.size):
        x_ = v[x]
        lo[x] = min(lo[x], x_)
        hi[x] = max(hi[x], x_)


@njit
def _total_minmax(st):
    lo = st[0, 0]
    hi = st[1, 0]
    for x in range(1, st.shape[1]):
        lo = min(lo, st[0, x])
        hi = max(hi, st[1, x])
    return lo, hi


@njit
def _minmax_target(t, g):
    """``g = (t - min) / (max - min)`` as float64 (all zeros when ``t`` is constant), as NumPy computes it."""
    lo = np.float64(t[0])
    hi = lo
    for k in range(t.size):
        v = np.float64(t[k])
        lo = min(lo, v)
        hi = max(hi, v)
    if hi > lo:
        r = hi - lo
        for k in range(t.size):
            g[k] = (np.float64(t[k]) - lo) / r
    else:
        g[:] = 0.0


@njit
def _class_hist(sf, fb, obits, lo, hi, t, hist):
    """Add ``hist[copy, cell, cls]`` over all pixels; cls bit 0 = fixated, bit 1 = in the other map.

    Cells come from :func:`cell_in` (exact). Fast path: ``x = (v - lo) / (step * (hi - lo))``
    is within a few ulps of ``u / step``, so a pixel whose ``x`` is farther than 1e-9 from
    every integer lies strictly inside threshold interval ``floor(x)`` (cell ``2 floor(x) + 1``);
    that test vectorises, and only the rare pixels near a threshold take the exact lookup.
    The four copies (by pixel index) keep runs of pixels in one cell from waiting on each
    other's increments.
    """
    n_pix = sf.size
    one = np.uint64(1)
    cells = np.empty(64, dtype=np.int64)
    if not hi > lo:  # constant map: every normalised value is 0, cell 0
        cells[:] = 0
    else:
        b, e = cell_boundaries(lo, hi, t)
        step = t[1] - t[0] if t.size > 1 else 1.0
        inv = 1.0 / (step * (hi - lo))
        fast = t.size > 1 and step >= 1e-5
        kmax = t.size - 1
    for q in range(fb.size):
        base = q << 6
        m = min(64, n_pix - base)
        if hi > lo:
            for j in range(m):
                xv = (sf[base + j] - lo) * inv
                k0 = int(xv)
                f = xv - k0
                cells[j] = 2 * k0 + 1 if (f > 1e-9 and f < 1.0 - 1e-9 and k0 < kmax and fast) else -1
            for j in range(m):
                if cells[j] < 0:
                    cells[j] = cell_in(sf[base + j], lo, inv, b, e)
        wf = fb[q]
        wo = obits[q]
        for j in range(m):
            cls = (wf & one) | ((wo & one) << one)
            wf >>= one
            wo >>= one
            hist[j & 3, cells[j], cls] += 1


@njit(parallel=True)
def coursework_batch(preds, hb, hk, vb, vk, w, targets, fixbits, obits, t,
                     splits, seeds, with_blur, include_endpoint, logfact, n_threads, want, H, W):
    """CC, AUC-Borji and sAUC (coursework conventions, the ``want`` ones) for every image.

    Parameters
    ----------
    preds : (N, h, w) uint8 quantised predictions.
    hb, hk, vb, vk : Pillow coefficients (:func:`pillow_coeffs`); ``vk`` int32 or int64.
    w : blur weights (odd length; ``[1.0]`` for no blur).
    targets : (N, H, W) uint8 CC targets (``gaussian_filter(y_original, 19)`` on the uint8 map);
        min-max normalised here, then CC is the registry's kernel :func:`_cc_kernel`. Unread
        (may be empty) when CC is not wanted.
    fixbits : (N, words) uint64 packed ``y_original > 0`` of each image.
    obits : (N, words) uint64 packed sAUC "other" map of each image (OR of the drawn images' bits).
    seeds : (N, 2) int64 seeds of the Borji and sAUC draws.
    logfact : ``log(k!)`` table for the hypergeometric draws (:func:`log_factorials`).
    want : (3,) bool: compute CC, AUC-Borji, sAUC (a column not wanted stays NaN; ``obits``
        is unread, and may be empty, when sAUC is not, ``fixbits`` when neither AUC is).
    H, W : the ground truth's size.
    """
    n_img = preds.shape[0]
    n_thr = t.size
    r = w.size // 2 if with_blur else 0
    out = np.full((n_img, 3), np.nan)
    n_blocks = min(n_img, 4 * n_threads)
    for blk in prange(n_blocks):
        tmp = np.empty((preds.shape[1], W), dtype=vk.dtype)
        acc = np.empty(W, dtype=vk.dtype)
        a = np.empty((H + 2 * r, W))
        s = np.empty((H, W))
        trow = np.empty(W)
        row = np.empty(W + 2 * r)
        st = np.empty((2, W))
        g = np.empty(H * W)
        hist4 = np.empty((4, 2 * n_thr, 4), dtype=np.int64)
        for i in range(blk * n_img // n_blocks, (blk + 1) * n_img // n_blocks):
            _upsample_padded(preds[i], hb, hk, vb, vk, tmp, acc, a, r)
            st[0] = np.inf
            st[1] = -np.inf
            for y in range(H):
                if with_blur and r == 8:
                    _blur_row_r8(a, y, w, row, s[y], st)
                    continue
                if with_blur:
                    _blur_row(a, y, w, trow, row, s[y])
                else:
                    s[y, :] = a[y]
                _row_minmax(s[y], st)
            lo, hi = _total_minmax(st)
            sf = s.ravel()
            if want[0]:
                _minmax_target(targets[i].ravel(), g)
                out[i, 0] = _cc_kernel(sf, g)
            if not (want[1] or want[2]):
                continue
            hist4[:] = 0
            _class_hist(sf, fixbits[i], obits[i] if want[2] else fixbits[i], lo, hi, t, hist4)
            hist = hist4[0] + hist4[1] + hist4[2] + hist4[3]
            h_all = hist[:, 0] + hist[:, 1] + hist[:, 2] + hist[:, 3]
            h_pos = hist[:, 1] + hist[:, 3]
            h_oth = hist[:, 2] + hist[:, 3]
            n_pos = h_pos.sum()
            n_oth = h_oth.sum()
            if n_pos >= 2:
                if want[1]:
                    out[i, 1] = _sampled_auc(h_pos, h_all, n_pos, True, include_endpoint, splits, seeds[i, 0],
                                             logfact)
                if want[2] and n_oth > 0:
                    out[i, 2] = _sampled_auc(h_pos, h_oth, min(n_pos, n_oth), False, include_endpoint, splits,
                                             seeds[i, 1], logfact)
    return out
