"""Write any dataset as the coursework ``train.pkl`` / ``val.pkl``.

Format written (chosen to match what the coursework code consumes and recorded here):

* ``X``: float32 ``(3, 96, 96)`` in [0, 1] (the record's ``x96``)
* ``y``: float32 ``(48, 48)`` in [0, 1] (the record's ``y48``)
* ``y_original`` (val only): uint8 ``(H, W)`` SALICON-style map
* ``X_original`` (val only): uint8 ``(3, H, W)`` image, channels first like ``X``
* ``file_name``: str

Each file is a pickle (protocol 4) of a list of dicts, written atomically. Reading it back
with the ``salicon-pkl`` dataset reproduces ``x96``, ``y48``, ``y_original`` and the image
bit for bit.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import numpy as np

from salbench.data.base import SaliencyDataset
from salbench.io import atomic_path

FORMAT = {"X": "float32 (3,96,96) 0..1", "y": "float32 (48,48) 0..1", "y_original": "uint8 (H,W)",
          "X_original": "uint8 (3,H,W)", "file_name": "str"}


def to_items(dataset: SaliencyDataset, kind: str, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """The list of dicts of ``train.pkl`` (``kind="train"``) or ``val.pkl`` (``kind="val"``)."""
    items = []
    for i in range(len(dataset)):
        rec = dataset[i]
        item = {"X": np.asarray(rec.x96, dtype=np.float32), "y": np.asarray(rec.y48, dtype=np.float32)}
        if kind == "val":
            if rec.y_original is None or rec.image is None:
                raise ValueError(f"{dataset.name}/{dataset.split}: {rec.name} has no full-size image or "
                                 "y_original, which val.pkl needs")
            item["y_original"] = np.asarray(rec.y_original, dtype=np.uint8)
            item["X_original"] = np.ascontiguousarray(rec.image.transpose(2, 0, 1), dtype=np.uint8)
        item["file_name"] = rec.name
        items.append(item)
        if progress:
            progress(i + 1, len(dataset))
    return items


def write_pickle(items: list, path) -> Path:
    """Pickle ``items`` to ``path`` atomically (no partial file on error)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(items, fh, protocol=4)
    return Path(path)


def export_pickles(datasets: dict[str, SaliencyDataset], out_dir,
                   progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Write ``{kind}.pkl`` for each ``kind -> dataset`` in ``datasets`` (kind: train / val)."""
    out = []
    for kind, ds in datasets.items():
        if kind not in ("train", "val"):
            raise ValueError(f"coursework pickles are train.pkl and val.pkl, not {kind}.pkl")
        out.append(write_pickle(to_items(ds, kind, progress), Path(out_dir) / f"{kind}.pkl"))
    return out
