"""The one per-image record that every dataset yields and every protocol and model reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Record:
    """Everything salbench knows about one image, at the image's own resolution.

    Attributes
    ----------
    name : str
        File name of the image (e.g. ``COCO_val2014_000000000042.jpg``).
    image : ndarray or None
        ``(H, W, 3)`` uint8 image at original resolution; None if the dataset lacks it.
    fixations : ndarray
        ``(K, 2)`` int64 fixation points, 0-based ``(row, col)`` in ``(H, W)``;
        shape ``(0, 2)`` when the dataset has only maps.
    observers : ndarray or None
        ``(K,)`` observer index of each fixation, None if unknown.
    fixation_map : ndarray
        ``(H, W)`` bool, True at fixated pixels.
    density : ndarray
        ``(H, W)`` float64 continuous ground-truth density, maximum 1.
    x96 : ndarray
        ``(3, 96, 96)`` float32 model input in [0, 1].
    y48 : ndarray
        ``(48, 48)`` float32 training target in [0, 1].
    y_original : ndarray or None
        ``(H, W)`` uint8 SALICON-style density map (the coursework ``y_original``).
    true_density : ndarray or None
        Synthetic data only: the density fixations were drawn from (sums to 1).
    meta : dict
        Anything else worth recording (source file, clipped fixation count, ...).
    """

    name: str
    image: np.ndarray | None
    fixations: np.ndarray
    observers: np.ndarray | None
    fixation_map: np.ndarray
    density: np.ndarray
    x96: np.ndarray
    y48: np.ndarray
    y_original: np.ndarray | None = None
    true_density: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the ground truth, the resolution metrics are computed at."""
        return tuple(self.fixation_map.shape)
