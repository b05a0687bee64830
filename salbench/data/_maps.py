"""Map helpers shared by every dataset: fixation points -> maps, downscaled model arrays.

Conventions (documented once, used by all loaders):

* Fixation points are 0-based integer ``(row, col)``. A 1-based coordinate ``v`` (the
  MATLAB / NUS / SALICON convention) maps to the 0-based pixel ``round((v - 1) * scale)``
  where ``round`` is MATLAB's: halves go away from zero (:func:`matlab_round`; NumPy's
  ``np.round`` sends them to the even neighbour). Points that fall outside the image are
  dropped, never clipped onto its border (a clipped point would score as a fixation on the
  border pixel), and counted (``Record.meta["n_dropped"]``, ``SaliencyDataset.dropped_fixations``).
* Density maps are the binary fixation map (each fixated pixel once) blurred with a
  Gaussian (SALICON: sigma 19 at 480x640; scipy ``gaussian_filter`` defaults: reflect,
  truncate 4), then divided by the maximum, as the ``gt`` maps of ``shared/refs``.
  :func:`blur_points` computes that without filtering the full image when there are few
  points (a compiled kernel).
* ``x96`` / ``y48`` are Pillow bilinear (antialiased) resizes of the uint8 image / uint8
  ``y_original`` map, divided by 255 as float32: exactly ``uint8 / 255``, so they survive a
  uint8 round trip.
"""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from salbench._numba import njit

#: SALICON's density blur at 480x640 (scipy ``gaussian_filter`` sigma).
SALICON_SIGMA = 19.0
SALICON_SHAPE = (480, 640)
X_SIZE = 96
Y_SIZE = 48
_TRUNCATE = 4.0
_scratch = threading.local()  # per-thread blur canvas


