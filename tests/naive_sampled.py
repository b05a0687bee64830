"""Slow, obviously-correct twins of the sampled AUCs and of the coursework script.

Literal per-pixel code, written from PROTOCOLS.md: the reference the fast
kernels are tested against (never the other way round).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter


def mm(s):
    s = np.asarray(s, dtype=np.float64)
    r = s.max() - s.min()
    return (s - s.min()) / r if r > 0 else np.zeros_like(s)


def sampled_auc(s, fix, negatives_for_split, splits, step, include_endpoint):
    """Mean over splits of the trapezoid AUC; ``negatives_for_split()`` returns Q's flat indices."""
    u = mm(s).ravel()
    pos = u[np.asarray(fix).ravel() != 0]
    aucs = []
    for _ in range(splits):
        neg = u[negatives_for_split()]
        top = max(pos.max(), neg.max())
        if include_endpoint:
            thr = np.arange(int(np.floor(top / step + 1e-9)) + 1) * step
        else:
            thr = np.arange(0, top, step)
        tp, fp = [0.0], [0.0]
        for t in thr[::-1]:
            tp.append(np.mean(pos >= t))
            fp.append(np.mean(neg >= t))
        tp.append(1.0)
        fp.append(1.0)
        aucs.append(np.trapezoid(tp, fp))
    return float(np.mean(aucs))


def coursework_script(pred48, y_original, other_u8_list, splits, rng):
    """The coursework evaluation script, per pixel: returns (CC, AUC-Borji, sAUC)."""
    q = (np.trunc(np.asarray(pred48, dtype=np.float64) * 255.0).astype(np.int64) % 256).astype(np.uint8)
    H, W = y_original.shape
    s = np.asarray(Image.fromarray(q).resize((W, H)), dtype=np.float64) / 255.0
    s = gaussian_filter(s, 2)
    g = gaussian_filter(y_original, 19).astype(np.float64)
    g = (g - g.min()) / (g.max() - g.min())
    cc = float(np.corrcoef(s.ravel(), g.ravel())[0, 1])
    fix = y_original.astype(np.int64) > 0
    n = int(fix.sum())
    borji = sampled_auc(s, fix, lambda: rng.integers(0, s.size, n), splits, 0.1, False)
    other = np.zeros(y_original.shape, dtype=bool)
    for o in other_u8_list:
        other |= o.astype(np.int64) > 0
    ind = np.flatnonzero(other)
    m = min(n, ind.size)
    sauc = sampled_auc(s, fix, lambda: ind[rng.permutation(ind.size)[:m]], splits, 0.1, False)
    return cc, borji, sauc
