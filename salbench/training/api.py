"""``train(...)``: one call from a dataset name to a checkpoint, resumable."""

from __future__ import annotations

import json
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
    """The checkpoint the default run designates (``best`` or ``final``, see :func:`chosen_checkpoint`).

    Before that run has finished, the path its ``final`` checkpoint will have.
    """
    run = default_run_dir(model, dataset, preset)
    return chosen_checkpoint(run) if (run / "checkpoints" / "final").is_dir() else run / "checkpoints" / "final"


def chosen_checkpoint(run_dir) -> Path:
    """The checkpoint directory a run designates: the single rule of :func:`salbench.models._weights.run_checkpoint`.

    ``checkpoints/best`` when the recipe keeps one (highest validation CC at
    48x48), else ``checkpoints/final``, else (unfinished) the latest.

    Raises
    ------
    FileNotFoundError
        The directory holds no checkpoint.
    """
    from salbench.models._weights import run_checkpoint

    ck = run_checkpoint(run_dir)
    if ck is None:
        raise FileNotFoundError(f"no checkpoint in training run {run_dir}")
    return ck


def stale_run(run_dir, model: str, preset: str = "quick") -> str | None:
    """Why the run in ``run_dir`` does not follow today's ``preset`` recipe for ``model`` (None if it does).

    A cached run (e.g. ``salbench eval``'s implicit quick checkpoint) trained with
    an older version of the recipe must not stand in for the current one.
    """
    cfg = Path(run_dir) / "config.json"
    if not cfg.is_file():
        return None
    try:
        saved = json.loads(cfg.read_text())
    except (ValueError, UnicodeDecodeError):
        return f"{cfg} is unreadable"
    if saved.get("recipe") != get_recipe(model, preset).to_dict():
        return f"it was trained with another version of the {preset} recipe"
    return None


def checkpoint_summary(checkpoint) -> str:
    """One line about a checkpoint: model, target, preset, seed; which one and why (for logs)."""
    from salbench.models._weights import WEIGHTS_FILE, training_record

    ck = Path(checkpoint)
    rec = training_record(ck / WEIGHTS_FILE if ck.is_dir() else ck) or {}
    sel = rec.get("selection") or {}
    why = sel.get("rule") or "?"
    if sel.get("value") is not None:
        why += f", validation CC48 {sel['value']:.3f}"
    return f"{rec.get('label', '?')}; checkpoint {rec.get('checkpoint', ck.name)} (epoch {rec.get('epoch')}: {why})"


@dataclass
class TrainResult:
    """What a run produced. ``checkpoint`` is the one the run designates (:func:`chosen_checkpoint`)."""

    out: Path
    checkpoint: Path  # best if the recipe keeps one, else final (else the latest, if stopped early)
    final: Path | None  # checkpoints/final (None if the run was stopped early)
    best: Path | None  # checkpoints/best when the recipe keeps one
    summary: dict
    completed: bool = True


def _stack(records) -> tuple[np.ndarray, np.ndarray]:
    recs = list(records)
    if not recs:
        raise ValueError("empty training data")
    return np.stack([r.x96 for r in recs]), np.stack([r.y48 for r in recs])


