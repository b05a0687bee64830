"""What every prediction source is (a folder of maps, an array file), and its match to a dataset.

``open_predictions(path).match(dataset_names)`` (:mod:`salbench.predictions.opening`)
checks names only (fail fast: a listing of the folder, the header of an array
file); maps are decoded one at a time by :meth:`PredictionMatch.load`, from any
thread. The sources (:mod:`~salbench.predictions.folder`,
:mod:`~salbench.predictions.arrays`) subclass :class:`PredictionSource`; this
module imports neither.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np

from salbench.predictions.matching import Matching, aggregate_fingerprint

__all__ = ["PredictionSource", "PredictionMatch"]


class PredictionSource(ABC):
    """Saliency maps that can be matched to a dataset's image names.

    Attributes
    ----------
    path : Path
        The folder or array file.
    kind : str
        ``"folder"`` or ``"array"``.
    """

    kind: str = ""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def match(self, dataset_names: Sequence[str], *, allow_missing: bool = False,
              allow_extra: bool = False) -> "PredictionMatch":
        """Pair each dataset image with its map, from names alone (nothing is decoded).

        Parameters
        ----------
        dataset_names : sequence of str
            ``dataset.names``, in dataset order.
        allow_missing : bool
            Score only the images that have a map; ``n_skipped`` counts the others.
            Without it, any image without a map is an error.
        allow_extra : bool
            Ignore maps that match no image (e.g. a folder of maps for a whole
            dataset scored on one split); ``n_extra`` counts them. Without it they
            are an error: they usually mean a wrong folder or a naming mismatch.

        Raises
        ------
        ValueError
            One message naming the first few missing and extra names and the
            count of each, or maps that match ambiguously.
        """
        names = [str(n) for n in dataset_names]
        matching = self._match(names, allow_missing=allow_missing, allow_extra=allow_extra)
        return PredictionMatch(self, names, matching)

    @abstractmethod
    def _match(self, names: list[str], *, allow_missing: bool, allow_extra: bool) -> Matching:
        """Names-only matching; ``Matching.entries`` are the handles passed to ``_read``/``_load``."""

    @abstractmethod
    def _load(self, entry) -> np.ndarray:
        """The entry's map as float64 (2-D, finite)."""

    @abstractmethod
    def _read(self, entry) -> tuple[np.ndarray, str]:
        """``(map, fingerprint)`` of the entry from one read."""

    @abstractmethod
    def _fingerprint(self, entry) -> str:
        """sha256 hex digest of the entry (file bytes, or the stored array)."""

    @abstractmethod
    def label(self, entry) -> str:
        """What messages and results files call the entry (a relative file name, ``names[i]``)."""

    def describe(self) -> dict:
        """JSON-ready description: ``{"kind", "path", ...}``."""
        return {"kind": self.kind, "path": str(self.path)}

    def close(self) -> None:
        """Release open files (an array file's handle); a folder holds none."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class PredictionMatch:
    """A prediction source paired with a dataset's images.

    Attributes
    ----------
    source : PredictionSource
    names : tuple of str
        The dataset's image names, as given to :meth:`PredictionSource.match`.
    indices : ndarray of int64
        Dataset indices that have a prediction, ascending (all of them unless
        ``allow_missing``).
    n_skipped : int
        Dataset images without a prediction (non-zero only with ``allow_missing``).
    n_extra : int
        Maps that match no image (non-zero only with ``allow_extra``).
    missing, extra : tuple of str
        Their names.
    """

    def __init__(self, source: PredictionSource, names: list[str], matching: Matching) -> None:
        self.source = source
        self.names = tuple(names)
        self.indices = matching.indices
        self.indices.setflags(write=False)
        self._entry = dict(zip(matching.indices.tolist(), matching.entries))
        self.missing = matching.missing
        self.extra = matching.extra
        self.n_skipped = len(matching.missing)
        self.n_extra = len(matching.extra)

    def __len__(self) -> int:
        return len(self._entry)

    def __contains__(self, k) -> bool:
        return int(k) in self._entry

    def _get(self, k):
        try:
            return self._entry[int(k)]
        except KeyError:
            if not 0 <= int(k) < len(self.names):
                raise IndexError(f"dataset index {k} out of range (dataset has {len(self.names)} images)") from None
            raise KeyError(f"{self.source.path}: image {k} ({self.names[int(k)]!r}) has no prediction "
                           "(skipped with allow_missing)") from None

    def load(self, k: int) -> np.ndarray:
        """The map of dataset image ``k``: exactly the stored values, as a 2-D float64 array.

        An 8-bit sample ``k`` reads as ``k / 255`` and a 16-bit one as ``k / 65535``
        (MATLAB's ``im2double``); float TIFF and ``.npy`` as stored. Thread-safe.

        Raises
        ------
        KeyError
            ``k`` has no prediction (only with ``allow_missing``).
        ValueError
            The file is unreadable or refused by the colour rule (the message names it).
        """
        return self.source._load(self._get(k))

    def read(self, k: int) -> tuple[np.ndarray, str]:
        """``(load(k), fingerprint(k))`` from a single read of the file."""
        return self.source._read(self._get(k))

    def fingerprint(self, k: int) -> str:
        """sha256 of image ``k``'s map: of the file bytes (folders), of the stored array (array files)."""
        return self.source._fingerprint(self._get(k))

    def entry(self, k: int) -> str:
        """The map serving image ``k``: its file name relative to the folder, or ``names[i]`` / ``#i``."""
        return self.source.label(self._get(k))

    def fingerprints(self) -> list[tuple[str, str]]:
        """``(image name, map sha256)`` for every matched image, in dataset order (reads, never decodes)."""
        return [(self.names[k], self.fingerprint(k)) for k in self.indices.tolist()]

    def aggregate_fingerprint(self) -> str:
        """:func:`~salbench.predictions.aggregate_fingerprint` of :meth:`fingerprints`."""
        return aggregate_fingerprint(self.fingerprints())

    def describe(self) -> dict:
        """JSON-ready summary for a results file (the source plus the match counts)."""
        return {**self.source.describe(), "n_matched": len(self), "n_skipped": self.n_skipped,
                "n_extra": self.n_extra}

    def __repr__(self) -> str:
        return (f"PredictionMatch({self.source!r}, matched={len(self)}, skipped={self.n_skipped}, "
                f"extra={self.n_extra})")