def matlab_round(x) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (MATLAB's ``round``), as float64.

    Exact for every float64: ``x - trunc(x)`` is computed without rounding error, so
    ``0.49999999999999994`` goes to 0 (``floor(x + 0.5)`` would give 1).
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.trunc(x)
    return t + np.where(np.abs(x - t) >= 0.5, np.sign(x), 0.0)


def one_based_to_pixels(rows, cols, shape, scale=(1.0, 1.0)):
    """Convert 1-based (possibly float) coordinates to 0-based pixel indices, dropping those outside.

    The pixel of ``v`` is ``matlab_round((v - 1) * scale)``: halves go away from zero, as
    a MATLAB user's ``round`` (10 % of EyeCrowd's coordinates and 10 % of OSIE's at its
    original 800x600 are exact halves; none of OSIE's are at 480x640). A point whose pixel
    lies outside ``shape`` (a negative coordinate, or one past the last row or column) is
    dropped, not clipped onto the border.

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
        ``(K', 2)`` int64 0-based ``(row, col)`` of the points inside the image, in input order.
    keep : ndarray
        ``(K,)`` bool, True for the input points kept (to filter per-point data such as
        observers); ``K - keep.sum()`` points were dropped.
    """
    rows = np.asarray(rows, dtype=np.float64).ravel()
    cols = np.asarray(cols, dtype=np.float64).ravel()
    if rows.shape != cols.shape:
        raise ValueError(f"{rows.size} row coordinates but {cols.size} column coordinates")
    if not (np.all(np.isfinite(rows)) and np.all(np.isfinite(cols))):
        raise ValueError("fixation coordinates contain NaN or inf")
    r = matlab_round((rows - 1.0) * scale[0])
    c = matlab_round((cols - 1.0) * scale[1])
    h, w = shape
    keep = (r >= 0) & (r < h) & (c >= 0) & (c < w)  # compared as floats: no int64 overflow for 1e300
    pts = np.stack([r[keep], c[keep]], axis=1).astype(np.int64) if keep.any() else np.zeros((0, 2), np.int64)
    return pts, keep


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


@njit
def _blur_patches(points, kernel, h, w, canvas, normalise):  # pragma: no cover - compiled
    # Add one separable kernel patch per point on a canvas padded by the kernel radius,
    # then fold the padding back as scipy's 'reflect' mode does (mirror about -0.5 and
    # n - 0.5: padded position -1 - j lands on j, position n + j on n - 1 - j). Same
    # products and the same addition order as the NumPy version this replaced.
    size = kernel.size
    rad = size // 2
    canvas[:] = 0.0  # (h + 2 rad, w + 2 rad) scratch, reused between calls
    patch = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            patch[i, j] = kernel[i] * kernel[j]
    for p in range(points.shape[0]):
        r, c = points[p, 0], points[p, 1]  # canvas offset +rad cancels the patch's -rad
        for i in range(size):
            seg = canvas[r + i, c:c + size]  # a 1-D view: the inner loop vectorises
            row = patch[i]
            for j in range(size):
                seg[j] += row[j]
    wp = w + 2 * rad
    for k in range(rad):  # rows: top padding, then bottom padding
        for j in range(wp):
            canvas[rad + k, j] += canvas[rad - 1 - k, j]
    for k in range(rad):
        for j in range(wp):
            canvas[h + k, j] += canvas[2 * rad + h - 1 - k, j]
    for i in range(rad, rad + h):  # columns, on the folded rows only
        for k in range(rad):
            canvas[i, rad + k] += canvas[i, rad - 1 - k]
        for k in range(rad):
            canvas[i, w + k] += canvas[i, 2 * rad + w - 1 - k]
    peak = 1.0
    if normalise:  # divide by the maximum (as ``d / d.max()``) while copying out
        peak = 0.0
        for i in range(h):
            for j in range(w):
                peak = max(peak, canvas[rad + i, rad + j])
        if peak <= 0.0:
            peak = 1.0
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = canvas[rad + i, rad + j] / peak
    return out


def blur_points(points: np.ndarray, shape, sigma: float = SALICON_SIGMA, *, normalise: bool = False) -> np.ndarray:
    """Gaussian-blurred fixation count map, float64 ``(H, W)``.

    Equal (to rounding) to ``scipy.ndimage.gaussian_filter(counts, sigma)`` where
    ``counts[r, c]`` is the number of points at ``(r, c)``. For few points a compiled
    kernel adds one separable kernel patch per point on a padded canvas and folds the
    padding back (scipy's reflect mode), much faster than filtering the whole image.
    ``normalise=True`` divides by the maximum (when positive).
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
        d = gaussian_filter(counts, sigma)
        peak = d.max()
        if normalise and peak > 0:
            d /= peak
        return d
    if points.min() < 0 or np.any(points.max(0) >= (h, w)):
        raise ValueError(f"fixation points outside the {h}x{w} image")
    canvas_shape = (h + 2 * radius, w + 2 * radius)
    canvas = getattr(_scratch, "canvas", None)
    if canvas is None or canvas.shape != canvas_shape:
        # Reused: a fresh 4 MB canvas per call costs more in page faults than the blur itself.
        canvas = _scratch.canvas = np.empty(canvas_shape)
    return _blur_patches(np.ascontiguousarray(points), kernel, int(h), int(w), canvas, normalise)


def density_from_points(points: np.ndarray, shape, sigma: float = SALICON_SIGMA) -> np.ndarray:
    """Blurred binary fixation map divided by its maximum (all zeros when there are no points)."""
    points = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    if len(points) > 1 and points.min() >= 0:  # a pixel fixated twice counts once; row-major order
        w = int(points[:, 1].max()) + 1
        flat = np.unique(points[:, 0] * w + points[:, 1])
        points = np.stack([flat // w, flat % w], axis=1)
    elif len(points) > 1:
        points = np.unique(points, axis=0)
    return blur_points(points, shape, sigma, normalise=True)


@njit
def _to_uint8(flat, out):  # pragma: no cover - compiled
    for k in range(flat.size):
        out[k] = np.uint8(min(max(np.rint(255.0 * flat[k]), 0.0), 255.0))


def to_uint8_map(density: np.ndarray) -> np.ndarray:
    """``round(255 * density)`` as uint8 (clipped to 0..255), the SALICON-style ``y_original`` of a [0, 1] map."""
    d = np.asarray(density, dtype=np.float64)
    if not np.isfinite(d).all():
        raise ValueError("density map contains NaN or inf")
    out = np.empty(d.shape, dtype=np.uint8)
    _to_uint8(np.ascontiguousarray(d).ravel(), out.reshape(-1))
    return out


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


# -- lazy recipes (see salbench.data.record.Lazy) -------------------------------------------

def blurred_density(record, sigma: float = SALICON_SIGMA) -> np.ndarray:
    """Recipe: the record's fixated pixels blurred with ``sigma``, max-normalised (:func:`density_from_points`)."""
    return density_from_points(record.fixations, record.shape, sigma)


def density_of_map(record) -> np.ndarray:
    """Recipe: ``y_original / max(y_original)`` (a density read from an 8-bit map file)."""
    y = np.asarray(record.y_original)
    peak = float(y.max()) if y.size else 0.0
    return y / peak if peak > 0 else y.astype(np.float64)


def salicon_sigma(shape) -> float:
    """SALICON's blur (sigma 19 at 480x640) scaled with the image height."""
    return SALICON_SIGMA * shape[0] / SALICON_SHAPE[0]


# -- map files (fixation maps, density maps) -------------------------------------------------

LOSSY_EXT = (".jpg", ".jpeg", ".jfif")
MAP_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".tif", ".tiff", ".pgm", ".gif", ".webp")


def read_map_image(path) -> np.ndarray:
    """Decode a map image to a 2-D array with its stored values.

    8-bit grey (and palette / colour images, converted to grey by Pillow's ``L``) give
    uint8; 16-bit PNG / TIFF give their integer values; 32-bit float TIFF its floats. A
    clear error names the file.
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: map file not found")
    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return np.asarray(im)
            return np.asarray(im.convert("L"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{path}: cannot decode map image: {exc}") from None


def image_size(path) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header (no pixel decoding)."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{path}: cannot read image: {exc}") from None
    return int(h), int(w)
