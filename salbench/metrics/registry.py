"""The metric registry: the one place a metric is declared.

Every consumer derives from :data:`METRICS`: the protocols (which metrics they report, how
each is called, with which parameters and seeds: :mod:`salbench.protocols.base`), the batch
scorer (:mod:`salbench.metrics.batch`), table columns and their order (registry order),
labels and directions (tables, the CLI, results files, ``check``). Protocol variants of a
metric (the SALICON server's AUC) are entries of their own.

A built-in metric is its module plus one entry of :data:`_BUILTINS`. Third-party metrics
come from the ``salbench.metrics`` entry-point group (:func:`load_plugins`, through the
discovery path the models use, :mod:`salbench._plugins`): each entry point names a
:class:`Metric`; plugins follow the built-ins in :data:`METRICS` (by name), may not take a
built-in's name, and a broken one is one line (:func:`plugin_failures`, and a
:class:`MetricPluginWarning`) while everything else works. See ``docs/plugins.md``.

Conventions of the entries
--------------------------
``func(saliency, *inputs, **params)`` takes the inputs named by ``needs``, in that order
(:data:`INPUTS` says what each is), and the keywords of ``params``; sampled metrics (and
those with ``seeded=True``) also take ``seed=``.

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
import sys
import types
import warnings
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Callable, Iterable, Mapping

from salbench._plugins import EntryPointTable
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

__all__ = ["GROUP", "INPUTS", "METRICS", "Metric", "MetricPluginWarning", "UNIFORM", "get_metric", "load_plugins",
           "metrics_for", "plugin_failures"]

#: The inputs a metric may need after the saliency map (a protocol supplies them per image).
INPUTS = {
    "density": "float (H, W) continuous ground truth",
    "fixations": "(H, W) map, nonzero = fixated pixel (each pixel once)",
    "points": "(K, 2) int 0-based (row, col) of every fixation point (duplicates kept)",
    "other": "(H, W) map, nonzero = pixel fixated in other images (shuffled AUCs)",
    "other_weights": "(H, W) counts: how many other images fixate each pixel",
    "baseline": "float (H, W) baseline map (information gain)",
}
UNIFORM = "uniform"  # constant_map value: a constant map is scored as the uniform distribution
GROUP = "salbench.metrics"  # the entry-point group of metric plugins

_SAMPLED_AUC_ARGS = ("thresholds", "splits", "kernel_seed", "include_endpoint", "logfact")


@dataclass(frozen=True, kw_only=True)
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
    description : str
        One line for tables and ``--help``.
    constant_map : float, str or None
        Score of a constant saliency map: a float, :data:`UNIFORM` (the score of
        the uniform distribution), or None (NaN, undefined).
    kernel : callable or None
        Numba per-image kernel (see the module notes), same value as ``func``;
        None when there is none (EMD: a linear program solved by POT).
    sampled : bool
        The value depends on a random draw; ``func`` takes ``seed=``.
    seeded : bool
        ``func`` takes ``seed=`` (every sampled metric; AUC-Judd for its optional jitter).
        Default: ``sampled``.
    params : mapping of str to str
        ``{keyword of func: protocol parameter}``: the protocol parameters passed to
        ``func``, explicitly (``{"method": "auc_method"}``); a keyword whose parameter
        the protocol does not have keeps ``func``'s default. A sequence of names means
        the same name on both sides.
    protocols : tuple of str or None
        Protocols that report this metric (their columns follow registry order); None:
        every protocol that supplies its ``needs`` (and, if it is sampled, draws seeds).
    kernel_args : tuple of str
        Names of the kernel's arguments after its inputs (empty for most).
    metric_map : str or None
        The map a predicted fixation density is scored with under ``--maps metric-specific``
        (Kuemmerer et al. 2018; :mod:`salbench.protocols.metric_maps`): ``"density"``,
        ``"log_ratio"``, ``"expected_empirical"``, ``"sim_optimal"`` or ``"info_gain"``; None:
        the metric has none (refused with metric-specific maps).
    ranks_only : bool
        The value depends only on the ranking of the map's values (the AUCs): a
        ``"density"`` map may then be rank-equalised.
    """

    name: str
    label: str
    higher_is_better: bool
    needs: tuple[str, ...]
    func: Callable[..., float]
    description: str
    constant_map: float | str | None = None
    kernel: Callable | None = None
    sampled: bool = False
    seeded: bool | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    protocols: tuple[str, ...] | None = None
    kernel_args: tuple[str, ...] = ()
    metric_map: str | None = None
    ranks_only: bool = False

    def __post_init__(self):
        def put(attr, value):
            object.__setattr__(self, attr, value)

        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"metric name must be an identifier, got {self.name!r}")
        put("needs", tuple(self.needs))
        unknown = [n for n in self.needs if n not in INPUTS]
        if unknown:
            raise ValueError(f"metric {self.name!r}: unknown inputs {unknown}; known: {', '.join(INPUTS)}")
        if not callable(self.func):
            raise ValueError(f"metric {self.name!r}: func is not callable")
        if not (self.label and self.description):
            raise ValueError(f"metric {self.name!r}: needs a label and a one-line description")
        if not (self.constant_map is None or self.constant_map == UNIFORM or isinstance(self.constant_map, float)):
            raise ValueError(f"metric {self.name!r}: constant_map must be a float, {UNIFORM!r} or None")
        params = self.params if isinstance(self.params, Mapping) else {p: p for p in self.params}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
            raise ValueError(f"metric {self.name!r}: params maps keyword names to protocol parameter names")
        if "seed" in params:
            raise ValueError(f"metric {self.name!r}: seed is not a parameter (it comes from the protocol's draws)")
        put("params", types.MappingProxyType(dict(params)))
        put("sampled", bool(self.sampled))
        put("seeded", self.sampled if self.seeded is None else bool(self.seeded))
        if self.sampled and not self.seeded:
            raise ValueError(f"metric {self.name!r}: a sampled metric takes seed=")
        if self.protocols is not None:
            put("protocols", tuple(self.protocols))
        put("kernel_args", tuple(self.kernel_args))

    def reported_by(self, protocol: str, supplies: Iterable[str], *, sampled: bool = True) -> bool:
        """Whether ``protocol``, which supplies inputs ``supplies`` (and draws seeds if ``sampled``), reports it."""
        if not set(self.needs) <= set(supplies) or (self.sampled and not sampled):
            return False
        return self.protocols is None or protocol in self.protocols


