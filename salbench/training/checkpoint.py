"""Training checkpoints: safetensors tensors + a small JSON, written atomically, no pickle.

A checkpoint is a directory::

    model.safetensors      network weights and buffers; header metadata names the model
                           (absent from a completed run's ``final`` when the run designates
                           ``best``: see :func:`salbench.training.runs.retire_resume_state`)
    optimizer.safetensors  optimizer tensors (momentum buffers) and RNG states (resumable ones
                           only, and only while the run is unfinished)
    state.json             epoch, seed, recipe, optimizer hyper-parameters, history, timings,
                           which checkpoint this is and why it was kept (``checkpoint``), whether
                           it holds ``weights`` and is ``resumable``

Weights files are written with a canonical header (:func:`write_safetensors`), so
identical weights give byte-identical files: the file's SHA-256 identifies the model.

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
from salbench.models._weights import FORMAT, STATE_FILE, WEIGHTS_FILE

OPTIM_FILE = "optimizer.safetensors"
LATEST = "latest.json"


_DTYPES = {  # torch dtype name -> safetensors dtype code
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
}


def write_safetensors(path: Path, tensors: dict, metadata: dict[str, str]) -> None:
    """Write a safetensors file whose bytes depend only on ``tensors`` and ``metadata``.

    ``safetensors.torch.save_file`` stores the metadata in a hash map, so the header's
    key order (and the file's hash) changes from one save to the next; here the header
    is canonical JSON (metadata and tensors sorted by name, compact separators,
    space-padded to 8 bytes as the format does) and the tensors are laid out in name
    order. Any safetensors reader loads it. Written atomically, tensor by tensor (no
    second copy of a 300 MB network in memory).
    """
    import torch

    header: dict = {"__metadata__": {str(k): str(v) for k, v in sorted(metadata.items())}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        code = _DTYPES.get(str(t.dtype).removeprefix("torch."))
        if code is None:
            raise ValueError(f"cannot store tensor {name} of dtype {t.dtype} in safetensors")
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        blobs.append(t)
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":"), sort_keys=False).encode()
    raw += b" " * (-len(raw) % 8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(len(raw).to_bytes(8, "little"))
            fh.write(raw)
            for t in blobs:
                if t.numel():  # little-endian bytes, written from the tensor's own memory
                    fh.write(t.reshape(-1).view(torch.uint8).numpy())


def save_checkpoint(ckdir, name: str, net, optimizer, state: dict[str, Any], metadata: dict[str, str]) -> Path:
    """Write checkpoint ``ckdir/name`` atomically; a resumable one becomes ``ckdir/latest.json``'s.

    Parameters
    ----------
    ckdir : path
        The run's ``checkpoints`` directory.
    name : str
        Checkpoint name (``epoch-0050``, ``best``, ``final``).
    net : torch module, state dict or None
        The weights and buffers to save (a state dict: e.g. an in-memory copy of the
        best epoch's). ``None`` writes ``state.json`` only (a completed run's ``final``
        when the run designates ``best``: the record of the last epoch).
    optimizer : torch optimizer or None
        With one, its tensors and the RNG states go to ``optimizer.safetensors`` and
        the checkpoint can be resumed (``latest.json`` then names it); ``None`` writes
        weights and ``state.json`` only (``best``: for evaluation, not resumption).
    state : dict
        JSON-serialisable training state (epoch, seed, recipe, history, ...).
    metadata : dict of str
        Stored in the weights header (``model``, ``trained_on``, ...). Nothing that
        varies between identical trainings belongs here: the weights file's hash is
        the model's identity in results files.
    """
    import torch

    ckdir = Path(ckdir)
    ckdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=ckdir))
    try:
        if net is not None:
            weights = net if isinstance(net, dict) else net.state_dict()
            write_safetensors(tmp / WEIGHTS_FILE, weights, {"format": FORMAT, **metadata})
        full_state = {**state, "format": FORMAT, "weights": net is not None, "resumable": optimizer is not None}
        if optimizer is not None:
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
            write_safetensors(tmp / OPTIM_FILE, tensors, {"format": FORMAT})
            full_state.update(param_groups=osd["param_groups"], optimizer_scalars=plain)
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
    if optimizer is not None:
        atomic_write_json(ckdir / LATEST, {"name": name, "epoch": state.get("epoch")})
    return final


def strip_optimizer(path) -> None:
    """Make checkpoint ``path`` weights-only: ``state.json`` says not resumable, then the optimizer goes.

    In that order, so that a kill in between leaves a file that the next call removes,
    never a ``state.json`` that claims state which is gone.
    """
    path = Path(path)
    state = read_state(path)
    if state.get("resumable") or any(k in state for k in ("param_groups", "optimizer_scalars")):
        for k in ("param_groups", "optimizer_scalars"):
            state.pop(k, None)
        atomic_write_json(path / STATE_FILE, {**state, "resumable": False})
    (path / OPTIM_FILE).unlink(missing_ok=True)


def drop_weights(path) -> None:
    """Keep only checkpoint ``path``'s ``state.json`` (marked ``weights: false``)."""
    path = Path(path)
    state = read_state(path)
    if state.get("weights", True):
        atomic_write_json(path / STATE_FILE, {**state, "weights": False})
    (path / WEIGHTS_FILE).unlink(missing_ok=True)


def read_state(path) -> dict[str, Any]:
    """A checkpoint's ``state.json``; a truncated or corrupt file raises one clear ``ValueError``."""
    f = Path(path) / STATE_FILE
    try:
        state = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{f} is truncated or corrupt ({type(exc).__name__}: {exc}); "
                         f"delete this checkpoint to resume from an earlier one") from None
    if not isinstance(state, dict):
        raise ValueError(f"{f} is not a salbench checkpoint state (a JSON object)")
    return state


def latest_checkpoint(ckdir) -> Path | None:
    """The checkpoint ``latest.json`` names, or None if the run has none."""
    p = Path(ckdir) / LATEST
    if not p.is_file():
        return None
    try:
        target = Path(ckdir) / json.loads(p.read_text())["name"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{p} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
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
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from salbench.models._weights import load_state, read_weights

    path = Path(path)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"not a salbench checkpoint directory (no {STATE_FILE}): {path}")
    state = read_state(path)
    weights, _ = read_weights(path / WEIGHTS_FILE)
    load_state(net, weights, path / WEIGHTS_FILE, "this network")
    if optimizer is not None:
        f = path / OPTIM_FILE
        if not f.is_file():
            raise ValueError(f"{path} holds no optimizer state ({OPTIM_FILE}): it cannot be resumed")
        try:
            tensors = load_file(str(f))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ValueError(f"{f} is truncated or corrupt ({exc}); delete this checkpoint to resume "
                             f"from an earlier one") from None
        missing = [k for k in ("param_groups", "optimizer_scalars") if k not in state]
        if missing or "rng.torch" not in tensors:
            raise ValueError(f"{path}: incomplete optimizer state (missing {missing or ['rng.torch']})")
        opt_state: dict[int, dict[str, Any]] = {}
        for key, val in tensors.items():
            if key.startswith("state."):
                _, idx, name = key.split(".", 2)
                opt_state.setdefault(int(idx), {})[name] = val
        for key, val in state.get("optimizer_scalars", {}).items():
            idx, name = key.split(".", 1)
            opt_state.setdefault(int(idx), {})[name] = val
        try:
            optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ValueError(f"{f} does not fit this optimizer: {exc}") from None
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
