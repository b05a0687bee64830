"""Saliency metrics: validating functions over Numba kernels (see docs/architecture.md).

Every function takes 2-D maps of one shape (any real dtype, converted to
float64; NaN/inf -> ``ValueError``); fixation maps mark fixated pixels with
nonzero values. :data:`METRICS` holds each metric's metadata and
:func:`evaluate_batch` scores a stack of images in parallel.
"""

from salbench.metrics.auc import auc_exact, auc_judd, auc_shuffled_exact
from salbench.metrics.auc_sampled import auc_borji, auc_borji_expected, auc_shuffled, auc_shuffled_expected
from salbench.metrics.batch import evaluate_batch
from salbench.metrics.correlation import cc, nss, nss_points
from salbench.metrics.distribution import info_gain, kld, sim
from salbench.metrics.registry import METRICS, MetricInfo

__all__ = [
    "METRICS",
    "MetricInfo",
    "auc_borji",
    "auc_borji_expected",
    "auc_exact",
    "auc_judd",
    "auc_shuffled",
    "auc_shuffled_exact",
    "auc_shuffled_expected",
    "cc",
    "evaluate_batch",
    "info_gain",
    "kld",
    "nss",
    "nss_points",
    "sim",
]
