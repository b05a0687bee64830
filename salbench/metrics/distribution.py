"""Metrics that treat maps as probability distributions: KLD, SIM, information gain."""

from __future__ import annotations

import math

import numpy as np

from salbench._numba import njit
from salbench.metrics._kernels import EPS, count_true, is_constant_range, minmax, mm_distribution
from salbench.metrics._validate import flat_inputs


@njit
def _sum_distribution(x):
    """``x / sum(x)`` after shifting a negative minimum to 0 (pysaliency); constant -> uniform.

    A constant map (:func:`is_constant_range`, all-zero included) is the uniform
    distribution, exactly: a constant prediction scores as the uniform one.
    """
    lo, hi = minmax(x)
    out = np.empty(x.size)
    if is_constant_range(lo, hi):
        out[:] = 1.0 / x.size
        return out
    shift = lo if lo < 0.0 else 0.0
    total = 0.0
    for i in range(x.size):
        total += x[i] - shift
    for i in range(x.size):
        out[i] = (x[i] - shift) / total
    return out


@njit
def density_without_mass(g):
    """True when a ground-truth density carries no mass: constant and <= 0 (all zero, typically).

    The density metrics (KLD, SIM, EMD) return NaN for it: it is what an image
    without fixations yields. A constant *positive* density is the uniform one.
    """
    lo, hi = minmax(g)
    return is_constant_range(lo, hi) and hi <= 0.0


@njit
def _kld_kernel(s, g):
    if density_without_mass(g):
        return np.nan  # ground truth without mass
    p = _sum_distribution(s)
    q = _sum_distribution(g)
    acc = 0.0
    for i in range(s.size):
        acc += q[i] * math.log(EPS + q[i] / (p[i] + EPS))
    return acc


@njit
def _sim_kernel(s, g):
    if density_without_mass(g):
        return np.nan  # ground truth without mass: nothing to intersect with
    a = mm_distribution(s)
    b = mm_distribution(g)
    acc = 0.0
    for i in range(a.size):
        acc += min(a[i], b[i])
    return acc


@njit
def _info_gain_kernel(s, f, base):
    n_fix = count_true(f)
    if n_fix == 0:
        return np.nan
    p = mm_distribution(s)
    b = mm_distribution(base)
    acc = 0.0
    for i in range(f.size):
        if f[i]:
            acc += math.log2(EPS + p[i]) - math.log2(EPS + b[i])
    return acc / n_fix


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
