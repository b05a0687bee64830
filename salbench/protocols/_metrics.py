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

def metrics_for(protocol: str) -> tuple[str, ...]:
    """Registry names of the metrics ``protocol`` reports, in registry (column) order."""
    return tuple(_registry.metrics_for(protocol))


get_metric = _registry.get_metric


def has_metric(name: str) -> bool:
    return name in _registry.METRICS


def is_sampled(entry) -> bool:
    return bool(entry.sampled)


def kernel_of(name: str):
    """The per-image kernel the registry declares for ``name`` (None when it declares none)."""
    if not has_metric(name):
        return None
    return get_metric(name).kernel


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
    """The registry's rule (:func:`salbench.metrics.is_constant_map`)."""
    from salbench.metrics import is_constant_map as rule

    return bool(rule(a))
