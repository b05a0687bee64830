"""A training run as named steps: :func:`run_training` carries out one :class:`TrainingRequest`.

1. :meth:`TrainingRequest.check`: the recipe, every value that needs no data;
   :func:`locate_run`: a run to continue, or none (the resume rule);
2. :func:`load_data`: training and validation arrays (mirrored per the recipe);
3. :func:`open_run`: the run directory, its configuration and log;
4. :func:`build_trainer`: network (seeded), optimizer, data on the device;
5. :func:`resume`: weights, momentum, RNG states and progress from the checkpoint;
6. :func:`epoch_loop`: per epoch :func:`train_one_epoch` (stops on a non-finite
   loss, :class:`TrainingDiverged`), :func:`validate` (BatchNorm statistics
   recomputed first), :func:`save_predictions_dump`, :func:`keep_if_best`,
   :func:`periodic_checkpoint`;
7. :func:`finish`: the best and final checkpoints, :func:`retire_resume_state`,
   ``summary.json``.

A run is deterministic: the same request (seed, recipe, data, device, thread
count) gives byte-identical weights, stopped and resumed or not.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salbench.io import atomic_write_json
from salbench.training.checkpoint import latest_checkpoint, load_checkpoint, read_state, save_checkpoint
from salbench.training.inputs import TrainingData, load_data
from salbench.training.loop import JsonlLog, images_per_second, resolve_precision, save_predictions
from salbench.training.recipes import Recipe
from salbench.training.request import TrainingRequest
from salbench.training.runs import (chosen_checkpoint, default_run_dir, existing_checkpoint, keeps_final_weights,
                                    prune, retire_resume_state)

_PROGRESS_KEYS = ("epoch", "history", "wall_time_s", "train_time_s", "images_seen")


@dataclass
class TrainResult:
    """What a run produced. ``checkpoint`` is the one the run designates (:func:`chosen_checkpoint`)."""

    out: Path
    checkpoint: Path  # best if the recipe keeps one, else final (else the latest, if stopped early)
    final: Path | None  # checkpoints/final (None if the run was stopped early); weights: see runs.retire_resume_state
    best: Path | None  # checkpoints/best when the recipe keeps one
    summary: dict
    completed: bool = True
    trained: bool = True  # False: resuming a completed run, nothing left to train


class TrainingDiverged(ValueError):
    """The loss (or the weights) left the floats: one line naming where, and what was kept.

    Attributes: ``epoch`` (1-based), ``step`` (1-based, counted over the run),
    ``batch`` (1-based, within the epoch), ``loss``, ``kept`` (the last finite
    resumable checkpoint, or None).
    """

    def __init__(self, message: str, *, epoch: int, step: int, batch: int, loss: float, kept: Path | None):
        super().__init__(message)
        self.epoch, self.step, self.batch, self.loss, self.kept = epoch, step, batch, loss, kept


@dataclass
class Progress:
    """Where a run stands; what a checkpoint's ``state.json`` restores."""

    epoch: int = 0
    history: list = field(default_factory=list)
    best: dict | None = None  # {"epoch", "val_cc48", "val_loss"} of the best validated epoch
    wall_time_s: float = 0.0  # before this process
    train_time_s: float = 0.0
    images_seen: int = 0


@dataclass
class Run:
    """One run being carried out: request, recipe, directory, data, trainer and progress."""

    request: TrainingRequest
    recipe: Recipe
    device: str
    data: TrainingData
    out: Path
    config: dict
    existing: Path | None
    trainer: Any = None
    progress: Progress = field(default_factory=Progress)
    log: JsonlLog | None = None
    n_batches: int = 0
    t_start: float = field(default_factory=time.perf_counter)  # wall time counts from here (reset by epoch_loop)
    pending_best: tuple | None = None  # (weights copy, state) of a best epoch not yet on disk

    @property
    def ckdir(self) -> Path:
        return self.out / "checkpoints"

    @property
    def meta(self) -> dict:
        """The weights header: nothing that varies between identical trainings (the file's hash is its identity)."""
        return {"model": self.request.model, "trained_on": self.data.describe(), "preset": self.request.preset,
                "target": self.recipe.target}

    def state(self, epoch: int, checkpoint: dict) -> dict:
        """The ``state.json`` of a checkpoint written now, at ``epoch``."""
        p = self.progress
        wall = p.wall_time_s + time.perf_counter() - self.t_start
        return {"epoch": epoch, "seed": self.request.seed, "config": self.config, "history": list(p.history),
                "best": p.best, "checkpoint": checkpoint, "wall_time_s": wall, "train_time_s": p.train_time_s,
                "images_seen": p.images_seen, "train_images_per_s": images_per_second(p.images_seen, p.train_time_s)}

    def last_epoch_info(self, epoch: int, name: str) -> dict:
        """``checkpoint`` record of a periodic or final checkpoint: the epoch it ends, and its validation CC."""
        h = self.progress.history
        last = h[-1] if h and h[-1]["epoch"] == epoch else {}
        return {"name": name, "epoch": epoch, "rule": "last epoch", "metric": "val_cc48" if last else None,
                "value": last.get("val_cc48")}


