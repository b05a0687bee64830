"""Metrics that treat maps as probability distributions: KLD, SIM, information gain."""

from __future__ import annotations

import math

import numpy as np

from salbench._numba import njit
from salbench.metrics._kernels import (EPS, LANES, fold_lanes, is_constant_range, minmax, mm_distribution, mm_total,
                                      mm_value, totals, true_indices)
from salbench.metrics._validate import flat_inputs

@njit
def _shifted_total(x, lo, hi, plain_total):
    """The normaliser of KLD's distributions: ``sum(x - shift)``, ``shift = min(lo, 0)`` (pysaliency).

    ``plain_total`` is ``sum(x)`` (:func:`total`), the same sum when there is no shift.
    """
    if is_constant_range(lo, hi) or lo >= 0.0:
        return plain_total  # no shift: x - 0.0 is x, the same sum
    acc = np.zeros(LANES)
    for b0 in range(0, x.size, LANES):
        blk = x[b0:b0 + LANES]
        for j in range(blk.size):
            acc[j] += blk[j] - lo
    return fold_lanes(acc)


@njit
def _sum_values(x, b0, m, lo, hi, tot, out):
    """``out[:m]``: entries ``b0 .. b0 + m`` of KLD's distribution ``(x - shift) / sum(x - shift)``.

    A constant map (:func:`is_constant_range`, all-zero included) is the uniform
    distribution, exactly: a constant prediction scores as the uniform one.
    """
    if is_constant_range(lo, hi):
        out[:m] = 1.0 / x.size
        return
    shift = lo if lo < 0.0 else 0.0
    for j in range(m):
        out[j] = (x[b0 + j] - shift) / tot


@njit
def _mm_values(x, b0, m, lo, hi, tot, out):
    """``out[:m]``: entries ``b0 .. b0 + m`` of :func:`mm_distribution` (``tot``: :func:`mm_total`)."""
    if is_constant_range(lo, hi):
        out[:m] = 1.0 / x.size
        return
    rng = hi - lo
    for j in range(m):
        out[j] = ((x[b0 + j] - lo) / rng) / tot


@njit
def density_without_mass(g):
    """True when a ground-truth density carries no mass: constant and <= 0 (all zero, typically).

    The density metrics (KLD, SIM, EMD) return NaN for it: it is what an image
    without fixations yields. A constant *positive* density is the uniform one.
    """
    lo, hi = minmax(g)
    return _without_mass(lo, hi)


@njit
def _without_mass(lo, hi):
    return is_constant_range(lo, hi) and hi <= 0.0


@njit
def _kld_core(s, g, s_lo, s_hi, s_sum, g_lo, g_hi, g_sum):
    """KLD from the maps' extremes and plain sums (shared with the other metrics of a fused kernel)."""
    if _without_mass(g_lo, g_hi):
        return np.nan  # ground truth without mass
    n = s.size
    s_tot = _shifted_total(s, s_lo, s_hi, s_sum)
    g_tot = _shifted_total(g, g_lo, g_hi, g_sum)
    p = np.empty(LANES)
    q = np.empty(LANES)
    acc = np.zeros(LANES)
    for b0 in range(0, n, LANES):  # the distributions a block at a time (the divisions vectorise)
        m = min(LANES, n - b0)
        _sum_values(s, b0, m, s_lo, s_hi, s_tot, p)
        _sum_values(g, b0, m, g_lo, g_hi, g_tot, q)
        for j in range(m):
            acc[j] += q[j] * math.log(EPS + q[j] / (p[j] + EPS))
    return fold_lanes(acc)


@njit
def _kld_kernel(s, g):
    s_lo, s_hi = minmax(s)
    g_lo, g_hi = minmax(g)
    if _without_mass(g_lo, g_hi):
        return np.nan
    s_sum, g_sum = totals(s, g)
    return _kld_core(s, g, s_lo, s_hi, s_sum, g_lo, g_hi, g_sum)


@njit
def _sim_core(s, g, s_lo, s_hi, s_mm, g_lo, g_hi, g_mm):
    """SIM from the extremes and :func:`mm_total` of both maps."""
    if _without_mass(g_lo, g_hi):
        return np.nan  # ground truth without mass: nothing to intersect with
    n = s.size
    a = np.empty(LANES)
    b = np.empty(LANES)
    acc = np.zeros(LANES)
    for b0 in range(0, n, LANES):
        m = min(LANES, n - b0)
        _mm_values(s, b0, m, s_lo, s_hi, s_mm, a)
        _mm_values(g, b0, m, g_lo, g_hi, g_mm, b)
        for j in range(m):
            acc[j] += min(a[j], b[j])
    return fold_lanes(acc)


