"""Map helpers shared by every dataset: fixation points -> maps, downscaled model arrays.

Conventions (documented once, used by all loaders):

* Fixation points are 0-based integer ``(row, col)``. A 1-based coordinate ``v`` (the
  MATLAB / NUS / SALICON convention) maps to the 0-based pixel ``round((v - 1) * scale)``
  (numpy rounding), the convention of the reference vectors in ``shared/refs`` (MIT code,
  pysaliency); points outside the image are clipped to the border and counted.
* Density maps are the binary fixation map (each fixated pixel once) blurred with a
  Gaussian (SALICON: sigma 19 at 480x640; scipy ``gaussian_filter`` defaults: reflect,
  truncate 4), then divided by the maximum, as the ``gt`` maps of ``shared/refs``.
  :func:`blur_points` computes that without filtering the full image when there are few
  points.
* ``x96`` / ``y48`` are Pillow bilinear (antialiased) resizes of the uint8 image / uint8
  ``y_original`` map, divided by 255 as float32: exactly ``uint8 / 255``, so they survive a
  uint8 round trip.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

#: SALICON's density blur at 480x640 (scipy ``gaussian_filter`` sigma).
SALICON_SIGMA = 19.0
SALICON_SHAPE = (480, 640)
X_SIZE = 96
Y_SIZE = 48
_TRUNCATE = 4.0


def one_based_to_pixels(rows, cols, shape, scale=(1.0, 1.0)):
    """Convert 1-based (possibly float) coordinates to clipped 0-based pixel indices.

    Parameters
    ----------
    rows, cols : array_like
        1-based coordinates (row = y, col = x) in the source image.
    shape : tuple of int
        ``(H, W)`` of the target image.
    scale : tuple of float
        ``(row_scale, col_scale)`` from source to target image.

    Returns
    -------
    points : ndarray
        ``(K, 2)`` int64 0-based ``(row, col)``, clipped into the image.
    n_clipped : int
        How many points fell outside the image before clipping.
    """
    rows = np.asarray(rows, dtype=np.float64).ravel()
    cols = np.asarray(cols, dtype=np.float64).ravel()
    if rows.shape != cols.shape:
        raise ValueError(f"{rows.size} row coordinates but {cols.size} column coordinates")
    if not (np.all(np.isfinite(rows)) and np.all(np.isfinite(cols))):
        raise ValueError("fixation coordinates contain NaN or inf")
    r = np.round((rows - 1.0) * scale[0]).astype(np.int64)
    c = np.round((cols - 1.0) * scale[1]).astype(np.int64)
    h, w = shape
    outside = (r < 0) | (r >= h) | (c < 0) | (c >= w)
    pts = np.stack([np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)], axis=1) if r.size else np.zeros((0, 2), np.int64)
    return pts.astype(np.int64), int(outside.sum())


def fixation_map(points: np.ndarray, shape) -> np.ndarray:
    """``(H, W)`` bool map, True at every fixated pixel."""
    fmap = np.zeros(shape, dtype=bool)
    if len(points):
        fmap[points[:, 0], points[:, 1]] = True
    return fmap


def _kernel_1d(sigma: float) -> np.ndarray:
    # The same discrete kernel scipy.ndimage.gaussian_filter1d builds.
    radius = int(_TRUNCATE * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 / (sigma * sigma) * x * x)
    return k / k.sum()


def _fold(canvas: np.ndarray, radius: int, axis: int) -> np.ndarray:
    # Fold the padding back in as scipy's 'reflect' mode does (mirror about -0.5 and
    # n - 0.5): padded position -1 - j lands on j, position n + j on n - 1 - j.
    c = np.moveaxis(canvas, axis, 0)
    n = c.shape[0] - 2 * radius
    out = c[radius:radius + n]  # a view: padding and centre do not overlap, so add in place
    out[:radius] += c[:radius][::-1]
    out[n - radius:] += c[radius + n:][::-1]
    return np.moveaxis(out, 0, axis)


def blur_points(points: np.ndarray, shape, sigma: float = SALICON_SIGMA) -> np.ndarray:
    """Gaussian-blurred fixation count map (not normalised), float64 ``(H, W)``.

    Equal (to rounding) to ``scipy.ndimage.gaussian_filter(counts, sigma)`` where
    ``counts[r, c]`` is the number of points at ``(r, c)``. For few points it adds one
    separable kernel patch per point on a padded canvas and folds the padding back
    (scipy's reflect mode): ~10x faster than filtering the whole image.
    """
    h, w = shape
    points = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    if len(points) == 0:
        return np.zeros(shape)
    kernel = _kernel_1d(sigma)
    radius = len(kernel) // 2
    if len(points) > 1000 or radius >= min(h, w):
        counts = np.zeros(shape)
        np.add.at(counts, (points[:, 0], points[:, 1]), 1.0)
        return gaussian_filter(counts, sigma)
    canvas = np.zeros((h + 2 * radius, w + 2 * radius))
    patch = np.outer(kernel, kernel)
    size = 2 * radius + 1
    for r, c in points.tolist():  # canvas offset +radius cancels the patch's -radius
        canvas[r:r + size, c:c + size] += patch
    return np.ascontiguousarray(_fold(_fold(canvas, radius, 0), radius, 1))


def density_from_points(points: np.ndarray, shape, sigma: float = SALICON_SIGMA) -> np.ndarray:
    """Blurred binary fixation map divided by its maximum (all zeros when there are no points)."""
    points = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    if len(points) > 1:
        points = np.unique(points, axis=0)  # a pixel fixated twice counts once
    d = blur_points(points, shape, sigma)
    peak = d.max() if d.size else 0.0
    return d / peak if peak > 0 else d


def to_uint8_map(density: np.ndarray) -> np.ndarray:
    """``round(255 * density)`` as uint8, the SALICON-style ``y_original`` of a [0, 1] map."""
    return np.clip(np.rint(255.0 * np.asarray(density, dtype=np.float64)), 0, 255).astype(np.uint8)


def resize_image(image: np.ndarray, shape) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``shape = (h, w)`` (Pillow bilinear)."""
    h, w = shape
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def model_input(image: np.ndarray) -> np.ndarray:
    """``x96``: ``(3, 96, 96)`` float32 in [0, 1] from an ``(H, W, 3)`` uint8 image."""
    small = np.asarray(Image.fromarray(image).resize((X_SIZE, X_SIZE), Image.BILINEAR))
    return (small.transpose(2, 0, 1).astype(np.float32) / np.float32(255)).copy()


def model_target(y_original: np.ndarray) -> np.ndarray:
    """``y48``: ``(48, 48)`` float32 in [0, 1] from a uint8 saliency map."""
    small = np.asarray(Image.fromarray(y_original).resize((Y_SIZE, Y_SIZE), Image.BILINEAR))
    return small.astype(np.float32) / np.float32(255)


def load_image(path) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8; a clear error names the file."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{path}: cannot decode image: {exc}") from None


def load_gray(path) -> np.ndarray:
    """Decode an 8-bit map image (e.g. SALICON ``maps/*.png``) to ``(H, W)`` uint8."""
    from pathlib import Path

    path = Path(path)
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{path}: cannot decode map image: {exc}") from None
