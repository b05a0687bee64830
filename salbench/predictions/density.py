"""Prediction files declared as fixation densities: ``.npy`` / ``.npz`` of natural-log densities.

The MIT/Tuebingen benchmark accepts probabilistic models as log-density arrays (one map per
image, ``exp`` summing to 1). salbench reads them with the array readers of
:mod:`salbench.predictions.arrays` (same layouts: ``(N, H, W)``, ``(N, h*w)``, ``names``
matching) and checks each map when it is loaded:

- every value finite (a pixel of probability 0 is written as a large negative number);
- ``|sum(exp(log p)) - 1| <= tol`` (default
  :data:`salbench.predictions.density.DENSITY_SUM_TOL`, 1e-4: a float32 file of a
  600x800 density passes, a saliency map or a density of the wrong image does not), else a
  ``ValueError`` naming the file, the image and the sum;
- then renormalised exactly (``- logsumexp``).

Maps may have any size: the scorer resizes each to its image with
:func:`salbench.protocols.metric_maps.resize_log_density`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from salbench.predictions.arrays import ArraySource, load_predictions

__all__ = ["DENSITY_SUFFIXES", "DENSITY_SUM_TOL", "LogDensityMatch", "check_density_path", "check_log_density",
           "load_log_densities", "log_sum_exp", "open_log_densities"]

DENSITY_SUFFIXES = (".npy", ".npz")


#: A log-density is accepted when ``|sum(exp(log p)) - 1| <= DENSITY_SUM_TOL`` (then renormalised
#: exactly). 1e-4 accepts a float32 file of a 600x800 density (rounding moves its sum by ~1e-6)
#: and refuses a map that is not a density (a saliency map, a density of another image size).
DENSITY_SUM_TOL = 1e-4


def log_sum_exp(a: np.ndarray) -> float:
    """``log(sum(exp(a)))`` of a finite float64 array, computed as ``max + log(sum(exp(a - max)))``.

    What ``scipy.special.logsumexp`` computes (to a few ulps), without its generality: ~10x
    faster on a 600x800 map, and this is called several times per image and pass.
    """
    top = float(a.max())
    return top + math.log(float(np.exp(a - top).sum()))


def check_log_density(log_density, label: str = "log-density", *, tol: float = DENSITY_SUM_TOL) -> np.ndarray:
    """A 2-D log-density as float64, checked to be normalised and renormalised exactly.

    Parameters
    ----------
    log_density : array_like (H, W)
        Natural-log probabilities of the pixels; finite.
    label : str
        What error messages call it (an image name).
    tol : float
        Accepted ``|sum(exp(log_density)) - 1|``.

    Returns
    -------
    ndarray (H, W) float64
        ``log_density - logsumexp(log_density)``.

    Raises
    ------
    ValueError
        Not 2-D, non-finite values, or a sum outside ``1 +- tol`` (the message names ``label``
        and the sum).
    """
    a = np.asarray(log_density)
    if a.ndim != 2 or a.size == 0 or a.dtype.kind not in "biuf":
        raise ValueError(f"{label}: a log-density must be a non-empty numeric 2-D map, got shape {a.shape} "
                         f"dtype {a.dtype}")
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{label}: log-density contains NaN or infinity (write a zero-probability pixel as a "
                         "large negative finite number)")
    lse = log_sum_exp(a)
    total = math.exp(lse) if lse < 700 else math.inf
    if not abs(total - 1.0) <= tol:
        raise ValueError(f"{label}: not a log-density: its exponential sums to {total:.9g}, not 1 "
                         f"(tolerance {tol:g})")
    return a - lse


def check_density_path(path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory; density predictions are one .npy or .npz file of log-densities")
    if path.suffix.lower() not in DENSITY_SUFFIXES:
        raise ValueError(f"{path}: density predictions must be a .npy or .npz file of log-densities, "
                         f"not {path.suffix or '(no extension)'!r}")
    if not path.is_file():
        raise FileNotFoundError(f"density predictions file not found: {path}")
    return path


class LogDensityMatch:
    """A density predictions file matched to a dataset's images; :meth:`load` returns checked log-densities.

    Attributes are those of the wrapped :class:`~salbench.predictions.source.PredictionMatch`
    (``indices``, ``names``, ``n_skipped``, ...), plus ``tol``.
    """

    def __init__(self, match, tol: float = DENSITY_SUM_TOL):
        self._match = match
        self.tol = float(tol)

    def __getattr__(self, name):
        return getattr(self._match, name)

    def __len__(self) -> int:
        return len(self._match)

    def load(self, k: int) -> np.ndarray:
        """The log-density of dataset image ``k``: float64, finite, renormalised (see the module notes)."""
        label = f"{self._match.source.path}: image {self._match.names[int(k)]!r} (entry {self._match.entry(k)})"
        return check_log_density(self._match.load(k), label, tol=self.tol)

    def load_raw(self, k: int) -> np.ndarray:
        """The log-density of dataset image ``k`` exactly as the file stores it, once it passed :meth:`load`'s check."""
        a = self._match.load(k)
        label = f"{self._match.source.path}: image {self._match.names[int(k)]!r} (entry {self._match.entry(k)})"
        check_log_density(a, label, tol=self.tol)
        return np.asarray(a)

    def read(self, k: int) -> tuple[np.ndarray, str]:
        """``(load(k), fingerprint of the stored map)`` from one read."""
        a, fp = self._match.read(k)
        label = f"{self._match.source.path}: image {self._match.names[int(k)]!r} (entry {self._match.entry(k)})"
        return check_log_density(a, label, tol=self.tol), fp

    def describe(self) -> dict:
        return {**self._match.describe(), "values": "log-density", "density_sum_tolerance": self.tol}


def open_log_densities(path: str | os.PathLike, names: Sequence[str], *, tol: float = DENSITY_SUM_TOL,
                       allow_missing: bool = False, allow_extra: bool = False) -> LogDensityMatch:
    """Open a ``.npy`` / ``.npz`` of log-densities and match it to ``names`` (nothing decoded yet).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a ``.npy`` / ``.npz`` file, unreadable, or names that do not match (one message).
    """
    src = ArraySource(check_density_path(path))
    return LogDensityMatch(src.match(names, allow_missing=allow_missing, allow_extra=allow_extra), tol)


def load_log_densities(path: str | os.PathLike, *, tol: float = DENSITY_SUM_TOL) -> np.ndarray:
    """Every log-density of the file, in file order, checked: ``(N, h, w)`` float64."""
    path = check_density_path(path)
    maps = load_predictions(path)
    return np.stack([check_log_density(m, f"{path}: map #{i}", tol=tol) for i, m in enumerate(maps)])
