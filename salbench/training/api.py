"""``train(...)``: one call from a dataset name to a checkpoint, resumable (the keyword form of a
:class:`~salbench.training.request.TrainingRequest`)."""

from __future__ import annotations

from typing import Any, Callable

from salbench.training.pipeline import TrainResult, run_training
from salbench.training.request import TrainingRequest


def train(
    model: str,
    dataset,
    *,
    val=None,
    split: str = "train",
    val_split: str | None = "val",
    data_dir=None,
    dataset_options: dict | None = None,
    preset: str = "quick",
    epochs: int | None = None,
    device: str = "auto",
    resume: bool | str = False,
    seed: int = 0,
    out=None,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
    should_stop: Callable[[int], bool] | None = None,
    **recipe_options: Any,
) -> TrainResult:
    """Train ``shallow_mse`` or ``shallow_kl`` and return the checkpoints it wrote.

    ``train(model, dataset, **kw)`` is ``run_training(TrainingRequest(model, dataset, ...))``:
    the parameters are :class:`~salbench.training.request.TrainingRequest`'s, with
    ``epochs`` and any other recipe field (``batch_size=16``, ``target="distribution"``,
    ``mirror=False``, ...) as keywords (its ``recipe_options``).

    Parameters
    ----------
    resume : bool or {"never", "require", "auto"}
        False: a run directory that already holds a run is refused; True: continue
        the run in ``out`` (bit-for-bit), an error if there is none; ``"auto"``:
        continue it if there is one, else start it.

    Returns
    -------
    TrainResult
        ``checkpoint`` is the one the run designates (``best`` when the recipe keeps
        one, else ``final``); it loads with ``create_model(model, checkpoint=...)``,
        as does the run directory itself.

    Raises
    ------
    ValueError
        Untrainable model, unknown preset, bad recipe values or seed, bad arrays,
        a run directory that breaks the resume rule, or a resume whose
        configuration differs from the saved one.
    TrainingDiverged
        A ``ValueError``: the loss or the weights left the floats; the message names
        the epoch, the step and the loss, and the last finite checkpoint kept.
    """
    return run_training(TrainingRequest(
        model=model, dataset=dataset, val=val, split=split, val_split=val_split, data_dir=data_dir,
        dataset_options=dataset_options or {}, preset=preset, recipe_options={"epochs": epochs, **recipe_options},
        seed=seed, device=device, out=out, resume=resume, progress=progress, on_epoch_end=on_epoch_end,
        should_stop=should_stop))
