"""How protocols reach the metric registry: column lists, per-image calls, constant maps.

Every protocol takes its metric list from :func:`salbench.metrics.registry.metrics_for`
and computes each metric through its registry entry: a fused kernel where the protocol
has one for that metric (the fused kernels call the same per-image kernels the registry
names), otherwise the entry's public function, image by image (:func:`call_metric`).
Adding a metric to the registry with ``protocols=("mit", ...)`` therefore adds a
column to that protocol without touching it.
"""

from __future__ import annotations

import functools
import inspect
import zlib

import numpy as np

from salbench.metrics import registry as _registry

# Protocol parameter -> keyword of the metric functions, where the names differ.
PARAM_ALIASES = {"method": "auc_method", "jitter": "auc_judd_jitter"}

# Metric lists of the registry before it declared ``protocols`` (kept only as a fallback).
_LEGACY_COLUMNS = {
    "mit": ("cc", "nss", "auc_judd", "auc_borji", "auc_shuffled", "kld", "sim", "info_gain"),
    "coursework": ("cc", "auc_borji", "auc_shuffled"),
    "salicon": ("auc", "sauc", "cc", "nss"),
    "exact": ("cc", "nss", "auc_exact", "auc_shuffled_exact", "kld", "sim"),
}


def metrics_for(protocol: str) -> tuple[str, ...]:
    """Registry names of the metrics ``protocol`` reports, in registry (column) order."""
    fn = getattr(_registry, "metrics_for", None)
    if fn is not None:
        return tuple(fn(protocol))
    return _LEGACY_COLUMNS[protocol]


def get_metric(name: str):
    """The registry entry of ``name`` (``get_metric`` of the registry, or its dict)."""
    fn = getattr(_registry, "get_metric", None)
    if fn is not None:
        return fn(name)
    return _registry.METRICS[name]


def has_metric(name: str) -> bool:
    return name in _registry.METRICS


def is_sampled(entry) -> bool:
    return bool(getattr(entry, "sampled", getattr(entry, "stochastic", False)))


def kernel_of(name: str):
    """The per-image kernel the registry declares for ``name`` (None when it declares none)."""
    if not has_metric(name):
        return None
    return getattr(get_metric(name), "kernel", None)


@functools.lru_cache(maxsize=None)
def _keywords(func) -> frozenset:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return frozenset()
    return frozenset(p.name for p in sig.parameters.values()
                     if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD))


def metric_kwargs(entry, params: dict) -> dict:
    """Keyword arguments of ``entry.func`` that the protocol's ``params`` supply.

    A keyword is supplied when the protocol has a parameter of that name (or of its
    alias in :data:`PARAM_ALIASES`, e.g. ``method`` <- ``auc_method``).
    """
    kws = _keywords(entry.func)
    out = {}
    for kw in kws:
        if kw in ("seed",):
            continue
        key = kw if kw in params else PARAM_ALIASES.get(kw)
        if key is not None and key in params:
            out[kw] = params[key]
    return out


def derived_seed(seed, n: int, index: int, metric: str) -> int | None:
    """Seed of a sampled metric that no fused path draws for: a function of (seed, n, index, name)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed) % 2**63, int(n), int(index),
                                       zlib.crc32(metric.encode())]).generate_state(1)[0])


def call_metric(name: str, saliency, inputs: dict, params: dict, seed=None) -> float:
    """Compute metric ``name`` on one image through its registry function.

    ``inputs`` maps the registry's input names (``density``, ``fixations``, ``points``,
    ``other``, ``other_weights``, ``baseline``) to this image's arrays; ``params`` are
    the protocol's parameters (matched to the function's keywords); ``seed`` is passed
    to sampled metrics.
    """
    entry = get_metric(name)
    missing = [k for k in entry.needs if k not in inputs]
    if missing:
        raise ValueError(f"metric {name!r} needs {missing}, which this protocol does not provide")
    args = [inputs[k] for k in entry.needs]
    kwargs = metric_kwargs(entry, params)
    if "seed" in _keywords(entry.func) and (is_sampled(entry) or seed is not None):
        kwargs["seed"] = seed
    return float(entry.func(saliency, *args, **kwargs))


def is_constant_map(a) -> bool:
    """The registry's rule: ``max - min <= 1e-12 * max(|max|, |min|, tiny)``."""
    fn = getattr(_metrics_pkg(), "is_constant_map", None)
    if fn is not None:
        return bool(fn(a))
    a = np.asarray(a, dtype=np.float64)
    lo = float(a.min())
    hi = float(a.max())
    return hi - lo <= 1e-12 * max(abs(hi), abs(lo), np.finfo(np.float64).tiny)


def _metrics_pkg():
    import salbench.metrics as m

    return m


def constant_value(name: str) -> float | None:
    """The value the registry documents for a constant saliency map (None: NaN / undefined)."""
    if not has_metric(name):
        return None
    return getattr(get_metric(name), "constant_map", None)