_MIT = ("mit",)
_BUILTINS = [
    Metric(name="cc", metric_map="expected_empirical", label="CC", higher_is_better=True, needs=("density",), func=cc, kernel=_cc_kernel,
           protocols=("mit", "coursework", "salicon", "exact"), constant_map=0.0,
           description="Pearson correlation with the density (MIT CC)"),
    Metric(name="nss", metric_map="density", label="NSS", higher_is_better=True, needs=("fixations",), func=nss, kernel=_nss_kernel,
           protocols=("mit", "exact"), constant_map=0.0, description="mean z-scored saliency at fixated pixels (MIT NSS)"),
    Metric(name="nss_points", metric_map="density", label="NSS (points)", higher_is_better=True, needs=("points",), func=nss_points,
           kernel=_nss_points_kernel, protocols=("salicon",), constant_map=0.0,
           description="NSS over every fixation point, population std (pysaliency, SALICON server)"),
    Metric(name="auc_judd", metric_map="density", ranks_only=True, label="AUC-Judd", higher_is_better=True, needs=("fixations",), func=auc_judd,
           kernel=_auc_judd_kernel, seeded=True, params={"jitter": "auc_judd_jitter"}, protocols=_MIT,
           constant_map=0.5, description="ROC area, fixated values as thresholds (MIT AUC-Judd)"),
    Metric(name="auc_borji", metric_map="density", ranks_only=True, label="AUC-Borji", higher_is_better=True, needs=("fixations",), func=auc_borji,
           kernel=_auc_borji_kernel, sampled=True,
           params={"splits": "splits", "step": "step", "include_endpoint": "include_endpoint", "method": "auc_method"},
           protocols=("mit", "coursework"), constant_map=0.5, kernel_args=_SAMPLED_AUC_ARGS,
           description="sampled ROC area, uniform negatives (MIT AUC-Borji)"),
    Metric(name="auc_shuffled", metric_map="log_ratio", ranks_only=True, label="sAUC", higher_is_better=True, needs=("fixations", "other"), func=auc_shuffled,
           kernel=_auc_shuffled_kernel, sampled=True,
           params={"splits": "splits", "step": "step", "include_endpoint": "include_endpoint", "method": "auc_method"},
           protocols=("mit", "coursework"), constant_map=0.5, kernel_args=_SAMPLED_AUC_ARGS,
           description="sampled ROC area, other images' fixations as negatives (sAUC)"),
    Metric(name="auc_borji_expected", metric_map="density", ranks_only=True, label="AUC-Borji (expected)", higher_is_better=True, needs=("fixations",),
           func=auc_borji_expected, kernel=_auc_borji_expected_kernel, params=("step", "include_endpoint"),
           protocols=(), constant_map=0.5, kernel_args=("thresholds", "include_endpoint"),
           description="expected value of AUC-Borji over its draws"),
    Metric(name="auc_shuffled_expected", metric_map="log_ratio", ranks_only=True, label="sAUC (expected)", higher_is_better=True,
           needs=("fixations", "other"), func=auc_shuffled_expected, kernel=_auc_shuffled_expected_kernel,
           params=("step", "include_endpoint"), protocols=(), constant_map=0.5,
           kernel_args=("thresholds", "include_endpoint"), description="expected value of sAUC over its draws"),
    Metric(name="auc_exact", metric_map="density", ranks_only=True, label="AUC (exact)", higher_is_better=True, needs=("fixations",), func=auc_exact,
           kernel=_auc_exact_kernel, protocols=("exact",), constant_map=0.5,
           description="exact ROC area, all pixels as negatives, ties half"),
    Metric(name="auc_shuffled_exact", metric_map="log_ratio", ranks_only=True, label="sAUC (exact)", higher_is_better=True, needs=("fixations", "other"),
           func=auc_shuffled_exact, kernel=_auc_shuffled_exact_kernel, protocols=("exact",), constant_map=0.5,
           description="exact ROC area, other images' fixations as negatives"),
    Metric(name="auc_salicon", metric_map="density", ranks_only=True, label="AUC (SALICON)", higher_is_better=True, needs=("points",), func=auc_salicon,
           kernel=_auc_salicon_kernel, sampled=True, params=("n_random", "step"), protocols=("salicon",),
           constant_map=0.5, kernel_args=("draw", "step"),
           description="SALICON server AUC: one draw of 100k uniform negatives, step 0.01"),
    Metric(name="sauc_salicon", metric_map="log_ratio", ranks_only=True, label="sAUC (SALICON)", higher_is_better=True, needs=("points", "other_weights"),
           func=sauc_salicon, kernel=_sauc_salicon_kernel, params=("step",), protocols=("salicon",),
           constant_map=0.5, kernel_args=("step",),
           description="SALICON server sAUC: negatives weighted by how many other images fixate them"),
    Metric(name="kld", metric_map="expected_empirical", label="KLD", higher_is_better=False, needs=("density",), func=kld, kernel=_kld_kernel,
           protocols=("mit", "exact"), constant_map=UNIFORM,
           description="KL divergence of the prediction from the density (MIT KLdiv)"),
    Metric(name="sim", metric_map="sim_optimal", label="SIM", higher_is_better=True, needs=("density",), func=sim, kernel=_sim_kernel,
           protocols=("mit", "exact"), constant_map=UNIFORM,
           description="histogram intersection of min-max normalised maps (MIT SIM)"),
    Metric(name="info_gain", metric_map="info_gain", label="IG", higher_is_better=True, needs=("fixations", "baseline"), func=info_gain,
           kernel=_info_gain_kernel, protocols=_MIT, constant_map=UNIFORM,
           description="bits per fixation over a baseline (MIT InfoGain)"),
    Metric(name="emd", metric_map="expected_empirical", label="EMD", higher_is_better=False, needs=("density",), func=emd, protocols=_MIT,
           params={"variant": "emd_variant"}, constant_map=UNIFORM,
           description="earth mover's distance as MIT EMD.m + FastEMD, maps downsampled 32x (variant 'mit': "
                       "signed cells, FastEMD's integer rounding; 'exact': exact OT of the clipped maps)"),
]

