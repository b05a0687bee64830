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


def plot_panels(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = "") -> Path:
    """Image | ground truth | prediction, one row per image.

    Each row is ``{"image", "density", "prediction", "label"}``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(len(rows), 3, figsize=(9.6, 2.6 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        shape = row["density"].shape
        panels = [row["image"] if row["image"] is not None else np.zeros(shape),
                  row["density"], upsample_for_display(row["prediction"], shape)]
        for ax, panel, name in zip(ax_row, panels, ("image", "ground truth", "prediction")):
            ax.imshow(panel, cmap=None if panel.ndim == 3 else "gray")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name if name != "prediction" else f"prediction ({row['label']})", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
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

    Entries need ``split`` (``train`` / ``val``), ``loss`` and a step
    (``step``, ``batch`` or ``epoch``).
    """
    plt = _pyplot()

    def series(split):
        pts = [(float(r.get("step", r.get("batch", r.get("epoch", i)))), float(r["loss"]))
               for i, r in enumerate(log) if r.get("split") == split and r.get("loss") not in (None, "")]
        return np.array(pts, dtype=np.float64).reshape(-1, 2)

    train, val = series("train"), series("val")
    if train.size == 0 and val.size == 0:
        raise ValueError("training log has no entries with split 'train' or 'val' and a loss")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, k in zip(axes, (1, max(1, smooth))):
        for pts, label, colour in ((train, "train", "tab:orange"), (val, "validation", "tab:blue")):
            if pts.size:
                y = pts[:, 1] if k == 1 or len(pts) < k else np.convolve(pts[:, 1], np.ones(k) / k, mode="same")
                ax.plot(pts[:, 0], y, label=label, color=colour, lw=1)
        ax.set_xlabel("training step (batches)")
        ax.set_ylabel("loss")
        ax.set_title("raw" if k == 1 else f"smoothed (window {k})", fontsize=9)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_filters(weights: np.ndarray, path: str | os.PathLike, *, title: str = "") -> Path:
    """First-layer filters as small RGB tiles (Fig. 3); ``weights`` is (out, 3, k, k)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"expected first-layer weights of shape (out, 3, k, k), got {w.shape}")
    plt = _pyplot()
    n = w.shape[0]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            f = w[i].transpose(1, 2, 0)
            span = f.max() - f.min()
            ax.imshow((f - f.min()) / span if span > 0 else np.zeros_like(f), interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def first_conv_weights(checkpoint: str | os.PathLike) -> np.ndarray:
    """The first convolution's weights (out, 3, k, k) from a safetensors checkpoint."""
    from safetensors.numpy import load_file

    p = Path(checkpoint)
    if p.is_dir():
        files = sorted(p.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"{p}: no .safetensors file in checkpoint directory")
        p = files[-1]
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such checkpoint")
    tensors = load_file(str(p))
    convs = [(k, v) for k, v in tensors.items() if v.ndim == 4 and v.shape[1] == 3]
    if not convs:
        raise ValueError(f"{p}: no convolution with 3 input channels found")
    return sorted(convs)[0][1].astype(np.float64)
