"""Evaluate a model, or maps a user already has, on a dataset split, end to end, streaming.

What ``salbench eval`` runs. An evaluation is a small pipeline of named steps:

1. :func:`plan_evaluation` resolves and checks everything that can be checked before
   any data is read (dataset choice, split, protocol and its overrides, seed, results
   directory, chunk sizes): a mistake costs milliseconds, not a dataset load.
2. :func:`prepare_model` makes sure the model has weights (a cached quick checkpoint
   on the built-in dataset, a ``center_bias`` fit on the train split's fixations).
3. :func:`stream_model` / :func:`stream_predictions` score the split chunk by chunk:
   records of the next chunk are decoded in a background thread while the current
   chunk is predicted and scored; each map goes straight into the results entry's
   predictions file (or, for a user's folder of maps, only its hash is recorded).
   What outlives a chunk is per-image scores and the protocol's cross-image data
   (fixation points), so memory does not grow with the number of images.
4. The results JSON is committed last, with the predictions, as one unit
   (:class:`salbench.leaderboard.results.ResultWriter`).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

DEFAULT_RESULTS_DIR = "results"
BUILTIN_DATASET = "synthetic"
DEFAULT_CHUNK = 32  # images per chunk: records with full-size images, ~7 MB each at 480x640


class NeedsTrainingError(RuntimeError):
    """The model has no trained weights and salbench will not train them implicitly here."""


@dataclass
class DatasetChoice:
    """Which dataset an evaluation uses and why (printed as the first output line)."""

    name: str
    data_dir: str | None
    options: dict
    reason: str


def choose_dataset(name: str | None, data_dir: str | None, options: Mapping[str, Any] | None = None) -> DatasetChoice:
    """Resolve the dataset: the one asked for, else configured SALICON, else synthetic.

    SALICON counts as configured when ``SALBENCH_DATA`` names an existing directory.
    """
    options = dict(options or {})
    if name:
        return DatasetChoice(name, data_dir, options, f"dataset {name} (as asked)")
    env = os.environ.get("SALBENCH_DATA")
    if data_dir or (env and Path(env).is_dir()):
        where = data_dir or env
        return DatasetChoice("salicon", where, options, f"dataset salicon from {where} (configured SALICON)")
    return DatasetChoice(BUILTIN_DATASET, None, options,
                         "dataset synthetic (built-in; no SALICON configured: set SALBENCH_DATA or --data-dir to use yours)")


def dataset_record(dataset, choice: DatasetChoice) -> dict[str, Any]:
    """Dataset identity plus what is needed to load it again (for ``salbench check``)."""
    identity = dict(dataset.identity())
    identity.setdefault("name", choice.name)
    identity.setdefault("split", dataset.split)
    identity["options"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in choice.options.items()}
    identity["data_dir"] = choice.data_dir
    return identity


# -- step 1: plan --------------------------------------------------------------------------------
@dataclass
class EvalPlan:
    """Everything an evaluation needs, resolved and checked before any data is read."""

    choice: DatasetChoice
    dataset: Any
    protocol: Any
    split: str
    seed: int
    results_dir: Path
    chunk_size: int = DEFAULT_CHUNK
    workers: int = 2
    progress: bool = True
    log: Callable[[str], None] = print
    started: float = field(default_factory=time.perf_counter)


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def check_seed(seed) -> int:
    """A protocol seed: an integer in [0, 2**32) (numpy's seeding range)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"--seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def check_results_dir(results_dir) -> Path:
    """``results_dir`` as a Path; a clear error when it exists and is not a directory."""
    path = Path(results_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--results-dir {path} is a file, not a directory")
    return path


def plan_evaluation(*, dataset: str | None = None, split: str = "val", data_dir: str | None = None,
                    dataset_options: Mapping[str, Any] | None = None, protocol: str | None = None,
                    protocol_overrides: Mapping[str, Any] | None = None, seed: int = 0,
                    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR, chunk_size: int = DEFAULT_CHUNK,
                    workers: int = 2, progress: bool = True, log: Callable[[str], None] = print) -> EvalPlan:
    """Resolve the dataset, split and protocol; check every argument (step 1).

    Opening a dataset lists its images without decoding any (the split's names, for
    matching predictions and naming results).

    Raises
    ------
    ValueError, FileNotFoundError
        One message naming the argument or path at fault.
    """
    from salbench.data import get_dataset
    from salbench.protocols import default_protocol_for, get_protocol

    seed = check_seed(seed)
    chunk_size = _positive_int(chunk_size, "--chunk-size")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"--workers must be an integer >= 0, got {workers!r}")
    results_dir = check_results_dir(results_dir)
    choice = choose_dataset(dataset, data_dir, dataset_options)
    proto = get_protocol(protocol or default_protocol_for(choice.name), **dict(protocol_overrides or {}))
    log(f"salbench: {choice.reason}, split {split}")
    ds = get_dataset(choice.name, split, data_dir=choice.data_dir, **choice.options)
    if len(ds) == 0:
        raise ValueError(f"{choice.name}/{split} has no images")
    return EvalPlan(choice=choice, dataset=ds, protocol=proto, split=split, seed=seed, results_dir=results_dir,
                    chunk_size=chunk_size, workers=int(workers), progress=progress, log=log)


# -- step 2: the model ---------------------------------------------------------------------------
def prepare_model(model_name: str, plan: EvalPlan, *, checkpoint=None, model_options=None,
                  train_if_needed: bool = True, fit_limit: int = 1000):
    """Create the model with weights; return ``(model, model_record)`` for the results file.

    A shallow network without weights gets the cached quick checkpoint on the built-in
    dataset (elsewhere :class:`NeedsTrainingError`); a model with ``fit`` (``center_bias``)
    is fitted to the fixations of the first ``fit_limit`` images of the ``train`` split
    and saved beside the results.
    """
    from salbench.leaderboard.results import file_sha256
    from salbench.models import create_model
    from salbench.models._weights import resolve_checkpoint

    options = dict(model_options or {})
    model = create_model(model_name, checkpoint=checkpoint, **options)
    if getattr(model, "needs_training", False):
        checkpoint = _quick_checkpoint(model_name, plan.choice, train_if_needed=train_if_needed, seed=plan.seed,
                                       log=plan.log)
        model = create_model(model_name, checkpoint=checkpoint, **options)
    elif checkpoint is None and callable(getattr(model, "fit", None)):
        checkpoint = _fit_checkpoint(model, plan.choice, plan.results_dir, fit_limit, plan.log)
    record: dict[str, Any] = {"name": model_name}
    if options:
        record["options"] = options
    record["card_trained_on"] = getattr(model, "card", {}).get("trained_on")
    training = getattr(model, "training", None)
    if training:
        record["training"] = training
    if checkpoint:
        shown = Path(checkpoint)
        results = plan.results_dir.resolve()
        if shown.resolve().is_relative_to(results):  # e.g. a fitted center_bias beside the results
            shown = shown.resolve().relative_to(results)
        record["checkpoint"] = {"path": str(shown), "sha256": file_sha256(resolve_checkpoint(checkpoint))}
    else:
        record["checkpoint"] = None
    return model, record


class _FitPoints:
    """What ``center_bias.fit`` reads of a record (its shape and fixation points), nothing more."""

    __slots__ = ("shape", "fixations", "density")

    def __init__(self, shape, fixations, density=None):
        self.shape, self.fixations, self.density = tuple(shape), fixations, density


def _fit_records(train, limit: int):
    """Fixation points of the first ``limit`` train images, without keeping maps or images."""
    n = min(len(train), limit)
    points = getattr(train, "fixation_points", None)
    for i in range(n):
        if points is not None:
            pts = np.asarray(points(i), dtype=np.int64).reshape(-1, 2)
            if len(pts):
                yield _FitPoints(train.stats(i)["shape"], pts)
                continue
        rec = train.ground_truth(i) if hasattr(train, "ground_truth") else train[i]
        yield _FitPoints(rec.shape, np.asarray(rec.fixations), rec.density)


def _fit_checkpoint(model, choice: DatasetChoice, results_dir: Path, limit: int, log: Callable[[str], None]) -> str:
    """Fit a ``fit(records)`` model (center_bias) on the train split; save its parameters beside the results."""
    from salbench.data import get_dataset

    train = get_dataset(choice.name, "train", data_dir=choice.data_dir, **choice.options)
    n = min(len(train), limit)
    log(f"salbench: fitting {model.name} to the fixations of {n} {choice.name}/train images")
    model.fit(list(_fit_records(train, limit)))
    return str(model.save(results_dir / f"{choice.name}__train__{model.name}.fit.json"))


def _quick_checkpoint(model_name: str, choice: DatasetChoice, *, train_if_needed: bool, seed: int,
                      log: Callable[[str], None]) -> str:
    """Return the cached quick checkpoint on the built-in dataset, training it once if needed.

    An interrupted quick training resumes where it stopped.
    """
    from salbench import training

    train_cmd = f"salbench train {model_name} --dataset {choice.name}" + (
        f" --data-dir {choice.data_dir}" if choice.data_dir else "")
    if choice.name != BUILTIN_DATASET or not train_if_needed:
        raise NeedsTrainingError(
            f"model {model_name} has no trained weights; train them with `{train_cmd}` "
            f"and pass --checkpoint PATH (the path it prints)")
    run_dir = training.default_run_dir(model_name, BUILTIN_DATASET, preset="quick")
    if choice.options:  # e.g. preset=small: a run of its own, never mixed with the default one
        tag = "-".join(f"{k}={v}" for k, v in sorted(choice.options.items()))
        run_dir = run_dir.with_name(f"{BUILTIN_DATASET}-{tag}-quick")
    stale = training.stale_run(run_dir, model_name, "quick")
    if stale:  # a cached run of an older quick recipe must not stand in for today's
        log(f"salbench: discarding the cached quick run {run_dir}: {stale}")
        import shutil

        shutil.rmtree(run_dir)
    if (run_dir / "checkpoints" / "final").is_dir():
        # The checkpoint the run directory designates (training.chosen_checkpoint: best, else final),
        # the same one `--checkpoint RUN_DIR` and `salbench plot` use.
        path = training.chosen_checkpoint(run_dir)
        log(f"salbench: using the cached quick checkpoint {path} ({training.checkpoint_summary(path)})")
        return str(path)
    recipe = training.get_recipe(model_name, "quick")
    log(f"salbench: {model_name} has no trained weights; training a quick checkpoint on the built-in "
        f"synthetic dataset (preset quick, seed {seed}; cached in {run_dir}): {recipe.describe()}. "
        f"A few minutes of CPU; a demo, not a replication (GPU-trained scores: leaderboards/)")
    result = training.train(model_name, BUILTIN_DATASET, preset="quick", seed=seed, resume="auto",
                            dataset_options=choice.options or None, out=run_dir)
    log(f"salbench: quick checkpoint {result.checkpoint} ({training.checkpoint_summary(result.checkpoint)})")
    return str(result.checkpoint)


# -- step 3: streaming ---------------------------------------------------------------------------
def _chunks(n: int, size: int):
    return [np.arange(c, min(n, c + size)) for c in range(0, n, size)]


def _bar(plan: EvalPlan, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not plan.progress, leave=False, smoothing=0.1)


def _predict_chunk(model, records, batch_size: int) -> list[np.ndarray]:
    """``model.predict`` in batches of ``batch_size``; one 2-D map per record."""
    maps: list[np.ndarray] = []
    for b in range(0, len(records), batch_size):
        batch = records[b:b + batch_size]
        out = model.predict(batch)
        if isinstance(out, np.ndarray) and out.ndim == 3 and out.shape[0] == len(batch):
            maps.extend(np.asarray(out, dtype=np.float32))
            continue
        out = list(out) if not isinstance(out, np.ndarray) else None
        if out is None or len(out) != len(batch):
            raise ValueError(f"model {getattr(model, 'name', model)} returned {np.shape(out)} "
                             f"for {len(batch)} images (expected one 2-D map per image)")
        maps.extend(np.asarray(m, dtype=np.float32) for m in out)
    return maps


def stream_model(plan: EvalPlan, writer, *, model=None, predictions=None, batch_size: int = 32,
                 save_maps_dir=None):
    """Predict (or take ``predictions``), store and score the split chunk by chunk.

    Each map is rounded to float16 (:func:`~salbench.leaderboard.results.quantize_map`)
    and added to ``writer`` before it is scored, so the scored values are exactly the
    stored ones. Returns ``(ProtocolResult, timings)``.
    """
    from salbench.leaderboard.results import quantize_map
    from salbench.predictions import map_filename, save_map

    ds, n = plan.dataset, len(plan.dataset)
    if predictions is not None and len(predictions) != n:
        raise ValueError(f"{len(predictions)} predictions for {n} images of {plan.choice.name}/{plan.split}")
    scorer = plan.protocol.scorer(ds, seed=plan.seed)
    t0 = time.perf_counter()
    gt_bar = _bar(plan, n, f"{plan.protocol.name}: ground truth")
    try:
        scorer.setup(workers=max(1, plan.workers), progress=gt_bar if plan.progress else None)
    finally:
        gt_bar.close()
    t_gt = time.perf_counter() - t0
    names = ds.names
    load = ds.__getitem__ if model is not None else getattr(ds, "ground_truth", ds.__getitem__)
    chunks = _chunks(n, plan.chunk_size)
    predict_s = score_s = 0.0
    bar = _bar(plan, n, "predict + score" if model is not None else "score")
    # One background thread decodes the next chunk's records while this one is predicted and scored;
    # ``workers`` threads prepare each image for the protocol (resize, per-image ground truth and the
    # metrics without a fused kernel, e.g. EMD) before the chunk's fused kernel runs.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="salbench-records")
    prep = ThreadPoolExecutor(max_workers=plan.workers, thread_name_prefix="salbench-prepare") if plan.workers else None
    try:
        def load_chunk(idx):
            return [load(int(i)) for i in idx]

        pending = pool.submit(load_chunk, chunks[0])
        for c, idx in enumerate(chunks):
            records = pending.result()
            if c + 1 < len(chunks):
                pending = pool.submit(load_chunk, chunks[c + 1])
            tp = time.perf_counter()
            raw = _predict_chunk(model, records, batch_size) if model is not None else [predictions[i] for i in idx]
            stored = []
            for i, m in zip(idx, raw):
                name = names[int(i)]
                q = writer.add_prediction(name, quantize_map(m, f"prediction for {name}"))
                stored.append(q)
                if save_maps_dir is not None:
                    save_map(Path(save_maps_dir) / map_filename(name), q)
            ts = time.perf_counter()
            predict_s += ts - tp
            recs = records if scorer.needs_record else [None] * len(idx)
            args = list(zip(idx.tolist(), stored, recs))
            items = (list(prep.map(lambda a: scorer.prepare(*a), args)) if prep is not None
                     else [scorer.prepare(*a) for a in args])
            scorer.add_prepared(items)
            score_s += time.perf_counter() - ts
            del items, args, recs
            bar.update(len(idx))
            del records, raw, stored
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if prep is not None:
            prep.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return scorer.result(), {"ground_truth": t_gt, "predict": predict_s, "evaluate": score_s}


def stream_predictions(plan: EvalPlan, match, writer):
    """Score maps a user already has (a :class:`~salbench.predictions.PredictionMatch`).

    A folder of maps is recorded by each map's SHA-256 (read in the same pass that
    decodes it); an array file's maps are stored in the entry (exact values).
    Returns ``(ProtocolResult, timings)``.
    """
    from salbench.scoring import score_stream

    fingerprints: dict[int, str] = {}
    folder = match.source.kind == "folder"

    def get_prediction(i: int) -> np.ndarray:
        if not folder:  # an array file's maps are stored in the entry: no hash to record
            return match.load(i)
        m, sha = match.read(i)  # one read of the file: the hash is of the bytes decoded
        fingerprints[int(i)] = sha
        return m

    t0 = time.perf_counter()
    result = score_stream(plan.protocol, plan.dataset, get_prediction, seed=plan.seed, chunk_size=plan.chunk_size,
                          workers=plan.workers, progress=plan.progress, indices=match.indices)
    t1 = time.perf_counter()
    for i in match.indices.tolist():
        name = plan.dataset.names[i]
        if folder:
            writer.add_map_file(name, fingerprints[i])
        else:
            writer.add_prediction(name, match.load(i))
    return result, {"evaluate": t1 - t0, "record_predictions": time.perf_counter() - t1}


# -- step 4: the results entry -------------------------------------------------------------------
def _finish(plan: EvalPlan, writer, scored, model_record, timings, *, n_skipped: int = 0):
    from salbench.leaderboard.results import build_result

    if list(scored.names) != list(writer.names):
        raise ValueError("internal: scored images differ from stored predictions")
    result = build_result(
        model=model_record,
        dataset=dataset_record(plan.dataset, plan.choice),
        protocol=plan.protocol.name,
        params=plan.protocol.params,
        seed=plan.seed,
        names=list(scored.names),
        scores=scored.scores,
        wall_time_s={**{k: round(float(v), 3) for k, v in timings.items()},
                     "total": round(time.perf_counter() - plan.started, 3)},
        n_skipped=n_skipped,
    )
    path = writer.commit(result)
    result["predictions"] = writer.record["predictions"]
    return result, path


def entry_stem(model_name: str, plan: EvalPlan, tag: str | None = None) -> str:
    """``<dataset>__<split>__<model>[-<tag>]__<protocol>``: one entry per evaluation."""
    from salbench.leaderboard.results import result_stem

    name = model_name if not tag else f"{model_name}-{tag}"
    dataset = plan.choice.name
    if dataset == "folder":  # one name per folder dataset, so that two of them never share an entry
        where = Path(plan.choice.data_dir or ".").resolve().name
        dataset = "folder-" + "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in where)
    return result_stem(name, dataset, plan.split, plan.protocol.name)


def evaluate_model(
    model_name: str,
    *,
    dataset: str | None = None,
    split: str = "val",
    data_dir: str | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    protocol: str | None = None,
    protocol_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    checkpoint: str | None = None,
    model_options: Mapping[str, Any] | None = None,
    predictions=None,
    model_info: Mapping[str, Any] | None = None,
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    batch_size: int = 32,
    chunk_size: int = DEFAULT_CHUNK,
    workers: int = 2,
    fit_limit: int = 1000,
    progress: bool = True,
    train_if_needed: bool = True,
    save_maps: str | os.PathLike | None = None,
    tag: str | None = None,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], Path]:
    """Evaluate ``model_name`` on a dataset split and write its results entry.

    Parameters
    ----------
    model_name : str
        A registered model (built-in or plugin).
    dataset, split, data_dir, dataset_options
        Which data (see :func:`choose_dataset`).
    protocol, protocol_overrides
        Default: :func:`salbench.protocols.default_protocol_for` the dataset; overrides
        must be parameters the protocol reads.
    seed : int
        Seed of the protocol's random draws (and of an implicit quick training).
    checkpoint : path, optional
        Weights for the model (see :func:`prepare_model` for what happens without).
    model_options : mapping, optional
        Keyword arguments of ``create_model`` (recorded).
    predictions : array, optional
        Maps already predicted for this split, in its order (e.g. by a GPU run); the
        model is then not run and ``model_info`` describes where they came from.
    results_dir : path
        Where ``<stem>.json`` and its content-addressed predictions file are written.
    batch_size, chunk_size, workers
        Images per ``model.predict`` call, per scoring chunk, and decoding threads.
    save_maps : path, optional
        Also write each map as an 8-bit PNG named after its stimulus
        (:func:`salbench.predictions.save_map`).
    tag : str, optional
        Appended to the model name in the entry's file name (e.g. a training seed).

    Returns
    -------
    (dict, Path)
        The results record and the path of its JSON file.
    """
    from salbench.leaderboard.results import ResultWriter

    batch_size = _positive_int(batch_size, "--batch-size")
    plan = plan_evaluation(dataset=dataset, split=split, data_dir=data_dir, dataset_options=dataset_options,
                           protocol=protocol, protocol_overrides=protocol_overrides, seed=seed,
                           results_dir=results_dir, chunk_size=chunk_size, workers=workers, progress=progress,
                           log=log)
    model = None
    if predictions is None:
        model, model_record = prepare_model(model_name, plan, checkpoint=checkpoint, model_options=model_options,
                                            train_if_needed=train_if_needed, fit_limit=fit_limit)
    else:
        model_record = {"name": model_name, "checkpoint": None, **dict(model_info or {})}
        if model_options:
            model_record["options"] = dict(model_options)
    t_model = time.perf_counter() - plan.started
    log(f"salbench: scoring {len(plan.dataset)} images with protocol {plan.protocol.name} (seed {plan.seed})")
    with ResultWriter(plan.results_dir, entry_stem(model_name, plan, tag)) as writer:
        scored, timings = stream_model(plan, writer, model=model, predictions=predictions, batch_size=batch_size,
                                       save_maps_dir=save_maps)
        model_record.setdefault("output_size", _output_size(model, predictions))
        return _finish(plan, writer, scored, model_record, {"load_model": t_model, **timings})


