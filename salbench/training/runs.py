"""A training run on disk: where it lives, which checkpoint it designates, what it keeps.

A run directory holds ``config.json``, ``log.jsonl``, ``summary.json`` and
``checkpoints/`` (see :mod:`salbench.training.checkpoint`). While the run is
unfinished, ``checkpoints/latest.json`` names its newest resumable checkpoint
(weights, optimizer state, RNG states). When it completes, ``checkpoints/final``
is written and :func:`retire_resume_state` removes what only resuming needed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from salbench.models._weights import STATE_FILE, WEIGHTS_FILE, run_checkpoint
from salbench.training.checkpoint import LATEST, drop_weights, latest_checkpoint, strip_optimizer
from salbench.training.recipes import get_recipe


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
    return chosen_checkpoint(run) if is_completed(run) else run / "checkpoints" / "final"


def chosen_checkpoint(run_dir) -> Path:
    """The checkpoint directory a run designates: the single rule of :func:`salbench.models._weights.run_checkpoint`.

    ``checkpoints/best`` when the recipe keeps one (highest validation CC at
    48x48), else ``checkpoints/final``, else (unfinished) the latest.

    Raises
    ------
    FileNotFoundError
        The directory holds no checkpoint.
    """
    ck = run_checkpoint(run_dir)
    if ck is None:
        raise FileNotFoundError(f"no checkpoint in training run {run_dir}")
    return ck


def is_completed(run_dir) -> bool:
    """Whether the run in ``run_dir`` trained all its epochs (it has ``checkpoints/final``)."""
    return (Path(run_dir) / "checkpoints" / "final").is_dir()


def existing_checkpoint(ckdir) -> Path | None:
    """The checkpoint a run continues from: ``final`` once completed, else the latest resumable one."""
    final = Path(ckdir) / "final"
    if (final / STATE_FILE).is_file():
        return final
    return latest_checkpoint(ckdir)


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
    from salbench.models._weights import training_record

    ck = Path(checkpoint)
    rec = training_record(ck / WEIGHTS_FILE if ck.is_dir() else ck) or {}
    sel = rec.get("selection") or {}
    why = sel.get("rule") or "?"
    if sel.get("value") is not None:
        why += f", validation CC48 {sel['value']:.3f}"
    return f"{rec.get('label', '?')}; checkpoint {rec.get('checkpoint', ck.name)} (epoch {rec.get('epoch')}: {why})"


def periodic_checkpoints(ckdir) -> list[Path]:
    """The run's ``epoch-NNNN`` checkpoints, oldest first."""
    return sorted(p for p in Path(ckdir).glob("epoch-*") if p.is_dir())


def prune(ckdir, keep_last: int | None) -> None:
    """Delete all but the ``keep_last`` newest periodic checkpoints (``None``: keep all)."""
    if keep_last is None:
        return
    periodic = periodic_checkpoints(ckdir)
    for p in periodic[: max(0, len(periodic) - keep_last)]:
        shutil.rmtree(p)


def keeps_final_weights(ckdir, keep_last: int | None) -> bool:
    """Whether a completed run's ``final`` keeps its weights.

    Yes when the run designates it (no ``best``), or when the recipe keeps every
    periodic checkpoint (``keep_last=None``: the weights along the run are wanted).
    """
    return keep_last is None or not (Path(ckdir) / "best" / WEIGHTS_FILE).is_file()


def retire_resume_state(ckdir, keep_last: int | None) -> None:
    """After ``final`` is written, remove what only resuming needed; safe to repeat after a kill.

    ``latest.json`` goes (nothing is left to resume), every optimizer state goes;
    periodic checkpoints go unless the recipe keeps them all (``keep_last=None``,
    then weights-only); ``final``'s weights go when the run designates ``best``
    and the recipe keeps no periodic ones. The run designates the same checkpoint
    before and after (:func:`salbench.models._weights.run_checkpoint`).
    """
    ckdir = Path(ckdir)
    (ckdir / LATEST).unlink(missing_ok=True)
    for p in periodic_checkpoints(ckdir):
        if keep_last is None:
            strip_optimizer(p)
        else:
            shutil.rmtree(p)
    final = ckdir / "final"
    strip_optimizer(final)
    if not keeps_final_weights(ckdir, keep_last):
        drop_weights(final)
