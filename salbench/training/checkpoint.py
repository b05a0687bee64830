"""Training checkpoints: safetensors tensors + a small JSON, written atomically, no pickle.

A checkpoint is a directory::

    model.safetensors      network weights and buffers; header metadata names the model
    optimizer.safetensors  optimizer tensors (momentum buffers) and RNG states
    state.json             epoch, seed, recipe, optimizer hyper-parameters, history, timings

It is assembled in a hidden temporary directory and renamed into place, and
``checkpoints/latest.json`` (itself written atomically) names the newest
complete one, so a kill at any moment leaves the previous checkpoint usable.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from salbench.io import atomic_path, atomic_write_json
from salbench.models._weights import FORMAT, WEIGHTS_FILE

OPTIM_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
LATEST = "latest.json"


def _save_tensors(path: Path, tensors: dict, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def save_checkpoint(ckdir, name: str, net, optimizer, state: dict[str, Any], metadata: dict[str, str]) -> Path:
    """Write checkpoint ``ckdir/name`` atomically and point ``ckdir/latest.json`` at it.

    Parameters
    ----------
    ckdir : path
        The run's ``checkpoints`` directory.
    name : str
        Checkpoint name (``epoch-0050``, ``best``, ``final``).
    net, optimizer : torch objects
        What to save; optimizer tensors go to safetensors, everything else to JSON.
    state : dict
        JSON-serialisable training state (epoch, seed, recipe, history, ...).
    metadata : dict of str
        Stored in the weights header (``model``, ``trained_on``, ...).
    """
    import torch

    ckdir = Path(ckdir)
    ckdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=ckdir))
    try:
        _save_tensors(tmp / WEIGHTS_FILE, net.state_dict(), {"format": FORMAT, **metadata})
        osd = optimizer.state_dict()
        tensors, plain = {}, {}
        for idx, st in osd["state"].items():
            for key, val in st.items():
                if torch.is_tensor(val):
                    tensors[f"state.{idx}.{key}"] = val
                else:
                    plain[f"{idx}.{key}"] = val
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        _save_tensors(tmp / OPTIM_FILE, tensors, {"format": FORMAT})
        full_state = {**state, "format": FORMAT, "param_groups": osd["param_groups"], "optimizer_scalars": plain}
        atomic_write_json(tmp / STATE_FILE, full_state)
        final = ckdir / name
        if final.exists():  # re-saving "best"/"final": move the old one aside first
            trash = Path(tempfile.mkdtemp(prefix=f".old-{name}.", dir=ckdir))
            os.replace(final, trash / name)
            shutil.rmtree(trash)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    atomic_write_json(ckdir / LATEST, {"name": name, "epoch": state.get("epoch")})
    return final


def latest_checkpoint(ckdir) -> Path | None:
    """The checkpoint ``latest.json`` names, or None if the run has none."""
    p = Path(ckdir) / LATEST
    if not p.is_file():
        return None
    target = Path(ckdir) / json.loads(p.read_text())["name"]
    if not (target / STATE_FILE).is_file():
        raise FileNotFoundError(f"{p} names {target}, which is missing or incomplete")
    return target


def load_checkpoint(path, net, optimizer=None) -> dict[str, Any]:
    """Restore ``net`` (and ``optimizer`` and the torch RNG) from checkpoint ``path``.

    Returns
    -------
    dict
        The checkpoint's ``state.json``.

    Raises
    ------
    FileNotFoundError
        ``path`` is not a checkpoint directory.
    ValueError
        The files do not match ``net`` / ``optimizer``.
    """
    import torch
    from safetensors.torch import load_file

    from salbench.models._weights import read_weights

    path = Path(path)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"not a salbench checkpoint directory (no {STATE_FILE}): {path}")
    state = json.loads((path / STATE_FILE).read_text())
    weights, _ = read_weights(path / WEIGHTS_FILE)
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        raise ValueError(f"{path} does not fit this network: {exc}") from None
    if optimizer is not None:
        tensors = load_file(str(path / OPTIM_FILE))
        opt_state: dict[int, dict[str, Any]] = {}
        for key, val in tensors.items():
            if key.startswith("state."):
                _, idx, name = key.split(".", 2)
                opt_state.setdefault(int(idx), {})[name] = val
        for key, val in state.get("optimizer_scalars", {}).items():
            idx, name = key.split(".", 1)
            opt_state.setdefault(int(idx), {})[name] = val
        optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
        # Give each buffer its parameter's memory format (channels-last convs): the fused
        # step's rounding may depend on strides, and resume must be bit-for-bit.
        for group in optimizer.param_groups:
            for p in group["params"]:
                for key, val in optimizer.state.get(p, {}).items():
                    if torch.is_tensor(val) and val.shape == p.shape:
                        optimizer.state[p][key] = torch.empty_like(p).copy_(val)
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
    return state
