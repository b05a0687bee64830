"""Saliency metrics: validating functions over Numba kernels (see docs/architecture.md).

Every function takes 2-D maps of one shape (any real dtype, converted to
float64; NaN/inf -> ``ValueError``); fixation maps mark fixated pixels with
nonzero values. :data:`METRICS` (:mod:`salbench.metrics.registry`) declares every
metric (built-ins, then the ``salbench.metrics`` plugins, added before it is first read),
:func:`evaluate_batch` scores a stack of images in parallel, and
:func:`is_constant_map` is the one definition of a constant map
(docs/metrics.md: degenerate inputs).

Every built-in registry entry's function is importable from here under its name.
"""

from salbench.metrics.auc import auc_exact, auc_judd, auc_shuffled_exact
from salbench.metrics.auc_sampled import auc_borji, auc_borji_expected, auc_shuffled, auc_shuffled_expected
from salbench.metrics.batch import evaluate_batch
from salbench.metrics.correlation import cc, nss, nss_points
from salbench.metrics.degenerate import is_constant_map
from salbench.metrics.distribution import info_gain, kld, sim
from salbench.metrics.registry import (BUILTIN_METRICS, INPUTS, METRICS, UNIFORM, Metric, MetricPluginWarning,
                                       get_metric, metrics_for, plugin_failures)
from salbench.metrics import registry
from salbench.metrics.salicon_server import auc_salicon, sauc_salicon

# A metric added to the registry is exported without touching this file.
for _m in registry._BUILTINS:
    globals().setdefault(_m.name, _m.func)
del _m

__all__ = sorted(
    {
        "BUILTIN_METRICS",
        "INPUTS",
        "METRICS",
        "Metric",
        "MetricPluginWarning",
        "UNIFORM",
        "evaluate_batch",
        "get_metric",
        "is_constant_map",
        "metrics_for",
        "plugin_failures",
        *BUILTIN_METRICS,
    }
)
