"""Input validation shared by every public metric: shapes, dtypes, NaN/inf."""

from __future__ import annotations

import numpy as np


def as_float_map(array, name: str) -> np.ndarray:
    """Return ``array`` as a C-contiguous float64 2-D map, or raise ValueError.

    Accepts any real numeric or bool dtype (uint8, float32, ...). Rejects
    non-2-D input, empty maps and NaN/inf values with a message naming ``name``.
    """
    a = np.asarray(array)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D map, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
        raise ValueError(f"{name} must be real-valued, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ValueError naming both shapes unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; "
            "resize the prediction first (protocols do this)"
        )


def as_fixation_mask(array, shape: tuple[int, ...], name: str = "fixations") -> np.ndarray:
    """Return a C-contiguous bool mask (nonzero = fixated) of the given shape."""
    f = np.asarray(array)
    if f.ndim != 2:
        raise ValueError(f"{name} must be a 2-D map, got shape {f.shape}")
    if tuple(f.shape) != tuple(shape):
        raise ValueError(f"saliency has shape {tuple(shape)} but {name} has shape {f.shape}")
    if f.dtype != np.bool_:
        if not np.issubdtype(f.dtype, np.number):
            raise ValueError(f"{name} must be numeric or bool, got dtype {f.dtype}")
        if np.issubdtype(f.dtype, np.floating) and not np.isfinite(f).all():
            raise ValueError(f"{name} contains NaN or inf")
        f = f != 0
    return np.ascontiguousarray(f)


def as_float_stack(array, name: str) -> np.ndarray:
    """Return ``array`` as a C-contiguous float64 (N, H, W) stack, or raise ValueError.

    A single 2-D map is accepted as a stack of one. Same dtype and NaN/inf rules
    as :func:`as_float_map`; the message names the first offending image.
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be a (N, H, W) stack of maps, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
        raise ValueError(f"{name} must be real-valued, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    finite = np.isfinite(a).reshape(a.shape[0], -1).all(axis=1)
    if not finite.all():
        raise ValueError(f"{name}[{int(np.flatnonzero(~finite)[0])}] contains NaN or inf")
    return a


def as_fixation_stack(array, shape: tuple[int, ...], name: str = "fixations") -> np.ndarray:
    """Return a C-contiguous bool (N, H, W) stack (nonzero = fixated) whose maps are ``shape[-2:]``.

    ``shape`` is the saliency stack's shape; a 2-D map is accepted as a stack of one.
    The caller checks the number of maps.
    """
    f = np.asarray(array)
    if f.ndim == 2:
        f = f[None]
    if f.ndim != 3:
        raise ValueError(f"{name} must be a (N, H, W) stack of maps, got shape {f.shape}")
    if tuple(f.shape[1:]) != tuple(shape[-2:]):
        raise ValueError(f"saliency has shape {tuple(shape)} but {name} has shape {f.shape}")
    if f.dtype != np.bool_:
        if not np.issubdtype(f.dtype, np.number):
            raise ValueError(f"{name} must be numeric or bool, got dtype {f.dtype}")
        if np.issubdtype(f.dtype, np.floating) and not np.isfinite(f).all():
            raise ValueError(f"{name} contains NaN or inf")
        f = f != 0
    return np.ascontiguousarray(f)
