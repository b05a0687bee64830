"""The first step of a run: the training and validation arrays, and what they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from salbench.training.recipes import Recipe
from salbench.training.request import TrainingRequest


@dataclass
class TrainingData:
    """Stacked arrays (``x``: ``(N, 3, 96, 96)``, ``y``: ``(N, 48, 48)``) and their identities."""

    x: np.ndarray
    y: np.ndarray
    name: str
    identity: dict
    xv: np.ndarray | None = None
    yv: np.ndarray | None = None
    val_identity: dict | None = None

    def describe(self) -> str:
        """``synthetic/train: 500 images (250 + mirrors) (content 0123456789ab)`` (the weights header)."""
        ident = self.identity
        h = ident.get("content_hash")
        mirrored = f" ({ident['n_base']} + mirrors)" if "n_base" in ident else ""
        return f"{ident.get('name')}/{ident.get('split', '-')}: {ident.get('n_used')} images{mirrored}" + (
            f" (content {str(h)[:12]})" if h else "")


def load_data(request: TrainingRequest, recipe: Recipe) -> TrainingData:
    """Open the training data (mirrored as the recipe says) and the validation data, if any."""
    x, y, name, ident = _arrays(request.dataset, request.split, request.data_dir, request.dataset_options,
                                recipe.max_train, mirror=recipe.mirror)
    val = request.val
    if val is None and isinstance(request.dataset, str) and request.val_split is not None:
        val = request.dataset
    data = TrainingData(x=x, y=y, name=name, identity=ident)
    if val is not None:
        data.xv, data.yv, _, data.val_identity = _arrays(val, request.val_split, request.data_dir,
                                                         request.dataset_options, recipe.max_val, role="val")
    return data


def _stack(records) -> tuple[np.ndarray, np.ndarray]:
    recs = list(records)
    if not recs:
        raise ValueError("empty training data")
    return np.stack([r.x96 for r in recs]), np.stack([r.y48 for r in recs])


def _arrays(ds, split: str | None, data_dir, options: dict, limit: int | None, *, mirror: bool = False,
            role: str = "train"):
    """``(x, y, name, identity)`` from a dataset name, a dataset object, ``(x, y)`` arrays or Records.

    ``limit`` keeps the first images (decoding only those). With ``mirror``, the
    images (one of each mirror pair already present; the base images of a dataset
    that declares its mirrors) are followed by their exact horizontal flips, and
    the identity says what was done (``mirror``, ``n_base``, ``n_used``).
    """
    from salbench.data.mirror import base_indices, mirror_arrays

    identity: dict[str, Any]
    declared = False
    if isinstance(ds, str):
        from salbench.data import get_dataset

        ds = get_dataset(ds, split, data_dir=data_dir, **options)
    if hasattr(ds, "arrays"):
        declared = mirror and bool(getattr(ds, "mirrored", False)) and bool(getattr(ds, "n_base", None))
        n = int(ds.n_base) if declared else len(ds)
        if limit is not None:
            n = min(n, limit)
        if n < len(ds):  # decode only what is used (a split may be 20000 images)
            x, y = _stack(ds[i] for i in range(n))
        else:
            x, y = ds.arrays(("x96", "y48"))
        identity = ds.identity() if hasattr(ds, "identity") else {"name": getattr(ds, "name", "dataset")}
        name = identity.get("name", "dataset")
    elif isinstance(ds, (tuple, list)) and len(ds) == 2 and hasattr(ds[0], "shape"):
        x, y = ds
        identity, name = {"name": "arrays", "n_files": int(len(x))}, "arrays"
    else:  # a sequence of Records
        x, y = _stack(ds)
        identity, name = {"name": "records", "n_files": len(x)}, "records"
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} targets")
    x, y = np.asarray(x), np.asarray(y)
    identity = dict(identity)
    if mirror:
        if np.ndim(x) != 4 or np.ndim(y) not in (2, 3):
            raise ValueError(f"inputs must be (N, 3, 96, 96), got {np.shape(x)}")
        keep, note = base_indices(ds if declared else None, None if declared else x, used=len(x))
        if len(keep) < len(x):
            x, y = x[keep], y[keep]
        identity.update(mirror=note, n_base=int(len(x)))
        x, y = mirror_arrays(x, np.asarray(y).reshape(len(y), 48, 48) if np.ndim(y) == 2 else y)
    elif role == "train":
        identity["mirror"] = "not mirrored (recipe mirror=False)"
    identity["n_used"] = int(len(x))
    return x, y, name, identity