def _arrays(ds, split: str | None, data_dir, options: dict, limit: int | None, *, mirror: bool = False,
            role: str = "train"):
    """``(x, y, name, identity)`` from a dataset name, a dataset object, ``(x, y)`` arrays or Records.

    ``limit`` keeps the first images (decoding only those). With ``mirror``, the
    images (one of each mirror pair already present; the base images of a dataset
    that declares its mirrors) are followed by their exact horizontal flips, and
    the identity says what was done (``mirror``, ``n_base``, ``n_used``).
    """
    from salbench.data.mirror import base_indices, mirror_arrays

    identity: dict[str, Any]
    declared = False
    if isinstance(ds, str):
        from salbench.data import get_dataset

        ds = get_dataset(ds, split, data_dir=data_dir, **options)
    if hasattr(ds, "arrays"):
        declared = mirror and bool(getattr(ds, "mirrored", False)) and bool(getattr(ds, "n_base", None))
        n = int(ds.n_base) if declared else len(ds)
        if limit is not None:
            n = min(n, limit)
        if n < len(ds):  # decode only what is used (a split may be 20000 images)
            x, y = _stack(ds[i] for i in range(n))
        else:
            x, y = ds.arrays(("x96", "y48"))
        identity = ds.identity() if hasattr(ds, "identity") else {"name": getattr(ds, "name", "dataset")}
        name = identity.get("name", "dataset")
    elif isinstance(ds, (tuple, list)) and len(ds) == 2 and hasattr(ds[0], "shape"):
        x, y = ds
        identity, name = {"name": "arrays", "n_files": int(len(x))}, "arrays"
    else:  # a sequence of Records
        x, y = _stack(ds)
        identity, name = {"name": "records", "n_files": len(x)}, "records"
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} targets")
    x, y = np.asarray(x), np.asarray(y)
    identity = dict(identity)
    if mirror:
        if np.ndim(x) != 4 or np.ndim(y) not in (2, 3):
            raise ValueError(f"inputs must be (N, 3, 96, 96), got {np.shape(x)}")
        keep, note = base_indices(ds if declared else None, None if declared else x, used=len(x))
        if len(keep) < len(x):
            x, y = x[keep], y[keep]
        identity.update(mirror=note, n_base=int(len(x)))
        x, y = mirror_arrays(x, np.asarray(y).reshape(len(y), 48, 48) if np.ndim(y) == 2 else y)
    elif role == "train":
        identity["mirror"] = "not mirrored (recipe mirror=False)"
    identity["n_used"] = int(len(x))
    return x, y, name, identity