def run_training(request: TrainingRequest) -> TrainResult:
    """Carry out ``request``: the steps of the module docstring, in order.

    Raises
    ------
    ValueError
        Bad request values or arrays, a run directory that breaks the resume rule,
        a resume whose configuration differs from the saved one.
    TrainingDiverged
        A non-finite loss or weights (a ``ValueError``): the last finite resumable
        checkpoint stays.
    """
    recipe = request.check()
    if request.out is not None:  # before opening any data
        locate_run(request.out, request.resume)
    data = load_data(request, recipe)
    run = open_run(request, recipe, data)
    if run.existing is not None and run.existing.name == "final":  # completed: nothing to train
        run.progress = restore_progress(run, read_state(run.existing))
        return finish(run, completed=True, trained=False)
    build_trainer(run)
    resume(run)
    completed = epoch_loop(run)
    return finish(run, completed=completed)


def locate_run(out: Path, mode: str) -> Path | None:
    """The checkpoint a run in ``out`` continues from, under resume ``mode`` (None: start afresh).

    Raises
    ------
    ValueError
        ``never`` and ``out`` holds a run; ``require`` and it holds none.
    """
    existing = existing_checkpoint(out / "checkpoints")
    if existing is not None and mode == "never":
        raise ValueError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    if existing is None and mode == "require":
        if not out.exists():
            raise ValueError(f"no training run in {out} to resume; run without --resume to start one there")
        raise ValueError(f"{out} holds no checkpoint to resume from; run without --resume to start afresh there")
    return existing


def open_run(request: TrainingRequest, recipe: Recipe, data: TrainingData) -> Run:
    """Resolve the run directory and configuration; find the checkpoint to continue from (the resume rule)."""
    from salbench.models.shallow import _pick_device

    out = request.out if request.out is not None else default_run_dir(request.model, data.name, request.preset)
    config = {"model": request.model, "preset": request.preset, "seed": request.seed, "recipe": recipe.to_dict(),
              "train_data": data.identity, "val_data": data.val_identity}
    return Run(request=request, recipe=recipe, device=_pick_device(request.device), data=data, out=out,
               config=config, existing=locate_run(out, request.resume))


def build_trainer(run: Run) -> None:
    """A fresh, seeded network, its optimizer and the data on the device."""
    from salbench.training.loop import make_trainer

    d = run.data
    run.trainer = make_trainer(run.request.variant, run.recipe, d.x, d.y, d.xv, d.yv, seed=run.request.seed,
                               device=run.device)
    run.n_batches = sum(1 for _ in run.trainer._batches(0))


def restore_progress(run: Run, state: dict) -> Progress:
    """Progress from a checkpoint's state, which must be a resumable salbench state of this configuration."""
    missing = [k for k in _PROGRESS_KEYS if k not in state]
    if missing:
        raise ValueError(f"{run.existing / 'state.json'} lacks {', '.join(missing)}: not a resumable salbench state")
    diff = sorted(k for k in run.config if (state.get("config") or {}).get(k) != run.config[k])
    if diff:
        raise ValueError(f"cannot resume {run.existing}: its {', '.join(diff)} differ from this run's")
    return Progress(epoch=state["epoch"], history=state["history"], best=state.get("best"),
                    wall_time_s=state["wall_time_s"], train_time_s=state["train_time_s"],
                    images_seen=state["images_seen"])


def resume(run: Run) -> None:
    """Restore weights, momentum, RNG states and progress; drop a ``best`` newer than them; open the log."""
    if run.existing is not None:
        run.progress = restore_progress(run, load_checkpoint(run.existing, run.trainer.net, run.trainer.optimizer))
    best_state = run.ckdir / "best" / "state.json"
    if best_state.is_file():  # a best written after the checkpoint we resume from (a kill in between)
        try:
            kept = json.loads(best_state.read_text()).get("epoch")
        except ValueError:
            kept = None
        if run.progress.best is None or kept != run.progress.best.get("epoch"):
            shutil.rmtree(run.ckdir / "best")
    run.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run.out / "config.json", run.config)
    run.log = JsonlLog(run.out / "log.jsonl")
    run.log.truncate_after(run.progress.epoch)


