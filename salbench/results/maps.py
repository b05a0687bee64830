"""The maps a results entry stores: float16 quantisation, stand-alone predictions files, folder digests.

An entry's predictions file is written by :class:`~salbench.results.ResultWriter`
(format in :mod:`salbench.io.map_store`); the functions here are what evaluation
and tools need around it: the rounding a model's maps get before they are scored
and stored (:func:`quantise_map`), a stand-alone predictions file
(:func:`save_predictions`) and reading one whole (:func:`load_predictions_npz`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from salbench.io.map_store import FORMAT as PREDICTIONS_FORMAT
from salbench.io.map_store import MapStreamWriter, open_stored_predictions


def quantise_map(prediction, name: str = "prediction") -> np.ndarray:
    """One map rounded to float16 (returned as float32), the compact form a results file stores.

    Score ``quantise_map(p)`` rather than ``p``: the predictions file then keeps
    float16 (about three significant digits, plenty for a saliency map) while
    ``salbench check`` recomputes exactly the scored values.

    Raises
    ------
    ValueError
        Not a 2-D map, or values beyond float16's range (or NaN).
    """
    m = np.asarray(prediction)
    if m.ndim != 2:
        raise ValueError(f"{name} has shape {m.shape}; expected a 2-D map")
    with np.errstate(over="ignore"):
        out = m.astype(np.float16).astype(np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} overflows float16 (values beyond 65504) or contains NaN")
    return out


def quantise_predictions(predictions) -> list[np.ndarray] | np.ndarray:
    """:func:`quantise_map` over a stack (N, h, w) or a sequence of 2-D maps."""
    maps = _as_maps(predictions)
    out = [quantise_map(m, f"prediction {i}") for i, m in enumerate(maps)]
    return np.stack(out) if len({m.shape for m in out}) == 1 else out


def _as_maps(predictions) -> list[np.ndarray]:
    """A stack (N, h, w) or a sequence of 2-D maps (sizes may differ) as a list of arrays."""
    maps = [np.asarray(m) for m in predictions]
    for i, m in enumerate(maps):
        if m.ndim != 2:
            raise ValueError(f"prediction {i} has shape {m.shape}; expected a 2-D map")
    if not maps:
        raise ValueError("no predictions to store")
    return maps


def stored_record(file: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``predictions`` block of a results file for a predictions file ``file`` (``MapStreamWriter.finish()``)."""
    dtypes = dict(info["dtypes"])
    return {"kind": "stored", "format": PREDICTIONS_FORMAT, "file": file, "sha256": info["sha256"],
            "size": info["size"], "n": info["n"], "shape": info["shape"],
            "dtype": next(iter(dtypes)) if len(dtypes) == 1 else "mixed", "dtypes": dtypes}


def save_predictions(path: str | os.PathLike, predictions, names: list[str]) -> dict[str, Any]:
    """Write predictions to ``path`` (atomically) and describe them for a results file.

    The stand-alone form of what :class:`~salbench.results.ResultWriter` does inside
    an entry: each map is stored exactly (float16 where that is lossless, else
    float32, else float64), one member per distinct map (a repeated map is stored once).

    Returns
    -------
    dict
        ``{"kind": "stored", "format", "file", "sha256", "size", "n", "shape", "dtype", "dtypes"}``
        (``shape`` is None for maps of different sizes, ``dtype`` "mixed" when they differ).
    """
    from salbench.io import atomic_path

    path = Path(path)
    maps = _as_maps(predictions)
    if len(maps) != len(names):
        raise ValueError(f"{len(maps)} predictions for {len(names)} image names")
    with atomic_path(path, what="predictions file") as tmp:
        with open(tmp, "wb") as fh:
            writer = MapStreamWriter(fh)
            try:
                for name, m in zip(names, maps):
                    writer.add(name, m)
                info = writer.finish()
            except BaseException:
                writer.abort()
                raise
    return stored_record(path.name, info)


def load_predictions_npz(path: str | os.PathLike) -> tuple[list[np.ndarray] | np.ndarray, list[str]]:
    """Read a whole predictions file (either format): ``(maps, names)``.

    Returns an (N, h, w) array, or a list of 2-D arrays when the sizes differ;
    float32 unless a map needed float64. Loads every map: to stream, use
    :func:`salbench.io.map_store.open_stored_predictions`.
    """
    with open_stored_predictions(path) as sp:
        maps = [sp.load(i) for i in range(len(sp))]
        names = list(sp.names)
    if all(np.array_equal(m.astype(np.float32), m) for m in maps):
        maps = [m.astype(np.float32) for m in maps]
    if len({m.shape for m in maps}) == 1:
        return np.stack(maps), names
    return maps, names


def folder_digest(names: Iterable[str], map_sha256: Iterable[str]) -> str:
    """SHA-256 identifying a folder's maps (``predictions.sha256`` of a folder entry).

    :func:`salbench.predictions.aggregate_fingerprint` of ``(name, map sha256)`` in
    scoring order: ``sha256("".join(f"{name}\\t{sha}\\n" ...))``.
    """
    from salbench.predictions.matching import aggregate_fingerprint

    return aggregate_fingerprint(zip(names, map_sha256))
