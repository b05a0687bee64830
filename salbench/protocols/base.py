"""Protocol base class, the chunked scorer every protocol provides, and the result object.

A protocol has *parameters* (overridable, recorded in results files, each one read and
changing the scores) and *conventions* (fixed descriptive text: what the protocol is;
refused as overrides). Scoring goes through a :class:`Scorer`::

    scorer = protocol.scorer(gt, seed=0)     # gt: GroundTruthView (dataset or records)
    scorer.add(indices, predictions, records)   # one chunk, any order, any size
    result = scorer.result()                 # ProtocolResult, per-image arrays in gt order

Per-image random draws are tables fixed from ``(seed, n)`` when the scorer is made, so the
numbers do not depend on how the images are chunked or in which order chunks arrive.
``protocol.evaluate(predictions, records, seed=0)`` is the in-memory convenience (one chunk).
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from salbench.protocols._metrics import metrics_for
from salbench.stats import mean_ci95


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
        registry's column order.
    timings : dict
        Seconds spent per stage (informational).
    excluded : list of str
        Images without fixations (as the protocol defines them): NaN in every metric,
        left out of every mean.
    conventions : dict
        The protocol's fixed conventions (descriptive).
    """

    protocol: str
    params: dict
    seed: int | None
    names: list
    scores: dict
    timings: dict = field(default_factory=dict)
    excluded: list = field(default_factory=list)
    conventions: dict = field(default_factory=dict)

    @property
    def n_excluded(self) -> int:
        """How many images had no fixations (NaN in every metric)."""
        return len(self.excluded)

    def summary(self) -> dict:
        """``{metric: {"mean", "ci95", "n"}}`` (NaN images left out; Student-t 95% CI)."""
        out = {}
        for name, values in self.scores.items():
            mean, ci = mean_ci95(values)
            out[name] = {"mean": mean, "ci95": ci, "n": int(np.isfinite(values).sum())}
        return out


class ConventionOverrideError(ValueError):
    """An override named one of the protocol's fixed conventions."""


class _Metrics:
    """``Protocol.metrics``: the registry's metric list for the protocol (class or instance)."""

    def __get__(self, obj, cls):
        return metrics_for(cls.name)


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    return None if seed is None else int(seed)


class Protocol:
    """A named recipe: how a prediction meets the ground truth, and which metrics it reports.

    Subclasses set ``name``, ``description``, ``defaults`` (the overridable parameters),
    ``conventions`` (fixed, descriptive), ``validators`` (one per parameter) and
    ``scorer_class``.
    """

    name: str = ""
    description: str = ""
    defaults: dict = {}
    conventions: dict = {}
    validators: dict = {}
    #: parameters that select ground truth (part of the ground-truth cache key)
    ground_truth_params: tuple = ()
    #: keys older results files recorded that are now conventions -> the value they recorded
    legacy_keys: dict = {}
    #: parameters added since -> the value that reproduces what older records computed
    legacy_defaults: dict = {}
    scorer_class: type | None = None
    metrics = _Metrics()

    def __init__(self, **overrides):
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

    @classmethod
    def from_record(cls, params: dict) -> "Protocol":
        """The protocol a results file's ``params`` describe (older records included).

        Keys that older salbench versions recorded but are now conventions are accepted
        when they hold the value those versions recorded (and dropped); a parameter
        added since gets the value that reproduces what such a record computed
        (:attr:`legacy_defaults`). Anything else behaves as :meth:`__init__`.
        """
        params = {k: v for k, v in dict(params).items() if k != "name"}
        for k, old in cls.legacy_keys.items():
            if k in params and k not in cls.defaults:
                if params[k] != old:
                    raise ValueError(f"protocol {cls.name!r}: recorded {k}={params[k]!r} is not a convention "
                                     f"this salbench implements ({cls.conventions.get(k, old)!r})")
                del params[k]
        is_legacy = any(k in cls.legacy_keys for k in dict(params)) or not set(cls.defaults) <= set(params)
        if is_legacy:
            for k, v in cls.legacy_defaults.items():
                params.setdefault(k, v)
        return cls(**params)

    @property
    def params(self) -> dict:
        """The parameters (a copy), including the protocol name: what results files record."""
        return {"name": self.name, **copy.deepcopy(self._params)}

    def ground_truth_key(self) -> dict:
        """The parameters that change the model-independent ground truth (cache key)."""
        return {"protocol": self.name, **{k: self._params[k] for k in self.ground_truth_params}}

    def scorer(self, gt, seed=0) -> "Scorer":
        """A chunked scorer over ``gt`` (a GroundTruthView, a dataset, or a list of records)."""
        from salbench.protocols.view import GroundTruthView

        if not isinstance(gt, GroundTruthView):
            gt = GroundTruthView.from_records(gt) if isinstance(gt, (list, tuple)) else GroundTruthView.from_dataset(gt)
        if gt.n == 0:
            raise ValueError("no images to evaluate")
        return self.scorer_class(self, gt, _check_seed(seed))

    def evaluate(self, predictions, records, *, seed=0) -> ProtocolResult:
        """Score ``predictions`` (one 2-D map per record, any size) against ``records`` in memory."""
        records = list(records)
        if len(predictions) != len(records):
            raise ValueError(f"got {len(predictions)} predictions for {len(records)} records")
        if len(records) == 0:
            raise ValueError("no records to evaluate")
        _check_seed(seed)
        sc = self.scorer(records, seed=seed)
        sc.add(range(len(records)), predictions, records)
        return sc.result()

    def __repr__(self):
        return f"{type(self).__name__}({self._params})"


