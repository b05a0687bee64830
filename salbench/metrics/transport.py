"""Earth mover's distance (EMD), the MIT saliency benchmark's eighth metric (``EMD.m``).

MIT's ``EMD.m`` (cvzoya/saliency, ``code_forMetrics``):

1. downsamples the ground truth with ``imresize(G, 1/32)`` and the saliency map
   to the same size with ``imresize(s, size(im1))``: MATLAB's bicubic resize,
   which antialiases when shrinking (the cubic kernel is widened by the factor);
2. normalises both to sum 1;
3. solves the transport problem between them with the Euclidean distance
   between cell centres (in downsampled cells) as ground distance and
   ``extra_mass_penalty = 0`` (FastEMD's ``emd_hat_gd_metric_mex``; with equal
   masses that is the plain EMD).

salbench does the same, with the linear program solved by POT (``ot.emd2``,
network simplex: exact up to rounding) and MATLAB's resize reproduced in
:func:`matlab_resize_matrix`. Documented differences from ``EMD.m``:

- ``EMD.m`` also matches the downsampled prediction's grey-level histogram to
  the ground truth's (``histMatchMaps``: ``imhist`` + matlabPyrTools'
  ``histoMatch``) before normalising. That step depends on the value range of
  the ground truth map (``imhist`` bins [0, 1]) and is not reproduced: salbench
  compares the two maps as distributions, which is what the metric is
  documented to measure.
- Bicubic undershoot (negative values after the resize) is clipped to 0; a map
  with negative values is first shifted so its minimum is 0 (as :func:`kld`).
  FastEMD's behaviour with negative mass is undefined.

Degenerate inputs: a constant saliency map is the uniform distribution; a
density without mass (constant <= 0, e.g. all zero: an image without
fixations) gives NaN.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from salbench.metrics._validate import as_float_map, check_same_shape
from salbench.metrics.degenerate import is_constant_map

__all__ = ["emd", "matlab_resize_matrix"]

MIT_DOWNSAMPLE = 32  # EMD.m: imresize(fixationMap, 1/32)
_MAX_ITER = 10_000_000  # network simplex iterations; the default 1e5 is short for ~1000+ cells


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB imresize's cubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=32)
def matlab_resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """``(out_len, in_len)`` matrix of MATLAB ``imresize``'s bicubic resize along one axis.

    MATLAB's ``contributions``: output pixel ``x`` (1-based) reads input coordinate
    ``u = x / scale + 0.5 * (1 - 1 / scale)``; when shrinking (``scale < 1``) the
    kernel is ``scale * cubic(scale * d)`` with width ``4 / scale`` (antialiasing);
    weights are normalised to sum 1 and out-of-range taps are mirrored
    (symmetric padding). Read-only (cached).
    """
    if scale < 1:
        width = 4.0 / scale
        kernel = lambda d: scale * _cubic(scale * d)  # noqa: E731
    else:
        width = 4.0
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    m = np.zeros((out_len, in_len))
    np.add.at(m, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
    m.flags.writeable = False
    return m


def _resize(a: np.ndarray, out_shape, scales) -> np.ndarray:
    """MATLAB ``imresize(a, ...)`` bicubic with antialiasing, as two matrix products."""
    rows = matlab_resize_matrix(a.shape[0], out_shape[0], scales[0])
    cols = matlab_resize_matrix(a.shape[1], out_shape[1], scales[1])
    return rows @ a @ cols.T


@functools.lru_cache(maxsize=8)
def _ground_distance(rows: int, cols: int) -> np.ndarray:
    """Euclidean distance between the centres of cells of a ``rows x cols`` grid (row-major)."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    d = np.sqrt((r[:, None] - r[None, :]) ** 2.0 + (c[:, None] - c[None, :]) ** 2.0)
    d.flags.writeable = False
    return d


def _distribution(a: np.ndarray, out_shape, scales) -> np.ndarray:
    """Flat distribution of ``a`` downsampled: shift a negative minimum, resize, clip, normalise."""
    if is_constant_map(a):
        return np.full(out_shape[0] * out_shape[1], 1.0 / (out_shape[0] * out_shape[1]))
    lo = a.min()
    if lo < 0:
        a = a - lo
    d = np.maximum(_resize(a, out_shape, scales), 0.0).ravel()
    total = d.sum()
    if not total > 0:  # all mass lost to undershoot: no information, uniform
        return np.full(d.size, 1.0 / d.size)
    return d / total


def _check_downsample(downsample) -> int:
    if isinstance(downsample, bool) or not isinstance(downsample, (int, np.integer)) or downsample < 1:
        raise ValueError(f"downsample must be a positive integer, got {downsample!r}")
    return int(downsample)


def emd(saliency, density, *, downsample=MIT_DOWNSAMPLE) -> float:
    """Earth mover's distance between a saliency map and the density (MIT ``EMD.m``).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map, any real dtype.
    density : array_like, shape (H, W)
        Continuous ground truth (under ``mit``: MIT's antonioGaussian density).
    downsample : int, default 32
        The density is resized by ``1 / downsample`` to ``ceil(H / downsample) x
        ceil(W / downsample)`` cells (MATLAB bicubic with antialiasing, as
        ``EMD.m``), the saliency map to the same size; 1 keeps the full
        resolution (only for small maps: the problem has (cells)^2 variables).

    Returns
    -------
    float
        Minimal cost of moving the saliency distribution onto the density's, in
        downsampled cells (one cell = ``downsample`` pixels); lower is better, 0
        for identical distributions.

    Raises
    ------
    ValueError
        Bad maps or shapes, NaN/inf, bad ``downsample``.
    RuntimeError
        The solver did not reach an optimal solution.

    Notes
    -----
    Differences from ``EMD.m`` (its histogram matching step is not applied;
    negative values are shifted/clipped) are listed in :mod:`salbench.metrics.transport`.
    Edge cases: a constant saliency map is the uniform distribution; a density
    without mass (constant <= 0, e.g. all zero) returns NaN; a constant positive
    density is uniform. At 480x640 (15x20 cells) a call takes a few ms.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((1, 5)); a[0, 0] = 1.0
    >>> b = np.zeros((1, 5)); b[0, 3] = 1.0
    >>> round(emd(a, b, downsample=1), 12)
    3.0
    """
    s = as_float_map(saliency, "saliency")
    g = as_float_map(density, "density")
    check_same_shape(s, g, "saliency", "density")
    k = _check_downsample(downsample)
    if is_constant_map(g) and g.max() <= 0:
        return float("nan")  # a density without mass
    h, w = g.shape
    scale = 1.0 / k
    out = (math.ceil(h * scale), math.ceil(w * scale))  # imresize(G, 1/k): ceil(scale * size)
    p = _distribution(g, out, (scale, scale))
    q = _distribution(s, out, (out[0] / h, out[1] / w))  # imresize(s, size(im1)): scale = out / in
    import ot  # deferred: POT imports its array backends (torch) on first use

    cost, log = ot.emd2(p, q, _ground_distance(*out), numItermax=_MAX_ITER, log=True)
    if log["result_code"] != 1:
        raise RuntimeError(f"EMD: the transport solver did not converge ({log['warning']})")
    return float(cost)
