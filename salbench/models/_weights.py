"""Finding and reading model weights: safetensors only, never pickle.

A checkpoint is a directory holding ``model.safetensors`` (weights; header
metadata names the model), ``optimizer.safetensors`` and ``state.json`` (see
:mod:`salbench.training.checkpoint`). Users may point at the directory, at its
``model.safetensors``, or at a training run directory (``best`` if the run kept
one, else ``final``, else the latest periodic checkpoint).
"""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS_FILE = "model.safetensors"
FORMAT = "salbench-checkpoint-1"


def resolve_checkpoint(path) -> Path:
    """The ``model.safetensors`` file that ``path`` designates.

    Raises
    ------
    FileNotFoundError
        Nothing usable at ``path`` (the message says what was looked for).
    """
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.exists():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    if (p / WEIGHTS_FILE).is_file():
        return p / WEIGHTS_FILE
    ckdir = p / "checkpoints"
    for name in ("best", "final"):
        if (ckdir / name / WEIGHTS_FILE).is_file():
            return ckdir / name / WEIGHTS_FILE
    latest = ckdir / "latest.json"
    if latest.is_file():
        target = ckdir / json.loads(latest.read_text())["name"] / WEIGHTS_FILE
        if target.is_file():
            return target
    raise FileNotFoundError(
        f"no checkpoint in {p}: expected {WEIGHTS_FILE}, or a training run directory with "
        f"checkpoints/best, checkpoints/final or checkpoints/latest.json"
    )


def read_weights(path, expect_model: str | None = None):
    """Load ``(state_dict, metadata)`` from the checkpoint at ``path`` (CPU tensors).

    Raises
    ------
    FileNotFoundError
        See :func:`resolve_checkpoint`.
    ValueError
        Not a safetensors file, or weights saved for another model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    f = resolve_checkpoint(path)
    try:
        with safe_open(str(f), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
        state = load_file(str(f))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{f} is not a readable safetensors weights file: {exc}") from None
    saved = meta.get("model")
    if expect_model is not None and saved is not None and saved != expect_model:
        raise ValueError(f"{f} holds weights for model {saved!r}, not {expect_model!r}")
    return state, meta
