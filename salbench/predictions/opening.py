"""Open a path as a prediction source: a folder of maps, or a ``.npy``/``.npz``/``.pkl`` array file."""

from __future__ import annotations

import os
from pathlib import Path

from salbench.predictions.arrays import ArraySource
from salbench.predictions.decode import IMAGE_SUFFIXES
from salbench.predictions.folder import FolderSource
from salbench.predictions.source import PredictionSource

__all__ = ["ARRAY_SUFFIXES", "open_predictions"]

ARRAY_SUFFIXES = (".npy", ".npz", ".pkl", ".pickle")


def open_predictions(path: str | os.PathLike) -> PredictionSource:
    """Open predictions for matching: a directory of maps, or a ``.npy``/``.npz``/``.pkl`` file.

    Only the directory's existence or the file's header is checked here (fail
    fast, before any dataset is loaded); see :meth:`PredictionSource.match`.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (the message names it).
    ValueError
        ``path`` is a single image (a folder of maps is expected), has an unknown
        extension, or is an unreadable array file.
    """
    path = Path(path)
    if path.is_dir():
        return FolderSource(path)
    if not path.exists():
        looks_dir = str(path).endswith(("/", os.sep)) or not path.suffix
        raise FileNotFoundError(
            f"predictions not found: {path} (expected "
            + ("a directory of maps" if looks_dir else "a directory of maps or a .npy/.npz/.pkl file") + ")")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        raise ValueError(f"{path} is a single image; predictions are a directory holding one map per stimulus "
                         f"(e.g. {path.parent}) or a .npy/.npz/.pkl array file")
    if suffix in ARRAY_SUFFIXES:
        return ArraySource(path)
    raise ValueError(f"{path}: unknown predictions format {suffix or '(no extension)'!r}; give a directory of maps "
                     "(.png/.jpg/.tif/.npy) or a .npy/.npz/.pkl file")

