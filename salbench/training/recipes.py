"""Training recipes: the report's schedules, named deviations from them, and a CPU demo preset.

Every knob of a run is a field of :class:`Recipe`, stored in each checkpoint's
``state.json`` (and summarised in the weights header), so a checkpoint says how
it was made. Presets:

``full`` (``shallow_mse``) is the report's section VI: weights N(0, 0.01),
biases 0.1; SGD with Nesterov momentum, weight decay 0.0005; learning rate
linear from 0.05 to 0.0001 over the run (set once per epoch); batch 128; MSE on
the raw 48x48 target; 1000 epochs over the training images *and their mirror
images* (the report's 20000 = 10000 + mirrors); validation every 2 epochs; a
checkpoint every 50 and a predictions dump every 200. The report names Nesterov
momentum but gives no coefficient: **0.9 is our choice** (PyTorch's customary
value), not the report's.

``full`` (``shallow_kl``) keeps that optimiser and data, with the report's
section X loss ``KLDivLoss(log_softmax(pred), softmax(y))`` (``target=
"softmax"``). The report gives no KL schedule beyond "the optimal accuracy is
reached after just 45 epochs": 100 epochs, validation every epoch and keeping
the checkpoint with the best validation CC at 48x48 are our choices.

``distribution`` (``shallow_kl`` only) is a documented deviation, not the
report: the target is the map normalised as a distribution, ``y / sum(y)``
(as Jetley et al., whom section X follows, define it), because ``softmax(y)``
of a map in [0, 1] is nearly flat (its max/min ratio is at most e); plus
``fc2_bias="mean_map"`` (the output bias starts at the log of the training
images' mean target distribution, the best constant prediction), batch 16,
learning rate 0.01 -> 0.0001, 10 epochs. See ``docs/benchmarks-training.md``
for the measurements behind it.

``quick`` is the CPU demo (``salbench eval --model shallow_kl`` trains it
implicitly): for ``shallow_kl`` the ``distribution`` recipe with batch 8 on at
most 250 base images (500 with mirrors), 5 epochs, validated on 64 images; for
``shallow_mse`` the same data and schedule with the MSE loss (and the mean map
as its initial output). A few minutes of a 2-core CPU; a demo, not a
replication.

Recipe options (any preset, recorded):

* ``target``: ``"map"`` (MSE: the raw map), ``"softmax"`` (KL: the report's
  ``softmax(y)``) or ``"distribution"`` (KL: ``y / sum(y)``; an all-zero map
  becomes the uniform distribution).
* ``mirror``: train on the images and their exact horizontal flips (data that
  already hold mirror pairs are not mirrored twice; see
  :mod:`salbench.data.mirror`).
* ``fc2_bias``: ``"report"`` (0.1, section VI) or ``"mean_map"``.
* ``bn_stats``: ``"recompute"`` (before each validation and checkpoint, the
  BatchNorm statistics are recomputed exactly, layer by layer, on a fixed subset
  of ``monitor_images`` training images) or ``"running"`` (PyTorch's momentum
  averages, which lag the weights; kept to reproduce that artefact).
* ``select``: ``"val_cc48"`` (keep ``checkpoints/best``, the epoch with the
  highest validation CC at 48x48) or ``"final"`` (the last epoch).
* ``keep_last``: how many periodic ``epoch-NNNN`` checkpoints a run keeps
  (``None``: all). When the run completes, the optimizer state goes (nothing is
  left to resume) and so do the periodic checkpoints of a recipe that keeps only
  the last N, with ``final``'s weights when the run designates ``best``: the
  quick demo then keeps one weights file. ``None`` keeps every periodic
  checkpoint's weights, and ``final``'s (see
  :func:`salbench.training.runs.retire_resume_state`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

TARGETS = {
    "map": "the raw 48x48 map y (MSE)",
    "softmax": "softmax(y), the report's section X target",
    "distribution": "y / sum(y), the map as a distribution (a deviation from the report)",
}
SELECTIONS = ("val_cc48", "final")


@dataclass(frozen=True)
class Recipe:
    """Every knob of a training run (stored in each checkpoint's ``state.json``)."""

    epochs: int
    batch_size: int = 128
    lr_start: float = 0.05
    lr_end: float = 0.0001
    momentum: float = 0.9  # our choice: the report names Nesterov momentum, not its value
    nesterov: bool = True
    weight_decay: float = 0.0005
    target: str = "map"  # "map" (MSE), "softmax" or "distribution" (KL)
    mirror: bool = True  # train on the images and their horizontal mirrors (the report's data)
    fc2_bias: str = "report"  # "report" (0.1) or "mean_map"
    bn_stats: str = "recompute"  # "recompute" (exact, on monitor_images) or "running"
    monitor_images: int = 512  # fixed training subset: BatchNorm statistics and the eval-mode train loss
    select: str = "final"  # "final" or "val_cc48" (keep checkpoints/best)
    val_every: int = 2  # epochs
    checkpoint_every: int = 50  # epochs (a final checkpoint is always written)
    predict_every: int = 200  # epochs, 0 = never
    log_every: int = 5  # batches
    keep_last: int | None = None  # periodic checkpoints kept (None = all; see runs.retire_resume_state)
    max_train: int | None = None  # first N training images, before mirroring (None = all)
    max_val: int | None = None
    precision: str = "auto"  # "fp32", "bf16" or "auto" (bf16 on CUDA, fp32 on CPU)
    channels_last: bool = True
    compile: bool = False  # torch.compile the network (GPU runs)

    def replace(self, **changes) -> "Recipe":
        """A copy with ``changes`` (``None`` values ignored); validates the result."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown recipe option(s) {', '.join(unknown)}")
        r = dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
        r.validate()
        return r

    def validate(self) -> None:
        """Raise ``ValueError`` (one line) for an impossible recipe."""
        for k in ("epochs", "batch_size", "val_every", "checkpoint_every", "log_every", "monitor_images"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{k.replace('_', '-')} must be a positive integer, got {v!r}")
        for k in ("max_train", "max_val", "keep_last"):
            v = getattr(self, k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{k.replace('_', '-')} must be a positive integer or None, got {v!r}")
        if self.predict_every < 0:
            raise ValueError(f"predict-every must be >= 0, got {self.predict_every!r}")
        if not all(math.isfinite(v) and v > 0 for v in (self.lr_start, self.lr_end)):
            raise ValueError(f"learning rates must be finite and > 0, got {self.lr_start} -> {self.lr_end}")
        choices = {"precision": ("fp32", "bf16", "auto"), "target": tuple(TARGETS),
                   "fc2_bias": ("report", "mean_map"), "bn_stats": ("recompute", "running"), "select": SELECTIONS}
        for k, allowed in choices.items():
            if getattr(self, k) not in allowed:
                raise ValueError(f"{k} must be {', '.join(allowed)}; got {getattr(self, k)!r}")

    def check_variant(self, variant: str) -> None:
        """The loss target must fit the network: ``map`` for MSE, ``softmax``/``distribution`` for KL."""
        ok = {"mse": ("map",), "kl": ("softmax", "distribution")}[variant]
        if self.target not in ok:
            raise ValueError(f"target {self.target!r} does not apply to shallow_{variant}; use {' or '.join(ok)}")

    def lr(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch``: linear from ``lr_start`` to ``lr_end``."""
        if self.epochs == 1:
            return self.lr_start
        return self.lr_start + (self.lr_end - self.lr_start) * epoch / (self.epochs - 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line: loss and target, data, output bias, schedule, checkpoint rule (logs and reports)."""
        loss = {"map": "MSE on the map", "softmax": "KL to softmax(y) (the report's target)",
                "distribution": "KL to y/sum(y) (distribution target)"}[self.target]
        data = f"first {self.max_train} images" if self.max_train else "all images"
        data += " + their mirrors" if self.mirror else " (not mirrored)"
        bias = {"report": "0.1", "mean_map": "log mean map" if self.target != "map" else "mean map"}[self.fc2_bias]
        pick = "highest validation CC at 48x48" if self.select == "val_cc48" else "last epoch"
        return (f"{loss}; {data}; fc2 bias {bias}; batch {self.batch_size}, lr {self.lr_start:g} -> "
                f"{self.lr_end:g} over {self.epochs} epochs; checkpoint: {pick}")


_REPORT_DATA = dict(mirror=True)
_FULL_MSE = Recipe(epochs=1000, target="map", select="final", **_REPORT_DATA)
_FULL_KL = Recipe(epochs=100, target="softmax", val_every=1, checkpoint_every=10, predict_every=20,
                  select="val_cc48", **_REPORT_DATA)
_DIST_KL = Recipe(epochs=10, batch_size=16, lr_start=0.01, lr_end=0.0001, target="distribution",
                  fc2_bias="mean_map", val_every=1, checkpoint_every=5, predict_every=0, log_every=10,
                  select="val_cc48", **_REPORT_DATA)
# Sized on a loaded 2-core CPU (docs/benchmarks-training.md): ~310 steps of 8 are needed before the
# network leaves the mean map (CC48 0.27 -> 0.50 on 64 val images); batch 8 reaches that in half the
# images of batch 16.
_QUICK_KL = _DIST_KL.replace(epochs=5, batch_size=8, max_train=250, max_val=64, monitor_images=128,
                             checkpoint_every=2, keep_last=1, log_every=8)
_QUICK_MSE = _QUICK_KL.replace(target="map", select="final")

PRESETS: dict[tuple[str, str], Recipe] = {
    ("shallow_mse", "full"): _FULL_MSE,
    ("shallow_kl", "full"): _FULL_KL,
    ("shallow_kl", "distribution"): _DIST_KL,
    ("shallow_mse", "quick"): _QUICK_MSE,
    ("shallow_kl", "quick"): _QUICK_KL,
}
PRESET_NAMES = ("quick", "full", "distribution")


def get_recipe(model: str, preset: str = "quick", **overrides) -> Recipe:
    """The ``preset`` recipe for ``model`` with ``overrides`` applied (``None`` ignored).

    Raises
    ------
    ValueError
        Unknown model / preset pair, or an invalid override.
    """
    try:
        base = PRESETS[(model, preset)]
    except KeyError:
        known = sorted({m for m, _ in PRESETS})
        have = sorted(p for m, p in PRESETS if m == model)
        raise ValueError(
            f"no training recipe for model {model!r} with preset {preset!r}; trainable models: "
            f"{', '.join(known)}; presets" + (f" of {model}: {', '.join(have)}" if have else ": full, quick")
        ) from None
    r = base.replace(**overrides)
    r.check_variant(model.split("_", 1)[1])
    return r
