"""The training loop: pre-stacked tensors, a fused optimizer step, exact resume.

Speed choices (measured in ``docs/benchmarks-training.md``): the whole split
is stacked once into one tensor on the training device (no ``DataLoader``, no
per-batch numpy conversion); batches are ``index_select`` of a seeded
permutation; channels-last convolutions; ReLU after max-pool (exactly
equivalent, see :mod:`salbench.models.shallow`); SGD with ``fused=True`` (or
``foreach`` where fused is unavailable); ``set_to_none`` gradients; losses
read back to the host only at log points; validation under
``inference_mode``. On CUDA, bf16 autocast and optionally ``torch.compile``.

Measuring the model (:meth:`Trainer.validate`): PyTorch's BatchNorm running
statistics are momentum averages that lag the weights (after 4 steps of the
report's KL recipe on OSIE, ``bn1``'s running variance is ~0.66 against a true
~0.008), so an eval-mode pass on them measures a different network. Before
every validation and checkpoint the statistics are therefore recomputed exactly
(:func:`batchnorm_statistics`: layer by layer, in eval mode, on a fixed, evenly
spaced subset of ``recipe.monitor_images`` training images), which is what the
saved network then uses for prediction. Recomputing is exact rather than another
average (``momentum=None`` over train-mode batches would average per-batch
statistics computed with the *batch*-normalised earlier layers, not the
population ones prediction uses), and it costs about one forward pass of the
subset. The same subset gives the training loss and CC at 48x48 measured
exactly as on the validation set (eval mode, same statistics, same
normalisation), so the two curves can be compared; the per-batch train-mode
losses are logged as well, labelled ``train``.

Determinism: the epoch-``e`` permutation is ``default_rng([seed, e])``, the
learning rate a function of the epoch, and checkpoints hold weights, buffers,
momentum and RNG states, so a resumed run is bit-for-bit the uninterrupted
one (on the same device and thread count). Recomputing BatchNorm statistics
does not change training: train mode normalises with batch statistics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from salbench.io import atomic_path, atomic_write_text
from salbench.training.recipes import Recipe


def make_optimizer(net, recipe: Recipe):
    """SGD with Nesterov momentum and weight decay; fused kernel if this torch has one."""
    import torch

    kw = dict(lr=recipe.lr_start, momentum=recipe.momentum, nesterov=recipe.nesterov,
              weight_decay=recipe.weight_decay)
    try:
        return torch.optim.SGD(net.parameters(), fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):  # old torch / device without fused SGD
        return torch.optim.SGD(net.parameters(), foreach=True, **kw)


def target_distribution(y):
    """``y / sum(y)`` per row (an all-zero map becomes the uniform distribution)."""
    import torch

    y = y.float()
    total = y.sum(1, keepdim=True)
    return torch.where(total > 0, y / total.clamp_min(1e-30), torch.full_like(y, 1.0 / y.shape[1]))


def default_target(variant: str) -> str:
    """The report's target of each variant: ``map`` (MSE) and ``softmax`` (KL, section X)."""
    return {"mse": "map", "kl": "softmax"}[variant]


def loss_function(variant: str, target: str | None = None) -> Callable:
    """The training loss of ``variant`` with ``target`` (default: the report's).

    * ``mse`` / ``map``: ``MSELoss(pred, y)``;
    * ``kl`` / ``softmax``: ``KLDivLoss(log_softmax(pred), softmax(y))``, batchmean (report, section X);
    * ``kl`` / ``distribution``: ``KLDivLoss(log_softmax(pred), y / sum(y))``, batchmean.

    The result is the batch mean; :func:`loss_sum` gives the un-normalised sum
    so that validation can accumulate exact per-set means.
    """
    import torch.nn.functional as F

    target = target or default_target(variant)
    if variant == "mse" and target == "map":
        return lambda out, y: F.mse_loss(out.float(), y)
    if variant == "kl" and target == "softmax":
        return lambda out, y: F.kl_div(F.log_softmax(out.float(), 1), F.softmax(y, 1), reduction="batchmean")
    if variant == "kl" and target == "distribution":
        return lambda out, y: F.kl_div(F.log_softmax(out.float(), 1), target_distribution(y), reduction="batchmean")
    raise ValueError(f"unknown loss: variant {variant!r} with target {target!r}")


