"""Run an evaluation: plan, model, one streaming loop, and the results entry committed last."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from salbench.evaluate.feeds import FolderMaps, ModelMaps, StoredLogDensities, StoredMaps
from salbench.evaluate.model import check_density_model, prepare_model
from salbench.evaluate.plan import EvalPlan, dataset_record, plan_evaluation
from salbench.evaluate.request import EvaluationRequest


def evaluate(request: EvaluationRequest, *, progress: bool = True,
             log: Callable[[str], None] = print) -> tuple[dict[str, Any], Path]:
    """Run ``request`` and write its results entry; return ``(record, path of its JSON)``.

    The paths are checked and a predictions path opened (names only) before the
    dataset is; a model gets its weights (:func:`~salbench.evaluate.model.prepare_model`);
    then the split is scored chunk by chunk by :func:`salbench.scoring.score_stream`
    with the maps stored (or hashed, for a folder) in the entry as they come, and the
    JSON is committed last, with the predictions, as one unit.

    Parameters
    ----------
    request : EvaluationRequest
        What to evaluate (checked when it was built).
    progress : bool
        Show progress bars (stderr).
    log : callable
        Receives each progress line (``print`` by default).

    Raises
    ------
    ValueError, FileNotFoundError, NeedsTrainingError, FileError
        One message naming what is at fault; on any failure (and on Ctrl-C,
        :class:`~salbench.scoring.ScoringInterrupted`) the previous entry is unchanged.
    """
    from salbench.evaluate.executor import open_executor
    from salbench.predictions import open_predictions

    request.check_paths()
    if request.density:  # one .npy/.npz of log-densities
        from salbench.predictions.density import check_density_path

        check_density_path(request.predictions)
    source = open_predictions(request.predictions) if request.predictions is not None else None  # fail fast
    plan = plan_evaluation(request, log=log)
    with open_executor(request.executor, log=log) as plan.client:
        if source is not None:
            return _evaluate_files(plan, source, progress, log)
        return _evaluate_model(plan, progress, log)


def _evaluate_model(plan: EvalPlan, progress: bool, log: Callable[[str], None]):
    from salbench.evaluate.cluster import chunk_executor, given_maps, model_source, stored_recorder
    from salbench.results import ResultWriter
    from salbench.scoring import score_stream

    request, ds = plan.request, plan.dataset
    given = request.model_predictions
    model = None
    specific = _metric_specific(request)
    if given is None:
        model, model_record = prepare_model(plan, log=log)
    else:
        if specific:  # predictions made elsewhere: the registered model must still be a density model
            _require_density_model(request.model, request.model_options)
        if len(given) != len(ds):
            raise ValueError(f"{len(given)} predictions for {len(ds)} images of {plan.choice.name}/{plan.split}")
        model_record = {"name": request.model, "checkpoint": None, **dict(request.model_info or {})}
        if request.model_options:
            model_record["options"] = dict(request.model_options)
    t_model = time.perf_counter() - plan.started
    log(f"salbench: scoring {len(ds)} images with protocol {plan.protocol.name} (seed {plan.seed})")
    with ResultWriter(plan.results_dir, entry_stem(request.model, plan, request.tag)) as writer:
        produce = ModelMaps(model, ds, request.batch_size, request.model, log_density=specific) if model is not None \
            else (lambda indices: [given[int(i)] for i in indices])
        if specific:  # log-densities at the model's output size, float32: what is scored and what check reads
            feed = StoredLogDensities(ds.names, writer, produce, quantise=True)
            remote = None  # metric-specific maps run here (refused with --executor dask by the request)
        else:
            feed = StoredMaps(ds.names, writer, produce, quantise=True, save_maps=request.save_maps)
            remote = (chunk_executor(plan, model_source(plan, model_record),
                                     record=stored_recorder(writer, ds.names, save_maps=request.save_maps))
                      if model is not None else
                      chunk_executor(plan, {"kind": "given"},
                                     given=given_maps(writer, ds.names, produce, quantise=True,
                                                      save_maps=request.save_maps)))
        scored = score_stream(plan.protocol, ds, feed, seed=plan.seed, chunk_size=request.chunk,
                              workers=request.workers, progress=progress, batched=True, executor=remote,
                              **_maps_args(request))
        model_record.setdefault("output_size", _output_size(model, given))
        timings = {"load_model": t_model, "ground_truth": scored.timings["ground_truth_s"],
                   "predict": getattr(remote or produce, "predict_s", 0.0), "evaluate": scored.timings["stream_s"]}
        return _finish(plan, writer, scored, model_record, timings)


def _evaluate_files(plan: EvalPlan, source, progress: bool, log: Callable[[str], None]):
    from salbench.evaluate.cluster import chunk_executor, stored_recorder
    from salbench.results import ResultWriter
    from salbench.scoring import score_stream

    request, ds, path = plan.request, plan.dataset, Path(plan.request.predictions)
    match = source.match(ds.names, allow_missing=request.allow_missing, allow_extra=request.allow_extra)
    if len(match) == 0:
        raise ValueError(f"{path}: no map matches an image of {plan.choice.name}/{plan.split}")
    if match.n_skipped:
        log(f"salbench: {match.n_skipped} of {len(ds)} images have no map in {path} and are skipped "
            f"(--allow-missing)")
    if match.n_extra:
        log(f"salbench: {match.n_extra} maps in {path} match no image of {plan.choice.name}/{plan.split} "
            f"and are ignored (--allow-extra)")
    name = request.name or default_predictions_name(path)
    if request.density:  # log-densities: each checked to sum to 1 when read, stored exactly as in the file
        from salbench.predictions.density import LogDensityMatch

        match = LogDensityMatch(match)
    model_record = {"name": name, "checkpoint": None, "source": "predictions",
                    "predictions_source": match.describe() if request.density else source.describe()}
    folder = path if source.kind == "folder" else None
    log(f"salbench: scoring {len(match)} images with protocol {plan.protocol.name} (seed {plan.seed})")
    with ResultWriter(plan.results_dir, entry_stem(name, plan), folder=folder) as writer:
        common = dict(seed=plan.seed, chunk_size=request.chunk, workers=request.workers, progress=progress,
                      indices=match.indices)
        where = {"path": str(path.resolve()), "allow_missing": request.allow_missing,
                 "allow_extra": request.allow_extra}
        if request.density:  # two passes over the file; the log-densities are stored in the entry
            feed = StoredLogDensities(ds.names, writer, lambda indices: [match.load_raw(i) for i in indices],
                                      quantise=False)
            scored = score_stream(plan.protocol, ds, feed, batched=True, **common, **_maps_args(request))
        elif folder is not None:  # maps decoded by the workers, each hashed from the bytes decoded
            feed = FolderMaps(match)
            remote = chunk_executor(plan, {"kind": "folder", **where},
                                    record=lambda chunk, got: feed.sha256.update(zip(chunk, got["sha256"])))
            scored = score_stream(plan.protocol, ds, feed, executor=remote, **common)
            feed.record(writer, ds.names)
        else:  # an array file: its maps are stored in the entry, exactly
            feed = StoredMaps(ds.names, writer, lambda indices: [match.load(i) for i in indices], quantise=False)
            remote = chunk_executor(plan, {"kind": "array", **where}, record=stored_recorder(writer, ds.names))
            scored = score_stream(plan.protocol, ds, feed, batched=True, executor=remote, **common)
        timings = {"ground_truth": scored.timings["ground_truth_s"], "evaluate": scored.timings["stream_s"]}
        return _finish(plan, writer, scored, model_record, timings, n_skipped=match.n_skipped)


def _finish(plan: EvalPlan, writer, scored, model_record, timings, *, n_skipped: int = 0):
    """Build the record from the scores and commit it with the predictions (step 4)."""
    from salbench.results import build_result
    from salbench.results.schema import ground_truth_counts

    if list(scored.names) != list(writer.names):
        raise ValueError("internal: scored images differ from stored predictions")
    # what the data side counted over the scored images (one DroppedFixationsWarning when any)
    position = {n: i for i, n in enumerate(plan.dataset.names)}
    dropped = plan.dataset.dropped_fixations_total([position[n] for n in scored.names])
    result = build_result(
        model=model_record,
        dataset=dataset_record(plan.dataset, plan.choice),
        protocol=plan.protocol.name,
        params=plan.protocol.params,
        metrics=plan.protocol.metrics,
        seed=plan.seed,
        names=list(scored.names),
        scores=scored.scores,
        wall_time_s={**{k: round(float(v), 3) for k, v in timings.items()},
                     "total": round(time.perf_counter() - plan.started, 3)},
        n_skipped=n_skipped,
        ground_truth=ground_truth_counts(dropped),
        n_aspect_mismatch=scored.n_aspect_mismatch,
    )
    if scored.map_derivation is not None:  # absent: raw, the model's own maps (entries unchanged by default)
        result["maps"] = scored.map_derivation["maps"]
        result["map_derivation"] = scored.map_derivation
    path = writer.commit(result)
    result["predictions"] = writer.record["predictions"]
    return result, path


def _metric_specific(request: EvaluationRequest) -> bool:
    from salbench.protocols.metric_maps import METRIC_SPECIFIC

    return request.maps == METRIC_SPECIFIC


def _maps_args(request: EvaluationRequest) -> dict[str, Any]:
    """``score_stream``'s ``maps`` and ``map_derivation`` for ``request``."""
    if not _metric_specific(request):
        return {}
    from salbench.protocols.metric_maps import MapDerivation

    return {"maps": request.maps, "map_derivation": MapDerivation.from_parameters(request.map_options)}


