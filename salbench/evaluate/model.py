"""Step 2 of an evaluation: a model with weights (a cached quick checkpoint, a fitted center bias)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from salbench.evaluate.plan import BUILTIN_DATASET, DatasetChoice, EvalPlan


class NeedsTrainingError(RuntimeError):
    """The model has no trained weights and salbench will not train them implicitly here."""


def prepare_model(plan: EvalPlan, *, log: Callable[[str], None] = print):
    """Create the request's model with weights; return ``(model, model_record)`` for the results file.

    A shallow network without weights gets the cached quick checkpoint on the built-in
    dataset (elsewhere :class:`NeedsTrainingError`); a model with ``fit`` (``center_bias``)
    is fitted to the fixations of the first ``fit_limit`` images of the ``train`` split
    and saved beside the results.
    """
    from salbench.io.digest import file_sha256
    from salbench.models import create_model
    from salbench.models._weights import resolve_checkpoint

    request = plan.request
    name, checkpoint, options = request.model, request.checkpoint, dict(request.model_options)
    model = create_model(name, checkpoint=checkpoint, **options)
    if request.maps != "raw":  # refused before any training or fitting
        check_density_model(model, name)
    if getattr(model, "needs_training", False):
        checkpoint = _quick_checkpoint(name, plan.choice, train_if_needed=request.train_if_needed, seed=plan.seed,
                                       log=log)
        model = create_model(name, checkpoint=checkpoint, **options)
    elif checkpoint is None and callable(getattr(model, "fit", None)):
        checkpoint = _fit_checkpoint(model, plan.choice, plan.results_dir, request.fit_limit, log)
    record: dict[str, Any] = {"name": name}
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


def check_density_model(model, name: str) -> None:
    """ValueError (one line) unless ``model`` predicts a fixation density: what ``--maps metric-specific`` needs."""
    from salbench.models.base import is_density_model

    if not is_density_model(model):
        raise ValueError(f"--maps metric-specific derives each metric's map from a predicted fixation density; "
                         f"model {name} predicts saliency maps (output {getattr(model, 'output', 'saliency')!r}, "
                         "see docs/plugins.md); use --maps raw")