def loss_sum(variant: str, out, y, target: str | None = None):
    """Un-normalised loss of a batch: the batch loss times its denominator (N*2304 or N)."""
    n = out.shape[0] * (out.shape[1] if variant == "mse" else 1)
    return loss_function(variant, target)(out, y) * n, n


def cc_rows(a, b):
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (float64).

    A constant row (spread <= 1e-12 of its magnitude) scores 0, the registry's
    rule for a constant saliency map.
    """
    import torch

    a, b = a.double(), b.double()
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    na, nb = a.norm(dim=1), b.norm(dim=1)
    ok = (na > 1e-12 * a.abs().amax(1).clamp_min(1e-300)) & (nb > 1e-12 * b.abs().amax(1).clamp_min(1e-300))
    return torch.where(ok, (a * b).sum(1) / (na * nb).clamp_min(1e-300), torch.zeros_like(na))


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the statistics it needs are taken."""


def batchnorm_statistics(net, X, *, batch_size: int = 64, autocast=None, memory_format=None) -> list:
    """Exact per-channel mean and variance of each BatchNorm layer's input over ``X``, in eval mode.

    Layer by layer: the statistics of ``bn_k`` are measured with ``bn_1..bn_{k-1}``
    already set to theirs, so each layer's running statistics are the mean and
    (population) variance of exactly what it normalises at prediction time. The
    forward pass stops at the measured layer. Sets the running statistics and
    returns ``[(mean, var), ...]`` (float64 tensors) per layer.
    """
    import contextlib

    import torch
    from torch import nn

    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    net.eval()
    out = []
    for bn in bns:
        acc = {"n": 0, "mean": None, "m2": None}

        def hook(module, inputs, acc=acc):
            x = inputs[0].detach().float()
            c = x.shape[1]
            n = x.numel() // c
            mean = x.mean((0, 2, 3))
            m2 = ((x - mean.view(1, c, 1, 1)) ** 2).sum((0, 2, 3))
            mean, m2 = mean.double(), m2.double()
            if acc["mean"] is None:
                acc.update(n=n, mean=mean, m2=m2)
            else:  # Chan et al.: merge two (count, mean, M2) summaries
                tot = acc["n"] + n
                delta = mean - acc["mean"]
                acc["m2"] = acc["m2"] + m2 + delta ** 2 * (acc["n"] * n / tot)
                acc["mean"] = acc["mean"] + delta * (n / tot)
                acc["n"] = tot
            raise _StopForward

        handle = bn.register_forward_pre_hook(hook)
        try:
            with torch.no_grad(), (autocast or contextlib.nullcontext()):
                for i in range(0, len(X), batch_size):
                    xb = X[i : i + batch_size]
                    if memory_format is not None:
                        xb = xb.contiguous(memory_format=memory_format)
                    try:
                        net(xb)
                    except _StopForward:
                        pass
        finally:
            handle.remove()
        var = acc["m2"] / acc["n"]
        with torch.no_grad():
            bn.running_mean.copy_(acc["mean"].to(bn.running_mean.dtype))
            bn.running_var.copy_(var.to(bn.running_var.dtype))
        out.append((acc["mean"], var))
    return out


def monitor_indices(n: int, k: int) -> np.ndarray:
    """``k`` evenly spaced indices of ``n`` training images (all if ``k >= n``): a fixed subset."""
    if k >= n:
        return np.arange(n)
    return (np.arange(k) * n) // k