def epoch_loop(run: Run) -> bool:
    """Train from the resumed epoch to the recipe's last; False if ``should_stop`` ended it early."""
    from tqdm.auto import tqdm

    recipe, req = run.recipe, run.request
    run.t_start = time.perf_counter()
    bar = tqdm(total=recipe.epochs * run.n_batches, initial=run.progress.epoch * run.n_batches, unit="batch",
               desc=f"{req.model} {run.data.name}", disable=not req.progress, dynamic_ncols=True)
    try:
        for e in range(run.progress.epoch, recipe.epochs):
            entries = train_one_epoch(run, e, bar)
            last = e + 1 == recipe.epochs
            stop = bool(req.should_stop(e + 1)) if (req.should_stop is not None and not last) else False
            measured = None
            if (e + 1) % recipe.val_every == 0 or last or stop:
                measured = validate(run, e, entries)
                if "val_loss" in measured:
                    bar.set_postfix(val=f"{measured['val_loss']:.4g}", cc48=f"{measured['val_cc48']:.3f}")
            save_predictions_dump(run, e)
            run.log.write(entries)
            keep_if_best(run, e, measured)
            if ((e + 1) % recipe.checkpoint_every == 0 and not last) or stop:
                periodic_checkpoint(run, e + 1)
            if req.on_epoch_end is not None:
                req.on_epoch_end(e + 1)
            if stop:
                return False
    finally:
        bar.close()
    return True


def train_one_epoch(run: Run, e: int, bar) -> list[dict]:
    """Epoch ``e`` (0-based): train, count time and images; its logged batch losses as log entries.

    Raises
    ------
    TrainingDiverged
        A batch loss, or the weights after the epoch, is not finite (the entries
        before it are logged first).
    """
    import torch

    trainer, p, n = run.trainer, run.progress, run.n_batches
    t0 = time.perf_counter()
    counted = [0]

    def on_batch(k: int) -> None:
        counted[0] += k
        bar.update(1)

    logged = trainer.train_epoch(e, on_batch=on_batch)
    if run.device.startswith("cuda"):
        torch.cuda.synchronize()
    p.train_time_s += time.perf_counter() - t0
    p.images_seen += counted[0]
    entries = [{"kind": "train", "epoch": e, "batch": b, "step": e * n + b, "loss": float(v),
                "lr": run.recipe.lr(e)} for b, v in logged]
    bad = trainer.first_nonfinite()
    if bad is not None:  # log what came before it (the log stays strict JSON: no NaN)
        run.log.write([x for x in entries if x["batch"] <= bad[0] and math.isfinite(x["loss"])])
        raise diverged(run, e, bad[0], bad[1], "the weights are not finite after it" if math.isfinite(bad[1])
                       else None)
    p.epoch = e + 1
    return entries


def diverged(run: Run, e: int, batch: int, loss: float, what: str | None) -> TrainingDiverged:
    """The :class:`TrainingDiverged` of batch ``batch`` (0-based) of epoch ``e`` (0-based)."""
    kept = latest_checkpoint(run.ckdir)
    step = e * run.n_batches + batch + 1
    where = f"epoch {e + 1}, step {step} (batch {batch + 1} of {run.n_batches})"
    what = what or f"loss {loss}"
    if kept is not None:
        tail = (f"kept the last finite checkpoint {kept} (epoch {read_state(kept).get('epoch')}): --resume "
                f"continues from it; a smaller --lr-start needs a new --out")
    else:
        tail = "no checkpoint was written before it; start again with a smaller --lr-start"
    return TrainingDiverged(f"training diverged in {where} at learning rate {run.recipe.lr(e):g}: {what}; {tail}",
                            epoch=e + 1, step=step, batch=batch + 1, loss=loss, kept=kept)


def validate(run: Run, e: int, entries: list[dict]) -> dict:
    """Measure after epoch ``e`` (fresh BatchNorm statistics): history, log entries; non-finite diverges."""
    m = run.trainer.validate()
    bad = next((k for k, v in sorted(m.items()) if not math.isfinite(v)), None)
    if bad is not None:
        run.log.write(entries)
        what = {"train_loss": "the training-subset loss", "train_cc48": "the training-subset CC48",
                "val_loss": "the validation loss", "val_cc48": "the validation CC48"}.get(bad, bad)
        raise diverged(run, e, run.n_batches - 1, m.get("train_loss", math.nan),
                       f"{what} measured after it is {m[bad]}")
    run.progress.history.append({"epoch": e + 1, **m})
    step = (e + 1) * run.n_batches
    entries.append({"kind": "train_eval", "epoch": e, "step": step, "loss": m["train_loss"],
                    "cc48": m["train_cc48"], "images": int(len(run.trainer.monitor))})
    if "val_loss" in m:
        entries.append({"kind": "val", "epoch": e, "step": step, "loss": m["val_loss"], "cc48": m["val_cc48"]})
    return m


