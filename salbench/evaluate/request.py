"""One request for an evaluation: what to score, on which data, under which protocol, and how.

The CLI (``salbench eval``), the Python API and ``leaderboards/build.py`` all build
an :class:`EvaluationRequest`; every argument is checked here, once, before any
data is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

DEFAULT_RESULTS_DIR = "results"
#: Images per scoring chunk when a model predicts: records with full-size images, ~7 MB each at 480x640.
DEFAULT_CHUNK_MODEL = 32
#: Images per scoring chunk when maps are read from files.
DEFAULT_CHUNK_FILES = 64


def positive_int(value, what: str) -> int:
    """``value`` as an int; ValueError naming ``what`` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(value, what: str) -> int:
    """``value`` as an int; ValueError naming ``what`` unless it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{what} must be an integer >= 0, got {value!r}")
    return int(value)


def check_seed(seed) -> int:
    """A protocol seed: an integer in [0, 2**32) (numpy's seeding range)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"--seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def metric_names(metrics, flag: str = "--metrics") -> tuple[str, ...] | None:
    """``metrics`` (a comma-separated string or a sequence of names) as a tuple in the order given, or None.

    Names are checked against a protocol's metrics when the protocol is built
    (``get_protocol(name, metrics=...)``: a typo gets the close match); here only
    their form: non-empty strings, at least one, each once.
    """
    if metrics is None:
        return None
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    if not all(isinstance(m, str) for m in names):
        raise ValueError(f"{flag} takes metric names, got {metrics!r}")
    names = [m.strip() for m in names]
    if not names or any(not m for m in names):
        raise ValueError(f"{flag} takes a comma-separated list of metric names, got {metrics!r}")
    repeated = sorted({m for m in names if names.count(m) > 1})
    if repeated:
        raise ValueError(f"{flag} names {', '.join(repeated)} more than once")
    return tuple(names)


def _not_a_file(path, flag: str) -> None:
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise ValueError(f"{flag} {path} is a file, not a directory")


@dataclass(frozen=True)
class EvaluationRequest:
    """Everything an evaluation is asked to do (:func:`salbench.evaluate.evaluate` runs it).

    What to score: exactly one of ``model`` and ``predictions``.

    Attributes
    ----------
    model : str, optional
        A registered model (built-in or plugin), run on the split (``--model``).
    predictions : path, optional
        Maps a user already has: a folder of maps matched to the images by file
        stem, or a ``.npy``/``.npz``/``.pkl`` file (``--predictions``; docs/predictions.md).
    density : bool
        With ``predictions``: the file holds natural-log fixation densities (``.npy``/``.npz``,
        ``--density``), each checked to sum to 1; needed for ``maps="metric-specific"``.
    name : str, optional
        With ``predictions``: the model name of the entry (default: the folder's name, or its parent's when
        it is called ``maps``, ``predictions``, ...; :func:`~salbench.evaluate.default_predictions_name`).
    allow_missing, allow_extra : bool
        With ``predictions``: score the images that have a map (the entry records how
        many were skipped) / ignore maps that match no image, instead of failing.
    model_options : mapping
        With ``model``: keyword arguments of ``create_model`` (recorded).
    checkpoint : path, optional
        With ``model``: its weights (default: a cached quick checkpoint on the built-in
        dataset; a fitted ``center_bias``).
    model_predictions : array or sequence of 2-D maps, optional
        With ``model``: maps it already predicted for this split, in split order (e.g.
        on a GPU); the model is not run. ``model_info`` describes where they came from
        (merged into the entry's model record).
    train_if_needed : bool
        Train the quick checkpoint of a network without weights on the built-in
        dataset (``--no-train`` turns it off).
    fit_limit : int
        Train images a ``fit`` model (``center_bias``) is fitted to.
    save_maps : path, optional
        With ``model``: also write each map as an 8-bit PNG named after its stimulus.
    tag : str, optional
        Appended to the model name in the entry's file name (e.g. a training seed).
    dataset, split, data_dir, dataset_options
        Which data (``salbench.evaluate.choose_dataset``: the one asked for, else a
        configured SALICON, else the built-in synthetic set).
    protocol, protocol_overrides
        Default: ``salbench.protocols.default_protocol_for`` the dataset; overrides
        must be parameters the protocol reads.
    seed : int
        Seed of the protocol's random draws (and of an implicit quick training).
    results_dir : path
        Where ``<stem>.json`` and its content-addressed predictions file are written.
    chunk_size : int, optional
        Images per scoring chunk (default :data:`DEFAULT_CHUNK_MODEL` when a model
        predicts, :data:`DEFAULT_CHUNK_FILES` for maps read from files).
    workers : int or None
        Threads preparing and scoring images (0: all in the calling thread; None,
        the default: one per available core); numbers do not change.
    batch_size : int
        Images per ``model.predict`` call.
    metrics : sequence of str or str, optional
        The metrics to compute (``--metrics``): registry names, any subset of the
        protocol's (a comma-separated string or a sequence; default all). Recorded in
        the entry (``protocol.metrics``); ``salbench check`` recomputes exactly those.
    executor : str or distributed.Client
        Where the chunks are scored (``--executor``): ``"local"`` (this process's
        threads), ``"dask"`` (a ``LocalCluster`` started for the run) or
        ``"dask:ADDRESS"`` (a running scheduler, or its scheduler file), or a
        ``distributed.Client`` the caller already holds (docs/dask.md). Numbers do
        not change.

    maps : {"raw", "metric-specific"}
        ``"raw"``: every metric scores the model's own map (``--maps raw``, the default). ``"metric-specific"``:
        the model's (or file's) fixation density is scored on each metric with the map that
        metric rewards (ECCV 2018; docs/metrics.md): a density model (``model.output ==
        "density"``) or ``density`` predictions. The entry stores the log-densities and is
        named ``<model>-metric-specific``.
    map_options : mapping
        With ``maps="metric-specific"``: parameters of
        :class:`~salbench.protocols.metric_maps.MapDerivation` (recorded).

    """

    model: str | None = None
    predictions: str | os.PathLike | None = None
    name: str | None = None
    allow_missing: bool = False
    allow_extra: bool = False
    model_options: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: str | os.PathLike | None = None
    model_predictions: Any = field(default=None, repr=False, compare=False)
    model_info: Mapping[str, Any] | None = None
    train_if_needed: bool = True
    fit_limit: int = 1000
    save_maps: str | os.PathLike | None = None
    tag: str | None = None
    dataset: str | None = None
    split: str = "val"
    data_dir: str | os.PathLike | None = None
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    protocol: str | None = None
    protocol_overrides: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR
    chunk_size: int | None = None
    workers: int | None = None
    batch_size: int = 32
    metrics: tuple[str, ...] | None = None
    executor: Any = field(default="local", compare=False)
    maps: str = "raw"
    map_options: Mapping[str, Any] = field(default_factory=dict)
    density: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        for key in ("model_options", "dataset_options", "protocol_overrides", "map_options"):
            set_(self, key, dict(getattr(self, key) or {}))
        if self.model is None and self.predictions is None:
            raise ValueError("nothing to evaluate: give --model NAME or --predictions PATH")
        if self.model is not None and self.predictions is not None:
            raise ValueError("give either --model or --predictions, not both")
        if self.predictions is not None:
            if self.save_maps is not None:
                raise ValueError("--save-maps writes a model's maps: use it with --model")
            for what, value in (("model_predictions", self.model_predictions), ("model_info", self.model_info),
                                ("tag", self.tag)):
                if value is not None:
                    raise ValueError(f"{what} applies to a model, not to --predictions")
        else:
            for flag, value in (("--name", self.name), ("--allow-missing", self.allow_missing),
                                ("--allow-extra", self.allow_extra)):
                if value:
                    raise ValueError(f"{flag} applies to --predictions")
            if self.model_info is not None and self.model_predictions is None:
                raise ValueError("model_info describes model_predictions: give both")
        self._check_maps()
        set_(self, "seed", check_seed(self.seed))
        if self.chunk_size is not None:
            set_(self, "chunk_size", positive_int(self.chunk_size, "--chunk-size"))
        if self.workers is not None:
            set_(self, "workers", non_negative_int(self.workers, "--workers"))
        set_(self, "batch_size", positive_int(self.batch_size, "--batch-size"))
        set_(self, "fit_limit", positive_int(self.fit_limit, "fit_limit"))
        set_(self, "metrics", metric_names(self.metrics))
        if isinstance(self.executor, str):
            from salbench.evaluate.executor import parse_executor

            parse_executor(self.executor)  # a bad spelling fails here, before any data is read

    def _check_maps(self) -> None:
        from salbench.protocols.base import MAPS_CHOICES
        from salbench.protocols.metric_maps import METRIC_SPECIFIC, MapDerivation

        if self.maps not in MAPS_CHOICES:
            raise ValueError(f"--maps must be one of {', '.join(MAPS_CHOICES)}, got {self.maps!r}")
        if self.density and self.predictions is None:
            raise ValueError("--density declares a --predictions file of log-densities; a model declares its own "
                             "output")
        if self.maps != METRIC_SPECIFIC:
            if self.density:
                raise ValueError("--density predictions are scored with --maps metric-specific")
            if self.map_options:
                raise ValueError("map options apply to --maps metric-specific")
            return
        if self.predictions is not None and not self.density:
            raise ValueError("--maps metric-specific scores fixation densities: give a .npy/.npz file of "
                             "natural-log densities with --density (docs/predictions.md)")
        if self.save_maps is not None:
            raise ValueError("--save-maps writes the model's own maps: use it with --maps raw")
        if not (isinstance(self.executor, str) and self.executor == "local"):
            raise ValueError("--maps metric-specific runs in this process (two passes over the images): "
                             "--executor dask does not run it")
        MapDerivation.from_parameters(self.map_options)  # a bad option fails here, before any data is read

    @property
    def chunk(self) -> int:
        """Images per scoring chunk: ``chunk_size``, else the default for the kind of source."""
        if self.chunk_size is not None:
            return self.chunk_size
        return DEFAULT_CHUNK_MODEL if self.model is not None else DEFAULT_CHUNK_FILES

    def check_paths(self) -> None:
        """The paths are usable (checked when the evaluation starts, before any data is read).

        Raises
        ------
        ValueError
            ``results_dir`` or ``save_maps`` is a file.
        FileNotFoundError
            ``predictions`` does not exist.
        """
        _not_a_file(self.results_dir, "--results-dir")
        _not_a_file(self.save_maps, "--save-maps")
        if self.predictions is not None and not Path(self.predictions).exists():
            raise FileNotFoundError(f"--predictions {self.predictions}: no such file or folder")
