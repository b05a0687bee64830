"""Fused kernel of the ``mit`` protocol: up to eight metrics of a stack of images, in parallel.

Each image runs the single-image metric kernels of :mod:`salbench.metrics` through their
``*_core`` functions (so the values are those of the public functions, bit for bit), but
what several metrics read is computed once per image: the extremes of both maps, their
sums (NSS, KLD), their min-max totals (SIM, IG), the fixated pixels' indices, and the
cell histograms of the fixated, other and all pixels (AUC-Borji and sAUC). The IG baseline's distribution is
computed once per image size (the caller caches it), and the hypergeometric draws use a
log-factorial table. The protocol calls :func:`mit_image` per image in the worker threads.
"""

from __future__ import annotations

import math

import numpy as np
from salbench._numba import njit
from salbench.metrics._kernels import (centred_squares, is_constant_range, minmax, mm_distribution, mm_total, total,
                                       totals, true_indices)
from salbench.metrics.auc import _auc_judd_core, _auc_judd_kernel
from salbench.metrics.auc_sampled import _cell_hists_core, _sampled_auc
from salbench.metrics.correlation import _cc_core, _cc_kernel, _nss_from, _nss_kernel
from salbench.metrics.distribution import (_info_gain_core, _info_gain_kernel, _kld_core, _kld_kernel, _sim_core,
                                           _sim_kernel, _without_mass)

# column (output order of :func:`mit_batch`) -> the registry kernel it computes (None: the sampled
# AUCs, built from the cell histograms and draws behind ``auc_borji`` / ``auc_shuffled``); the
# protocol uses a column only while the registry still declares that kernel
MIT_KERNELS = {"cc": _cc_kernel, "nss": _nss_kernel, "auc_judd": _auc_judd_kernel, "auc_borji": None,
               "auc_shuffled": None, "kld": _kld_kernel, "sim": _sim_kernel, "info_gain": _info_gain_kernel}


@njit
def _one_image(si, gi, fi, oi, b, t, splits, kseeds, include_endpoint, want, logfact, out):
    """``out[:8]`` for one image (flat maps); what several columns read is computed once."""
    n = si.size
    s_lo, s_hi = minmax(si)
    want_g = want[0] or want[5] or want[6]
    g_lo = g_hi = 0.0
    if want_g:
        g_lo, g_hi = minmax(gi)
    want_f = want[1] or want[2] or want[3] or want[4] or want[7]
    fix_idx = true_indices(fi) if want_f else np.empty(0, dtype=np.int64)
    # plain sums: NSS's mean, KLD's normalisers
    s_sum = g_sum = 0.0
    if want[5]:
        s_sum, g_sum = totals(si, gi)
    elif want[1]:
        s_sum = total(si)
    s_const = is_constant_range(s_lo, s_hi)
    if want[0]:
        out[0] = _cc_core(si, gi, s_lo, s_hi, g_lo, g_hi)
    if want[1]:
        if fix_idx.size == 0:
            out[1] = np.nan
        elif s_const:
            out[1] = 0.0
        else:
            mean = s_sum / n  # as mean_std(s, 1)
            out[1] = _nss_from(si, fix_idx, mean, math.sqrt(centred_squares(si, mean) / (n - 1)))
    if want[2]:
        out[2] = _auc_judd_core(si, fix_idx, s_lo, s_hi)
    if want[3] or want[4]:
        oth_idx = true_indices(oi) if want[4] else fix_idx
        h_all, h_pos, h_oth = _cell_hists_core(si, fix_idx, oth_idx, t, s_lo, s_hi, want[3])
        n_pos = fix_idx.size
        n_oth = oth_idx.size
        if n_pos >= 2:
            if want[3]:
                out[3] = _sampled_auc(h_pos, h_all, n_pos, True, include_endpoint, splits, kseeds[0], logfact)
            if want[4] and n_oth > 0:
                out[4] = _sampled_auc(h_pos, h_oth, min(n_pos, n_oth), False, include_endpoint, splits, kseeds[1],
                                      logfact)
    if want[5]:
        out[5] = _kld_core(si, gi, s_lo, s_hi, s_sum, g_lo, g_hi, g_sum)
    s_mm = 1.0
    if want[6] or want[7]:
        s_mm = mm_total(si, s_lo, s_hi)
    if want[6]:
        out[6] = np.nan if _without_mass(g_lo, g_hi) else _sim_core(si, gi, s_lo, s_hi, s_mm, g_lo, g_hi,
                                                                      mm_total(gi, g_lo, g_hi))
    if want[7]:
        out[7] = _info_gain_core(si, fix_idx, s_lo, s_hi, s_mm, b)


@njit
def mit_image(s, g, f, other, base_dist, t, splits, kseeds, include_endpoint, want, logfact):
    """Scores ``(8,)`` in :data:`MIT_KERNELS` order for one image's flat maps (``H*W``).

    ``s`` saliency, ``g`` density (float64); ``f``, ``other`` bool masks; ``base_dist``
    ``mm_distribution`` of the IG baseline (:func:`baseline_distribution`); ``kseeds`` (2,)
    kernel seeds of the Borji and sAUC draws; ``want`` (8,) bool: the columns to compute
    (the others stay NaN, and an input only they read may be an empty stand-in). Releases
    the GIL: the workers that prepare images call it side by side.
    """
    out = np.full(8, np.nan)
    _one_image(s, g, f, other, base_dist, t, splits, kseeds, include_endpoint, want, logfact, out)
    return out


@njit
def baseline_distribution(base):
    """``mm_distribution`` of the flat IG baseline (the same for every image of a size)."""
    return mm_distribution(base)
