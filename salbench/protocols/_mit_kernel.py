"""Fused kernel of the ``mit`` protocol: up to eight metrics of a stack of images, in parallel.

Each image runs the single-image metric kernels of :mod:`salbench.metrics` (so the
values are those of the public functions), but the cell histograms of the
fixated, other and all pixels are built once for AUC-Borji and sAUC, the
hypergeometric draws use a log-factorial table, and images run under ``prange``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from salbench._numba import njit
from salbench.metrics.auc import _auc_judd_kernel
from salbench.metrics.auc_sampled import _cell_hists, _sampled_auc
from salbench.metrics.correlation import _cc_kernel, _nss_kernel
from salbench.metrics.distribution import _info_gain_kernel, _kld_kernel, _sim_kernel

# column (output order of :func:`mit_batch`) -> the registry kernel it calls (None: the sampled
# AUCs, built from the cell histograms and draws behind ``auc_borji`` / ``auc_shuffled``); the
# protocol uses a column only while the registry still declares that kernel
MIT_KERNELS = {"cc": _cc_kernel, "nss": _nss_kernel, "auc_judd": _auc_judd_kernel, "auc_borji": None,
               "auc_shuffled": None, "kld": _kld_kernel, "sim": _sim_kernel, "info_gain": _info_gain_kernel}


@njit(parallel=True)
def mit_batch(s, g, f, other, base, t, splits, kseeds, include_endpoint, want, logfact):
    """Scores ``(N, 8)`` in :data:`MIT_KERNELS` order for flat maps ``(N, H*W)``.

    ``s`` saliency, ``g`` density (float64); ``f``, ``other`` bool masks; ``base``
    (H*W,) IG baseline; ``kseeds`` (N, 2) kernel seeds of the Borji and sAUC draws;
    ``want`` (8,) bool: the columns to compute (the others stay NaN, and an input only
    they read may be an empty stand-in).
    """
    n = s.shape[0]
    out = np.full((n, 8), np.nan)
    for i in prange(n):
        si = s[i]
        if want[0]:
            out[i, 0] = _cc_kernel(si, g[i])
        if want[1]:
            out[i, 1] = _nss_kernel(si, f[i])
        if want[2]:
            out[i, 2] = _auc_judd_kernel(si, f[i])
        if want[3] or want[4]:
            h_all, h_pos, h_oth = _cell_hists(si, f[i], other[i] if want[4] else f[i], t)
            n_pos = h_pos.sum()
            n_oth = h_oth.sum()
            if n_pos >= 2:
                if want[3]:
                    out[i, 3] = _sampled_auc(h_pos, h_all, n_pos, True, include_endpoint, splits, kseeds[i, 0],
                                             logfact)
                if want[4] and n_oth > 0:
                    out[i, 4] = _sampled_auc(h_pos, h_oth, min(n_pos, n_oth), False, include_endpoint, splits,
                                             kseeds[i, 1], logfact)
        if want[5]:
            out[i, 5] = _kld_kernel(si, g[i])
        if want[6]:
            out[i, 6] = _sim_kernel(si, g[i])
        if want[7]:
            out[i, 7] = _info_gain_kernel(si, f[i], base)
    return out
