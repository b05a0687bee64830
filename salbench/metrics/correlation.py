"""Linear metrics: CC (Pearson correlation) and NSS (normalised scanpath saliency)."""

from __future__ import annotations

import math

import numpy as np

from salbench._numba import njit
from salbench.metrics._kernels import LANES, fold_lanes, is_constant_range, mean_std, minmax, true_indices
from salbench.metrics._validate import (as_float64, as_float_map, check_same_shape, flat_inputs, flat_inputs_ranged,
                                        flat_point_indices)


_SHIFT_SAMPLES = 1024  # values averaged for the shift of the one-pass sums


@njit
def shift_of(x):
    """Mean of ``x`` over a strided sample of about 1024 entries: the shift of :func:`shifted_sums`.

    Sums about a shift ``K`` give the centred sums in one pass, ``sum((x - m)^2) =
    sum((x - K)^2) - n (m - K)^2``, and lose no accuracy to the subtraction when ``K`` is
    within a fraction of a standard deviation of the mean ``m``, as a sample's mean is.
    """
    stride = max(1, x.size // _SHIFT_SAMPLES)
    acc = 0.0
    k = 0
    for i in range(0, x.size, stride):
        acc += x[i]
        k += 1
    return acc / k


@njit
def shifted_sums(s, g, ks, kg, extremes=False):
    """Sums about shifts, and optionally the extremes of both maps, in one pass.

    Returns ``(sum(d), sum(e), sum(d e), sum(d d), sum(e e), s_lo, s_hi, g_lo, g_hi)`` with
    ``d = s - ks``, ``e = g - kg``, in the lane order of every whole-map sum
    (:mod:`salbench.metrics._kernels`); the extremes only when ``extremes``, else zeros.
    """
    sd = np.zeros(LANES)
    se = np.zeros(LANES)
    sde = np.zeros(LANES)
    sdd = np.zeros(LANES)
    see = np.zeros(LANES)
    s_lo = np.full(LANES, s[0])
    s_hi = np.full(LANES, s[0])
    g_lo = np.full(LANES, g[0])
    g_hi = np.full(LANES, g[0])
    for b0 in range(0, s.size, LANES):
        sb = s[b0:b0 + LANES]
        gb = g[b0:b0 + LANES]
        for j in range(sb.size):
            x = sb[j]
            y = gb[j]
            if extremes:  # loop-invariant: the compiler makes a loop with and one without
                s_lo[j] = min(s_lo[j], x)
                s_hi[j] = max(s_hi[j], x)
                g_lo[j] = min(g_lo[j], y)
                g_hi[j] = max(g_hi[j], y)
            d = x - ks
            e = y - kg
            sd[j] += d
            se[j] += e
            sde[j] += d * e
            sdd[j] += d * d
            see[j] += e * e
    lo_hi = (s_lo.min(), s_hi.max(), g_lo.min(), g_hi.max()) if extremes else (0.0, 0.0, 0.0, 0.0)
    return (fold_lanes(sd), fold_lanes(se), fold_lanes(sde), fold_lanes(sdd), fold_lanes(see)) + lo_hi


@njit
def _cc_from_sums(sxy, sxx, syy):
    # Spreads that round to zero or below (denormal or nearly constant maps) mean "constant" as above.
    if syy <= 0.0:
        return np.nan
    if sxx <= 0.0:
        return 0.0
    r = sxy / (math.sqrt(sxx) * math.sqrt(syy))
    return min(1.0, max(-1.0, r))


@njit
def _cc_kernel(s, g):
    s_lo, s_hi = minmax(s)
    g_lo, g_hi = minmax(g)
    return _cc_core(s, g, s_lo, s_hi, g_lo, g_hi)


@njit
def _cc_degenerate(s_lo, s_hi, g_lo, g_hi):
    """``(True, CC)`` when a map is constant (docs/metrics.md "Degenerate inputs"), else ``(False, NaN)``."""
    if is_constant_range(g_lo, g_hi):
        return True, np.nan  # correlation with a constant ground truth is undefined
    if is_constant_range(s_lo, s_hi):
        return True, 0.0  # a constant prediction carries no information: chance level
    return False, np.nan


@njit
def _cc_core(s, g, s_lo, s_hi, g_lo, g_hi):
    """CC of flat maps whose extremes are known, in one pass.

    The centred sums come from sums about a shift (:func:`shift_of`,
    :func:`shifted_sums`): one pass over both maps instead of two.
    """
    degenerate, value = _cc_degenerate(s_lo, s_hi, g_lo, g_hi)
    if degenerate:
        return value
    return _cc_from_shifted(shifted_sums(s, g, shift_of(s), shift_of(g))[:5], s.size)


@njit
def _cc_from_shifted(sums, n):
    """CC from :func:`shifted_sums`: the centred sums are the shifted ones less ``n`` times the mean offsets."""
    sd, se, sde, sdd, see = sums
    return _cc_from_sums(sde - sd * (se / n), sdd - sd * (sd / n), see - se * (se / n))


_SAFE_EXPONENT = 400  # |log2| of the largest magnitude within which CC's sums cannot under- or overflow


@njit
def _cc_scan(s, g):
    """``(ok, cc)`` of maps not yet validated, in one pass: extremes and shifted sums together.

    ``ok`` is False when a value is NaN or infinite (a sum or extreme is not finite) or a
    map's largest magnitude is outside ``2**±400``: the caller then validates the maps and
    brings them to unit magnitude first. Within that range every sum of :func:`_cc_core`
    scales exactly with a power-of-two factor, so the result is the validated path's.
    """
    ks = shift_of(s)
    kg = shift_of(g)
    sums = shifted_sums(s, g, ks, kg, True)
    s0, s1, g0, g1 = sums[5:]
    ok = math.isfinite(ks) and math.isfinite(kg)
    for v in sums:
        ok = ok and math.isfinite(v)
    for peak in (max(s1, -s0), max(g1, -g0)):
        ok = ok and (peak == 0.0 or abs(math.frexp(peak)[1]) <= _SAFE_EXPONENT)
    if not ok:
        return False, np.nan
    degenerate, value = _cc_degenerate(s0, s1, g0, g1)
    if degenerate:
        return True, value
    return True, _cc_from_shifted(sums[:5], s.size)


@njit
def _nss_from(s, fix_idx, mean, std):
    acc = 0.0
    for k in range(fix_idx.size):
        acc += (s[fix_idx[k]] - mean) / std
    return acc / fix_idx.size


@njit
def _nss_kernel(s, f):
    fix_idx = true_indices(f)
    if fix_idx.size == 0:
        return np.nan
    lo, hi = minmax(s)
    if is_constant_range(lo, hi):
        return 0.0
    mean, std = mean_std(s, 1)  # MATLAB std: N-1
    return _nss_from(s, fix_idx, mean, std)


def cc(saliency, density) -> float:
    """Pearson correlation coefficient between a saliency map and a density map (MIT CC).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map, any real dtype (uint8, float32, bool, ...).
    density : array_like, shape (H, W)
        Continuous ground-truth density (e.g. blurred fixations).

    Returns
    -------
    float
        Correlation in [-1, 1]; higher is better.

    Raises
    ------
    ValueError
        If a map is not 2-D, is empty, contains NaN/inf, or the shapes differ.

    Notes
    -----
    MIT z-scores both maps and calls ``corr2``; both steps reduce to Pearson's
    correlation, computed here in one pass over both maps that also checks their values
    (sums about a sampled mean, :func:`shifted_sums`, in the lane order of
    :mod:`salbench.metrics._kernels`).

    Edge cases: a constant ``saliency`` (:func:`salbench.metrics.is_constant_map`,
    which includes a constant spread over a few ulps by a resize) returns ``0.0``
    (no information, chance level; MIT's ``CC.m`` returns NaN, pysaliency 0.0); a
    constant ``density`` (all zero: an image without fixations) returns ``NaN``
    (correlation with a degenerate ground truth is undefined, and
    :func:`salbench.stats.mean_ci95` skips NaN).

    Examples
    --------
    >>> import numpy as np
    >>> s = np.arange(12.0).reshape(3, 4)
    >>> round(cc(s, 2 * s + 1), 12)
    1.0
    """
    s = as_float64(saliency, "saliency")
    g = as_float64(density, "density")
    check_same_shape(s, g, "saliency", "density")
    ok, value = _cc_scan(s.ravel(), g.ravel())  # one pass, values checked on the way
    if ok:
        return float(value)
    # a NaN/inf (the validation names it) or an extreme magnitude: validate and scale first
    (s, g), ((s_lo, s_hi), (g_lo, g_hi)) = flat_inputs_ranged(saliency, density=density)
    return float(_cc_core(s, g, s_lo, s_hi, g_lo, g_hi))


def nss(saliency, fixations) -> float:
    """Normalised scanpath saliency: mean z-scored saliency at fixated pixels (MIT NSS).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map.
    fixations : array_like, shape (H, W)
        Fixation map; nonzero pixels are fixated. Each fixated *pixel* counts once.

    Returns
    -------
    float
        Higher is better; 0 is chance.

    Raises
    ------
    ValueError
        Bad shapes, empty maps, NaN/inf.

    Notes
    -----
    ``z(s) = (s - mean(s)) / std(s)`` with MATLAB's ``N - 1`` std. For pysaliency's
    variant (every fixation point, population std) see :func:`nss_points`.

    Edge cases: no fixated pixel returns ``NaN``; a constant ``saliency``
    (:func:`salbench.metrics.is_constant_map`) returns ``0.0`` (chance level; MIT
    would divide by zero and return NaN).

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([[0.0, 1.0], [0.0, 1.0]])
    >>> round(nss(s, s > 0), 6)
    0.866025
    """
    return float(_nss_kernel(*flat_inputs(saliency, fixations=fixations)))


@njit
def _nss_points_kernel(s, idx):
    lo, hi = minmax(s)
    if idx.size == 0:
        return np.nan
    if is_constant_range(lo, hi):
        return 0.0
    mean, std = mean_std(s, 0)  # population std, as pysaliency (numpy default)
    acc = 0.0
    for k in range(idx.size):
        acc += (s[idx[k]] - mean) / std
    return acc / idx.size


def nss_points(saliency, rows, cols=None) -> float:
    """NSS over fixation *points* (pysaliency ``NSS``): duplicates count every time.

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map.
    rows, cols : array_like of int, shape (K,)
        0-based row (y) and column (x) of every fixation point. Alternatively
        ``nss_points(saliency, points)`` with ``points`` of shape (K, 2), 0-based
        ``(row, col)`` pairs (the registry's ``points`` input).

    Returns
    -------
    float
        Mean of ``(s - mean(s)) / std(s)`` over the points, population std
        (``ddof=0``) as in pysaliency.

    Raises
    ------
    ValueError
        Bad map, non-integer coordinates, ``rows``/``cols`` of different lengths,
        or a point outside the map (negative indices are not wrapped).

    Notes
    -----
    Edge cases: no points returns ``NaN``; a constant ``saliency`` returns ``0.0``
    (pysaliency skips the division by a zero std, giving 0).
    """
    s = as_float_map(saliency, "saliency")
    return float(_nss_points_kernel(s.ravel(), flat_point_indices(s.shape, rows, cols)))
