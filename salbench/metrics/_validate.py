"""Input validation shared by every public metric: shapes, dtypes, NaN/inf, magnitude.

Single maps and (N, H, W) stacks go through the same checks (:func:`_as_float`,
:func:`_as_mask`); :func:`flat_inputs` is the prologue of every single-image metric.

Every float map (saliency, density, baseline, weights) is also brought to unit magnitude
(:func:`unit_magnitude`) before any arithmetic: every metric is scale-invariant by
definition, but a map times 1e300 overflows a variance (CC = NSS = 0 before) and one
times 1e-300 underflows it. The scale is a power of two, so the values keep every bit and
a map already of ordinary magnitude scores exactly as before.
"""

from __future__ import annotations

import math

import numpy as np

MASK_INPUTS = ("fixations", "other")  # inputs read as "nonzero = fixated" masks


def _with_ndim(array, name: str, stack: bool) -> np.ndarray:
    """``array`` as an ndarray of 2 dims (a map) or 3 dims (a stack; a 2-D map is a stack of one)."""
    a = np.asarray(array)
    if stack and a.ndim == 2:
        a = a[None]
    if a.ndim != (3 if stack else 2):
        what = "a (N, H, W) stack of maps" if stack else "a 2-D map"
        raise ValueError(f"{name} must be {what}, got shape {a.shape}")
    return a