@njit
def _sim_kernel(s, g):
    s_lo, s_hi = minmax(s)
    g_lo, g_hi = minmax(g)
    if _without_mass(g_lo, g_hi):
        return np.nan
    return _sim_core(s, g, s_lo, s_hi, mm_total(s, s_lo, s_hi), g_lo, g_hi, mm_total(g, g_lo, g_hi))


@njit
def _info_gain_core(s, fix_idx, s_lo, s_hi, s_mm, b):
    """IG at the fixated pixels ``fix_idx`` (ascending); ``b`` is ``mm_distribution(baseline)``."""
    n_fix = fix_idx.size
    if n_fix == 0:
        return np.nan
    n = s.size
    acc = 0.0
    for k in range(n_fix):
        i = fix_idx[k]
        acc += math.log2(EPS + mm_value(s[i], s_lo, s_hi, s_mm, n)) - math.log2(EPS + b[i])
    return acc / n_fix


@njit
def _info_gain_kernel(s, f, base):
    fix_idx = true_indices(f)
    if fix_idx.size == 0:
        return np.nan
    s_lo, s_hi = minmax(s)
    return _info_gain_core(s, fix_idx, s_lo, s_hi, mm_total(s, s_lo, s_hi), mm_distribution(base))


def kld(saliency, density) -> float:
    """Kullback-Leibler divergence of the saliency distribution from the density (MIT KLdiv).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map (no min-max step: only divided by its sum).
    density : array_like, shape (H, W)
        Ground-truth density map.

    Returns
    -------
    float
        ``sum(g * log(eps + g / (p + eps)))`` with ``p = s / sum(s)``,
        ``g = G / sum(G)``, ``eps`` = MATLAB's eps; lower is better.

    Raises
    ------
    ValueError
        Bad shapes, empty maps, NaN/inf.

    Notes
    -----
    Edge cases (pysaliency's conventions, where MIT would produce NaN or complex
    numbers): a map with negative values is first shifted so its minimum is 0; a
    constant ``saliency`` (:func:`salbench.metrics.is_constant_map`, all-zero
    included) is the uniform distribution; a ``density`` without mass (constant
    and <= 0, e.g. all zero: an image without fixations) returns ``NaN``; a
    constant positive density is uniform.
    """
    return float(_kld_kernel(*flat_inputs(saliency, density=density)))


def sim(saliency, density) -> float:
    """Similarity (histogram intersection) of two min-max normalised maps (MIT SIM).

    Parameters
    ----------
    saliency, density : array_like, shape (H, W)
        Predicted map and ground-truth density.

    Returns
    -------
    float
        ``sum(min(a, b))`` with ``a = mm(s) / sum``, ``b = mm(G) / sum``; in [0, 1],
        higher is better.

    Raises
    ------
    ValueError
        Bad shapes, empty maps, NaN/inf.

    Notes
    -----
    pysaliency's SIM skips the min-max step; the two agree whenever both maps
    already have minimum 0. Edge cases: a constant ``saliency``
    (:func:`salbench.metrics.is_constant_map`) or a constant positive ``density``
    is treated as the uniform distribution rather than dividing by
    ``max - min = 0``; a ``density`` without mass (constant and <= 0, e.g. all
    zero: an image without fixations) returns ``NaN``.
    """
    return float(_sim_kernel(*flat_inputs(saliency, density=density)))


def info_gain(saliency, fixations, baseline) -> float:
    """Information gain over a baseline at fixated pixels, in bits per fixation (MIT InfoGain).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map.
    fixations : array_like, shape (H, W)
        Fixation map; nonzero pixels are fixated (each pixel once).
    baseline : array_like, shape (H, W)
        Baseline map, typically a centre bias.

    Returns
    -------
    float
        Mean over fixated pixels of ``log2(eps + p) - log2(eps + b)`` with
        ``p = mm(s) / sum`` and ``b = mm(baseline) / sum``; higher is better,
        0 means no better than the baseline.

    Raises
    ------
    ValueError
        Bad shapes, empty maps, NaN/inf.

    Notes
    -----
    Edge cases: no fixated pixel returns ``NaN``; a constant map (saliency or
    baseline) is treated as uniform (MIT would divide by zero).
    """
    return float(_info_gain_kernel(*flat_inputs(saliency, fixations=fixations, baseline=baseline)))