class _Metrics(dict):
    """:data:`METRICS`: a dict that adds the installed metric plugins before it is first read.

    Discovery waits for the first read (not the import of :mod:`salbench.metrics`) so that a
    plugin module may import ``salbench.metrics`` itself, in any order.
    """

    def __getitem__(self, key):
        load_plugins()
        return super().__getitem__(key)

    def __contains__(self, key):
        load_plugins()
        return super().__contains__(key)

    def __iter__(self):
        load_plugins()
        return super().__iter__()

    def __len__(self):
        load_plugins()
        return super().__len__()

    def __repr__(self):
        load_plugins()
        return super().__repr__()

    def get(self, key, default=None):
        load_plugins()
        return super().get(key, default)

    def keys(self):
        load_plugins()
        return super().keys()

    def values(self):
        load_plugins()
        return super().values()

    def items(self):
        load_plugins()
        return super().items()


METRICS: dict[str, Metric] = _Metrics((m.name, m) for m in _BUILTINS)
"""Every metric by name (built-ins, then plugins by name): the order of table columns everywhere."""

#: Names of the built-in metrics (reserved: no plugin may take one).
BUILTIN_METRICS: tuple[str, ...] = tuple(m.name for m in _BUILTINS)


class MetricPluginWarning(UserWarning):
    """A ``salbench.metrics`` plugin failed to load or was refused (one line naming it)."""


