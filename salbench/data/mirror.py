"""Horizontal mirror images, as the report trains on ("10,000 images and their mirror images").

Two levels:

* :func:`mirror_record` flips one :class:`~salbench.data.record.Record` exactly:
  image, fixation points (column ``c`` becomes ``W - 1 - c``), fixation map,
  density maps, ``x96`` and ``y48``. A flip of pixel arrays is exact (no
  resampling), so the mirrored record is the same data seen in a mirror.
* :func:`mirror_arrays` appends the flips of stacked training arrays
  (``x`` ``(N, 3, 96, 96)``, ``y`` ``(N, 48, 48)``); training uses this.

Data that already hold mirrors must not be mirrored twice:

* a dataset that *declares* its mirrors (attribute ``mirrored`` true and
  ``n_base`` base images first, as the built-in ``synthetic`` train split:
  10000 images then their rendered mirrors) is read for its base images only,
  which are then flipped (the flip of a base ``x96`` and the rendered mirror's
  ``x96`` differ only by the downscale's rounding);
* otherwise (``salicon-pkl``'s ``train.pkl``, said to hold 20000 = 10000 +
  mirrors; ``nus``; ``salicon``) :func:`find_mirror_pairs` looks for images
  whose flip is another image of the set, and :func:`base_indices` keeps one of
  each pair. A pair is found when the flip matches exactly (any order), or, for
  the two usual layouts (mirrors appended after the originals, or interleaved),
  within 2/255 per pixel (mirrors made at full resolution and downscaled again).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import PurePosixPath

import numpy as np

PAIR_TOLERANCE = 2.0 / 255  # max |x96 - flip(x96')| for a mirror pair found by position


def _flip(a):
    """Flip the last axis (columns) of an array; None stays None."""
    return None if a is None else np.ascontiguousarray(np.asarray(a)[..., ::-1])


def mirrored_name(name: str) -> str:
    """``img.jpg`` -> ``img_mirror.jpg`` (the built-in synthetic dataset's convention)."""
    p = PurePosixPath(name)
    return str(p.with_name(f"{p.stem}_mirror{p.suffix}"))


def _flipped_field(mirrored, source, name: str):
    """Lazy recipe of a mirrored record's field: the flip of the source record's (computed then)."""
    return _flip(getattr(source, name))


def mirror_record(record):
    """The exact horizontal mirror image of ``record``.

    Image ``(H, W, 3)``, fixation map, ``density``, ``y_original`` and
    ``true_density`` ``(H, W)``, ``x96`` ``(3, 96, 96)`` and ``y48`` ``(48, 48)``
    are flipped left-right; each fixation ``(row, col)`` becomes
    ``(row, W - 1 - col)`` with ``W`` the width of the fixation map; observers are
    kept. The name gains ``_mirror`` before its extension and ``meta`` records
    ``mirror_of``. Fields the source still holds as lazy recipes stay lazy (the
    flip is computed on first read).
    """
    from salbench.data.record import LAZY_FIELDS, Lazy

    width = record.fixation_map.shape[1]
    fix = np.array(record.fixations, dtype=np.int64, copy=True).reshape(-1, 2)
    fix[:, 1] = width - 1 - fix[:, 1]
    image = None if record.image is None else np.ascontiguousarray(np.asarray(record.image)[:, ::-1])
    changes = dict(
        name=mirrored_name(record.name), image=image, fixations=fix,
        observers=None if record.observers is None else np.array(record.observers, copy=True),
        fixation_map=_flip(record.fixation_map),
        meta={**dict(record.meta or {}), "mirrored": True, "mirror_of": record.name},
    )
    computed = getattr(record, "is_computed", lambda name: True)
    for name in LAZY_FIELDS:
        changes[name] = _flip(getattr(record, name)) if computed(name) else Lazy(_flipped_field, record, name)
    if hasattr(record, "replace"):
        return record.replace(**changes)
    return dataclasses.replace(record, **changes)


def mirror_arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x ++ flip(x), y ++ flip(y))``: the images, then their mirrors in the same order."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or y.ndim != 3 or len(x) != len(y):
        raise ValueError(f"mirror_arrays expects x (N, C, H, W) and y (N, h, w), got {x.shape} and {y.shape}")
    return np.concatenate([x, x[..., ::-1]]), np.concatenate([y, y[..., ::-1]])


def find_mirror_pairs(x: np.ndarray, tolerance: float = PAIR_TOLERANCE) -> np.ndarray:
    """``partner[i]`` = index of the image whose horizontal flip is image ``i``, or -1.

    Exact matches are found in any order (hash of the flipped bytes); near
    matches (``max |x_i - flip(x_j)| <= tolerance``) only for the layouts
    ``j = i + N/2`` and ``j = i +- 1`` (a symmetric image is its own flip and is
    not paired).
    """
    x = np.asarray(x)
    n = len(x)
    partner = np.full(n, -1, dtype=np.int64)
    digest = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes()).digest()  # noqa: E731
    index: dict[bytes, int] = {}
    for i in range(n):
        index.setdefault(digest(x[i]), i)
    for i in range(n):
        j = index.get(digest(x[i][..., ::-1]), -1)
        if j >= 0 and j != i:
            partner[i] = j

    def near(i, j):
        return np.max(np.abs(x[i].astype(np.float32) - x[j][..., ::-1].astype(np.float32))) <= tolerance

    if n % 2 == 0 and (partner < 0).any():
        h = n // 2
        if n >= 2 and near(0, h) and near(h - 1, n - 1):  # mirrors appended: check every pair
            for i in range(h):
                if partner[i] < 0 and near(i, i + h):
                    partner[i], partner[i + h] = i + h, i
        elif n >= 2 and near(0, 1):  # interleaved
            for i in range(0, n - 1, 2):
                if partner[i] < 0 and near(i, i + 1):
                    partner[i], partner[i + 1] = i + 1, i
    return partner


def base_indices(dataset=None, x: np.ndarray | None = None, used: int | None = None) -> tuple[np.ndarray, str]:
    """Indices of the images to mirror (one of each mirror pair) and a note saying why.

    Parameters
    ----------
    dataset : SaliencyDataset, optional
        Checked for declared mirrors (``mirrored`` and ``n_base``).
    x : ndarray, optional
        The stacked inputs, searched with :func:`find_mirror_pairs` when the
        dataset declares nothing.
    used : int, optional
        For a dataset that declares its mirrors: how many of its base images are
        used (default all).
    """
    if dataset is not None and getattr(dataset, "mirrored", False) and getattr(dataset, "n_base", None):
        n = int(dataset.n_base)
        k = n if used is None else min(int(used), n)
        which = f"the {n} base images are" if k == n else f"the first {k} of its {n} base images are"
        return np.arange(k), f"the split lists {n} images then their rendered mirrors: {which} used and flipped"
    if x is None:
        raise ValueError("base_indices needs a dataset that declares its mirrors, or the stacked inputs x")
    partner = find_mirror_pairs(x)
    second = (partner >= 0) & (partner < np.arange(len(x)))  # the later image of each pair
    keep = np.flatnonzero(~second)
    pairs = int(second.sum())
    if pairs:
        return keep, (f"{pairs} of {len(x)} images are mirrors of others in the set: those are dropped and "
                      f"the {len(keep)} others flipped (not mirrored twice)")
    return keep, f"no mirror pairs among the {len(x)} images: all are flipped"
