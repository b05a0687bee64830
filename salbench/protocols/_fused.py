"""Fused per-image kernel of the coursework protocol (Numba, parallel over images).

One task per image: Pillow-exact bicubic upsampling of the uint8 prediction,
sigma-2 Gaussian blur (scipy reflect mode), then one pass for min/max and the
CC sums, one pass for the threshold-cell histograms of the fixated / other /
all pixels, and the binned AUC-Borji and sAUC draws. Ground-truth-side arrays
(centred CC target, packed fixation bits) are prepared once per dataset.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from salbench._numba import njit
from salbench.metrics.auc_sampled import _cell_of, _sampled_auc
from salbench.protocols._resize import PRECISION_BITS, _clip8, blur_rows_cols


@njit
def _upsample_to_float(src, hb, hk, vb, vk, tmp, out):
    """Pillow bicubic (uint8 in, uint8 result) written as ``uint8 / 255`` floats."""
    h = src.shape[0]
    H, W = out.shape
    half = 1 << (PRECISION_BITS - 1)
    for y in range(h):
        for xx in range(W):
            acc = half
            x0 = hb[xx, 0]
            for x in range(hb[xx, 1]):
                acc += np.int64(src[y, x0 + x]) * hk[xx, x]
            tmp[y, xx] = _clip8(acc)
    acc = np.empty(W, dtype=np.int64)
    for yy in range(H):  # taps outside, columns inside: the inner loop vectorises
        y0 = vb[yy, 0]
        for xx in range(W):
            acc[xx] = half
        for y in range(vb[yy, 1]):
            k = vk[yy, y]
            src_row = tmp[y0 + y]
            for xx in range(W):
                acc[xx] += src_row[xx] * k
        o = out[yy]
        for xx in range(W):
            o[xx] = _clip8(acc[xx]) / 255.0


@njit(parallel=True)
def coursework_batch(preds, hb, hk, vb, vk, w, gc, gnorm, fixbits, others, t,
                     splits, seeds, with_blur, include_endpoint):
    """CC, AUC-Borji and sAUC (coursework conventions) for every image.

    Parameters
    ----------
    preds : (N, h, w) uint8 quantised predictions.
    gc : (N, H, W) float64 centred CC target; gnorm : (N,) its L2 norm.
    fixbits : (N, words) uint64 packed ``y_original > 0``.
    others : (N, k) int64 images whose fixation bits OR into the sAUC "other" map.
    seeds : (N, 2) int64 seeds of the Borji and sAUC draws.
    """
    n_img = preds.shape[0]
    H = gc.shape[1]
    W = gc.shape[2]
    n_pix = H * W
    n_thr = t.size
    out = np.empty((n_img, 3))
    for i in prange(n_img):
        tmp = np.empty((preds.shape[1], W), dtype=np.int64)
        a = np.empty((H, W))
        b = np.empty((H, W))
        s = np.empty((H, W))
        _upsample_to_float(preds[i], hb, hk, vb, vk, tmp, a)
        if with_blur:
            blur_rows_cols(a, w, b, s, False)
        else:
            s[:, :] = a
        sf = s.ravel()
        g = gc[i].ravel()
        lo = sf[0]
        hi = sf[0]
        sm = 0.0
        sq = 0.0
        sg = 0.0
        for j in range(n_pix):
            v = sf[j]
            lo = min(lo, v)
            hi = max(hi, v)
            sm += v
            sq += v * v
            sg += v * g[j]
        var = sq - sm * sm / n_pix
        if var > 0.0 and gnorm[i] > 0.0:
            out[i, 0] = sg / (math.sqrt(var) * gnorm[i])
        else:
            out[i, 0] = np.nan
        # "other" map: OR of the packed fixation bits of the drawn images
        words = fixbits.shape[1]
        obits = np.zeros(words, dtype=np.uint64)
        for k in range(others.shape[1]):
            o = others[i, k]
            for q in range(words):
                obits[q] |= fixbits[o, q]
        fb = fixbits[i]
        # histogram over (cell, class): class bit 0 = fixated, bit 1 = in other
        hist = np.zeros((2 * n_thr, 4), dtype=np.int64)
        rng = hi - lo
        for j in range(n_pix):
            u = (sf[j] - lo) / rng if rng > 0.0 else 0.0
            c = _cell_of(u, t)
            q = j >> 6
            bit = np.uint64(1) << np.uint64(j & 63)
            cls = (1 if (fb[q] & bit) != 0 else 0) + (2 if (obits[q] & bit) != 0 else 0)
            hist[c, cls] += 1
        h_all = np.zeros(2 * n_thr, dtype=np.int64)
        h_pos = np.zeros(2 * n_thr, dtype=np.int64)
        h_oth = np.zeros(2 * n_thr, dtype=np.int64)
        for c in range(2 * n_thr):
            h_all[c] = hist[c, 0] + hist[c, 1] + hist[c, 2] + hist[c, 3]
            h_pos[c] = hist[c, 1] + hist[c, 3]
            h_oth[c] = hist[c, 2] + hist[c, 3]
        n_pos = h_pos.sum()
        n_oth = h_oth.sum()
        if n_pos < 2:
            out[i, 1] = np.nan
            out[i, 2] = np.nan
        else:
            out[i, 1] = _sampled_auc(h_pos, h_all, n_pos, True, include_endpoint, splits, seeds[i, 0])
            if n_oth == 0:
                out[i, 2] = np.nan
            else:
                out[i, 2] = _sampled_auc(h_pos, h_oth, min(n_pos, n_oth), False, include_endpoint, splits,
                                         seeds[i, 1])
    return out
