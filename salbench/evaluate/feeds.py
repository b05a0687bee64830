"""Where the maps of an evaluation come from, as prediction sources of :func:`salbench.scoring.score_stream`.

One streaming loop scores every evaluation; what differs is how a chunk's maps are
produced and recorded in the results entry:

- :class:`StoredMaps` (``batched``): a model predicting a chunk in batches, maps
  already predicted (in memory), or an array file. Each map is stored in the entry
  as it comes, in dataset order, and scored exactly as stored (a model's maps are
  first rounded to float16 by :func:`~salbench.results.quantise_map`).
- :class:`FolderMaps` (per image, read by the workers): a user's folder of maps;
  each map's SHA-256 is taken from the bytes decoded and recorded after scoring.
- :class:`StoredLogDensities` (``batched``, metric-specific maps): a density model's
  log-densities (or a ``--density`` file's), stored in the entry on the first of the two
  passes and checked to be the same on the second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


def predict_chunk(model, records, batch_size: int, name: str | None = None, *, method: str = "predict",
                  dtype=np.float32) -> list[np.ndarray]:
    """``model.<method>`` (``predict``) in batches of ``batch_size``; one 2-D ``dtype`` map per record.

    Anything else (None, an array of another shape, a list with a 1-D entry) is a
    ValueError naming the model (``name``, its registered name), the shape expected and
    the shape or type returned.
    """
    maps: list[np.ndarray] = []
    for b in range(0, len(records), batch_size):
        batch = records[b:b + batch_size]
        out = getattr(model, method)(batch)
        if isinstance(out, np.ndarray) and out.ndim == 3 and out.shape[0] == len(batch) and _numeric(out):
            maps.extend(np.asarray(out, dtype=dtype))
            continue
        if not isinstance(out, (list, tuple)) or len(out) != len(batch):
            raise _bad_output(model, name, len(batch), f"returned {_what(out)}")
        for k, m in enumerate(out):
            if not (isinstance(m, np.ndarray) or isinstance(m, (list, tuple))) or np.ndim(m) != 2 or not _numeric(m):
                raise _bad_output(model, name, len(batch), f"returned a list of {len(out)} whose item {k} is {_what(m)}")
        maps.extend(np.asarray(m, dtype=dtype) for m in out)
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

    ``predict_s`` accumulates the seconds spent in ``model.predict`` (``log_density``: in
    ``model.predict_log_density``, float64 log-densities).
    """

    def __init__(self, model, dataset, batch_size: int, name: str | None = None, *, log_density: bool = False):
        self.model, self.dataset, self.batch_size, self.name = model, dataset, batch_size, name
        self.method, self.dtype = ("predict_log_density", np.float64) if log_density else ("predict", np.float32)
        self.predict_s = 0.0

    def __call__(self, indices: Sequence[int]) -> list[np.ndarray]:
        records = [self.dataset[int(i)] for i in indices]
        t0 = time.perf_counter()
        maps = predict_chunk(self.model, records, self.batch_size, self.name, method=self.method, dtype=self.dtype)
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


def quantise_log_density(log_density, name: str) -> np.ndarray:
    """A model's log-density rounded to float32 (returned as float64): what an entry stores and scores.

    float32 keeps the density to ~1e-7 relative (float16, a saliency map's storage, would move
    each pixel's probability by up to 0.4%); the scorer renormalises the stored values exactly.

    Raises
    ------
    ValueError
        Not a finite 2-D map within float32's range.
    """
    m = np.asarray(log_density)
    if m.ndim != 2:
        raise ValueError(f"log-density of {name} has shape {m.shape}; expected a 2-D map")
    with np.errstate(over="ignore", invalid="ignore"):
        out = m.astype(np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"log-density of {name} is not finite within float32 (a pixel of probability 0 is a large "
                         "negative finite number, not -inf)")
    return out.astype(np.float64)


class StoredLogDensities:
    """The batched source of metric-specific maps: log-densities stored on the first pass, re-checked on the second.

    :func:`~salbench.scoring.score_stream` reads every image twice (the sAUC baseline, then
    the scores). The first time an image comes, its log-density (float32-rounded for a model,
    exactly as given for a file) is added to the entry; the second time the same values must
    come back (a model must be deterministic), else a ``ValueError`` names the image. Memory
    holds a digest per image, never the maps.

    Parameters
    ----------
    names : sequence of str
        The dataset's image names (by dataset index).
    writer : ResultWriter
        The entry being written.
    maps : callable
        ``maps(indices) -> list of 2-D log-densities`` of a chunk.
    quantise : bool
        Round each to float32 first (a model's); else store it exactly (a user's file).
    """

    def __init__(self, names: Sequence[str], writer, maps: Callable[[Sequence[int]], list], *, quantise: bool):
        self.names, self.writer, self.maps, self.quantise = names, writer, maps, quantise
        self._digest: dict[str, str] = {}

    def __call__(self, indices: Sequence[int]) -> list[np.ndarray]:
        import hashlib

        out = []
        for i, m in zip(indices, self.maps(indices)):
            name = self.names[int(i)]
            m = quantise_log_density(m, name) if self.quantise else np.asarray(m)
            if name not in self._digest:
                stored = self.writer.add_prediction(name, m)  # float64, exactly the stored values
                self._digest[name] = hashlib.sha256(stored.tobytes()).hexdigest()
            else:
                stored = np.asarray(m, dtype=np.float64)
                if hashlib.sha256(stored.tobytes()).hexdigest() != self._digest[name]:
                    raise ValueError(f"the log-density of {name} differs between the two passes of metric-specific "
                                     "maps: the model must predict the same density every time it is asked")
            out.append(stored)
        return out


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
