"""Does a prediction have its stimulus' aspect ratio? (pure helpers; protocols resize, as MIT does)

MIT's metric code resizes any saliency map to the fixation map's size (``imresize(map,
size(fixationMap))``), stretching one whose aspect ratio differs. salbench keeps that, but a
map of 100x37 for a 480x640 stimulus, or 1x1, is most likely a bug in the model or its
export, so protocols count such maps and warn (docs/predictions.md, "Aspect ratio").

A map *has the stimulus' aspect ratio* when its sides are the stimulus' scaled by one factor
and each rounded to an integer (37x49 for 480x640: 37/480 and 49/640 both round from
~0.0768), or when the ratios differ by at most ``tol`` (2 % by default). The rounding
allowance is only granted to maps at least :data:`MIN_SIDE` pixels on their short side: a
1x1 map "rounds" from any stimulus.
"""

from __future__ import annotations

import math

__all__ = ["DEFAULT_TOL", "MIN_SIDE", "aspect_distortion", "aspect_mismatch"]

#: Relative aspect-ratio difference accepted without the rounding argument.
DEFAULT_TOL = 0.02
#: Shortest side that may claim the rounding allowance.
MIN_SIDE = 8


def _hw(shape, what: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in tuple(shape)[-2:])
    except (TypeError, ValueError):
        raise ValueError(f"{what} shape must be (H, W), got {shape!r}") from None
    if len(tuple(shape)) < 2 or h < 1 or w < 1:
        raise ValueError(f"{what} shape must be (H, W) with positive sides, got {tuple(shape)!r}")
    return h, w


def aspect_distortion(pred_shape, gt_shape) -> float:
    """How much resizing ``pred_shape`` to ``gt_shape`` stretches it: ``max(r, 1/r) - 1``.

    ``r`` is the ratio of the two aspect ratios (width / height); 0 for the same aspect
    ratio, 0.333 for 48x48 onto 480x640, 2.6 for 100x37 onto 480x640. Only the last two
    entries of each shape are used, so ``(N, H, W)`` stacks are accepted.
    """
    ph, pw = _hw(pred_shape, "prediction")
    gh, gw = _hw(gt_shape, "ground truth")
    r = (pw * gh) / (ph * gw)  # (pw / ph) / (gw / gh), in integers until the division
    return max(r, 1.0 / r) - 1.0


def _rounds_from_one_scale(pred: tuple[int, int], gt: tuple[int, int]) -> bool:
    """Whether some factor ``s`` gives ``round(gh * s) == ph`` and ``round(gw * s) == pw``."""
    lo = max((p - 0.5) / g for p, g in zip(pred, gt))
    hi = min((p + 0.5) / g for p, g in zip(pred, gt))
    return lo <= hi


def aspect_mismatch(pred_shape, gt_shape, tol: float = DEFAULT_TOL) -> bool:
    """True when resizing a ``pred_shape`` map to ``gt_shape`` stretches it (module docstring).

    Parameters
    ----------
    pred_shape, gt_shape : tuple of int
        ``(H, W)`` (or ``(..., H, W)``) of the prediction and of the stimulus / fixation map.
    tol : float
        Relative aspect-ratio difference (:func:`aspect_distortion`) accepted anyway.

    Examples
    --------
    >>> aspect_mismatch((60, 80), (480, 640)), aspect_mismatch((37, 49), (480, 640))
    (False, False)
    >>> aspect_mismatch((100, 37), (480, 640)), aspect_mismatch((1, 1), (480, 640))
    (True, True)
    >>> aspect_mismatch((48, 48), (480, 640))  # the coursework's square maps: stretched
    True
    """
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    pred, gt = _hw(pred_shape, "prediction"), _hw(gt_shape, "ground truth")
    if aspect_distortion(pred, gt) <= tol:
        return False
    return not (min(pred) >= MIN_SIDE and _rounds_from_one_scale(pred, gt))
