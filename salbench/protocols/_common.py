"""Helpers shared by the per-image protocols (mit, salicon, exact)."""

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
    """For each image, ``k`` distinct other indices (fewer if the set is small)."""
    out = []
    for i in range(n):
        pool = np.array([j for j in range(n) if j != i]) if exclude_self else np.arange(n)
        kk = min(k, pool.size)
        out.append(rng.choice(pool, size=kk, replace=False) if kk else np.zeros(0, dtype=np.int64))
    return out


def union_map(records, indices, shape) -> np.ndarray:
    """OR of the fixation maps of ``records[indices]`` (those of another size are skipped)."""
    m = np.zeros(shape, dtype=np.bool_)
    for j in indices:
        f = records[int(j)].fixation_map
        if f.shape == tuple(shape):
            m |= f
    return m
