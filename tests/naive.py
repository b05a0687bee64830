"""Slow, obviously-correct NumPy twins of the metric kernels, under the same names.

Each twin transcribes the reference definition (MIT code, pysaliency) line by
line, with salbench's documented edge-case answers, and nothing from
``salbench.metrics`` is imported. Tests compare kernels against these on small
random maps. Keep this a plain module of functions (other twins are added below).
"""

from __future__ import annotations

import numpy as np

EPS = np.finfo(np.float64).eps  # MATLAB eps


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _is_constant(a):
    """salbench's documented rule (docs/metrics.md), written out: a relative range of 1e-12."""
    a = _f64(a)
    hi, lo = float(a.max()), float(a.min())
    return hi - lo <= 1e-12 * max(abs(hi), abs(lo), np.finfo(np.float64).tiny)


def _without_mass(g):
    """A density that is constant and <= 0 (all zero): the density metrics give NaN."""
    return _is_constant(g) and float(_f64(g).max()) <= 0.0


def _mm_distribution(a):
    a = _f64(a)
    if _is_constant(a):
        return np.full(a.shape, 1.0 / a.size)
    a = (a - a.min()) / (a.max() - a.min())
    return a / a.sum()


def cc(saliency, density):
    s, g = _f64(saliency), _f64(density)
    if _is_constant(g):
        return float("nan")
    if _is_constant(s):
        return 0.0
    zs = (s - s.mean()) / s.std(ddof=1)
    zg = (g - g.mean()) / g.std(ddof=1)
    return float(np.corrcoef(zs.ravel(), zg.ravel())[0, 1])


def nss(saliency, fixations):
    s, f = _f64(saliency), np.asarray(fixations) != 0
    if not f.any():
        return float("nan")
    if _is_constant(s):
        return 0.0
    z = (s - s.mean()) / s.std(ddof=1)
    return float(z[f].mean())


def nss_points(saliency, rows, cols):
    s = _f64(saliency)
    if len(rows) == 0:
        return float("nan")
    if _is_constant(s):
        return 0.0
    return float(((s[np.asarray(rows), np.asarray(cols)] - s.mean()) / s.std()).mean())


def auc_judd(saliency, fixations):
    """MIT AUC_Judd.m, jitter off: one full scan of the map per threshold."""
    s, f = _f64(saliency).ravel(), np.asarray(fixations).ravel() != 0
    n_fix, n_pix = int(f.sum()), s.size
    if n_fix == 0 or n_fix == n_pix:
        return float("nan")
    if _is_constant(s):
        return 0.5
    s = (s - s.min()) / (s.max() - s.min())
    thresholds = np.sort(s[f])[::-1]
    tp = np.zeros(n_fix + 2)
    fp = np.zeros(n_fix + 2)
    tp[-1] = fp[-1] = 1.0
    for i in range(1, n_fix + 1):
        above = np.sum(s >= thresholds[i - 1])
        tp[i] = i / n_fix
        fp[i] = (above - i) / (n_pix - n_fix)
    return float(np.trapezoid(tp, fp))


def _pairs_auc(pos, neg):
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    equal = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * equal)


def auc_exact(saliency, fixations):
    s, f = _f64(saliency).ravel(), np.asarray(fixations).ravel() != 0
    if f.any() and _is_constant(s):
        return 0.5
    return _pairs_auc(s[f], s)


def auc_shuffled_exact(saliency, fixations, other):
    s = _f64(saliency).ravel()
    f, o = np.asarray(fixations).ravel() != 0, np.asarray(other).ravel() != 0
    if f.any() and o.any() and _is_constant(s):
        return 0.5
    return _pairs_auc(s[f], s[o])


def _sum_distribution(a):
    a = _f64(a)
    if _is_constant(a):
        return np.full(a.shape, 1.0 / a.size)
    a = a - min(a.min(), 0.0)
    return a / a.sum()


def kld(saliency, density):
    if _without_mass(density):
        return float("nan")
    p, q = _sum_distribution(saliency), _sum_distribution(density)
    return float(np.sum(q * np.log(EPS + q / (p + EPS))))


def sim(saliency, density):
    if _without_mass(density):
        return float("nan")
    return float(np.minimum(_mm_distribution(saliency), _mm_distribution(density)).sum())


def info_gain(saliency, fixations, baseline):
    f = np.asarray(fixations) != 0
    if not f.any():
        return float("nan")
    p, b = _mm_distribution(saliency), _mm_distribution(baseline)
    return float(np.mean(np.log2(EPS + p[f]) - np.log2(EPS + b[f])))
