"""Where the maps of an evaluation come from, as prediction sources of :func:`salbench.scoring.score_stream`.

One streaming loop scores every evaluation; what differs is how a chunk's maps are
produced and recorded in the results entry:

- :class:`StoredMaps` (``batched``): a model predicting a chunk in batches, maps
  already predicted (in memory), or an array file. Each map is stored in the entry
  as it comes, in dataset order, and scored exactly as stored (a model's maps are
  first rounded to float16 by :func:`~salbench.results.quantise_map`).
- :class:`FolderMaps` (per image, read by the workers): a user's folder of maps;
  each map's SHA-256 is taken from the bytes decoded and recorded after scoring.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


def predict_chunk(model, records, batch_size: int, name: str | None = None) -> list[np.ndarray]:
    """``model.predict`` in batches of ``batch_size``; one 2-D float32 map per record.

    Anything else (None, an array of another shape, a list with a 1-D entry) is a
    ValueError naming the model (``name``, its registered name), the shape expected and
    the shape or type returned.
    """
    maps: list[np.ndarray] = []
    for b in range(0, len(records), batch_size):
        batch = records[b:b + batch_size]
        out = model.predict(batch)
        if isinstance(out, np.ndarray) and out.ndim == 3 and out.shape[0] == len(batch) and _numeric(out):
            maps.extend(np.asarray(out, dtype=np.float32))
            continue
        if not isinstance(out, (list, tuple)) or len(out) != len(batch):
            raise _bad_output(model, name, len(batch), f"returned {_what(out)}")
        for k, m in enumerate(out):
            if not (isinstance(m, np.ndarray) or isinstance(m, (list, tuple))) or np.ndim(m) != 2 or not _numeric(m):
                raise _bad_output(model, name, len(batch), f"returned a list of {len(out)} whose item {k} is {_what(m)}")
        maps.extend(np.asarray(m, dtype=np.float32) for m in out)
    return maps


def _numeric(m) -> bool:
    try:
        return np.asarray(m).dtype.kind in "biuf" and min(np.shape(m) or (0,)) > 0
    except (TypeError, ValueError):  # ragged nested lists
        return False


def _what(out) -> str:
    """What a model returned, for a message: ``None``, ``a float32 array of shape (48, 48)``, ``a list of 3``."""
    if out is None:
        return "None"
    if isinstance(out, np.ndarray):
        return f"a {out.dtype} array of shape {out.shape}"
    if isinstance(out, (list, tuple)):
        return f"a {type(out).__name__} of {len(out)}"
    return f"a {type(out).__name__}"


def _bad_output(model, name, n: int, returned: str) -> ValueError:
    from salbench.models import default_registry

    name = name or getattr(model, "name", None) or type(model).__name__
    who = default_registry().plugin_origin(name) if name else None
    card = getattr(model, "card", None)
    size = getattr(model, "output_size", None) or (card.get("output_size") if isinstance(card, dict) else None)
    h, w = (size if size and len(size) == 2 else ("H", "W"))
    return ValueError(f"model {name!r}{f' ({who})' if who else ''}: predict {returned} for a batch of {n} images; "
                      f"expected {n} 2-D maps (an array of shape ({n}, {h}, {w}) or a list of {n} 2-D arrays)")


class ModelMaps:
    """``maps(indices)``: the model's predictions for those dataset images (images decoded here).

    ``predict_s`` accumulates the seconds spent in ``model.predict``.
    """

    def __init__(self, model, dataset, batch_size: int, name: str | None = None):
        self.model, self.dataset, self.batch_size, self.name = model, dataset, batch_size, name
        self.predict_s = 0.0

    def __call__(self, indices: Sequence[int]) -> list[np.ndarray]:
        records = [self.dataset[int(i)] for i in indices]
        t0 = time.perf_counter()
        maps = predict_chunk(self.model, records, self.batch_size, self.name)
        self.predict_s += time.perf_counter() - t0
        return maps


class StoredMaps:
    """A batched prediction source whose maps are stored in the results entry before they are scored.

    Parameters
    ----------
    names : sequence of str
        The dataset's image names (by dataset index).
    writer : ResultWriter
        The entry being written; maps are added in the order the chunks come (dataset order).
    maps : callable
        ``maps(indices) -> list of 2-D maps`` of a chunk.
    quantise : bool
        Round each map to float16 first (a model's maps); else store it exactly (a user's file).
    save_maps : path, optional
        Also write each stored map as an 8-bit PNG named after its stimulus.
    """

    def __init__(self, names: Sequence[str], writer, maps: Callable[[Sequence[int]], list], *, quantise: bool,
                 save_maps=None):
        self.names, self.writer, self.maps, self.quantise = names, writer, maps, quantise
        self.save_maps = None if save_maps is None else Path(save_maps)

    def __call__(self, indices: Sequence[int]) -> list[np.ndarray]:
        from salbench.predictions import map_filename, save_map
        from salbench.results import quantise_map

        stored = []
        for i, m in zip(indices, self.maps(indices)):
            name = self.names[int(i)]
            if self.quantise:
                m = quantise_map(m, f"prediction for {name}")
            q = self.writer.add_prediction(name, m)  # float64, exactly the stored values: what is scored
            if self.save_maps is not None:
                save_map(self.save_maps / map_filename(name), q)
            stored.append(q)
        return stored


class FolderMaps:
    """A per-image prediction source over a matched folder of maps, recording each map's SHA-256.

    Called from the scoring workers; :meth:`record` adds the hashes to the entry afterwards.
    """

    def __init__(self, match):
        self.match = match
        self.sha256: dict[int, str] = {}

    def __call__(self, i: int) -> np.ndarray:
        m, sha = self.match.read(i)  # one read of the file: the hash is of the bytes decoded
        self.sha256[int(i)] = sha
        return m

    def record(self, writer, names: Sequence[str]) -> None:
        """Add every scored map's hash to ``writer``, in the order of the match's indices."""
        for i in self.match.indices.tolist():
            writer.add_map_file(names[i], self.sha256[i])
