"""Protocol base class, the scorer every protocol runs on, and the result object.

A protocol has *parameters* (overridable, recorded in results files, each one read and
changing the scores) and *conventions* (fixed descriptive text: what the protocol is;
refused as overrides). It reports a set of metrics (the registry's metrics it can supply
inputs for, or a chosen subset: ``get_protocol("mit", metrics=("cc", "nss"))``). Scoring
goes through a :class:`Scorer`::

    scorer = protocol.scorer(gt, seed=0)     # gt: GroundTruthView (dataset or records)
    scorer.add(indices, predictions, records)   # one chunk, any order, any size
    result = scorer.result()                 # ProtocolResult, per-image arrays in gt order

The :class:`Scorer` owns the per-image work: a protocol's scorer says only how it builds
one image's inputs (:meth:`Scorer.image_inputs`, an
:class:`~salbench.protocols.inputs.ImageInputs`) and which fused kernels it offers
(:attr:`Scorer.fused_kernels`). The base runs every chosen metric: the fused kernels for
the columns they can compute, every other metric per image through its registry function
with the parameters its registry entry maps (``Metric.params``); it applies the seed rule,
scores an image without fixations NaN everywhere (counted as excluded) and a metric whose
input the image lacks NaN.

Seeds: per-image seeds are fixed from ``(seed, n, image)`` before any image is scored, so the
numbers do not depend on how the images are chunked, on the workers or the order of chunks
(:meth:`Scorer.seed_for`). ``protocol.evaluate(predictions, records, seed=0)`` is the
in-memory convenience (one chunk).
"""

from __future__ import annotations

import copy
import difflib
import threading
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from salbench._parallel import available_cores, one_blas_thread
from salbench.metrics.degenerate import is_constant_map
from salbench.metrics._validate import unit_magnitude
from salbench.metrics.registry import METRICS, get_metric, metrics_for, plugin_failures
from salbench.predictions.aspect import aspect_mismatch
from salbench.protocols.inputs import FusedKernel, ImageInputs
from salbench.protocols.metric_maps import (METRIC_SPECIFIC, MapDerivation, ShuffledBaseline, map_kind,
                                            check_log_density, image_seed, resize_log_density)
from salbench.stats import mean_ci95

MODEL_MAPS = "raw"
#: What a scorer scores: the model's own map, or metric-specific maps of a predicted density.
MAPS_CHOICES = (MODEL_MAPS, METRIC_SPECIFIC)


@dataclass
class ProtocolResult:
    """Per-image scores of one protocol run.

    Attributes
    ----------
    protocol : str
        Protocol name.
    params : dict
        The protocol's parameters (JSON-serialisable), including its name.
    seed : int or None
        Seed of every random draw in the run.
    names : list of str
        Image names, in evaluation order.
    scores : dict of str -> ndarray
        Per-image score arrays (NaN where a metric is undefined for an image), in the
        registry's column order: one per metric the protocol reports.
    timings : dict
        Seconds spent per stage (informational).
    excluded : list of str
        Images without fixations (as the protocol defines them): NaN in every metric,
        left out of every mean.
    conventions : dict
        The protocol's fixed conventions (descriptive).
    aspect_mismatch : list of str
        Images whose prediction had another aspect ratio than the stimulus and was stretched
        in the resize (:func:`salbench.predictions.aspect.aspect_mismatch`; shapes a protocol
        is defined on, :attr:`Scorer.aspect_exempt_shapes`, are not counted).
    map_derivation : dict or None
        Scored with metric-specific maps: how they were derived
        (:meth:`~salbench.protocols.metric_maps.MapDerivation.record`); None: the model's maps.
    """

    protocol: str
    params: dict
    seed: int | None
    names: list
    scores: dict
    timings: dict = field(default_factory=dict)
    excluded: list = field(default_factory=list)
    conventions: dict = field(default_factory=dict)
    aspect_mismatch: list = field(default_factory=list)
    map_derivation: dict | None = None

    @property
    def n_excluded(self) -> int:
        """How many images had no fixations (NaN in every metric)."""
        return len(self.excluded)

    @property
    def n_aspect_mismatch(self) -> int:
        """How many predictions were stretched to their stimulus' aspect ratio."""
        return len(self.aspect_mismatch)

    def summary(self) -> dict:
        """``{metric: {"mean", "ci95", "n"}}`` (NaN images left out; Student-t 95% CI)."""
        out = {}
        for name, values in self.scores.items():
            mean, ci = mean_ci95(values)
            out[name] = {"mean": mean, "ci95": ci, "n": int(np.isfinite(values).sum())}
        return out


