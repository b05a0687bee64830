"""Evaluate a registered model on a dataset split under a protocol, end to end.

This is what ``salbench eval --model NAME`` runs: choose the dataset, make sure
the model has weights (training a quick checkpoint on the built-in synthetic
data when it has none), predict in batches, score with the protocol, and write
a results file with the predictions beside it.
"""

from __future__ import annotations

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
        records.extend(batch)
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
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    batch_size: int = 32,
    progress: bool = True,
    train_if_needed: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], Path]:
    """Evaluate ``model_name`` and write its results file; returns ``(result, path)``.

    Raises
    ------
    NeedsTrainingError
        If the model needs weights and the dataset is not the built-in one
        (the message says which command trains them).
    """
    from salbench.data import get_dataset
    from salbench.leaderboard.results import build_result, file_sha256, result_filename, save_predictions, write_result
    from salbench.models import create_model
    from salbench.protocols import default_protocol_for, get_protocol

    t0 = time.perf_counter()
    choice = choose_dataset(dataset, data_dir, dataset_options)
    log(f"salbench: {choice.reason}, split {split}")
    ds = get_dataset(choice.name, split, data_dir=choice.data_dir, **choice.options)

    model = create_model(model_name, checkpoint=checkpoint)
    if getattr(model, "needs_training", False):
        checkpoint = _quick_checkpoint(model_name, choice, train_if_needed=train_if_needed, seed=seed, log=log)
        model = create_model(model_name, checkpoint=checkpoint)
    t_model = time.perf_counter()

    predictions, records = predict_all(model, ds, batch_size=batch_size, progress=progress)
    t_pred = time.perf_counter()

    proto = get_protocol(protocol or default_protocol_for(choice.name), **dict(protocol_overrides or {}))
    scored = proto.evaluate(list(predictions), records, seed=seed)
    t_eval = time.perf_counter()

    results_dir = Path(results_dir)
    stem = result_filename(model_name, choice.name, split, proto.name)[: -len(".json")]
    pred_info = save_predictions(results_dir / f"{stem}.predictions.npz", predictions, scored.names)
    ckpt_info = None
    if checkpoint:
        ckpt_info = {"path": str(checkpoint), "sha256": file_sha256(_weights_file(checkpoint))}
    result = build_result(
        model={"name": model_name, "checkpoint": ckpt_info, "output_size": list(predictions.shape[1:])},
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


def _weights_file(checkpoint: str | os.PathLike) -> Path:
    """The file whose hash identifies a checkpoint (the weights, if a directory is given)."""
    p = Path(checkpoint)
    if p.is_dir():
        candidates = sorted(p.glob("*.safetensors"))
        if not candidates:
            raise FileNotFoundError(f"{p}: no .safetensors weights in checkpoint directory")
        return candidates[-1]
    return p


def _quick_checkpoint(model_name: str, choice: DatasetChoice, *, train_if_needed: bool, seed: int,
                      log: Callable[[str], None]) -> str:
    """Return a cached quick checkpoint for the built-in dataset, training it once if needed."""
    from salbench import training

    train_cmd = f"salbench train {model_name} --dataset {choice.name}" + (
        f" --data-dir {choice.data_dir}" if choice.data_dir else "")
    if choice.name != BUILTIN_DATASET or not train_if_needed:
        raise NeedsTrainingError(
            f"model {model_name} has no trained weights; train them with `{train_cmd}` "
            f"and pass --checkpoint PATH")
    path = training.default_checkpoint_path(model_name, BUILTIN_DATASET, preset="quick")
    if Path(path).exists():
        log(f"salbench: using cached quick checkpoint {path}")
        return str(path)
    log(f"salbench: {model_name} has no trained weights; training a quick checkpoint on the built-in "
        f"synthetic dataset (preset quick, seed {seed}), cached at {path}")
    return str(training.train(model_name, dataset=BUILTIN_DATASET, preset="quick", seed=seed, out=path))