_PLUGINS = EntryPointTable(GROUP, "metric", reserved=BUILTIN_METRICS)
_STATE = {"discovered": False, "done": False, "busy": False, "warned": set()}


def _check_plugin(ep: EntryPoint, obj) -> None:
    if not isinstance(obj, Metric):
        raise TypeError(f"{ep.value} is not a salbench.metrics.Metric (a {type(obj).__name__})")
    if obj.name != ep.name:
        raise ValueError(f"the entry point is named {ep.name!r} but its Metric is named {obj.name!r}")


def _importing(ep: EntryPoint) -> bool:
    """``ep``'s module is being imported right now (the import that led here started there)."""
    mod = sys.modules.get(ep.module)
    return mod is not None and bool(getattr(getattr(mod, "__spec__", None), "_initializing", False))


def discover(eps: Iterable[EntryPoint], table: EntryPointTable | None = None) -> dict[str, Metric]:
    """The valid metrics of ``eps`` (and of ``table``'s pending ones) by name, failures recorded in ``table``.

    An entry point whose module is being imported right now stays pending in ``table.lazy``.
    """
    table = EntryPointTable(GROUP, "metric", reserved=BUILTIN_METRICS) if table is None else table
    table.add(eps)
    for name in sorted(table.lazy):
        if not _importing(table.lazy[name]):
            table.load(name, check=_check_plugin)
    return {name: table.loaded[name] for name in sorted(table.loaded)}


def load_plugins() -> dict[str, str]:
    """Add the installed ``salbench.metrics`` plugins to :data:`METRICS`; return the failures.

    Runs before :data:`METRICS` is first read (and again while a plugin whose module was
    being imported is pending). Each failure (an import error, an object that is not a
    :class:`Metric`, a built-in's or a taken name) is one line naming the plugin's
    distribution and entry point, issued once as a :class:`MetricPluginWarning`; every
    other metric works.
    """
    if _STATE["done"] or _STATE["busy"]:  # busy: a plugin module read METRICS while being imported
        return dict(_PLUGINS.failures)
    _STATE["busy"] = True
    try:
        eps = () if _STATE["discovered"] else entry_points(group=GROUP)
        _STATE["discovered"] = True
        found = discover(eps, _PLUGINS)
        for name in list(dict.keys(METRICS)):  # plugins follow the built-ins, by name
            if name in found:
                dict.__delitem__(METRICS, name)
        dict.update(METRICS, found)
        _STATE["done"] = not _PLUGINS.lazy
    finally:
        _STATE["busy"] = False
    for key, line in _PLUGINS.failures.items():
        if key not in _STATE["warned"]:
            _STATE["warned"].add(key)
            # one line, no source excerpt: the plugin is named in the message
            warnings.warn_explicit(line, MetricPluginWarning, "salbench.metrics plugins", 0)
    return dict(_PLUGINS.failures)


def plugin_failures() -> dict[str, str]:
    """``{name: one-line error}`` of the metric plugins that failed to load or were refused."""
    return load_plugins()


def get_metric(name: str) -> Metric:
    """The registry entry of ``name``; ValueError with a suggestion for an unknown name."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        if isinstance(name, str) and name in _PLUGINS.failures:
            raise ValueError(f"metric {name!r} could not be loaded: {_PLUGINS.failures[name]}") from None
        close = difflib.get_close_matches(str(name), METRICS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}.{hint}") from None


def metrics_for(protocol: str, supplies: Iterable[str] | None = None, *, sampled: bool = True) -> tuple[str, ...]:
    """Names of the metrics ``protocol`` reports, in registry (column) order.

    Parameters
    ----------
    protocol : str
        A protocol name.
    supplies : iterable of str, optional
        The inputs the protocol supplies per image. Given: the metrics that name the
        protocol and whose needs it supplies, plus every metric declared for any protocol
        (``protocols=None``, e.g. plugins) whose needs it supplies. Omitted: the metrics
        that name it.
    sampled : bool
        Whether the protocol draws seeds (``exact`` does not: it reports no sampled metric).
    """
    if supplies is None:
        names = tuple(m.name for m in METRICS.values() if m.protocols is not None and protocol in m.protocols)
    else:
        supplies = frozenset(supplies)
        names = tuple(m.name for m in METRICS.values() if m.reported_by(protocol, supplies, sampled=sampled))
    if not names:
        known = sorted({p for m in METRICS.values() for p in (m.protocols or ())})
        close = difflib.get_close_matches(str(protocol), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"no metric is registered for protocol {protocol!r}; known: {', '.join(known)}.{hint}")
    return names