def _output_size(model, predictions):
    if predictions is not None:
        shapes = {tuple(np.shape(m)) for m in predictions}
        return list(shapes.pop()) if len(shapes) == 1 else None
    size = getattr(model, "output_size", None)
    return list(size) if size else None


def evaluate_predictions(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    dataset: str | None = None,
    split: str = "val",
    data_dir: str | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    protocol: str | None = None,
    protocol_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    allow_missing: bool = False,
    allow_extra: bool = False,
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    chunk_size: int = 64,
    workers: int = 2,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], Path]:
    """Score a folder of maps (or an array file) on a dataset split; write a results entry.

    Maps are matched to the split's images by file stem (folders) or by the names an
    array file carries, else by order (docs/predictions.md). The names are matched
    before any map is decoded: missing or extra maps fail at once, naming them
    (``allow_missing`` scores the intersection; the entry records how many images
    were skipped). A folder is recorded by path and per-map SHA-256 (``salbench check``
    re-reads and verifies it); an array file's maps are stored in the entry.
    """
    from salbench.leaderboard.results import ResultWriter
    from salbench.predictions import open_predictions

    source = open_predictions(path)  # fail fast: the path exists and is a folder or a known file
    plan = plan_evaluation(dataset=dataset, split=split, data_dir=data_dir, dataset_options=dataset_options,
                           protocol=protocol, protocol_overrides=protocol_overrides, seed=seed,
                           results_dir=results_dir, chunk_size=chunk_size, workers=workers, progress=progress,
                           log=log)
    match = source.match(plan.dataset.names, allow_missing=allow_missing, allow_extra=allow_extra)
    if len(match) == 0:
        raise ValueError(f"{path}: no map matches an image of {plan.choice.name}/{plan.split}")
    if match.n_skipped:
        log(f"salbench: {match.n_skipped} of {len(plan.dataset)} images have no map in {path} and are skipped "
            f"(--allow-missing)")
    if match.n_extra:
        log(f"salbench: {match.n_extra} maps in {path} match no image of {plan.choice.name}/{plan.split} "
            f"and are ignored (--allow-extra)")
    name = name or _predictions_name(Path(path))
    model_record = {"name": name, "checkpoint": None, "source": "predictions",
                    "predictions_source": source.describe()}
    folder = Path(path) if source.kind == "folder" else None
    log(f"salbench: scoring {len(match)} images with protocol {plan.protocol.name} (seed {plan.seed})")
    with ResultWriter(plan.results_dir, entry_stem(name, plan), folder=folder) as writer:
        scored, timings = stream_predictions(plan, match, writer)
        return _finish(plan, writer, scored, model_record, timings, n_skipped=match.n_skipped)


def _predictions_name(path: Path) -> str:
    """A results name for maps without a model: the folder's (or file's) name."""
    stem = path.resolve().name if path.is_dir() else path.stem
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem) or "predictions"
    return f"maps-{safe}"
