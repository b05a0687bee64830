"""The training loop: pre-stacked tensors, a fused optimizer step, exact resume.

Speed choices (measured in ``docs/benchmarks-training.md``): the whole split
is stacked once into one tensor on the training device (no ``DataLoader``, no
per-batch numpy conversion); batches are ``index_select`` of a seeded
permutation; channels-last convolutions; ReLU after max-pool (exactly
equivalent, see :mod:`salbench.models.shallow`); SGD with ``fused=True`` (or
``foreach`` where fused is unavailable); ``set_to_none`` gradients; losses
read back to the host only at log points; validation under
``inference_mode``. On CUDA, bf16 autocast and optionally ``torch.compile``.

Determinism: the epoch-``e`` permutation is ``default_rng([seed, e])``, the
learning rate a function of the epoch, and checkpoints hold weights, buffers,
momentum and RNG states, so a resumed run is bit-for-bit the uninterrupted
one (on the same device and thread count).
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


def loss_function(variant: str) -> Callable:
    """``mse``: mean squared error; ``kl``: KLDivLoss(log_softmax(pred), softmax(target)), batchmean.

    Both return the *sum* over the batch divided by ``denominator(batch)`` so that
    validation can accumulate exact per-set means (see :func:`loss_sum`).
    """
    import torch.nn.functional as F

    if variant == "mse":
        return lambda out, y: F.mse_loss(out.float(), y)
    if variant == "kl":
        return lambda out, y: F.kl_div(F.log_softmax(out.float(), 1), F.softmax(y, 1), reduction="batchmean")
    raise ValueError(f"unknown loss variant {variant!r}")


def loss_sum(variant: str, out, y):
    """Un-normalised loss of a batch: the batch loss times its denominator (N*2304 or N)."""
    n = out.shape[0] * (out.shape[1] if variant == "mse" else 1)
    return loss_function(variant)(out, y) * n, n


@dataclass
class Trainer:
    """One network, its optimizer and its data, resident on ``device``.

    Build with :func:`make_trainer`; :meth:`train_epoch` is the hot loop the
    benchmark times.
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

    def __post_init__(self):
        self._loss = loss_function(self.variant)
        self._fwd = self.net
        if self.recipe.compile:
            import torch

            self._fwd = torch.compile(self.net)

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
        """Train one epoch; return ``[(batch_index, loss_tensor)]`` every ``log_every`` batches."""
        import torch

        for g in self.optimizer.param_groups:
            g["lr"] = self.recipe.lr(epoch)
        self.net.train()
        logged = []
        fmt = torch.channels_last if self.recipe.channels_last else torch.contiguous_format
        for b, idx in enumerate(self._batches(epoch)):
            xb = self.X.index_select(0, idx).contiguous(memory_format=fmt)
            yb = self.Y.index_select(0, idx)
            with self._autocast():
                out = self._fwd(xb)
            loss = self._loss(out, yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if b % self.recipe.log_every == 0:
                logged.append((b, loss.detach()))
            if on_batch is not None:
                on_batch(len(idx))
        return logged

    def outputs(self, X, batch_size: int = 256):
        """Raw network scores for stacked inputs ``X`` (eval mode, inference mode)."""
        import torch

        self.net.eval()
        fmt = torch.channels_last if self.recipe.channels_last else torch.contiguous_format
        outs = []
        with torch.inference_mode(), self._autocast():
            for i in range(0, len(X), batch_size):
                outs.append(self._fwd(X[i : i + batch_size].contiguous(memory_format=fmt)).float())
        return torch.cat(outs)

    def validate(self) -> float:
        """Mean validation loss (same normalisation as the training loss)."""
        import torch

        out = self.outputs(self.Xv)
        with torch.inference_mode():
            total, n = loss_sum(self.variant, out, self.Yv)
        return float(total) / n


def make_trainer(variant: str, recipe: Recipe, x, y, xv=None, yv=None, *, seed: int = 0, device: str = "cpu"):
    """Build a :class:`Trainer`: fresh network (seeded init), optimizer, data on ``device``.

    Parameters
    ----------
    variant : {"mse", "kl"}
    x, y : ndarray
        ``(N, 3, 96, 96)`` inputs and ``(N, 48, 48)`` (or ``(N, 2304)``) targets.
    xv, yv : ndarray, optional
        Validation arrays.
    """
    import torch

    from salbench.models.shallow import build_network

    net = build_network(batch_norm=variant == "kl", seed=seed)
    torch.manual_seed(seed)
    if recipe.channels_last:
        net = net.to(memory_format=torch.channels_last)
    net = net.to(device)
    precision = recipe.precision
    if precision == "auto":
        precision = "bf16" if device.startswith("cuda") else "fp32"
    dtype = torch.bfloat16 if precision == "bf16" else None
    return Trainer(
        net=net, optimizer=make_optimizer(net, recipe), variant=variant, recipe=recipe, device=device,
        X=_to_tensor(x, device, 4), Y=_to_tensor(y, device, 2),
        Xv=None if xv is None else _to_tensor(xv, device, 4), Yv=None if yv is None else _to_tensor(yv, device, 2),
        seed=seed, autocast_dtype=dtype,
    )


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