class AspectMismatchWarning(UserWarning):
    """Predictions whose aspect ratio differs from their stimulus' were stretched (once per run, with the count)."""


class ConventionOverrideError(ValueError):
    """An override named one of the protocol's fixed conventions."""


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    return None if seed is None else int(seed)


class Protocol:
    """A named recipe: how a prediction meets the ground truth, and which metrics it reports.

    Subclasses set ``name``, ``description``, ``defaults`` (the overridable parameters),
    ``conventions`` (fixed, descriptive), ``validators`` (one per parameter), ``inputs``
    (the registry inputs its scorer supplies per image) and ``scorer_class``.

    Parameters
    ----------
    metrics : iterable of str or str, optional
        The metrics to compute (registry names, or one comma-separated string): any subset
        of :meth:`available_metrics`; default all. Kept in registry order as
        :attr:`metrics`; not a parameter (results files record their metric set).
    **overrides
        Parameter values replacing the defaults.
    """

    name: str = ""
    description: str = ""
    defaults: dict = {}
    conventions: dict = {}
    validators: dict = {}
    #: parameters that select ground truth (part of the ground-truth cache key)
    ground_truth_params: tuple = ()
    #: the registry inputs the scorer supplies per image (``saliency`` is always supplied)
    inputs: frozenset = frozenset()
    #: whether the protocol draws seeds (a protocol that does not reports no sampled metric)
    draws_seeds: bool = True
    scorer_class: type | None = None

    def __init__(self, metrics=None, **overrides):
        conv = sorted(k for k in overrides if k in self.conventions)
        if conv:
            k = conv[0]
            raise ConventionOverrideError(
                f"protocol {self.name!r}: {k!r} is a fixed convention ({self.conventions[k]}), not a parameter; "
                f"overridable parameters of {self.name!r}: {', '.join(sorted(self.defaults)) or 'none'}")
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for protocol {self.name!r}; "
                f"overridable: {', '.join(sorted(self.defaults)) or 'none'}")
        params = {**copy.deepcopy(self.defaults), **overrides}
        for k, check in self.validators.items():
            try:
                params[k] = check(params[k])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"protocol {self.name!r}: bad value {params[k]!r} for {k!r}: {exc}") from None
        self._params = params
        self.metrics: tuple[str, ...] = self._choose(metrics)

    @classmethod
    def available_metrics(cls) -> tuple[str, ...]:
        """Every metric the protocol can report (registry order): those that name it, plugins included."""
        return metrics_for(cls.name, {"saliency", *cls.inputs}, sampled=cls.draws_seeds)

    def _choose(self, metrics) -> tuple[str, ...]:
        available = self.available_metrics()
        if metrics is None:
            return available
        names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
        if not names:
            raise ValueError(f"protocol {self.name!r}: choose at least one metric; available: {', '.join(available)}")
        for name in names:
            if name not in available:
                raise ValueError(self._unavailable(name, available))
        return tuple(m for m in available if m in set(names))

    def _unavailable(self, name, available) -> str:
        if isinstance(name, str) and name not in METRICS and name not in plugin_failures():
            # a typo: the close match and the list among what this protocol can compute
            close = difflib.get_close_matches(name, available, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            return f"unknown metric {name!r}; available under protocol {self.name!r}: {', '.join(available)}.{hint}"
        entry = get_metric(name)  # a name it cannot read (not a string, a plugin that failed): its error
        missing = [k for k in entry.needs if k not in self.inputs]
        if entry.protocols is not None and self.name not in entry.protocols:
            why = f"it is declared for {', '.join(entry.protocols) or 'no protocol'}"
        elif missing:
            why = f"it needs {', '.join(missing)}, which {self.name!r} does not supply"
        else:
            why = f"it is sampled and {self.name!r} draws no seeds"
        return (f"metric {name!r} is not available under protocol {self.name!r} ({why}); "
                f"available: {', '.join(available)}")

    @classmethod
    def from_record(cls, params: dict, metrics=None) -> "Protocol":
        """The protocol a results file's ``protocol.params`` (with or without its ``name``) describe.

        ``metrics``: the recorded metric set (default: every available metric).
        """
        return cls(metrics=metrics, **{k: v for k, v in dict(params).items() if k != "name"})

    @property
    def params(self) -> dict:
        """The parameters (a copy), including the protocol name: what results files record."""
        return {"name": self.name, **copy.deepcopy(self._params)}

    def ground_truth_key(self) -> dict:
        """The parameters that change the model-independent ground truth (cache key)."""
        return {"protocol": self.name, **{k: self._params[k] for k in self.ground_truth_params}}

    def scorer(self, gt, seed=0, *, fused: bool = True, maps: str = MODEL_MAPS, map_derivation=None) -> "Scorer":
        """A chunked scorer over ``gt`` (a GroundTruthView, a dataset, or a list of records).

        ``fused=False`` computes every metric per image through its registry function
        (the reference the fused kernels are tested against). ``maps="metric-specific"``:
        the predictions are log-densities and each metric scores its own map of the density
        (``map_derivation``: a :class:`~salbench.protocols.metric_maps.MapDerivation`, default
        its defaults; see :class:`Scorer`).
        """
        from salbench.protocols.view import GroundTruthView

        if not isinstance(gt, GroundTruthView):
            gt = GroundTruthView.from_records(gt) if isinstance(gt, (list, tuple)) else GroundTruthView.from_dataset(gt)
        if gt.n == 0:
            raise ValueError("no images to evaluate")
        return self.scorer_class(self, gt, _check_seed(seed), fused=fused, maps=maps, map_derivation=map_derivation)

    def evaluate(self, predictions, records, *, seed=0, maps: str = MODEL_MAPS, map_derivation=None) -> ProtocolResult:
        """Score ``predictions`` (one 2-D map per record, any size) against ``records`` in memory.

        ``maps="metric-specific"``: ``predictions`` are log-densities (see :meth:`scorer`).
        """
        records = list(records)
        if len(predictions) != len(records):
            raise ValueError(f"got {len(predictions)} predictions for {len(records)} records")
        if len(records) == 0:
            raise ValueError("no records to evaluate")
        _check_seed(seed)
        sc = self.scorer(records, seed=seed, maps=maps, map_derivation=map_derivation)
        if sc.needs_baseline:
            sc.add_baseline([sc.baseline_density(i, p) for i, p in enumerate(predictions)])
        sc.add(range(len(records)), predictions, records)
        return sc.result()

    def __repr__(self):
        chosen = "" if self.metrics == self.available_metrics() else f", metrics={self.metrics}"
        return f"{type(self).__name__}({self._params}{chosen})"


# ----------------------------------------------------------------------------- scorer
class Item:
    """One prepared image: its position, dataset index and what the scorer keeps of it (None: excluded)."""

    __slots__ = ("pos", "index", "data")

    def __init__(self, pos: int, index: int, data: dict | None):
        self.pos, self.index, self.data = pos, index, data


def metric_kwargs(entry, params: dict) -> dict:
    """The keywords ``entry.func`` gets from the protocol ``params``: its declared ``params`` mapping.

    ``{keyword: params[parameter]}`` for every ``keyword: parameter`` of ``entry.params``
    whose parameter the protocol has; the others keep the function's default.
    """
    return {kw: params[p] for kw, p in entry.params.items() if p in params}


def derived_seed(seed, n: int, pos: int, metric: str) -> int | None:
    """Seed of a sampled metric without a column in the protocol's draw table: a function of (seed, n, pos, name)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed) % 2**63, int(n), int(pos),
                                       zlib.crc32(metric.encode())]).generate_state(1)[0])


class Scorer:
    """Scores a protocol's images chunk by chunk; merges deterministically.

    A protocol's scorer implements :meth:`_setup` (cross-image preparation: draw tables,
    cached ground truth) and :meth:`image_inputs` (one image's inputs), and may offer
    :attr:`fused_kernels`. :meth:`prepare` is the per-image, thread-safe part (the inputs,
    every per-image metric and the fused kernels that run per image,
    ``FusedKernel.in_workers``); :meth:`add_prepared` scores a chunk of prepared images
    (main thread: the other fused kernels' parallel calls, and the metrics drawn from a
    sequential stream). :meth:`add` does both, preparing the images in threads.

    Attributes
    ----------
    metrics : tuple of str
        The protocol's chosen metrics (registry order): the result's columns.
    fused_plan : list of (FusedKernel, tuple of str)
        The fused kernels that run, each with the columns it computes.
    per_image : tuple of str
        The metrics computed per image through their registry functions.
    own_maps : frozenset of str
        Metrics scored on a map of their own (``ImageInputs.maps``): every metric with
        ``maps="metric-specific"``, else none.
    maps : {"raw", "metric-specific"}
        ``"raw"``: each prediction is the model's saliency map, brought to the ground truth
        by the protocol's own pipeline (resize, quantisation, blur). ``"metric-specific"``: each
        prediction is a log-density (any grid); it is renormalised, resized to the ground
        truth's size in the log domain (:func:`~salbench.protocols.metric_maps.resize_log_density`)
        and every metric scores its own map of it (:meth:`MapDerivation.maps
        <salbench.protocols.metric_maps.MapDerivation.maps>`) with the protocol's usual inputs
        and seeds, per image through its registry function: none of the protocol's prediction
        pipeline applies (it would destroy the maps), no fused kernel runs. Shuffled metrics
        need the leave-one-out baseline first: :meth:`baseline_density` / :meth:`add_baseline`
        over every image, in order (``needs_baseline``), then :meth:`prepare` / :meth:`add`.
    """

    #: prepare() reads the image's ground-truth record (score_stream then loads it)
    #: predictions are brought to unit magnitude (a power-of-two rescale, exact) before any
    #: arithmetic, so ``map * 1e300`` scores as ``map``; False where the protocol's recipe is not
    #: scale-invariant by design (coursework quantises ``trunc(255 * p)``)
    scale_invariant = True
    needs_record = True
    #: metric -> column of ``self.seeds``, the per-image seed table drawn in ``_setup`` (the
    #: tables the protocol always drew: same numbers); other seeded metrics get :func:`derived_seed`
    seed_columns: dict = {}
    #: metrics whose seed is a stream over the images in order (:meth:`stream_seed`): scored
    #: in the scoring thread, in image order
    stream_metrics: frozenset = frozenset()
    #: the protocol's fused kernels, tried in order
    fused_kernels: tuple[FusedKernel, ...] = ()
    #: prediction shapes ``(h, w)`` the protocol is defined on: never counted as aspect mismatches
    aspect_exempt_shapes: tuple = ()
    #: per-image arrays (indexed by position) the scorer fills while preparing and scoring: what a
    #: distributed run copies from the worker that scored a chunk (:meth:`score_rows`, :meth:`import_rows`)
    row_state: tuple[str, ...] = ("_scores", "_excluded")

    def __init__(self, protocol: Protocol, gt, seed, *, fused: bool = True, maps: str = MODEL_MAPS,
                 map_derivation=None):
        self.protocol = protocol
        self.params = protocol.params
        self.gt = gt
        self.seed = seed
        self.n = gt.n
        self.metrics = tuple(protocol.metrics)
        self.entries = {m: get_metric(m) for m in self.metrics}
        self._kwargs = {m: metric_kwargs(e, self.params) for m, e in self.entries.items()}
        self.maps, self.derivation = _maps_mode(maps, map_derivation, self.metrics, protocol.name)
        self.needs_baseline = self.derivation is not None and any(
            map_kind(m) == "log_ratio" for m in self.metrics)
        self.baseline = ShuffledBaseline() if self.needs_baseline else None
        self._baseline_next = 0  # images are added to the baseline in position order (fixed summation order)
        self._sim_weight = np.full(self.n, np.nan)
        self.own_maps = frozenset(self._own_map_metrics())
        self.fused_plan = self._route(fused)
        in_fused = {m for _, cols in self.fused_plan for m in cols}
        self.per_image = tuple(m for m in self.metrics if m not in in_fused)
        self._ordered = tuple(m for m in self.per_image if m in self.stream_metrics)
        self._threaded = tuple(m for m in self.per_image if m not in self.stream_metrics)
        self._worker_plan = [(fk, cols) for fk, cols in self.fused_plan if fk.in_workers]
        self._batch_plan = [(fk, cols) for fk, cols in self.fused_plan if not fk.in_workers]
        keep = {k for fk, cols in self._batch_plan for k in fk.reads_for(cols, lambda m: self.entries[m].needs)}
        for m in self._ordered:
            keep.update(("saliency", *self.entries[m].needs))
        self._keep = tuple(sorted(keep))
        self._col = {m: j for j, m in enumerate(self.metrics)}
        self._scores = np.full((self.n, len(self.metrics)), np.nan)
        self._done = np.zeros(self.n, dtype=bool)
        self._excluded = np.zeros(self.n, dtype=bool)
        self._stretched: dict[int, tuple] = {}  # position -> (prediction shape, image shape); one writer per key
        self._ready = False
        self._setup_lock = threading.Lock()
        self.timings = {"ground_truth_s": 0.0, "prepare_s": 0.0, "score_s": 0.0}

    def _own_map_metrics(self):
        """Metrics scored on a map of their own under these parameters: all of them with metric-specific maps.

        A scorer whose :meth:`image_inputs` puts metric-specific maps in ``ImageInputs.maps``
        returns those metrics, decided from the parameters before any image is seen: they
        leave the fused kernels that read only the default map (``FusedKernel.metric_maps``).
        """
        return self.metrics if self.maps == METRIC_SPECIFIC else ()

    def _route(self, use_fused: bool) -> list:
        """Which fused kernel computes which chosen metric; the rest run per image."""
        plan, taken = [], set()
        if not use_fused:
            return plan
        for fk in self.fused_kernels:
            ok = fk.usable(self.params, lambda m: self.entries[m].kernel if m in self.entries else None)
            cols = tuple(m for m in self.metrics
                         if m in ok and m not in taken and (fk.metric_maps or m not in self.own_maps))
            if cols:
                plan.append((fk, cols))
                taken.update(cols)
        return plan

    # -- set-up --------------------------------------------------------------------
    def setup(self, *, workers: int = 2, progress=None) -> "Scorer":
        """Cross-image preparation (points, draws, cached ground truth); once, before scoring.

        Called implicitly by the first ``prepare``/``add``; call it first to choose the
        threads and progress bar of the ground-truth pass (thread-safe: one caller runs it).
        """
        if self._ready:
            return self
        with self._setup_lock:
            if not self._ready:
                t0 = time.perf_counter()
                self._setup(workers=workers, progress=progress)
                self.timings["ground_truth_s"] += time.perf_counter() - t0
                self._ready = True
        return self

    def _setup(self, *, workers, progress):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- what a protocol supplies ------------------------------------------------------
    def image_inputs(self, pos: int, prediction, record) -> ImageInputs | None:  # pragma: no cover - abstract
        """The inputs of the image at position ``pos``; None when it has no fixations (excluded).

        ``record`` is its ground-truth record when :attr:`needs_record` (else None). Called
        from worker threads: read only what :meth:`_setup` built. Values no chosen metric
        reads should be :class:`~salbench.protocols.inputs.lazy`. ``prediction`` None (metric-
        specific maps): only the ground-truth inputs, ``saliency`` None; the maps are added
        by the scorer, at :meth:`map_shape`.
        """
        raise NotImplementedError

    def map_shape(self, pos: int) -> tuple[int, int]:
        """The ground truth's size of image ``pos``: where metric-specific maps are derived."""
        return self.gt.shape(pos)

    # -- metric-specific maps ------------------------------------------------------------
    def density_at(self, pos: int, log_density) -> np.ndarray:
        """A predicted log-density, checked, renormalised and resized to the ground truth of image ``pos``."""
        label = f"log-density of {self.gt.names[pos]!r}"
        ld = check_log_density(log_density, label)
        target = self.map_shape(pos)
        if ld.shape not in self.aspect_exempt_shapes and aspect_mismatch(ld.shape, target):
            self._stretched[pos] = (ld.shape, tuple(target))  # stretched like a raw map: counted the same way
        return resize_log_density(ld, target)

    def baseline_density(self, index: int, log_density) -> tuple[int, np.ndarray]:
        """``(pos, density at the ground truth's size)`` of one image for :meth:`add_baseline` (thread-safe)."""
        self.setup()
        pos = self.gt.position(index)
        return pos, np.exp(self.density_at(pos, log_density))

    def add_baseline(self, items) -> None:
        """Add ``(pos, density)`` items to sAUC's leave-one-out sum; every image once, in position order.

        The order is the image order whatever the chunks, so the float64 running sum (hence
        every number) does not depend on chunking or workers.
        """
        if self.baseline is None:
            return
        for pos, density in items:
            if pos != self._baseline_next:
                raise ValueError(f"the sAUC baseline takes the images in order: got image {self.gt.names[pos]!r} "
                                 f"(position {pos}), expected position {self._baseline_next}")
            self.baseline.add_density(density)
            self._baseline_next += 1

    def _metric_specific_inputs(self, pos: int, log_density, record) -> ImageInputs | None:
        if self.needs_baseline and self._baseline_next != self.n:
            raise ValueError(f"metric-specific maps: the sAUC baseline holds {self._baseline_next} of {self.n} "
                             "images; add every image's density (add_baseline) before scoring")
        ld = self.density_at(pos, log_density)
        inputs = self.image_inputs(pos, None, record)
        if inputs is None:
            return None
        lb = self.baseline.log_baseline_excluding(ld) if self.needs_baseline else None
        info: dict = {}
        maps = self.derivation.maps(ld, self.protocol, self.params, metrics=self.metrics, log_baseline=lb,
                                    seed=image_seed(0 if self.seed is None else self.seed, pos), info=info)
        for metric, m in maps.items():
            if m.shape != ld.shape:  # pragma: no cover - every map is derived at the ground truth's size
                raise RuntimeError(f"map of {metric} has shape {m.shape}, not {ld.shape}")
        if "sim" in info:
            self._sim_weight[pos] = info["sim"]["mix_weight"]
        inputs.maps.update(maps)
        return inputs

    def prediction_map(self, prediction, pos: int, shape=None) -> np.ndarray:
        """``prediction`` as a finite float64 2-D map (errors name the image's dataset index).

        Scale-invariant protocols get it at unit magnitude (:func:`unit_magnitude`: exact, and
        a no-op for maps whose largest magnitude lies in [0.5, 2)), before any resize.
        ``shape`` is the size it will be resized to (default: the image's ground-truth size):
        a map whose aspect ratio differs is counted (``ProtocolResult.aspect_mismatch``; it is
        still resized, as MIT's code does), unless its shape is in :attr:`aspect_exempt_shapes`.
        """
        a = as_prediction(prediction, int(self.gt.indices[pos]))
        if a.shape not in self.aspect_exempt_shapes:
            target = self.gt.shape(pos) if shape is None else tuple(shape)
            if aspect_mismatch(a.shape, target):
                self._stretched[pos] = (a.shape, tuple(target))
        return unit_magnitude(a) if self.scale_invariant else a

    def stream_seed(self, pos: int):  # pragma: no cover - only protocols with stream_metrics
        """The seed of a :attr:`stream_metrics` metric at ``pos`` (called in image order)."""
        raise NotImplementedError

    # -- the seed rule -----------------------------------------------------------------
    def seed_for(self, metric: str, pos: int):
        """The seed metric ``metric`` draws with on image ``pos``: a function of (seed, n, pos) only.

        Its column of the protocol's seed table (:attr:`seed_columns`), the protocol's
        stream (:attr:`stream_metrics`), else :func:`derived_seed`.
        """
        if metric in self.stream_metrics:
            return self.stream_seed(pos)
        col = self.seed_columns.get(metric)
        if col is not None:
            return int(self.seeds[pos, col])
        return derived_seed(self.seed, self.n, pos, metric)

    # -- per image -------------------------------------------------------------------
    def metric_value(self, metric: str, inputs: ImageInputs, pos: int) -> float:
        """``metric`` on one image through its registry function; NaN when the image lacks an input it needs."""
        entry = self.entries[metric]
        s = inputs.saliency_for(metric)
        args = [inputs.get(k) for k in entry.needs]
        if s is None or any(a is None for a in args):
            return float("nan")
        kwargs = self._kwargs[metric]
        if entry.seeded:
            kwargs = {**kwargs, "seed": self.seed_for(metric, pos)}
        return float(entry.func(s, *args, **kwargs))

    def prepare(self, index: int, prediction, record=None) -> Item:
        """One image's inputs and its per-image metrics (thread-safe); the rest waits for :meth:`add_prepared`."""
        self.setup()
        pos = self.gt.position(index)
        if record is None and self.needs_record:
            record = self.gt.record(pos)
        if self.derivation is not None:
            inputs = self._metric_specific_inputs(pos, prediction, record)
        else:
            inputs = self.image_inputs(pos, prediction, record)
        if inputs is None:
            return Item(pos, index, None)
        values = {m: self.metric_value(m, inputs, pos) for m in self._threaded}
        for fk, cols in self._worker_plan:  # fused kernels that run per image, here in the worker
            seeds = {m: np.array([self.seed_for(m, pos)], dtype=np.int64) for m in cols if self.entries[m].seeded}
            out = fk.run(self, [inputs.subset(fk.reads_for(cols, lambda m: self.entries[m].needs))], cols, seeds)
            values.update(zip(cols, out[0]))
        kept = inputs.subset(self._keep) if self._keep else None
        return Item(pos, index, {"values": values, "inputs": kept})

    def add_prepared(self, items) -> None:
        """Score a chunk of prepared images (any positions not yet scored)."""
        items = list(items)
        if not items:
            return
        self.setup()
        pos = [it.pos for it in items]
        if len(set(pos)) != len(pos) or self._done[pos].any():
            dup = next(p for p in pos if self._done[p] or pos.count(p) > 1)
            raise ValueError(f"image {self.gt.names[dup]!r} was scored twice")
        t0 = time.perf_counter()
        self._score(items)
        self._done[pos] = True
        self.timings["score_s"] += time.perf_counter() - t0

    def _score(self, items) -> None:
        live = []
        for it in items:
            if it.data is None:
                self._exclude(it.pos)
            else:
                self._store(it.pos, it.data["values"])
                live.append(it)
        for it in sorted(live, key=lambda it: it.pos) if self._ordered else ():  # streams follow the image order
            self._store(it.pos, {m: self.metric_value(m, it.data["inputs"], it.pos) for m in self._ordered})
        for k, (fk, cols) in enumerate(self._batch_plan):
            last = k == len(self._batch_plan) - 1
            groups: dict = {}
            for it in live:
                groups.setdefault(np.shape(it.data["inputs"][fk.group_by]), []).append(it)
            reads = fk.reads_for(cols, lambda m: self.entries[m].needs)
            seeded = [m for m in cols if self.entries[m].seeded]
            for group in groups.values():
                batch = [it.data["inputs"].subset(reads) for it in group]
                seeds = {m: np.array([self.seed_for(m, it.pos) for it in group], dtype=np.int64) for m in seeded}
                if last:
                    for it in group:
                        it.data["inputs"] = None  # the batch holds the only references: run may free them
                out = fk.run(self, batch, cols, seeds)
                del batch
                for row, it in enumerate(group):
                    self._store(it.pos, dict(zip(cols, out[row])))
        for it in live:
            it.data = None  # the chunk's maps are no longer needed: memory stays flat

    def score_rows(self, items) -> dict:
        """Score a chunk of prepared images and return its rows; the images stay unscored here.

        What a worker of a distributed run does with a chunk: the returned
        ``{"positions", <each attribute of row_state>}`` go to the scorer of the run
        (:meth:`import_rows`); the same chunk may be scored again (a retried task).
        """
        items = list(items)
        self.add_prepared(items)
        pos = np.array([it.pos for it in items], dtype=np.intp)
        rows = {"positions": pos, **{name: getattr(self, name)[pos].copy() for name in self.row_state}}
        rows["stretched"] = {int(p): self._stretched[p] for p in pos.tolist() if p in self._stretched}
        self._done[pos] = False
        return rows

    def import_rows(self, rows: dict) -> None:
        """Take the rows a worker scored (:meth:`score_rows`) as this scorer's own."""
        pos = np.asarray(rows["positions"], dtype=np.intp)
        if len(set(pos.tolist())) != len(pos) or self._done[pos].any():
            dup = next(int(p) for p in pos if self._done[p] or (pos == p).sum() > 1)
            raise ValueError(f"image {self.gt.names[dup]!r} was scored twice")
        for name in self.row_state:
            getattr(self, name)[pos] = rows[name]
        self._stretched.update(rows.get("stretched", {}))  # aspect mismatches counted on the worker
        self._done[pos] = True

    def add(self, indices, predictions, records=None) -> None:
        """Score one chunk: dataset ``indices``, their 2-D ``predictions``, optionally their records."""
        indices = [int(i) for i in indices]
        if len(predictions) != len(indices):
            raise ValueError(f"got {len(predictions)} predictions for {len(indices)} images")
        if records is not None and len(records) != len(indices):
            raise ValueError(f"got {len(records)} records for {len(indices)} images")
        self.setup()
        t0 = time.perf_counter()
        args = [(i, p, None if records is None else records[k]) for k, (i, p) in enumerate(zip(indices, predictions))]
        workers = min(available_cores(), len(args))
        if workers > 1:  # images are prepared (and scored per image) side by side, as score_stream does
            with ThreadPoolExecutor(workers, thread_name_prefix="salbench-add") as pool, one_blas_thread():
                items = list(pool.map(lambda a: self.prepare(*a), args))
        else:
            items = [self.prepare(*a) for a in args]
        self.timings["prepare_s"] += time.perf_counter() - t0
        self.add_prepared(items)

    # -- bookkeeping -----------------------------------------------------------------
    def _store(self, pos: int, values: dict) -> None:
        for k, v in values.items():
            self._scores[pos, self._col[k]] = v

    def _exclude(self, pos: int) -> None:
        """No fixations: every metric NaN, counted in ``result().excluded``."""
        self._excluded[pos] = True
        self._scores[pos, :] = np.nan

    def _finish(self) -> dict:
        """Timings and anything else a subclass reports at the end (warnings, ...)."""
        return {}

    # -- result ----------------------------------------------------------------------
    def result(self) -> ProtocolResult:
        """The scores of every image, in the view's order; all images must have been added."""
        if not self._done.all():
            missing = np.flatnonzero(~self._done)
            raise ValueError(f"{missing.size} of {self.n} images were not scored "
                             f"(first: {self.gt.names[missing[0]]!r})")
        extra = self._finish()
        timings = {**self.timings, **extra, **{f"gt_{k}": v for k, v in self.gt.timings.items()}}
        stretched = sorted(self._stretched)
        if stretched:
            pos = stretched[0]  # the first in image order: the message does not depend on the workers
            (ph, pw), (gh, gw) = self._stretched[pos]
            warnings.warn(f"{len(stretched)} of {self.n} predictions have another aspect ratio than their image and "
                          f"were stretched to its size (resized anyway, as MIT's code does; e.g. {self.gt.names[pos]}: "
                          f"{ph}x{pw} for {gh}x{gw}); see docs/predictions.md", AspectMismatchWarning, stacklevel=2)
        derivation = None
        if self.derivation is not None:
            derivation = self.derivation.record(
                self.protocol, metrics=self.metrics, seed=self.seed, baseline=self.baseline,
                shapes={self.map_shape(p) for p in range(self.n)},
                sim_weights=self._sim_weight if "sim_optimal" in {map_kind(m) for m in self.metrics} else None)
        return ProtocolResult(
            protocol=self.protocol.name,
            params=self.params,
            seed=self.seed,
            names=list(self.gt.names),
            scores={m: self._scores[:, j].copy() for j, m in enumerate(self.metrics)},
            timings=timings,
            excluded=[self.gt.names[p] for p in np.flatnonzero(self._excluded)],
            conventions=dict(self.protocol.conventions),
            aspect_mismatch=[self.gt.names[p] for p in stretched],
            map_derivation=derivation,
        )


# ----------------------------------------------------------------------------- maps
def _maps_mode(maps, derivation, metrics, protocol_name):
    """``(maps, MapDerivation or None)``, checked: metric-specific maps need a map for every metric."""
    if maps not in MAPS_CHOICES:
        raise ValueError(f"maps must be one of {', '.join(MAPS_CHOICES)}, got {maps!r}")
    if maps == MODEL_MAPS:
        if derivation is not None:
            raise ValueError("map_derivation applies to maps='metric-specific'")
        return maps, None
    missing = [m for m in metrics if map_kind(m) is None]
    if missing:
        raise ValueError(f"metric-specific maps: no map is defined for {', '.join(missing)} under protocol "
                         f"{protocol_name!r}; choose metrics among {', '.join(m for m in metrics if map_kind(m) is not None)}")
    if derivation is None:
        derivation = MapDerivation()
    elif not isinstance(derivation, MapDerivation):
        derivation = MapDerivation.from_parameters(derivation)
    return maps, derivation


# ----------------------------------------------------------------------------- validators
def positive_int(v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError("must be a positive integer")
    return int(v)


def step_value(v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not 0 < v <= 1:
        raise ValueError("must be a number in (0, 1]")
    return float(v)


def boolean(v):
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError("must be true or false")
    return bool(v)


def positive_float(v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v) or v <= 0:
        raise ValueError("must be a positive number")
    return float(v)


def nonneg_float(v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v) or v < 0:
        raise ValueError("must be a number >= 0")
    return float(v)


def one_of(*choices):
    def check(v):
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}")
        return v

    return check


# ----------------------------------------------------------------------------- prediction helpers
def as_prediction(p, index: int) -> np.ndarray:
    """One prediction as a finite float64 2-D map (a flat 2304-vector becomes 48x48)."""
    a = np.asarray(p)
    if a.ndim == 1:
        side = int(round(np.sqrt(a.size)))
        if side * side != a.size:
            raise ValueError(f"prediction {index} is a flat vector of {a.size} values, not a square map")
        a = a.reshape(side, side)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"prediction {index} must be a 2-D map, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"prediction {index} must be numeric, got dtype {a.dtype}")
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"prediction {index} contains NaN or inf")
    return a


def resize_keeping_constants(s: np.ndarray, shape, resize) -> np.ndarray:
    """``resize(s, shape)``, except that a constant map stays exactly constant.

    Interpolating a constant spreads it over a few ulps (MATLAB bicubic: ~7 values
    within 7e-16); the metrics would then score that rounding noise. A constant
    prediction (the registry's rule, :func:`is_constant_map`) is the uniform prediction
    at any size, so it becomes ``full(shape, value)``.
    """
    if is_constant_map(s):
        return np.full(tuple(shape), float(s.flat[0]))
    if s.shape == tuple(shape):
        return s
    return resize(s, tuple(shape))


def y_original_of(record) -> np.ndarray:
    """The record's SALICON-style uint8 map, or ``round(255 * density)`` when it has none."""
    if record.y_original is not None:
        return np.asarray(record.y_original)
    return np.round(255.0 * np.asarray(record.density, dtype=np.float64)).astype(np.uint8)