@dataclass
class Trainer:
    """One network, its optimizer and its data, resident on ``device``.

    Build with :func:`make_trainer`; :meth:`train_epoch` is the hot loop the
    benchmark times; :meth:`validate` measures the model (fresh BatchNorm
    statistics, loss and CC at 48x48 on validation and on a fixed training
    subset, both in eval mode).
    """

    net: Any
    optimizer: Any
    variant: str
    recipe: Recipe
    device: str
    X: Any
    Y: Any
    Xv: Any = None
    Yv: Any = None
    seed: int = 0
    autocast_dtype: Any = None
    step_fn: Any = None
    history: list = field(default_factory=list)
    epoch_losses: list = field(default_factory=list)

    def __post_init__(self):
        self.target = self.recipe.target
        self._loss = loss_function(self.variant, self.target)
        self._fwd = self.net
        self._bn_fresh = False
        self.monitor = monitor_indices(len(self.X), self.recipe.monitor_images)
        if self.recipe.compile:
            import torch

            self._fwd = torch.compile(self.net)

    @property
    def _format(self):
        import torch

        return torch.channels_last if self.recipe.channels_last else torch.contiguous_format

    def _autocast(self):
        import contextlib

        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.split(":")[0], dtype=self.autocast_dtype)

    def _batches(self, epoch: int):
        import torch

        n, bs = len(self.X), self.recipe.batch_size
        perm = torch.from_numpy(np.random.default_rng([self.seed, epoch]).permutation(n)).to(self.device)
        stops = list(range(bs, n, bs)) + [n]
        start = 0
        for stop in stops:
            if stop - start >= 2 or not self.net.batch_norm:  # BatchNorm cannot train on 1 image
                yield perm[start:stop]
            start = stop

    def train_epoch(self, epoch: int, on_batch: Callable | None = None) -> list[tuple[int, Any]]:
        """Train one epoch; return ``[(batch_index, loss_tensor)]`` every ``log_every`` batches.

        These are train-mode losses (BatchNorm on batch statistics, weights moving
        during the epoch); :meth:`validate` measures training and validation loss
        the same way.
        """
        self._bn_fresh = False
        for g in self.optimizer.param_groups:
            g["lr"] = self.recipe.lr(epoch)
        self.net.train()
        logged = []
        self.epoch_losses = []  # every batch's loss, left on the device: read once, by first_nonfinite
        fmt = self._format
        for b, idx in enumerate(self._batches(epoch)):
            xb = self.X.index_select(0, idx).contiguous(memory_format=fmt)
            yb = self.Y.index_select(0, idx)
            with self._autocast():
                out = self._fwd(xb)
            loss = self._loss(out, yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.epoch_losses.append(loss.detach())
            if b % self.recipe.log_every == 0:
                logged.append((b, loss.detach()))
            if on_batch is not None:
                on_batch(len(idx))
        return logged

    def first_nonfinite(self) -> tuple[int, float] | None:
        """Where the last epoch left the floats: ``(batch, loss)`` or None if it did not.

        ``batch`` is the 0-based index of the first batch whose loss was not finite;
        when every loss was finite but the weights are not (the last step overflowed
        them), it is the last batch, with that batch's (finite) loss.
        """
        import torch

        if not self.epoch_losses:
            return None
        losses = torch.stack(self.epoch_losses).float()
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            b = int(bad[0, 0])
            return b, float(losses[b])
        if not all(bool(torch.isfinite(p).all()) for p in self.net.parameters()):
            return len(losses) - 1, float(losses[-1])
        return None

    def _monitor_x(self):
        import torch

        idx = torch.from_numpy(self.monitor).to(self.device)
        return self.X.index_select(0, idx), self.Y.index_select(0, idx)

    def refresh_batchnorm(self) -> bool:
        """Recompute the BatchNorm statistics on the monitor subset (recipe ``bn_stats="recompute"``).

        A no-op for the MSE network, for ``bn_stats="running"`` and when the weights
        have not changed since the last call. Returns whether statistics were set.
        """
        if not self.net.batch_norm or self.recipe.bn_stats != "recompute" or self._bn_fresh:
            return False
        xm, _ = self._monitor_x()
        bs = 256 if self.device.startswith("cuda") else 64
        batchnorm_statistics(self.net, xm, batch_size=bs, autocast=self._autocast(), memory_format=self._format)
        self._bn_fresh = True
        return True

    def outputs(self, X, batch_size: int = 256):
        """Raw network scores for stacked inputs ``X`` (eval mode, inference mode)."""
        import torch

        self.net.eval()
        fmt = self._format
        outs = []
        with torch.inference_mode(), self._autocast():
            for i in range(0, len(X), batch_size):
                outs.append(self._fwd(X[i : i + batch_size].contiguous(memory_format=fmt)).float())
        return torch.cat(outs)

    def measure(self, X, Y) -> dict:
        """Mean loss (the training loss's normalisation) and mean CC at 48x48 of ``X`` against ``Y``, eval mode."""
        import torch

        out = self.outputs(X)
        with torch.inference_mode():
            total, n = loss_sum(self.variant, out, Y, self.target)
            cc = cc_rows(torch.softmax(out, 1) if self.variant == "kl" else out, Y)
        return {"loss": float(total) / n, "cc48": float(cc.mean())}

    def validate(self) -> dict:
        """Fresh BatchNorm statistics, then ``{"val_loss", "val_cc48", "train_loss", "train_cc48"}``.

        ``train_*`` are measured on the fixed training subset exactly as ``val_*``
        on the validation set (eval mode, same statistics, same normalisation).
        """
        self.refresh_batchnorm()
        tr = self.measure(*self._monitor_x())
        res = {"train_loss": tr["loss"], "train_cc48": tr["cc48"]}
        if self.Xv is not None:
            va = self.measure(self.Xv, self.Yv)
            res.update(val_loss=va["loss"], val_cc48=va["cc48"])
        return res


def init_fc2_bias(net, y: np.ndarray, variant: str, target: str) -> None:
    """Recipe ``fc2_bias="mean_map"``: start the output at the training set's mean target.

    KL: ``log`` of the mean target distribution (``softmax`` of the bias is then
    that mean, the best constant prediction under the KL loss); MSE: the mean map.
    """
    import torch

    y = torch.from_numpy(np.asarray(y, dtype=np.float32).reshape(len(y), -1))
    if variant == "mse":
        bias = y.double().mean(0)
    else:
        dist = target_distribution(y) if target == "distribution" else torch.softmax(y, 1)
        bias = dist.double().mean(0).clamp_min(1e-12).log()
    with torch.no_grad():
        net.fc2.bias.copy_(bias.to(net.fc2.bias.dtype))


def make_trainer(variant: str, recipe: Recipe, x, y, xv=None, yv=None, *, seed: int = 0, device: str = "cpu"):
    """Build a :class:`Trainer`: fresh network (seeded init), optimizer, data on ``device``.

    Parameters
    ----------
    variant : {"mse", "kl"}
    x, y : ndarray
        ``(N, 3, 96, 96)`` inputs and ``(N, 48, 48)`` (or ``(N, 2304)``) targets,
        used as given (mirroring happens before, in :func:`salbench.training.train`).
    xv, yv : ndarray, optional
        Validation arrays.
    """
    import torch

    from salbench.models.shallow import build_network

    recipe.check_variant(variant)
    net = build_network(batch_norm=variant == "kl", seed=seed)
    if recipe.fc2_bias == "mean_map":
        init_fc2_bias(net, y, variant, recipe.target)
    torch.manual_seed(seed)
    if recipe.channels_last:
        net = net.to(memory_format=torch.channels_last)
    net = net.to(device)
    dtype = torch.bfloat16 if resolve_precision(recipe, device) == "bf16" else None
    return Trainer(
        net=net, optimizer=make_optimizer(net, recipe), variant=variant, recipe=recipe, device=device,
        X=_to_tensor(x, device, 4), Y=_to_tensor(y, device, 2),
        Xv=None if xv is None else _to_tensor(xv, device, 4), Yv=None if yv is None else _to_tensor(yv, device, 2),
        seed=seed, autocast_dtype=dtype,
    )


def resolve_precision(recipe: Recipe, device: str) -> str:
    """``fp32`` or ``bf16``: the recipe's, with ``auto`` meaning bf16 on CUDA and fp32 elsewhere."""
    if recipe.precision == "auto":
        return "bf16" if device.startswith("cuda") else "fp32"
    return recipe.precision


def _to_tensor(a, device: str, ndim: int):
    import torch

    a = np.asarray(a, dtype=np.float32)
    if ndim == 2:
        a = a.reshape(len(a), -1)
        if a.shape[1] != 2304:
            raise ValueError(f"targets must be (N, 48, 48) or (N, 2304), got {a.shape}")
    elif a.ndim != 4 or a.shape[1:] != (3, 96, 96):
        raise ValueError(f"inputs must be (N, 3, 96, 96), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("training arrays contain NaN or inf")
    if not a.flags.writeable or not a.flags.c_contiguous:  # e.g. a memory-mapped dataset cache
        a = np.array(a, order="C")  # read once into RAM; torch refuses read-only buffers
    return torch.from_numpy(a).to(device)


class JsonlLog:
    """An append-only JSONL loss log that can be cut back to a checkpoint's epoch on resume."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def truncate_after(self, epoch: int) -> None:
        """Keep only entries of epochs ``< epoch`` (rewritten atomically)."""
        if not self.path.is_file():
            return
        keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["epoch"] < epoch]
        atomic_write_text(self.path, "".join(k + "\n" for k in keep))

    def write(self, entries: list[dict]) -> None:
        if entries:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
                fh.flush()


def save_predictions(path: Path, maps: np.ndarray) -> None:
    """Validation predictions as ``.npy`` (float32, N x 48 x 48), atomically (never pickle)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, maps.astype(np.float32))


def images_per_second(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else math.nan
