"""Helpers shared by the protocols: the IG baseline, and the reference draw of other images."""

from __future__ import annotations

import numpy as np


def center_gaussian(shape, sigma_frac: float = 0.25) -> np.ndarray:
    """Centred isotropic Gaussian, sigma = ``sigma_frac * min(H, W)``: the IG baseline."""
    H, W = shape
    y = np.arange(H, dtype=np.float64) - (H - 1) / 2.0
    x = np.arange(W, dtype=np.float64) - (W - 1) / 2.0
    sig = sigma_frac * min(H, W)
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sig * sig))


def draw_others(n: int, k: int, rng, exclude_self: bool) -> list:
    """For each image, ``k`` distinct other indices (fewer if the set is small).

    The literal O(n^2) draw the protocols made first; :mod:`salbench.protocols._draws`
    makes the same draws in O(n k) (tests compare the two).
    """
    out = []
    for i in range(n):
        pool = np.array([j for j in range(n) if j != i]) if exclude_self else np.arange(n)
        kk = min(k, pool.size)
        out.append(rng.choice(pool, size=kk, replace=False) if kk else np.zeros(0, dtype=np.int64))
    return out
