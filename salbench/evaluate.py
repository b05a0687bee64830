"""Evaluate a registered model on a dataset split under a protocol, end to end.

This is what ``salbench eval --model NAME`` runs: choose the dataset, make sure
the model has weights (training a quick checkpoint on the built-in synthetic
data when it has none), predict in batches, score with the protocol, and write
a results file with the predictions beside it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

DEFAULT_RESULTS_DIR = "results"
BUILTIN_DATASET = "synthetic"


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


def predict_all(model, dataset, *, batch_size: int = 32, progress: bool = True) -> tuple[np.ndarray, list]:
    """Run ``model.predict`` over a dataset in batches; returns (predictions, records)."""
    from tqdm.auto import tqdm

    records, outputs = [], []
    bar = tqdm(total=len(dataset), desc="predict", unit="img", disable=not progress, leave=False)
    for start in range(0, len(dataset), batch_size):
        batch = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        out = np.asarray(model.predict(batch), dtype=np.float32)
        if out.ndim != 3 or out.shape[0] != len(batch):
            raise ValueError(f"model {getattr(model, 'name', model)} returned shape {out.shape} for {len(batch)} images")
        outputs.append(out)
        # Keep what protocols score against; drop the image and the synthetic generating
        # density (~3.3 MB of a 480x640 record's ~7 MB) once the model has seen them.
        records.extend(dataclasses.replace(r, image=None, true_density=None) if dataclasses.is_dataclass(r) else r
                       for r in batch)
        bar.update(len(batch))
    bar.close()
    if not records:
        raise ValueError("the dataset split is empty")
    shapes = {o.shape[1:] for o in outputs}
    if len(shapes) == 1:
        return np.concatenate(outputs), records
    return np.array([m for o in outputs for m in o], dtype=object), records


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
    fit_limit: int = 1000,
    progress: bool = True,
    train_if_needed: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], Path]:
    """Evaluate ``model_name`` on a dataset split and write its results file.

    Parameters
    ----------
    model_name : str
        A registered model (built-in or plugin).
    dataset, data_dir, dataset_options
        Which data (see :func:`choose_dataset`); ``split`` is the split scored.
    protocol : str, optional
        Default: :func:`salbench.protocols.default_protocol_for` the dataset.
    seed : int
        Seed of the protocol's random draws (and of an implicit quick training).
    checkpoint : path, optional
        Weights for the model. Without one, a shallow network gets a cached quick
        checkpoint on the built-in dataset (elsewhere :class:`NeedsTrainingError`),
        and a model with ``fit(records)`` (``center_bias``) is fitted to the first
        ``fit_limit`` records of the dataset's ``train`` split.
    model_options : mapping, optional
        Keyword arguments of ``create_model`` (e.g. ``{"output_size": [60, 80]}`` for ``gold``);
        recorded in the results file.
    predictions : array, optional
        Maps already predicted for this split (in its order), e.g. by a GPU run;
        the model is then not run, and ``model_info`` describes where they came from.
    results_dir : path
        Where ``<dataset>__<split>__<model>__<protocol>.json`` and its
        ``.predictions.npz`` are written (atomically).

    Returns
    -------
    (dict, Path)
        The results record and the path of its JSON file.

    Raises
    ------
    NeedsTrainingError
        The model needs weights and the dataset is not the built-in one (the
        message gives the command that trains them).
    """
    from salbench.data import get_dataset
    from salbench.leaderboard.results import (
        build_result, file_sha256, quantize_predictions, result_filename, save_predictions, write_result,
    )
    from salbench.models import create_model
    from salbench.models._weights import resolve_checkpoint
    from salbench.protocols import default_protocol_for, get_protocol

    t0 = time.perf_counter()
    choice = choose_dataset(dataset, data_dir, dataset_options)
    log(f"salbench: {choice.reason}, split {split}")
    ds = get_dataset(choice.name, split, data_dir=choice.data_dir, **choice.options)
    proto = get_protocol(protocol or default_protocol_for(choice.name), **dict(protocol_overrides or {}))
    model_record: dict[str, Any] = {"name": model_name, **dict(model_info or {})}
    options = dict(model_options or {})
    if options:
        model_record["options"] = options

    if predictions is None:
        model = create_model(model_name, checkpoint=checkpoint, **options)
        if getattr(model, "needs_training", False):
            checkpoint = _quick_checkpoint(model_name, choice, train_if_needed=train_if_needed, seed=seed, log=log)
            model = create_model(model_name, checkpoint=checkpoint, **options)
        elif checkpoint is None and callable(getattr(model, "fit", None)):
            checkpoint = _fit_checkpoint(model, choice, Path(results_dir), fit_limit, log)
        model_record["card_trained_on"] = getattr(model, "card", {}).get("trained_on")
        t_model = time.perf_counter()
        predictions, records = predict_all(model, ds, batch_size=batch_size, progress=progress)
    else:
        t_model = time.perf_counter()
        records = [ds[i] for i in range(len(ds))]
        if len(predictions) != len(records):
            raise ValueError(f"{len(predictions)} predictions for {len(records)} images of {choice.name}/{split}")
    # Score the float16-rounded maps: exactly what the results file stores and `check` recomputes.
    predictions = quantize_predictions(predictions)
    t_pred = time.perf_counter()

    log(f"salbench: scoring {len(records)} images with protocol {proto.name} (seed {seed})")
    scored = proto.evaluate(list(predictions), records, seed=seed)
    t_eval = time.perf_counter()

    results_dir = Path(results_dir)
    stem = result_filename(model_name, choice.name, split, proto.name)[: -len(".json")]
    pred_info = save_predictions(results_dir / f"{stem}.predictions.npz", predictions, list(scored.names))
    pred_info["file"] = f"{stem}.predictions.npz"  # relative: results directories move
    if checkpoint:
        shown = Path(checkpoint)
        if shown.resolve().is_relative_to(results_dir.resolve()):  # e.g. a fitted center_bias beside the results
            shown = shown.resolve().relative_to(results_dir.resolve())
        model_record["checkpoint"] = {"path": str(shown), "sha256": file_sha256(resolve_checkpoint(checkpoint))}
    model_record.setdefault("checkpoint", None)
    shapes = {tuple(np.shape(m)) for m in predictions}
    model_record["output_size"] = list(shapes.pop()) if len(shapes) == 1 else None
    result = build_result(
        model=model_record,
        dataset=dataset_record(ds, choice),
        protocol=proto.name,
        params=proto.params,
        seed=seed,
        names=list(scored.names),
        scores=scored.scores,
        wall_time_s={"load_model": t_model - t0, "predict": t_pred - t_model,
                     "evaluate": t_eval - t_pred, "total": time.perf_counter() - t0},
        predictions=pred_info,
    )
    path = write_result(results_dir / f"{stem}.json", result)
    return result, path


def _fit_checkpoint(model, choice: DatasetChoice, results_dir: Path, limit: int, log: Callable[[str], None]) -> str:
    """Fit a ``fit(records)`` model (center_bias) on the train split; save its parameters beside the results."""
    from salbench.data import get_dataset

    train = get_dataset(choice.name, "train", data_dir=choice.data_dir, **choice.options)
    n = min(len(train), limit)
    log(f"salbench: fitting {model.name} to the fixations of {n} {choice.name}/train images")
    model.fit([train[i] for i in range(n)])
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
    path = run_dir / "checkpoints" / "final"
    if Path(path).is_dir():
        log(f"salbench: using the cached quick checkpoint {path}")
        return str(path)
    log(f"salbench: {model_name} has no trained weights; training a quick checkpoint on the built-in "
        f"synthetic dataset (preset quick, seed {seed}; cached at {path}). A quick checkpoint exercises "
        f"the pipeline in about a minute of CPU; it is not a replication (GPU-trained scores: leaderboards/)")
    result = training.train(model_name, BUILTIN_DATASET, preset="quick", seed=seed, resume=True,
                            dataset_options=choice.options or None, out=run_dir)
    return str(result.checkpoint)
