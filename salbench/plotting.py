"""Figures like the report's: prediction panels (Fig. 4, 5, 7), loss curves (Fig. 2, 6),
first-layer filters (Fig. 3). Needs matplotlib (``pip install salbench[plot]``)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError("figures need matplotlib: pip install 'salbench[plot]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    from salbench.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def pick_images(result: Mapping[str, Any], metric: str, n: int) -> tuple[list[int], list[int]]:
    """Indices of the ``n`` best and ``n`` worst images of a results file by ``metric``."""
    if metric not in result["metrics"]:
        raise ValueError(f"metric {metric!r} not in results (have {', '.join(result['metrics'])})")
    block = result["metrics"][metric]
    values = np.array([np.nan if v is None else v for v in block["per_image"]], dtype=np.float64)
    order = [int(i) for i in np.argsort(values) if np.isfinite(values[i])]
    if block.get("higher_is_better") is False:
        order = order[::-1]
    return order[::-1][:n], order[:n]


def upsample_for_display(pred: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a prediction to the image's size, for display only."""
    from PIL import Image

    img = Image.fromarray(np.asarray(pred, dtype=np.float32), mode="F")
    return np.asarray(img.resize((shape[1], shape[0]), Image.BILINEAR))


def plot_panels(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = "",
                prediction_title: str = "prediction") -> Path:
    """Image | ground truth | prediction, one row per image (Fig. 4, 5, 7).

    Each row is ``{"image", "density", "prediction", "label"}``; ``label``
    (image name and score) is written beside the row. Ground truth and
    prediction are grey-scale, each scaled to its own range (as the report's
    figures), the prediction resized to the image for display only.
    """
    plt = _pyplot()
    if not rows:
        raise ValueError("no images to plot")
    fig, axes = plt.subplots(len(rows), 3, figsize=(9.6, 2.5 * len(rows) + 0.5), squeeze=False)
    for r, (ax_row, row) in enumerate(zip(axes, rows)):
        shape = row["density"].shape
        image = row["image"] if row["image"] is not None else np.zeros((*shape, 3), np.uint8)
        panels = [image, row["density"], upsample_for_display(row["prediction"], shape)]
        for c, (ax, panel) in enumerate(zip(ax_row, panels)):
            ax.imshow(panel, cmap=None if panel.ndim == 3 else "gray", interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(("image", "ground truth", prediction_title)[c], fontsize=9)
        ax_row[0].set_ylabel(row.get("label", ""), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def read_loss_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a training log (JSON lines or CSV) into a list of dicts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such training log")
    text = path.read_text()
    if path.suffix == ".csv":
        return [dict(r) for r in csv.DictReader(text.splitlines())]
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a JSON line ({exc})") from None
            if not isinstance(rows[-1], dict):
                raise ValueError(f"{path}:{n}: a {type(rows[-1]).__name__}, not a JSON object (a training log "
                                 "entry is an object with kind, loss and step)")
    return rows


def select_seed(log: Sequence[Mapping[str, Any]], seed: int | None = None) -> tuple[list, int | None]:
    """The entries of one run from a log that holds several seeds (``seed`` field), and that seed.

    Default: the smallest seed. A log without ``seed`` fields is returned whole.
    """
    seeds = sorted({int(r["seed"]) for r in log if r.get("seed") not in (None, "")})
    if not seeds:
        if seed is not None:
            raise ValueError("the log has no 'seed' fields to choose from")
        return list(log), None
    pick = seeds[0] if seed is None else int(seed)
    if pick not in seeds:
        raise ValueError(f"seed {pick} is not in the log (seeds: {', '.join(map(str, seeds))})")
    return [r for r in log if r.get("seed") not in (None, "") and int(r["seed"]) == pick], pick


def plot_loss_curves(log: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = "",
                     smooth: int = 20, seed: int | None = None) -> Path:
    """Training and validation loss against training step, raw and smoothed (Fig. 2 / 6).

    Entries are those of ``salbench train``'s ``log.jsonl``: ``kind`` (or
    ``split``) ``train`` / ``train_eval`` / ``val``, ``loss`` and ``step``
    (batches seen; else ``batch`` or ``epoch``); a log of several runs is
    filtered to one ``seed`` (:func:`select_seed`).

    The curves a reader compares are measured the same way: ``train_eval``
    (eval mode, fixed training subset) and ``val`` (eval mode, validation set),
    drawn as lines with markers. ``train`` entries are the losses of single
    training batches in train mode (BatchNorm on batch statistics, weights
    changing within the epoch), drawn faint and labelled so; in a log without
    ``train_eval`` (older runs) they are the only training curve and the legend
    says they are not measured like validation. The smoothed panel is a
    centred moving average over ``smooth`` logged batch points (at most a
    quarter of them). When validation entries carry ``cc48``, a third panel
    shows CC at 48x48 (training subset and validation) with the best
    validation epoch marked: what ``select="val_cc48"`` recipes keep.
    """
    plt = _pyplot()
    log, picked = select_seed(log, seed)

    def series(kind, key="loss"):
        pts = []
        for i, r in enumerate(log):
            if (r.get("kind") or r.get("split")) != kind or r.get(key) in (None, ""):
                continue
            step = next((r[k] for k in ("step", "batch", "epoch") if r.get(k) not in (None, "")), i)
            pts.append((float(step), float(r[key])))
        return np.array(sorted(pts), dtype=np.float64).reshape(-1, 2)

    batches, measured, val = series("train"), series("train_eval"), series("val")
    if batches.size == 0 and val.size == 0 and measured.size == 0:
        raise ValueError("training log has no 'train', 'train_eval' or 'val' entries with a loss")
    cc_tr, cc_val = series("train_eval", "cc48"), series("val", "cc48")
    window = max(1, min(int(smooth), len(batches) // 4))  # a short log is barely smoothed
    n_panels = 3 if cc_val.size else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 3.6))
    batch_label = ("training batches (train mode: batch statistics, moving weights)" if measured.size
                   else "training batches (train mode; not measured like validation)")
    for ax, k in zip(axes[:2], (1, window)):
        if batches.size:
            ax.plot(batches[:, 0], _moving_average(batches[:, 1], k), label=batch_label,
                    color="tab:orange", lw=1, alpha=0.35 if measured.size else 1.0)
        if measured.size:
            ax.plot(measured[:, 0], measured[:, 1], label="training subset (eval mode, as validation)",
                    color="tab:orange", lw=1.4, marker="o" if len(measured) <= 50 else None, ms=3)
        if val.size:
            ax.plot(val[:, 0], val[:, 1], label="validation (eval mode)", color="tab:blue", lw=1.4,
                    marker="o" if len(val) <= 50 else None, ms=3)
        ax.set_xlabel("training step (batches)")
        ax.set_title(("raw" if ax is axes[0] else "batch losses too few to smooth") if k == 1
                     else f"batch losses smoothed (moving average of {k} logged points)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_ylabel("loss")
    axes[1].sharey(axes[0])
    losses = np.concatenate([a[:, 1] for a in (batches, measured, val) if a.size])
    losses = losses[losses > 0]
    if losses.size and losses.max() > 20 * losses.min():  # an early spike would flatten the rest
        for ax in axes[:2]:
            ax.set_yscale("log")
        axes[0].set_ylabel("loss (log scale)")
    if n_panels == 3:
        ax = axes[2]
        if cc_tr.size:
            ax.plot(cc_tr[:, 0], cc_tr[:, 1], label="training subset", color="tab:orange", lw=1.4,
                    marker="o" if len(cc_tr) <= 50 else None, ms=3)
        ax.plot(cc_val[:, 0], cc_val[:, 1], label="validation", color="tab:blue", lw=1.4,
                marker="o" if len(cc_val) <= 50 else None, ms=3)
        b = int(np.argmax(cc_val[:, 1]))
        ax.plot([cc_val[b, 0]], [cc_val[b, 1]], marker="*", ms=12, color="black", ls="none",
                label=f"best validation ({cc_val[b, 1]:.3f})")
        ax.set_xlabel("training step (batches)")
        ax.set_ylabel("CC at 48x48")
        ax.set_title("CC at 48x48 (eval mode)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if picked is not None:
        title = f"{title} (seed {picked})" if title else f"seed {picked}"
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def loss_title(log_path: str | os.PathLike) -> str:
    """A title for a run's loss curves: model, preset and run folder (from ``config.json`` beside the log)."""
    log_path = Path(log_path)
    run = log_path.parent.name or str(log_path.parent)
    try:
        config = json.loads((log_path.parent / "config.json").read_text())
    except (OSError, ValueError):
        return f"training and validation loss ({log_path.stem.removesuffix('-log').removesuffix('.log')})"
    return f"{config.get('model', '?')} training and validation loss (preset {config.get('preset', '?')}, run {run})"


def _moving_average(y: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average that shrinks its window at the ends (no edge dip to zero)."""
    if k <= 1:
        return y
    kernel = np.ones(k)
    return np.convolve(y, kernel, mode="same") / np.convolve(np.ones_like(y), kernel, mode="same")


def plot_filters(weights: np.ndarray, path: str | os.PathLike, *, title: str = "") -> Path:
    """First-layer filters as small RGB tiles (Fig. 3); ``weights`` is (out, 3, k, k).

    Each filter is min-max scaled to [0, 1] on its own (the colours show the
    filter's pattern, not its magnitude relative to the others).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"expected first-layer weights of shape (out, 3, k, k), got {w.shape}")
    plt = _pyplot()
    n = w.shape[0]
    cols = min(n, 8)  # 32 filters -> 4 rows of 8
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.0 * cols, 1.0 * rows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            f = w[i].transpose(1, 2, 0)
            span = f.max() - f.min()
            ax.imshow((f - f.min()) / span if span > 0 else np.zeros_like(f), interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(pad=0.3)
    return _save(fig, path)


def first_conv_weights(checkpoint: str | os.PathLike | Mapping[str, Any]) -> np.ndarray:
    """The first convolution's weights ``(out, 3, k, k)``.

    Parameters
    ----------
    checkpoint : path or mapping
        Anything :func:`salbench.models._weights.resolve_checkpoint` accepts (a
        ``model.safetensors`` file, a checkpoint directory, a training run
        directory), or a state dict (name -> tensor / array). ``conv1.weight``
        is used when present, else the first (by name) 4-D tensor with 3 input
        channels. Only that tensor is read from the file, not the whole network.
    """
    if isinstance(checkpoint, Mapping):
        names = {k: tuple(np.shape(v)) for k, v in checkpoint.items()}
        key = _first_conv_key(names, "state dict")
        value = checkpoint[key]
        return np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)

    from safetensors import SafetensorError, safe_open

    from salbench.models._weights import resolve_checkpoint

    path = resolve_checkpoint(checkpoint)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            names = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
            key = _first_conv_key(names, str(path))
            return fh.get_tensor(key).astype(np.float64)
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable safetensors weights file: {exc}") from None


def _first_conv_key(shapes: Mapping[str, tuple], source: str) -> str:
    if len(shapes.get("conv1.weight", ())) == 4 and shapes["conv1.weight"][1] == 3:
        return "conv1.weight"
    convs = sorted(k for k, shape in shapes.items() if len(shape) == 4 and shape[1] == 3)
    if not convs:
        raise ValueError(f"{source}: no convolution with 3 input channels found")
    return convs[0]
