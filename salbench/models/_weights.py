"""Finding and reading model weights: safetensors only, never pickle.

A checkpoint is a directory holding ``model.safetensors`` (weights; header
metadata names the model), ``state.json`` (how it was trained, which epoch, why
it was kept) and, for resumable ones, ``optimizer.safetensors`` (see
:mod:`salbench.training.checkpoint`). Users may point at the directory, at its
``model.safetensors``, or at a training run directory.

**The rule for a run directory** (one function, :func:`run_checkpoint`, used by
``--checkpoint RUN_DIR``, ``create_model(..., checkpoint=RUN_DIR)``,
``salbench plot filters``, ``salbench eval``'s implicit quick checkpoint and
:func:`salbench.training.train`'s result): ``checkpoints/best`` when the run keeps
one (its recipe selects by a validation metric, ``select="val_cc48"``: the epoch
with the highest validation CC at 48x48), else ``checkpoints/final`` (recipes
that take the last epoch, like the report's MSE one), else, for an unfinished
run, the checkpoint ``checkpoints/latest.json`` names.
"""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.json"
FORMAT = "salbench-checkpoint-1"


def run_checkpoint(run_dir) -> Path | None:
    """The checkpoint directory a training run designates (see the module docstring), or None."""
    ckdir = Path(run_dir).expanduser() / "checkpoints"
    for name in ("best", "final"):
        if (ckdir / name / WEIGHTS_FILE).is_file():
            return ckdir / name
    latest = ckdir / "latest.json"
    if latest.is_file():
        try:
            target = ckdir / json.loads(latest.read_text())["name"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{latest} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
        if (target / WEIGHTS_FILE).is_file():
            return target
    return None


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
    if (p / STATE_FILE).is_file():  # a completed run's final whose weights were not kept
        run = p.parent.parent
        chosen = run_checkpoint(run) if p.parent.name == "checkpoints" else None
        where = f"; the run designates {chosen} (pass it, or the run directory {run})" if chosen else ""
        raise FileNotFoundError(f"{p.name} keeps no weights ({p}): only its record of the epoch{where}")
    chosen = run_checkpoint(p)
    if chosen is not None:
        return chosen / WEIGHTS_FILE
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


def load_state(net, state: dict, source, model: str) -> None:
    """Load ``state`` into ``net`` strictly; any mismatch is one line naming tensors and shapes.

    Parameters
    ----------
    net : torch module
    state : dict of str to tensor
        As :func:`read_weights` returns it.
    source : path
        Named in the message (the file the tensors came from).
    model : str
        Named in the message.

    Raises
    ------
    ValueError
        Missing or unexpected tensors (the first four of each), or a tensor whose
        shape in the file differs from the shape ``model`` expects (all of them).
    """
    own = net.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{source} does not fit {model}: missing {missing[:4]}, unexpected {unexpected[:4]}")
    wrong = [f"{k} is {tuple(state[k].shape)} in the file, {model} expects {tuple(v.shape)}"
             for k, v in own.items() if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise ValueError(f"{source} does not fit {model}: {'; '.join(wrong)}")
    net.load_state_dict(state)


def training_record(weights_file, metadata: dict | None = None) -> dict | None:
    """How the weights in ``weights_file`` were trained, from the ``state.json`` beside them.

    Returns ``{"model", "preset", "target", "seed", "recipe", "train_data",
    "val_data", "epochs", "checkpoint", "epoch", "selection", "label"}``, or,
    for a bare weights file, what its header ``metadata`` says (``None`` if
    nothing). ``selection`` is ``{"rule", "metric", "value"}``: why this
    checkpoint is the one used.
    """
    f = Path(weights_file)
    state_file = f.parent / STATE_FILE
    meta = dict(metadata or {})
    if not state_file.is_file():
        if not meta.get("model"):
            return None
        rec = {k: meta.get(k) for k in ("model", "preset", "target", "trained_on")}
        rec["label"] = training_label(rec)
        return rec
    try:
        state = json.loads(state_file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{state_file} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    config = state.get("config") or {}
    recipe = config.get("recipe") or {}
    ck = state.get("checkpoint") or {}
    rec = {
        "model": config.get("model", meta.get("model")),
        "preset": config.get("preset", meta.get("preset")),
        "target": recipe.get("target", meta.get("target")),
        "seed": config.get("seed", state.get("seed")),
        "recipe": recipe,
        "train_data": config.get("train_data"),
        "val_data": config.get("val_data"),
        "epochs": recipe.get("epochs"),
        "checkpoint": ck.get("name", f.parent.name),
        "epoch": state.get("epoch"),
        "selection": {k: ck.get(k) for k in ("rule", "metric", "value")},
    }
    rec["label"] = training_label(rec)
    return rec


def training_label(rec: dict) -> str:
    """A short row label: ``shallow_kl, target y/sum(y), preset distribution, seed 0``."""
    target = {"softmax": "softmax(y) (report)", "distribution": "y/sum(y)", "map": "map (MSE)"}.get(
        rec.get("target"), rec.get("target") or "?")
    parts = [str(rec.get("model") or "?"), f"target {target}"]
    if rec.get("preset"):
        parts.append(f"preset {rec['preset']}")
    if rec.get("seed") is not None:
        parts.append(f"seed {rec['seed']}")
    return ", ".join(parts)
