"""Degenerate inputs, decided once for every metric and protocol (see docs/metrics.md).

- A saliency map is **constant** when ``max - min <= 1e-12 * max(|max|, |min|, tiny)``.
  The tolerance is relative so that a constant map resized by a protocol (a
  bicubic resize spreads an all-0.7 map over a few ulps) is still constant. A
  constant map scores chance: every AUC exactly 0.5 (the expectation over MIT's
  tie-breaking jitter), NSS 0, CC 0, and SIM / KLD / IG / EMD as the uniform
  distribution (a constant map *is* the uniform prediction). Each metric's
  :attr:`~salbench.metrics.registry.Metric.constant_map` documents its answer.
- An image **without fixations** scores NaN under every metric: all ground truth
  derives from fixations (a fixation-derived density is then all zero, and the
  density metrics return NaN for a density without mass). Protocols count such
  images and report them as excluded.
- A ground-truth density **without mass** (constant and <= 0, i.e. all zero)
  gives NaN for CC, SIM, KLD and EMD; a constant positive density gives NaN for
  CC (a correlation with a constant is undefined) and is the uniform
  distribution for SIM, KLD and EMD.

Kernels apply the same test through :func:`salbench.metrics._kernels.is_constant_range`.
"""

from __future__ import annotations

import numpy as np

from salbench.metrics._kernels import CONSTANT_RTOL, is_constant_range

__all__ = ["CONSTANT_RTOL", "is_constant_map"]


def is_constant_map(saliency) -> bool:
    """True when a map counts as constant for every salbench metric.

    Parameters
    ----------
    saliency : array_like
        A map (any shape, any real dtype). NaN/inf are not checked here.

    Returns
    -------
    bool
        ``max - min <= 1e-12 * max(|max|, |min|, tiny)``, ``tiny`` the smallest
        normal float64: exact constants, and constants spread over a few ulps by
        resampling (``matlab_bicubic`` of an all-0.7 map) count as constant.

    Examples
    --------
    >>> import numpy as np
    >>> is_constant_map(np.full((3, 4), 0.7)), is_constant_map(np.array([[0.7, 0.7 + 1e-15]]))
    (True, True)
    >>> is_constant_map(np.array([[0.0, 1e-9]]))
    False
    """
    a = np.asarray(saliency, dtype=np.float64)
    if a.size == 0:
        raise ValueError("is_constant_map needs a non-empty map")
    return bool(is_constant_range(float(a.min()), float(a.max())))