def _require_density_model(name: str, options) -> None:
    """ValueError unless the registered model ``name`` predicts a fixation density (``output == "density"``)."""
    from salbench.models import create_model

    check_density_model(create_model(name, **dict(options or {})), name)


def _output_size(model, predictions):
    if predictions is not None:
        shapes = {tuple(np.shape(m)) for m in predictions}
        return list(shapes.pop()) if len(shapes) == 1 else None
    size = getattr(model, "output_size", None)
    return list(size) if size else None


def entry_stem(model_name: str, plan: EvalPlan, tag: str | None = None) -> str:
    """``<dataset>__<split>__<model>[-<tag>]__<protocol>``: one entry per evaluation."""
    from salbench.results import result_stem

    name = model_name if not tag else f"{model_name}-{tag}"
    if _metric_specific(plan.request):  # never the same entry as the model's own maps
        name = f"{name}-metric-specific"
    dataset = plan.choice.name
    if dataset == "folder":  # one name per folder dataset, so that two of them never share an entry
        where = Path(plan.choice.data_dir or ".").resolve().name
        dataset = "folder-" + "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in where)
    return result_stem(name, dataset, plan.split, plan.protocol.name)


#: Folder (or file stem) names that say "maps" and not whose: the default name comes from the parent.
GENERIC_MAP_NAMES = frozenset({"maps", "map", "predictions", "prediction", "preds", "pred", "saliency",
                               "saliency_maps", "saliency-maps", "salmaps", "sal", "output", "outputs", "out",
                               "results", "val", "test", "train"})


def default_predictions_name(path: Path) -> str:
    """The results name of maps without a model (``--name`` overrides it; docs/predictions.md).

    The folder's name (a file's: its stem); when that only says "maps"
    (:data:`GENERIC_MAP_NAMES`, any case: ``maps``, ``predictions``, ``saliency``, ...), the
    nearest parent folder's name that does not: ``runs/deepgaze/maps/`` -> ``deepgaze``,
    ``deepgaze_val.npz`` -> ``deepgaze_val``. Characters other than letters, digits, ``-_.``
    become ``_``; a name that is a registered model's (or none at all) gets a ``maps-`` prefix,
    so that the entry never takes the name of a model's entry.
    """
    from salbench.models import list_models

    path = Path(path).resolve()
    name = path.name if path.is_dir() else path.stem
    for parent in path.parents:
        if name.lower() not in GENERIC_MAP_NAMES:
            break
        name = parent.name
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".")
    if not safe or safe.lower() in GENERIC_MAP_NAMES or safe in list_models():
        return f"maps-{safe or 'predictions'}"
    return safe
