"""Ground truth of the ``mit`` protocol: its continuous density, as the MIT benchmark code
builds it, and its IG baseline (:func:`center_gaussian`).

The MIT benchmark blurs the binary fixation map with ``antonioGaussian.m``
(cvzoya/saliency, ``code_forMetrics``) at a cut-off of 8 cycles per image and
clips the FFT round-off negatives: ``G = max(antonioGaussian(F, 8), 0)``. That
function

1. takes ``n`` = the larger side, made even, rounded up to a power of two;
2. zero-pads the image to ``n x n`` (image in the top-left corner) and multiplies
   its 2-D DFT by the transfer function ``exp(-(fx^2 + fy^2) / s^2)``, with
   ``fx, fy`` the integer frequencies ``-n/2 .. n/2 - 1`` (``fftshift`` order) and
   ``s = fc / sqrt(log(2))`` (the amplitude halves at ``fc`` cycles per image);
3. keeps the real part of the inverse DFT and crops the top-left ``H x W``.

The transfer function is a product of a function of ``fx`` and one of ``fy``,
so the 2-D circular filter is two 1-D circular filters: with ``h`` the inverse
DFT of the 1-D transfer function (real: its unpaired Nyquist term is
``(-1)^x``), ``G = Ky @ F @ Kx.T`` where ``Ky[y, y'] = h[(y - y') mod n]``.
That is the same linear map as MIT's FFT (circular boundaries included), up to
rounding; it costs two small matrix products instead of an ``n x n`` FFT pair,
and far less when few pixels are fixated (only their columns of ``Ky``/``Kx``
are used).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["antonio_gaussian_kernel", "center_gaussian", "mit_fixation_density"]


def _padded_size(h: int, w: int) -> int:
    """``n`` of antonioGaussian.m: larger side, made even, then the next power of two."""
    n = max(h, w)
    n += n % 2
    return 1 << max(0, math.ceil(math.log2(n)))


@functools.lru_cache(maxsize=8)
def antonio_gaussian_kernel(n: int, cutoff: float) -> np.ndarray:
    """The 1-D circular kernel ``h`` (length ``n``) of antonioGaussian.m at ``cutoff`` cycles/image.

    ``h = real(ifft(ifftshift(exp(-k^2 / s^2))))`` for ``k = -n/2 .. n/2 - 1`` and
    ``s = cutoff / sqrt(log(2))``; the 2-D filter is ``h[y] * h[x]``. Read-only (cached).
    """
    s = cutoff / math.sqrt(math.log(2.0))
    k = np.arange(n, dtype=np.float64) - n // 2  # MATLAB: fx = (0:n-1) - n/2
    gf = np.fft.ifftshift(np.exp(-(k * k) / (s * s)))  # MATLAB fftshift == ifftshift for even n
    h = np.fft.ifft(gf).real.copy()
    h.flags.writeable = False
    return h


@functools.lru_cache(maxsize=8)
def _circulant(length: int, n: int, cutoff: float) -> np.ndarray:
    """``K[y, y'] = h[(y - y') mod n]`` for ``y, y' < length``: the filter restricted to the crop."""
    h = antonio_gaussian_kernel(n, cutoff)
    idx = (np.arange(length)[:, None] - np.arange(length)[None, :]) % n
    k = np.ascontiguousarray(h[idx])
    k.flags.writeable = False
    return k


@functools.lru_cache(maxsize=8)
def _transposed(length: int, n: int, cutoff: float) -> np.ndarray:
    """``_circulant(length, n, cutoff).T``, C-contiguous (its rows are the filter's columns)."""
    k = np.ascontiguousarray(_circulant(length, n, cutoff).T)
    k.flags.writeable = False
    return k


def mit_fixation_density(fixation_map, cutoff: float = 8.0) -> np.ndarray:
    """MIT's continuous ground truth: ``max(antonioGaussian(fixation_map, cutoff), 0)``.

    Parameters
    ----------
    fixation_map : array_like, shape (H, W)
        Fixation map; nonzero pixels are fixated (counted as 1, as MIT's binary map).
    cutoff : float, default 8.0
        Cut-off frequency ``fc`` in cycles per image (MIT: 8, "about 1 degree of
        visual angle"); at 480x640 the blur is a Gaussian of sigma ~24 px.

    Returns
    -------
    numpy.ndarray
        float64 (H, W), non-negative; the sum of the map is about the number of
        fixated pixels (the filter keeps the mean). An empty fixation map gives
        all zeros.

    Raises
    ------
    ValueError
        Not a 2-D non-empty map, non-finite values, or a non-positive ``cutoff``.

    Notes
    -----
    Circular boundaries on the ``n x n`` padded grid, as MIT: mass near the right
    or bottom edge wraps to the left or top edge only when the padding
    ``n - W`` (or ``n - H``) is small against the blur. Agrees with MIT's
    FFT computation to rounding (~1e-16 of the map's maximum).
    """
    f = np.asarray(fixation_map)
    if f.ndim != 2 or f.size == 0:
        raise ValueError(f"fixation_map must be a non-empty 2-D map, got shape {f.shape}")
    if not (np.issubdtype(f.dtype, np.number) or f.dtype == np.bool_):
        raise ValueError(f"fixation_map must be numeric or bool, got dtype {f.dtype}")
    if np.issubdtype(f.dtype, np.floating) and not np.isfinite(f).all():
        raise ValueError("fixation_map contains NaN or inf")
    cutoff = float(cutoff)
    if not (math.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive number of cycles per image, got {cutoff!r}")
    h, w = f.shape
    n = _padded_size(h, w)
    ky = _circulant(h, n, cutoff)
    kx = _circulant(w, n, cutoff)
    rows, cols = np.nonzero(f)
    # Sparse maps: one outer product per fixated pixel costs H*W*K flops, the two dense
    # products H*W*(H+W): take the cheaper.
    if rows.size < h + w:
        # ky[:, rows] @ kx[:, cols].T, the columns gathered as rows of the transposes (contiguous
        # copies instead of strided ones; the same product, bit for bit)
        out = _transposed(h, n, cutoff)[rows].T @ _transposed(w, n, cutoff)[cols]
    else:
        out = (ky @ (f != 0).astype(np.float64)) @ kx.T
    np.maximum(out, 0.0, out=out)
    return out


def center_gaussian(shape, sigma_frac: float = 0.25) -> np.ndarray:
    """Centred isotropic Gaussian, sigma = ``sigma_frac * min(H, W)``: the ``mit`` IG baseline."""
    H, W = shape
    y = np.arange(H, dtype=np.float64) - (H - 1) / 2.0
    x = np.arange(W, dtype=np.float64) - (W - 1) / 2.0
    sig = sigma_frac * min(H, W)
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sig * sig))