def check_seed(seed) -> int:
    """``seed`` as an int; ``ValueError`` (one line) unless it is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


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
    should_stop: Callable[[int], bool] | None = None,
    **recipe_overrides: Any,
) -> TrainResult:
    """Train ``shallow_mse`` or ``shallow_kl`` and return the checkpoints it wrote.

    Parameters
    ----------
    model : {"shallow_mse", "shallow_kl"}
    dataset : str, dataset, (x, y) arrays or sequence of Records
        A dataset name opens ``get_dataset(dataset, split, data_dir, **dataset_options)``
        and, for validation, the ``val_split`` split (``val_split=None``: no validation).
        Arrays and Records are taken as the images to mirror (recipe ``mirror``).
    val : same kinds as ``dataset``, optional
        Validation data when ``dataset`` is not a name (never mirrored).
    preset : {"quick", "full", "distribution"}
        Recipe (:mod:`salbench.training.recipes`); ``epochs`` and ``recipe_overrides``
        (e.g. ``batch_size=16``, ``target="distribution"``, ``mirror=False``)
        replace its fields, and are recorded.
    device : {"auto", "cpu", "cuda"}
    resume : bool
        Continue from ``out``'s latest checkpoint (bit-for-bit); without it an
        ``out`` that already holds checkpoints is refused.
    seed : int
        Non-negative; seeds the initialisation and every epoch's shuffle.
    out : path, optional
        Run directory; default :func:`default_run_dir`.
    progress : bool
        Show a tqdm progress bar (stderr).
    on_epoch_end : callable, optional
        Called with the number of completed epochs after each epoch's checkpoint.
    should_stop : callable, optional
        Called with the number of completed epochs after each epoch; returning
        True ends the run early: a resumable ``epoch-NNNN`` checkpoint (and the
        best so far) is written, no ``final``, and the result says
        ``completed=False`` (``--resume`` continues it).

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
        or a resume whose configuration differs from the saved one.
    """
    import torch
    from tqdm.auto import tqdm

    from salbench.models.shallow import _pick_device, scores_to_maps

    if model not in TRAINABLE:
        raise ValueError(f"model {model!r} is not trainable here; trainable: {', '.join(TRAINABLE)}")
    variant = model.split("_", 1)[1]
    seed = check_seed(seed)
    recipe = get_recipe(model, preset, epochs=epochs, **recipe_overrides)
    options = dict(dataset_options or {})
    if out is not None and not resume and latest_checkpoint(Path(out) / "checkpoints") is not None:
        raise ValueError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    device = _pick_device(device)
    x, y, ds_name, ident = _arrays(dataset, split, data_dir, options, recipe.max_train, mirror=recipe.mirror)
    if val is None and isinstance(dataset, str) and val_split is not None:
        val = dataset
    xv = yv = val_ident = None
    if val is not None:
        xv, yv, _, val_ident = _arrays(val, val_split, data_dir, options, recipe.max_val, role="val")
    out = Path(out) if out is not None else default_run_dir(model, ds_name, preset)
    ckdir = out / "checkpoints"
    config = {"model": model, "preset": preset, "seed": seed, "recipe": recipe.to_dict(),
              "train_data": ident, "val_data": val_ident}

    trainer = make_trainer(variant, recipe, x, y, xv, yv, seed=seed, device=device)
    existing = latest_checkpoint(ckdir)
    history: list[dict] = []
    start, wall0, train_s, seen, best = 0, 0.0, 0.0, 0, None
    if existing is not None and not resume:
        raise ValueError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    if existing is not None:
        st = load_checkpoint(existing, trainer.net, trainer.optimizer)
        missing = [k for k in ("epoch", "history", "wall_time_s", "train_time_s", "images_seen") if k not in st]
        if missing:
            raise ValueError(f"{existing / 'state.json'} lacks {', '.join(missing)}: not a resumable salbench state")
        diff = sorted(k for k in config if (st.get("config") or {}).get(k) != config[k])
        if diff:
            raise ValueError(f"cannot resume {existing}: its {', '.join(diff)} differ from this run's")
        start, history, best = st["epoch"], st["history"], st.get("best")
        wall0, train_s, seen = st["wall_time_s"], st["train_time_s"], st["images_seen"]
    on_disk = ckdir / "best" / "state.json"
    if on_disk.is_file():  # a best written after the checkpoint we resume from (a kill in between)
        try:
            kept = json.loads(on_disk.read_text()).get("epoch")
        except ValueError:
            kept = None
        if best is None or kept != best.get("epoch"):
            shutil.rmtree(ckdir / "best")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", config)
    log = JsonlLog(out / "log.jsonl")
    log.truncate_after(start)

    n_batches = sum(1 for _ in trainer._batches(0))
    meta = {"model": model, "trained_on": _describe(ident), "preset": preset, "target": recipe.target}
    t_start = time.perf_counter()
    bar = tqdm(total=recipe.epochs * n_batches, initial=start * n_batches, unit="batch",
               desc=f"{model} {ds_name}", disable=not progress, dynamic_ncols=True)

    def state(epoch: int, checkpoint: dict) -> dict:
        wall = wall0 + time.perf_counter() - t_start
        return {"epoch": epoch, "seed": seed, "config": config, "history": list(history), "best": best,
                "checkpoint": checkpoint, "wall_time_s": wall, "train_time_s": train_s, "images_seen": seen,
                "train_images_per_s": images_per_second(seen, train_s)}

    def last_epoch_info(epoch: int, name: str) -> dict:
        last = history[-1] if history and history[-1]["epoch"] == epoch else {}
        return {"name": name, "epoch": epoch, "rule": "last epoch", "metric": "val_cc48" if last else None,
                "value": last.get("val_cc48")}

    pending_best = None  # (weights copy, state) of the best epoch not yet on disk

    def flush_best() -> None:
        nonlocal pending_best
        if pending_best is not None:
            save_checkpoint(ckdir, "best", pending_best[0], None, pending_best[1], meta)
            pending_best = None

    completed = True
    e = start - 1
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
            step = (e + 1) * n_batches
            entries = [{"kind": "train", "epoch": e, "batch": b, "step": e * n_batches + b,
                        "loss": float(v), "lr": recipe.lr(e)} for b, v in logged]
            last = e + 1 == recipe.epochs
            stop = bool(should_stop(e + 1)) if (should_stop is not None and not last) else False
            improved = False
            if (e + 1) % recipe.val_every == 0 or last or stop:
                m = trainer.validate()
                history.append({"epoch": e + 1, **m})
                entries.append({"kind": "train_eval", "epoch": e, "step": step, "loss": m["train_loss"],
                                "cc48": m["train_cc48"], "images": int(len(trainer.monitor))})
                if "val_loss" in m:
                    entries.append({"kind": "val", "epoch": e, "step": step, "loss": m["val_loss"],
                                    "cc48": m["val_cc48"]})
                    bar.set_postfix(val=f"{m['val_loss']:.4g}", cc48=f"{m['val_cc48']:.3f}")
                    if recipe.select == "val_cc48" and (best is None or m["val_cc48"] > best["val_cc48"]):
                        best, improved = {"epoch": e + 1, "val_cc48": m["val_cc48"], "val_loss": m["val_loss"]}, True
            if recipe.predict_every and xv is not None and (e + 1) % recipe.predict_every == 0:
                trainer.refresh_batchnorm()
                maps = scores_to_maps(variant, trainer.outputs(trainer.Xv))  # as ShallowModel.predict
                save_predictions(out / "predictions" / f"epoch-{e + 1:04d}.npy",
                                 maps.cpu().numpy().reshape(-1, 48, 48))
            log.write(entries)
            if improved:  # kept in memory; written with the next resumable checkpoint and at the end
                info = {"name": "best", "epoch": e + 1, "rule": "highest validation CC at 48x48",
                        "metric": "val_cc48", "value": best["val_cc48"]}
                pending_best = ({k: v.detach().clone() for k, v in trainer.net.state_dict().items()},
                                state(e + 1, info))
            if ((e + 1) % recipe.checkpoint_every == 0 and not last) or stop:
                trainer.refresh_batchnorm()
                flush_best()
                name = f"epoch-{e + 1:04d}"
                save_checkpoint(ckdir, name, trainer.net, trainer.optimizer, state(e + 1, last_epoch_info(e + 1, name)), meta)
                _prune(ckdir, recipe.keep_last)
            if on_epoch_end is not None:
                on_epoch_end(e + 1)
            if stop:
                completed = False
                break
    finally:
        bar.close()
    done = e + 1
    flush_best()
    final = None
    if completed:
        trainer.refresh_batchnorm()
        final = save_checkpoint(ckdir, "final", trainer.net, trainer.optimizer,
                                state(done, last_epoch_info(done, "final")), meta)
    chosen = chosen_checkpoint(out)
    chosen_info = json.loads((chosen / "state.json").read_text()).get("checkpoint")
    last_val = next((h for h in reversed(history) if "val_loss" in h), None)
    summary = {
        **state(done, chosen_info),
        "completed": completed, "planned_epochs": recipe.epochs,
        "device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "precision": "bf16" if trainer.autocast_dtype is not None else "fp32",
        "recipe_description": recipe.describe(),
        "checkpoint": str(chosen), "chosen_checkpoint": chosen_info, "final_val_loss": last_val["val_loss"] if last_val else None,
        "final_val_cc48": last_val["val_cc48"] if last_val else None,
    }
    atomic_write_json(out / "summary.json", summary)
    best_dir = ckdir / "best" if (ckdir / "best").is_dir() else None
    return TrainResult(out=out, checkpoint=chosen, final=final, best=best_dir, summary=summary, completed=completed)


def _describe(ident: dict) -> str:
    h = ident.get("content_hash")
    mirrored = f" ({ident['n_base']} + mirrors)" if "n_base" in ident else ""
    return f"{ident.get('name')}/{ident.get('split', '-')}: {ident.get('n_used')} images{mirrored}" + (
        f" (content {str(h)[:12]})" if h else ""
    )


def _prune(ckdir: Path, keep_last: int | None) -> None:
    if keep_last is None:
        return
    periodic = sorted(p for p in ckdir.glob("epoch-*") if p.is_dir())
    for p in periodic[: max(0, len(periodic) - keep_last)]:
        shutil.rmtree(p)
