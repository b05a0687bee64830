"""The metric registry: the one place a metric is declared.

Every consumer derives from :data:`METRICS`: the batch scorer
(:mod:`salbench.metrics.batch`), the protocols (:func:`metrics_for`), table
columns and their order (registry order), labels and directions (tables, the
CLI, results files). Protocol variants of a metric (the SALICON server's AUC)
are entries of their own.

Conventions of the entries
--------------------------
``func(saliency, *inputs, **params)`` takes the inputs named by ``needs``, in
that order:

- ``density``: float HxW continuous ground truth;
- ``fixations``: HxW map, nonzero = fixated pixel (each pixel once);
- ``points``: (K, 2) int 0-based ``(row, col)`` of every fixation point;
- ``other``: HxW map, nonzero = pixel fixated in other images (shuffled AUCs);
- ``other_weights``: HxW counts, how many other images fixate each pixel;
- ``baseline``: float HxW baseline map (information gain).

``kernel`` is the Numba per-image kernel giving the same value on flat
C-contiguous arrays: ``kernel(s, *inputs, *kernel_args)`` with ``s`` and
``density``/``baseline``/``other_weights`` float64 (H*W,), ``fixations``/``other``
bool (H*W,), ``points`` int64 flat indices ``row * W + col``; ``kernel_args``
names the extra arguments (e.g. thresholds, kernel seed) in order. Fused
protocol kernels call these kernels, so they share their degenerate-input
answers.

Degenerate inputs (:mod:`salbench.metrics.degenerate`): ``constant_map`` is the
documented score of a constant saliency map (a float; :data:`UNIFORM`: scored as
the uniform distribution, a value that depends on the ground truth). An image
without fixations scores NaN under every metric.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from salbench.metrics.auc import (
    _auc_exact_kernel,
    _auc_judd_kernel,
    _auc_shuffled_exact_kernel,
    auc_exact,
    auc_judd,
    auc_shuffled_exact,
)
from salbench.metrics.auc_sampled import (
    _auc_borji_expected_kernel,
    _auc_borji_kernel,
    _auc_shuffled_expected_kernel,
    _auc_shuffled_kernel,
    auc_borji,
    auc_borji_expected,
    auc_shuffled,
    auc_shuffled_expected,
)
from salbench.metrics.correlation import _cc_kernel, _nss_kernel, _nss_points_kernel, cc, nss, nss_points
from salbench.metrics.distribution import _info_gain_kernel, _kld_kernel, _sim_kernel, info_gain, kld, sim
from salbench.metrics.transport import emd
from salbench.metrics.salicon_server import _auc_salicon_kernel, _sauc_salicon_kernel, auc_salicon, sauc_salicon

__all__ = ["INPUTS", "METRICS", "Metric", "MetricInfo", "UNIFORM", "get_metric", "metrics_for"]

INPUTS = ("density", "fixations", "points", "other", "other_weights", "baseline")
UNIFORM = "uniform"  # constant_map value: a constant map is scored as the uniform distribution
NO_FIXATIONS = float("nan")  # the score of every metric on an image without fixations

_SAMPLED_AUC_ARGS = ("thresholds", "splits", "kernel_seed", "include_endpoint", "logfact")


@dataclass(frozen=True)
class Metric:
    """One metric: what it computes, what it needs, how to read it.

    Attributes
    ----------
    name : str
        Registry key and column key, e.g. ``"cc"``.
    label : str
        Table label, e.g. ``"CC"``.
    higher_is_better : bool
        Direction of improvement.
    needs : tuple of str
        Inputs after the saliency map, in call order, from :data:`INPUTS`.
    func : callable
        Public validating function ``func(saliency, *inputs, **params) -> float``.
    kernel : callable or None
        Numba per-image kernel (see the module notes), same value as ``func``;
        None when there is none (EMD: a linear program solved by POT).
    sampled : bool
        The value depends on a random draw; ``func`` takes ``seed=``.
    params : tuple of str
        Keyword parameters ``func`` accepts besides ``seed``.
    protocols : tuple of str
        Protocols that report this metric; their columns follow registry order.
    constant_map : float, str or None
        Score of a constant saliency map: a float, :data:`UNIFORM` (the score of
        the uniform distribution), or None (NaN, undefined).
    description : str
        One line for tables and ``--help``.
    kernel_args : tuple of str
        Names of the kernel's arguments after its inputs (empty for most).
    """

    name: str
    label: str
    higher_is_better: bool
    needs: tuple[str, ...]
    func: Callable[..., float]
    kernel: Callable | None
    sampled: bool
    params: tuple[str, ...]
    protocols: tuple[str, ...]
    constant_map: float | str | None
    description: str
    kernel_args: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = [n for n in self.needs if n not in INPUTS]
        if unknown:
            raise ValueError(f"metric {self.name!r}: unknown inputs {unknown}; known: {INPUTS}")
        if not (self.constant_map is None or self.constant_map == UNIFORM or isinstance(self.constant_map, float)):
            raise ValueError(f"metric {self.name!r}: constant_map must be a float, {UNIFORM!r} or None")

    @property
    def stochastic(self) -> bool:
        """Alias of :attr:`sampled` (older name)."""
        return self.sampled


MetricInfo = Metric  # older name, kept for callers


def _m(name, label, higher_is_better, needs, func, kernel, *, sampled=False, params=(), protocols=(),
       constant_map, description, kernel_args=()) -> Metric:
    return Metric(name, label, higher_is_better, tuple(needs), func, kernel, sampled, tuple(params),
                  tuple(protocols), constant_map, description, tuple(kernel_args))


_ENTRIES = [
    _m("cc", "CC", True, ["density"], cc, _cc_kernel, protocols=("mit", "coursework", "salicon", "exact"),
       constant_map=0.0, description="Pearson correlation with the density (MIT CC)"),
    _m("nss", "NSS", True, ["fixations"], nss, _nss_kernel, protocols=("mit", "exact"), constant_map=0.0,
       description="mean z-scored saliency at fixated pixels (MIT NSS)"),
    _m("nss_points", "NSS (points)", True, ["points"], nss_points, _nss_points_kernel, protocols=("salicon",),
       constant_map=0.0, description="NSS over every fixation point, population std (pysaliency, SALICON server)"),
    _m("auc_judd", "AUC-Judd", True, ["fixations"], auc_judd, _auc_judd_kernel, params=("jitter",),
       protocols=("mit",), constant_map=0.5,
       description="ROC area, fixated values as thresholds (MIT AUC-Judd)"),
    _m("auc_borji", "AUC-Borji", True, ["fixations"], auc_borji, _auc_borji_kernel, sampled=True,
       params=("splits", "step", "include_endpoint", "method"), protocols=("mit", "coursework"),
       constant_map=0.5, kernel_args=_SAMPLED_AUC_ARGS,
       description="sampled ROC area, uniform negatives (MIT AUC-Borji)"),
    _m("auc_shuffled", "sAUC", True, ["fixations", "other"], auc_shuffled, _auc_shuffled_kernel, sampled=True,
       params=("splits", "step", "include_endpoint", "method"), protocols=("mit", "coursework"),
       constant_map=0.5, kernel_args=_SAMPLED_AUC_ARGS,
       description="sampled ROC area, other images' fixations as negatives (sAUC)"),
    _m("auc_borji_expected", "AUC-Borji (expected)", True, ["fixations"], auc_borji_expected,
       _auc_borji_expected_kernel, params=("step", "include_endpoint"), constant_map=0.5,
       kernel_args=("thresholds", "include_endpoint"), description="expected value of AUC-Borji over its draws"),
    _m("auc_shuffled_expected", "sAUC (expected)", True, ["fixations", "other"], auc_shuffled_expected,
       _auc_shuffled_expected_kernel, params=("step", "include_endpoint"), constant_map=0.5,
       kernel_args=("thresholds", "include_endpoint"), description="expected value of sAUC over its draws"),
    _m("auc_exact", "AUC (exact)", True, ["fixations"], auc_exact, _auc_exact_kernel, protocols=("exact",),
       constant_map=0.5, description="exact ROC area, all pixels as negatives, ties half"),
    _m("auc_shuffled_exact", "sAUC (exact)", True, ["fixations", "other"], auc_shuffled_exact,
       _auc_shuffled_exact_kernel, protocols=("exact",), constant_map=0.5,
       description="exact ROC area, other images' fixations as negatives"),
    _m("auc_salicon", "AUC (SALICON)", True, ["points"], auc_salicon, _auc_salicon_kernel, sampled=True,
       params=("n_random", "step"), protocols=("salicon",), constant_map=0.5, kernel_args=("draw", "step"),
       description="SALICON server AUC: one draw of 100k uniform negatives, step 0.01"),
    _m("sauc_salicon", "sAUC (SALICON)", True, ["points", "other_weights"], sauc_salicon, _sauc_salicon_kernel,
       params=("step",), protocols=("salicon",), constant_map=0.5, kernel_args=("step",),
       description="SALICON server sAUC: negatives weighted by how many other images fixate them"),
    _m("kld", "KLD", False, ["density"], kld, _kld_kernel, protocols=("mit", "exact"), constant_map=UNIFORM,
       description="KL divergence of the prediction from the density (MIT KLdiv)"),
    _m("sim", "SIM", True, ["density"], sim, _sim_kernel, protocols=("mit", "exact"), constant_map=UNIFORM,
       description="histogram intersection of min-max normalised maps (MIT SIM)"),
    _m("info_gain", "IG", True, ["fixations", "baseline"], info_gain, _info_gain_kernel, protocols=("mit",),
       constant_map=UNIFORM, description="bits per fixation over a baseline (MIT InfoGain)"),
    _m("emd", "EMD", False, ["density"], emd, None, params=("downsample",), protocols=("mit",),
       constant_map=UNIFORM,
       description="earth mover's distance, maps downsampled 32x as MIT EMD.m (POT; no histogram matching)"),
]

METRICS: dict[str, Metric] = {m.name: m for m in _ENTRIES}
"""Every metric by name; insertion order is the order of table columns everywhere."""


def get_metric(name: str) -> Metric:
    """The registry entry of ``name``; ValueError with a suggestion for an unknown name."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), METRICS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}.{hint}") from None


def metrics_for(protocol: str) -> tuple[str, ...]:
    """Names of the metrics ``protocol`` reports, in registry (column) order."""
    names = tuple(m.name for m in METRICS.values() if protocol in m.protocols)
    if not names:
        known = sorted({p for m in METRICS.values() for p in m.protocols})
        close = difflib.get_close_matches(str(protocol), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"no metric is registered for protocol {protocol!r}; known: {', '.join(known)}.{hint}")
    return names
