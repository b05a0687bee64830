"""Metadata of every metric (like torchmetrics' ``higher_is_better``), keyed by function name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from salbench.metrics.auc import auc_exact, auc_judd, auc_shuffled_exact
from salbench.metrics.auc_sampled import auc_borji, auc_borji_expected, auc_shuffled, auc_shuffled_expected
from salbench.metrics.correlation import cc, nss, nss_points
from salbench.metrics.distribution import info_gain, kld, sim


@dataclass(frozen=True)
class MetricInfo:
    """What a metric needs and how to read it.

    Attributes
    ----------
    name : str
        Key in :data:`METRICS` and the function's name.
    func : callable
        The public function: ``func(saliency, *inputs named by needs, **kw)``.
    higher_is_better : bool
        Direction of improvement (False only for KLD).
    needs : tuple of str
        Ground-truth inputs after the saliency map, in call order, from
        ``density``, ``fixations``, ``other``, ``baseline``, ``points``
        (``points`` = ``rows, cols`` arrays).
    stochastic : bool
        True when the value depends on a random draw (pass ``seed``).
    description : str
        One line for tables and ``--help``.
    """

    name: str
    func: Callable[..., float]
    higher_is_better: bool
    needs: tuple[str, ...]
    stochastic: bool
    description: str


def _info(name, func, higher_is_better, needs, stochastic, description) -> MetricInfo:
    return MetricInfo(name, func, higher_is_better, tuple(needs), stochastic, description)


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        _info("cc", cc, True, ["density"], False, "Pearson correlation with the density (MIT CC)"),
        _info("nss", nss, True, ["fixations"], False, "mean z-scored saliency at fixated pixels (MIT NSS)"),
        _info("nss_points", nss_points, True, ["points"], False, "NSS over every fixation point, population std (pysaliency)"),
        _info("auc_judd", auc_judd, True, ["fixations"], False, "ROC area, fixated values as thresholds (MIT AUC-Judd)"),
        _info("auc_borji", auc_borji, True, ["fixations"], True, "sampled ROC area, uniform negatives (MIT AUC-Borji)"),
        _info("auc_shuffled", auc_shuffled, True, ["fixations", "other"], True, "sampled ROC area, other images' fixations as negatives (sAUC)"),
        _info("auc_borji_expected", auc_borji_expected, True, ["fixations"], False, "expected value of AUC-Borji over its draws"),
        _info("auc_shuffled_expected", auc_shuffled_expected, True, ["fixations", "other"], False, "expected value of sAUC over its draws"),
        _info("auc_exact", auc_exact, True, ["fixations"], False, "exact ROC area, all pixels as negatives, ties half"),
        _info("auc_shuffled_exact", auc_shuffled_exact, True, ["fixations", "other"], False, "exact ROC area, other images' fixations as negatives"),
        _info("kld", kld, False, ["density"], False, "KL divergence of the prediction from the density (MIT KLdiv)"),
        _info("sim", sim, True, ["density"], False, "histogram intersection of min-max normalised maps (MIT SIM)"),
        _info("info_gain", info_gain, True, ["fixations", "baseline"], False, "bits per fixation over a baseline (MIT InfoGain)"),
    )
}
