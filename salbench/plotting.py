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
    return rows


def plot_loss_curves(log: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = "",
                     smooth: int = 20) -> Path:
    """Training and validation loss against training step, raw and smoothed (Fig. 2 / 6).

    Entries are those of ``salbench train``'s ``log.jsonl``: ``kind`` (or
    ``split``) ``train`` / ``val``, ``loss`` and ``step`` (batches seen; else
    ``batch`` or ``epoch``). Validation points are plotted as markers: there
    are few of them. The smoothed panel is a centred moving average over
    ``smooth`` logged training points (at most a quarter of them).
    """
    plt = _pyplot()

    def series(kind):
        pts = []
        for i, r in enumerate(log):
            if (r.get("kind") or r.get("split")) != kind or r.get("loss") in (None, ""):
                continue
            step = next((r[k] for k in ("step", "batch", "epoch") if r.get(k) not in (None, "")), i)
            pts.append((float(step), float(r["loss"])))
        return np.array(sorted(pts), dtype=np.float64).reshape(-1, 2)

    train, val = series("train"), series("val")
    if train.size == 0 and val.size == 0:
        raise ValueError("training log has no 'train' or 'val' entries with a loss")
    window = max(1, min(int(smooth), len(train) // 4))  # a short log is barely smoothed
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, k in zip(axes, (1, window)):
        if train.size:
            ax.plot(train[:, 0], _moving_average(train[:, 1], k), label="training", color="tab:orange", lw=1)
        if val.size:
            ax.plot(val[:, 0], val[:, 1], label="validation", color="tab:blue", lw=1.2,
                    marker="o" if len(val) <= 50 else None, ms=3)
        ax.set_xlabel("training step (batches)")
        ax.set_title(("raw" if ax is axes[0] else "smoothed (too few points)") if k == 1
                     else f"smoothed (moving average of {k} logged points)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("loss")
    losses = np.concatenate([train[:, 1], val[:, 1]])
    losses = losses[losses > 0]
    if losses.size and losses.max() > 20 * losses.min():  # an early spike would flatten the rest
        for ax in axes:
            ax.set_yscale("log")
        axes[0].set_ylabel("loss (log scale)")
    if title:
        fig.suptitle(title, fontsize=10)
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