# ----------------------------------------------------------------------------- scorer
class Item:
    """One prepared image: its position, dataset index and whatever the scorer put in it."""

    __slots__ = ("pos", "index", "data")

    def __init__(self, pos: int, index: int, data: dict):
        self.pos, self.index, self.data = pos, index, data


class Scorer:
    """Scores a protocol's images chunk by chunk; merges deterministically.

    ``prepare`` is the per-image, thread-safe part (prediction resize, per-image ground
    truth); ``add_prepared`` scores a chunk of prepared images (main thread: parallel
    kernels inside). ``add`` does both. Subclasses implement :meth:`_setup`,
    :meth:`prepare` and :meth:`_score`.
    """

    #: prepare() reads the image's ground-truth record (score_stream then loads it)
    needs_record = True

    def __init__(self, protocol: Protocol, gt, seed):
        self.protocol = protocol
        self.params = protocol.params
        self.gt = gt
        self.seed = seed
        self.n = gt.n
        self.metrics = tuple(protocol.metrics)
        self._col = {m: j for j, m in enumerate(self.metrics)}
        self._scores = np.full((self.n, len(self.metrics)), np.nan)
        self._done = np.zeros(self.n, dtype=bool)
        self._excluded = np.zeros(self.n, dtype=bool)
        self._ready = False
        self._setup_lock = threading.Lock()
        self.timings = {"ground_truth_s": 0.0, "prepare_s": 0.0, "score_s": 0.0}

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

    # -- per image -------------------------------------------------------------------
    def prepare(self, index: int, prediction, record=None) -> Item:  # pragma: no cover - abstract
        raise NotImplementedError

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

    def _score(self, items):  # pragma: no cover - abstract
        raise NotImplementedError

    def add(self, indices, predictions, records=None) -> None:
        """Score one chunk: dataset ``indices``, their 2-D ``predictions``, optionally their records."""
        indices = [int(i) for i in indices]
        if len(predictions) != len(indices):
            raise ValueError(f"got {len(predictions)} predictions for {len(indices)} images")
        if records is not None and len(records) != len(indices):
            raise ValueError(f"got {len(records)} records for {len(indices)} images")
        self.setup()
        t0 = time.perf_counter()
        items = [self.prepare(i, p, None if records is None else records[k])
                 for k, (i, p) in enumerate(zip(indices, predictions))]
        self.timings["prepare_s"] += time.perf_counter() - t0
        self.add_prepared(items)

    # -- helpers for subclasses ------------------------------------------------------
    def _position(self, index: int) -> int:
        return self.gt.position(index)

    def _store(self, pos: int, values: dict) -> None:
        for k, v in values.items():
            j = self._col.get(k)
            if j is not None:
                self._scores[pos, j] = v

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
        return ProtocolResult(
            protocol=self.protocol.name,
            params=self.params,
            seed=self.seed,
            names=list(self.gt.names),
            scores={m: self._scores[:, j].copy() for j, m in enumerate(self.metrics)},
            timings=timings,
            excluded=[self.gt.names[p] for p in np.flatnonzero(self._excluded)],
            conventions=dict(self.protocol.conventions),
        )


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
    from salbench.protocols._metrics import is_constant_map

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