def as_float64(array, name: str, stack: bool = False) -> np.ndarray:
    """``array`` as a C-contiguous float64 map (or stack): dims, emptiness and dtype checked.

    The values are not checked yet (:func:`flat_inputs` does that): for kernels that
    check them in their own pass.
    """
    a = _with_ndim(array, name, stack)
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
        raise ValueError(f"{name} must be real-valued, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _as_float(array, name: str, stack: bool) -> np.ndarray:
    a = as_float64(array, name, stack)
    if stack:
        finite = np.isfinite(a).reshape(a.shape[0], -1).all(axis=1)
        if not finite.all():
            raise ValueError(f"{name}[{int(np.flatnonzero(~finite)[0])}] contains NaN or inf")
        return np.stack([unit_magnitude(m) for m in a]) if _needs_scaling_stack(a) else a
    return _ranged_map(a, name)[0]


def _ranged_map(a: np.ndarray, name: str) -> tuple[np.ndarray, float, float]:
    """A float64 map checked finite and brought to unit magnitude, with its extremes.

    One min and one max (NumPy's, at memory speed) serve three purposes: NaN propagates
    through both and an infinity is one of them (so both finite means every value is),
    they give the scale exponent, and the kernels need them (scaling by a power of two is
    monotone, so the scaled extremes are the extremes of the scaled map).
    """
    lo, hi = float(a.min()), float(a.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf")
    e = _exponent_of(max(hi, -lo))
    if e in (0, 1):
        return a, lo, hi
    return _times_power_of_two(a, -e), math.ldexp(lo, -e), math.ldexp(hi, -e)


def _times_power_of_two(a: np.ndarray, k: int) -> np.ndarray:
    """``a * 2**k``, correctly rounded as ``np.ldexp`` (a product by a power of two is exact or rounds once).

    A multiplication is 3x faster than ``np.ldexp``; it needs ``2**k`` to be a double.
    """
    if -1074 <= k <= 1023:
        return a * math.ldexp(1.0, k)
    return np.ldexp(a, k)


def _exponent_of(peak: float) -> int:
    return math.frexp(peak)[1] if peak > 0.0 else 0


def _scale_exponent(a: np.ndarray) -> int:
    """``e`` with ``max|a| = m * 2**e``, ``0.5 <= m < 1`` (0 for an all-zero map)."""
    return _exponent_of(max(float(a.max()), -float(a.min())))


def _needs_scaling_stack(a: np.ndarray) -> bool:
    return any(_scale_exponent(m) not in (0, 1) for m in a)


def unit_magnitude(a: np.ndarray) -> np.ndarray:
    """``a`` times the power of two that puts its largest magnitude in [0.5, 2).

    Metrics are scale-invariant, so this changes no score, but it keeps their arithmetic
    (variances, sums, differences) in range for any finite map: ``map * 1e300`` and
    ``map * 1e-300`` score as ``map``. Multiplying by a power of two is exact (barring
    values below ``2**-1022`` times the maximum, which become subnormal, as they would when
    dividing by the maximum), so a map whose largest magnitude is already in [0.5, 2) --
    densities with maximum 1, maps in [0, 1] -- is returned unchanged, the same object.

    Parameters
    ----------
    a : ndarray
        A finite float64 map (validated by the caller).

    Returns
    -------
    ndarray
        ``a`` itself, or a scaled copy; an all-zero map is returned unchanged.
    """
    e = _scale_exponent(a)
    if e in (0, 1):  # already in [0.5, 2), or all zero
        return a
    return _times_power_of_two(a, -e)


def _as_mask(array, shape, name: str, stack: bool) -> np.ndarray:
    f = _with_ndim(array, name, stack)
    if tuple(f.shape[-2:]) != tuple(shape[-2:]):
        raise ValueError(f"saliency has shape {tuple(shape)} but {name} has shape {f.shape}")
    if f.dtype != np.bool_:
        if not np.issubdtype(f.dtype, np.number):
            raise ValueError(f"{name} must be numeric or bool, got dtype {f.dtype}")
        if np.issubdtype(f.dtype, np.floating) and not np.isfinite(f).all():
            raise ValueError(f"{name} contains NaN or inf")
        f = f != 0
    return np.ascontiguousarray(f)


def as_float_map(array, name: str) -> np.ndarray:
    """Return ``array`` as a C-contiguous float64 2-D map, or raise ValueError.

    Accepts any real numeric or bool dtype (uint8, float32, ...). Rejects
    non-2-D input, empty maps and NaN/inf values with a message naming ``name``.
    """
    return _as_float(array, name, stack=False)


def as_float_stack(array, name: str) -> np.ndarray:
    """Return ``array`` as a C-contiguous float64 (N, H, W) stack, or raise ValueError.

    A single 2-D map is accepted as a stack of one. Same dtype and NaN/inf rules
    as :func:`as_float_map`; the message names the first offending image.
    """
    return _as_float(array, name, stack=True)


def as_fixation_mask(array, shape: tuple[int, ...], name: str = "fixations") -> np.ndarray:
    """Return a C-contiguous bool mask (nonzero = fixated) of the given shape."""
    return _as_mask(array, shape, name, stack=False)


def as_fixation_stack(array, shape: tuple[int, ...], name: str = "fixations") -> np.ndarray:
    """Return a C-contiguous bool (N, H, W) stack (nonzero = fixated) whose maps are ``shape[-2:]``.

    ``shape`` is the saliency stack's shape; a 2-D map is accepted as a stack of one.
    The caller checks the number of maps.
    """
    return _as_mask(array, shape, name, stack=True)


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ValueError naming both shapes unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; "
            "resize the prediction first (protocols do this)"
        )


def flat_inputs(saliency, **maps) -> list:
    """Validate a saliency map and the maps it is scored against; return them flattened.

    Keyword names say how each map is read: ``fixations`` and ``other`` are masks
    (nonzero = fixated), anything else (``density``, ``baseline``) a float map of
    the same shape. Returns ``[s, *maps]`` as 1-D arrays, in call order.
    """
    return flat_inputs_ranged(saliency, **maps)[0]


def flat_inputs_ranged(saliency, **maps) -> tuple[list, list]:
    """:func:`flat_inputs`, and the ``(min, max)`` of each float map (None for a mask).

    The extremes come from the validation pass (a kernel given them needs no pass of its
    own) and are those of the unit-magnitude map.
    """
    s, lo, hi = _ranged_map(as_float64(saliency, "saliency"), "saliency")
    out, ranges = [s], [(lo, hi)]
    for name, value in maps.items():
        if name in MASK_INPUTS:
            out.append(as_fixation_mask(value, s.shape, name))
            ranges.append(None)
        else:
            m, m_lo, m_hi = _ranged_map(as_float64(value, name), name)
            check_same_shape(s, m, "saliency", name)
            out.append(m)
            ranges.append((m_lo, m_hi))
    return [a.ravel() for a in out], ranges


def flat_point_indices(shape, rows, cols=None) -> np.ndarray:
    """Flat int64 indices ``row * W + col`` of fixation points, validated against ``shape``.

    Takes ``rows, cols`` (1-D integer arrays of equal length) or one ``points`` array
    of shape (K, 2) holding 0-based ``(row, col)`` pairs (``cols`` None). Raises
    ValueError for other shapes, non-integer coordinates or a point outside the map
    (negative indices are not wrapped).
    """
    if cols is None:
        p = np.asarray(rows)
        if p.size == 0:
            p = p.reshape(0, 2)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"points must have shape (K, 2) as (row, col) pairs, got {p.shape}")
        r, c = p[:, 0], p[:, 1]
    else:
        r, c = np.asarray(rows), np.asarray(cols)
    if r.ndim != 1 or c.ndim != 1 or r.shape != c.shape:
        raise ValueError(f"rows and cols must be 1-D of equal length, got shapes {r.shape} and {c.shape}")
    if r.size and not (np.issubdtype(r.dtype, np.integer) and np.issubdtype(c.dtype, np.integer)):
        raise ValueError(f"rows and cols must be integers, got dtypes {r.dtype} and {c.dtype}")
    h, w = shape
    r = r.astype(np.int64)
    c = c.astype(np.int64)
    bad = (r < 0) | (r >= h) | (c < 0) | (c >= w)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"fixation point {k} at (row={r[k]}, col={c[k]}) is outside the {h}x{w} map")
    return np.ascontiguousarray(r * w + c)