def save_predictions_dump(run: Run, e: int) -> None:
    """Every ``predict_every`` epochs, the validation maps as ``predictions/epoch-NNNN.npy``."""
    from salbench.models.shallow import scores_to_maps

    trainer, every = run.trainer, run.recipe.predict_every
    if every and trainer.Xv is not None and (e + 1) % every == 0:
        trainer.refresh_batchnorm()
        maps = scores_to_maps(run.request.variant, trainer.outputs(trainer.Xv))  # as ShallowModel.predict
        save_predictions(run.out / "predictions" / f"epoch-{e + 1:04d}.npy", maps.cpu().numpy().reshape(-1, 48, 48))


def keep_if_best(run: Run, e: int, measured: dict | None) -> None:
    """Recipe ``select="val_cc48"``: an improved validation CC48 is kept in memory, written with the next
    resumable checkpoint and at the end (so a best never runs ahead of what a resume restores)."""
    p = run.progress
    if run.recipe.select != "val_cc48" or measured is None or "val_loss" not in measured:
        return
    if p.best is not None and not measured["val_cc48"] > p.best["val_cc48"]:
        return
    p.best = {"epoch": e + 1, "val_cc48": measured["val_cc48"], "val_loss": measured["val_loss"]}
    info = {"name": "best", "epoch": e + 1, "rule": "highest validation CC at 48x48", "metric": "val_cc48",
            "value": p.best["val_cc48"]}
    run.pending_best = ({k: v.detach().clone() for k, v in run.trainer.net.state_dict().items()},
                        run.state(e + 1, info))


def flush_best(run: Run) -> None:
    """Write the pending best epoch's weights as ``checkpoints/best`` (weights and state only)."""
    if run.pending_best is not None:
        save_checkpoint(run.ckdir, "best", run.pending_best[0], None, run.pending_best[1], run.meta)
        run.pending_best = None


def periodic_checkpoint(run: Run, epoch: int) -> None:
    """A resumable ``epoch-NNNN`` checkpoint (after the pending best), then prune to ``keep_last``."""
    run.trainer.refresh_batchnorm()
    flush_best(run)
    name = f"epoch-{epoch:04d}"
    save_checkpoint(run.ckdir, name, run.trainer.net, run.trainer.optimizer,
                    run.state(epoch, run.last_epoch_info(epoch, name)), run.meta)
    prune(run.ckdir, run.recipe.keep_last)


def finish(run: Run, *, completed: bool, trained: bool = True) -> TrainResult:
    """Best and final checkpoints (a completed run), what only resuming needed retired, ``summary.json``."""
    import torch

    done = run.progress.epoch
    if trained:
        flush_best(run)
    if completed:
        if trained:
            run.trainer.refresh_batchnorm()
            net = run.trainer.net if keeps_final_weights(run.ckdir, run.recipe.keep_last) else None
            save_checkpoint(run.ckdir, "final", net, None, run.state(done, run.last_epoch_info(done, "final")),
                            run.meta)
        retire_resume_state(run.ckdir, run.recipe.keep_last)
    chosen = chosen_checkpoint(run.out)
    chosen_info = read_state(chosen).get("checkpoint")
    last_val = next((h for h in reversed(run.progress.history) if "val_loss" in h), None)
    summary = {
        **run.state(done, chosen_info),
        "completed": completed, "planned_epochs": run.recipe.epochs,
        "device": run.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "precision": resolve_precision(run.recipe, run.device),
        "recipe_description": run.recipe.describe(),
        "checkpoint": str(chosen), "chosen_checkpoint": chosen_info,
        "final_val_loss": last_val["val_loss"] if last_val else None,
        "final_val_cc48": last_val["val_cc48"] if last_val else None,
    }
    atomic_write_json(run.out / "summary.json", summary)
    best = run.ckdir / "best" if (run.ckdir / "best").is_dir() else None
    return TrainResult(out=run.out, checkpoint=chosen, final=run.ckdir / "final" if completed else None, best=best,
                       summary=summary, completed=completed, trained=trained)
