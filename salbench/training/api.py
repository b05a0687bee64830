"""``train(...)``: one call from a dataset name to a checkpoint, resumable."""

from __future__ import annotations

import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from salbench.io import atomic_write_json
from salbench.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from salbench.training.loop import JsonlLog, images_per_second, make_trainer, save_predictions
from salbench.training.recipes import get_recipe

TRAINABLE = ("shallow_mse", "shallow_kl")


def cache_dir() -> Path:
    """``$SALBENCH_CACHE`` or ``~/.cache/salbench`` (the same place datasets cache to)."""
    env = os.environ.get("SALBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "salbench"


def default_run_dir(model: str, dataset: str, preset: str = "quick") -> Path:
    """Where ``train`` writes a run when no ``out`` is given: ``<cache>/runs/<model>/<dataset>-<preset>``."""
    return cache_dir() / "runs" / model / f"{dataset}-{preset}"


def default_checkpoint_path(model: str, dataset: str, preset: str = "quick") -> Path:
    """The final checkpoint of the default run; pass it to ``create_model(model, checkpoint=...)``.

    It exists only once such a run has finished (it is renamed into place last).
    """
    return default_run_dir(model, dataset, preset) / "checkpoints" / "final"


@dataclass
class TrainResult:
    """What a finished run produced."""

    out: Path
    checkpoint: Path  # checkpoints/final
    best: Path | None  # checkpoints/best when the recipe keeps one
    summary: dict


def _arrays(ds, split: str | None, data_dir, options: dict, limit: int | None):
    """``(x, y, name, identity)`` from a dataset name, a dataset object or an ``(x, y)`` pair."""
    identity: dict[str, Any]
    if isinstance(ds, str):
        from salbench.data import get_dataset

        ds = get_dataset(ds, split, data_dir=data_dir, **options)
    if hasattr(ds, "arrays"):
        if limit is not None and len(ds) > limit:  # decode only what is used (a split may be 20000 images)
            recs = [ds[i] for i in range(limit)]
            x, y = np.stack([r.x96 for r in recs]), np.stack([r.y48 for r in recs])
        else:
            x, y = ds.arrays(("x96", "y48"))
        identity = ds.identity() if hasattr(ds, "identity") else {"name": getattr(ds, "name", "dataset")}
        name = identity.get("name", "dataset")
    elif isinstance(ds, (tuple, list)) and len(ds) == 2 and hasattr(ds[0], "shape"):
        x, y = ds
        identity, name = {"name": "arrays", "n_files": int(len(x))}, "arrays"
    else:  # a sequence of Records
        recs = list(ds)
        if not recs:
            raise ValueError("empty training data")
        x = np.stack([r.x96 for r in recs])
        y = np.stack([r.y48 for r in recs])
        identity, name = {"name": "records", "n_files": len(recs)}, "records"
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} targets")
    identity = {**identity, "n_used": int(len(x))}
    return np.asarray(x), np.asarray(y), name, identity


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
    resume: bool = False,
    seed: int = 0,
    out=None,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
    **recipe_overrides: Any,
) -> TrainResult:
    """Train ``shallow_mse`` or ``shallow_kl`` and return the checkpoints it wrote.

    Parameters
    ----------
    model : {"shallow_mse", "shallow_kl"}
    dataset : str, dataset, (x, y) arrays or sequence of Records
        A dataset name opens ``get_dataset(dataset, split, data_dir, **dataset_options)``
        and, for validation, the ``val_split`` split (``val_split=None``: no validation).
    val : same kinds as ``dataset``, optional
        Validation data when ``dataset`` is not a name.
    preset : {"quick", "full"}
        Recipe (:mod:`salbench.training.recipes`); ``epochs`` and ``recipe_overrides``
        (e.g. ``batch_size=16``, ``checkpoint_every=1``) replace its fields.
    device : {"auto", "cpu", "cuda"}
    resume : bool
        Continue from ``out``'s latest checkpoint (bit-for-bit); without it an
        ``out`` that already holds checkpoints is refused.
    seed : int
        Seeds the initialisation and every epoch's shuffle.
    out : path, optional
        Run directory; default :func:`default_run_dir`.
    progress : bool
        Show a tqdm progress bar (stderr).
    on_epoch_end : callable, optional
        Called with the number of completed epochs after each epoch's checkpoint.

    Returns
    -------
    TrainResult
        ``checkpoint`` (``checkpoints/final``) loads with
        ``create_model(model, checkpoint=result.checkpoint)``.

    Raises
    ------
    ValueError
        Untrainable model, unknown preset, bad arrays, or a resume whose
        configuration differs from the saved one.
    """
    import torch
    from tqdm.auto import tqdm

    from salbench.models.shallow import _pick_device, scores_to_maps

    if model not in TRAINABLE:
        raise ValueError(f"model {model!r} is not trainable here; trainable: {', '.join(TRAINABLE)}")
    variant = model.split("_", 1)[1]
    recipe = get_recipe(model, preset, epochs=epochs, **recipe_overrides)
    options = dict(dataset_options or {})
    if out is not None and not resume and latest_checkpoint(Path(out) / "checkpoints") is not None:
        raise ValueError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    x, y, ds_name, ident = _arrays(dataset, split, data_dir, options, recipe.max_train)
    if val is None and isinstance(dataset, str) and val_split is not None:
        val = dataset
    xv = yv = val_ident = None
    if val is not None:
        xv, yv, _, val_ident = _arrays(val, val_split, data_dir, options, recipe.max_val)
    device = _pick_device(device)
    out = Path(out) if out is not None else default_run_dir(model, ds_name, preset)
    ckdir = out / "checkpoints"
    config = {"model": model, "preset": preset, "seed": int(seed), "recipe": recipe.to_dict(),
              "train_data": ident, "val_data": val_ident}

    trainer = make_trainer(variant, recipe, x, y, xv, yv, seed=seed, device=device)
    existing = latest_checkpoint(ckdir)
    history: list[dict] = []
    start, wall0, train_s, seen, best = 0, 0.0, 0.0, 0, None
    if existing is not None and not resume:
        raise ValueError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    if existing is not None:
        st = load_checkpoint(existing, trainer.net, trainer.optimizer)
        diff = sorted(k for k in config if st["config"].get(k) != config[k])
        if diff:
            raise ValueError(f"cannot resume {existing}: its {', '.join(diff)} differ from this run's")
        start, history, best = st["epoch"], st["history"], st.get("best")
        wall0, train_s, seen = st["wall_time_s"], st["train_time_s"], st["images_seen"]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", config)
    log = JsonlLog(out / "log.jsonl")
    log.truncate_after(start)

    n_batches = sum(1 for _ in trainer._batches(0))
    meta = {"model": model, "trained_on": _describe(ident), "preset": preset}
    t_start = time.perf_counter()
    bar = tqdm(total=recipe.epochs * n_batches, initial=start * n_batches, unit="batch",
               desc=f"{model} {ds_name}", disable=not progress, dynamic_ncols=True)

    def state(epoch: int) -> dict:
        wall = wall0 + time.perf_counter() - t_start
        return {"epoch": epoch, "seed": int(seed), "config": config, "history": history, "best": best,
                "wall_time_s": wall, "train_time_s": train_s, "images_seen": seen,
                "train_images_per_s": images_per_second(seen, train_s)}

    try:
        for e in range(start, recipe.epochs):
            t0 = time.perf_counter()
            counted = [0]

            def on_batch(n: int) -> None:
                counted[0] += n
                bar.update(1)

            logged = trainer.train_epoch(e, on_batch=on_batch)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            train_s += time.perf_counter() - t0
            seen += counted[0]
            entries = [{"kind": "train", "epoch": e, "batch": b, "step": e * n_batches + b,
                        "loss": float(v), "lr": recipe.lr(e)} for b, v in logged]
            last = e + 1 == recipe.epochs
            improved = False
            if xv is not None and ((e + 1) % recipe.val_every == 0 or last):
                v = trainer.validate()
                history.append({"epoch": e + 1, "val_loss": v})
                entries.append({"kind": "val", "epoch": e, "step": (e + 1) * n_batches, "loss": v})
                bar.set_postfix(train=f"{entries[0]['loss']:.4g}", val=f"{v:.4g}")
                if recipe.keep_best and (best is None or v < best["val_loss"]):
                    best, improved = {"epoch": e + 1, "val_loss": v}, True
            if recipe.predict_every and xv is not None and (e + 1) % recipe.predict_every == 0:
                maps = scores_to_maps(variant, trainer.outputs(trainer.Xv))  # as ShallowModel.predict
                save_predictions(out / "predictions" / f"epoch-{e + 1:04d}.npy",
                                 maps.cpu().numpy().reshape(-1, 48, 48))
            log.write(entries)
            if improved:
                save_checkpoint(ckdir, "best", trainer.net, trainer.optimizer, state(e + 1), meta)
            if (e + 1) % recipe.checkpoint_every == 0 and not last:
                save_checkpoint(ckdir, f"epoch-{e + 1:04d}", trainer.net, trainer.optimizer, state(e + 1), meta)
                _prune(ckdir, recipe.keep_last)
            if on_epoch_end is not None:
                on_epoch_end(e + 1)
    finally:
        bar.close()
    final = save_checkpoint(ckdir, "final", trainer.net, trainer.optimizer, state(recipe.epochs), meta)
    summary = {
        **state(recipe.epochs),
        "device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "precision": "bf16" if trainer.autocast_dtype is not None else "fp32",
        "checkpoint": str(final), "final_val_loss": history[-1]["val_loss"] if history else None,
    }
    atomic_write_json(out / "summary.json", summary)
    best_dir = ckdir / "best" if (ckdir / "best").is_dir() else None
    return TrainResult(out=out, checkpoint=final, best=best_dir, summary=summary)


def _describe(ident: dict) -> str:
    h = ident.get("content_hash")
    return f"{ident.get('name')}/{ident.get('split', '-')}: {ident.get('n_used')} images" + (
        f" (content {str(h)[:12]})" if h else ""
    )


def _prune(ckdir: Path, keep_last: int | None) -> None:
    if keep_last is None:
        return
    periodic = sorted(p for p in ckdir.glob("epoch-*") if p.is_dir())
    for p in periodic[: max(0, len(periodic) - keep_last)]:
        shutil.rmtree(p)
