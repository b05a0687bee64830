"""An example salbench metric plugin: the mean percentile of the saliency at fixated pixels.

For each fixated pixel, the fraction of the image's pixels whose saliency is below it (ties
count half); the metric is the mean over the fixated pixels. 0.5 is chance (a constant map
scores exactly 0.5), 1 means every fixation falls on the most salient pixels. It is the
per-fixation view of the area under the ROC curve with every pixel as a negative.
"""

import numpy as np
from scipy.stats import rankdata

from salbench.metrics import Metric


def fix_percentile(saliency, fixations) -> float:
    """Mean percentile rank (ties half) of the saliency at the fixated pixels; NaN without fixations."""
    s = np.asarray(saliency, dtype=np.float64)
    f = np.asarray(fixations).astype(bool)
    if s.ndim != 2 or s.shape != f.shape:
        raise ValueError(f"saliency {s.shape} and fixations {f.shape} must be 2-D maps of one shape")
    if not np.isfinite(s).all():
        raise ValueError("saliency contains NaN or inf")
    if not f.any():
        return float("nan")
    ranks = rankdata(s.ravel(), method="average")  # 1..N, ties averaged
    return float(((ranks[f.ravel()] - 0.5) / s.size).mean())


FIX_PERCENTILE = Metric(
    name="fix_percentile",  # the entry point's name
    label="Fix. percentile",  # table column header
    higher_is_better=True,
    needs=("fixations",),  # inputs after the saliency map, from salbench.metrics.INPUTS
    func=fix_percentile,
    constant_map=0.5,  # the documented score of a constant map
    description="mean percentile of the saliency at fixated pixels (ties half)",
    # protocols=None (the default): every protocol that supplies `fixations` reports it
)
