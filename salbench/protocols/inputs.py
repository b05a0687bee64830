"""What a protocol hands the scorer: one image's inputs, and its fused kernels.

A protocol does not call metrics. Per image it builds an :class:`ImageInputs`, a mapping
keyed by the registry's input names (``saliency`` plus :data:`salbench.metrics.registry.INPUTS`:
``density``, ``fixations``, ``points``, ``other``, ``other_weights``, ``baseline``); the base
:class:`~salbench.protocols.base.Scorer` runs every chosen metric on it. Optionally it
offers :class:`FusedKernel` s: one parallel call computing several metric columns of a chunk.

Metric-specific maps
--------------------
Every metric reads ``saliency`` unless the inputs carry a map of its own
(``ImageInputs(..., maps={"cc": blurred, "auc_shuffled": log_ratio})``):
:meth:`ImageInputs.saliency_for` is what the scorer passes to each metric. A fused kernel
receives only the default map: the scorer routes a metric with a map of its own
(:attr:`Scorer.own_maps <salbench.protocols.base.Scorer.own_maps>`) to the per-image path,
unless the kernel declares ``metric_maps=True``, in which case its ``run`` must read
``inputs.saliency_for(metric)`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

__all__ = ["FusedKernel", "ImageInputs", "lazy"]


class lazy:  # noqa: N801 - reads as a function at the call site: lazy(lambda: ...)
    """An input computed on first read (once), so that an input no chosen metric reads costs nothing."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn


class ImageInputs(Mapping):
    """One image's inputs: registry input name -> array (and protocol-private keys).

    Parameters
    ----------
    maps : mapping of str to array, optional
        Metric-specific saliency maps: ``{metric: map}`` read by that metric instead of
        ``saliency`` (values may be :class:`lazy`).
    **inputs
        ``saliency`` (the prediction on the protocol's grid, float64 2-D) and any of the
        registry's inputs, each an array or :class:`lazy`. A key the protocol leaves out,
        or sets to None, is an input this image does not have: a metric that needs it
        scores NaN on this image. Keys outside the registry (e.g. ``"_target"``) are
        private data of the protocol's fused kernels.

    Notes
    -----
    Not thread-safe: one image's inputs are read by one thread at a time (the worker that
    prepares it, then the scoring thread).
    """

    __slots__ = ("_d", "maps")

    def __init__(self, maps: Mapping[str, Any] | None = None, **inputs):
        self._d = dict(inputs)
        self.maps = dict(maps or {})

    def __getitem__(self, key):
        v = self._d[key]
        if isinstance(v, lazy):
            v = self._d[key] = v.fn()
        return v

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def saliency_for(self, metric: str):
        """The map ``metric`` scores: its own map if the inputs carry one, else ``saliency``."""
        if metric in self.maps:
            v = self.maps[metric]
            if isinstance(v, lazy):
                v = self.maps[metric] = v.fn()
            return v
        return self.get("saliency")

    def subset(self, keys: Iterable[str]) -> "ImageInputs":
        """The inputs named by ``keys`` (computed now) and the metric-specific maps; others dropped."""
        out = ImageInputs(self.maps)
        out._d = {k: self[k] for k in keys if k in self._d}
        return out

    def clear(self) -> None:
        """Drop every input (the memory is released once no other reference holds it)."""
        self._d.clear()
        self.maps.clear()


@dataclass(frozen=True)
class FusedKernel:
    """A protocol's parallel kernel computing several metric columns of a chunk in one call.

    Attributes
    ----------
    metrics : tuple of str
        The columns it can compute (registry names).
    run : callable
        ``run(scorer, batch, metrics, seeds) -> ndarray (len(batch), len(metrics))``:
        ``batch`` is a list of :class:`ImageInputs` of one group (see ``group_by``)
        holding the keys of :meth:`reads_for`; ``metrics`` the columns to compute (a
        subset of :attr:`metrics`, registry order: compute only these); ``seeds``
        ``{metric: int64 array (len(batch),)}`` for the seeded ones, from the scorer's
        seed rule (the same seeds the per-image path would pass). ``run`` owns
        ``batch``: it may clear each image's inputs once it has copied them.
    kernels : mapping of str to callable or None
        The registry kernel each column calls. The scorer uses a column only while the
        registry's entry still declares that kernel (otherwise the metric runs per image
        through its registry function); None: a composite column (sampled AUCs).
    reads : mapping of str to tuple of str, optional
        Per column, the input keys ``run`` reads. Default: ``saliency`` and the metric's
        registry ``needs``.
    available : callable, optional
        ``available(params) -> iterable of str``: the columns usable under the protocol's
        parameters (default: all), e.g. none of the binned AUCs when ``auc_method="pixels"``.
    group_by : str
        Images whose ``group_by`` input has the same shape go to one ``run`` call.
    metric_maps : bool
        False: only metrics scored on the default ``saliency`` map are routed here.
        True: ``run`` reads ``batch[i].saliency_for(metric)`` itself.
    in_workers : bool
        True: ``run`` is called once per image (a batch of one) in the threads that prepare
        the images, beside the per-image metrics, so that it scales with the workers and
        the scoring thread keeps no maps; its kernel must release the GIL (Numba
        ``nogil``). False: once per chunk group in the scoring thread (a kernel that is
        parallel over images itself).
    """

    metrics: tuple[str, ...]
    run: Callable
    kernels: Mapping[str, Callable | None] = field(default_factory=dict)
    reads: Mapping[str, tuple[str, ...]] | None = None
    available: Callable[[dict], Iterable[str]] | None = None
    group_by: str = "saliency"
    metric_maps: bool = False
    in_workers: bool = False

    def usable(self, params: dict, registry_kernel: Callable[[str], Callable | None]) -> frozenset:
        """Columns usable under ``params`` whose registry kernel is still the one this kernel calls."""
        ok = set(self.metrics if self.available is None else self.available(params)) & set(self.metrics)
        return frozenset(m for m in ok
                         if self.kernels.get(m) is None or registry_kernel(m) in (None, self.kernels[m]))

    def reads_for(self, metrics: Iterable[str], needs: Callable[[str], tuple[str, ...]]) -> tuple[str, ...]:
        """Input keys ``run`` reads for ``metrics`` (with ``needs(metric)`` the registry's needs)."""
        keys = {self.group_by}
        for m in metrics:
            keys.update(self.reads[m] if self.reads is not None else ("saliency", *needs(m)))
        return tuple(sorted(keys))
