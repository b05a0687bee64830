"""The lazy dataset interface every loader implements, and the on-disk array cache."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from salbench.data.record import Record
from salbench.io import atomic_path

#: Version of the conventions that turn files into ground truth (coordinate rounding, ...),
#: mixed into the content hash of file-based datasets whose ground truth they change, so that
#: results files and on-disk caches made under other conventions do not match. 2: MATLAB
#: rounding (halves away from zero) of 1-based coordinates.
GT_VERSION = "ground-truth conventions 2"

#: Arrays ``SaliencyDataset.arrays`` can stack (same shape in every record).
STACKABLE = ("x96", "y48")


class DroppedFixationsWarning(UserWarning):
    """Fixations outside their image were dropped (issued once per dataset, with the count)."""


def cache_dir() -> Path:
    """Where salbench caches generated data: ``$SALBENCH_CACHE`` or ``~/.cache/salbench``."""
    env = os.environ.get("SALBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "salbench"


def hash_file(path: str | os.PathLike, h=None, chunk: int = 1 << 20):
    """Feed the bytes of ``path`` into ``h`` (a new sha256 if None) and return it."""
    h = h or hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h


def check_unique_names(names: list[str], where: str) -> None:
    """Raise ValueError naming the repeated entries of ``names`` (results are keyed by name)."""
    if len(set(names)) == len(names):
        return
    seen: dict[str, list[int]] = {}
    for k, n in enumerate(names):
        seen.setdefault(n, []).append(k)
    dups = {n: ks for n, ks in seen.items() if len(ks) > 1}
    shown = "; ".join(f"{n!r} at {ks[:4]}" for n, ks in list(dups.items())[:5])
    raise ValueError(f"{where}: {len(dups)} duplicate image name(s) refused ({shown}"
                     f"{'; ...' if len(dups) > 5 else ''}): results are keyed by image name")


#: An image that loses more than this share of its fixations is named in the warning with a
#: hint: stimuli resized after the recording put many fixations past the right or bottom edge.
SUSPICIOUS_SHARE = 0.1


def dropped_message(where: str, summary: dict[str, Any]) -> str:
    """The one-line warning for :meth:`SaliencyDataset.dropped_fixations_total`'s ``summary``."""
    n, total, k = summary["n_dropped"], summary["n_recorded"], summary["n_images"]
    worst = summary["worst"]
    shown = ", ".join(f"{name}: {d} of {r}" for name, d, r in worst)
    msg = (f"{where}: {n} of {total} fixations lie outside their image and were dropped (not clipped), "
           f"on {k} image(s) (most: {shown})")
    if worst and worst[0][1] > SUSPICIOUS_SHARE * max(worst[0][2], 1):
        msg += ("; an image losing that many was probably resized after its fixations were recorded: give "
                "--option recorded_size=HxW (the recording size) with --option fixation_scale=rescale, or use the "
                "original images")
    return msg


def points_of(record: Record) -> np.ndarray:
    """A record's fixation points, or its fixated pixels when it has only a map."""
    pts = np.asarray(record.fixations, dtype=np.int64).reshape(-1, 2)
    if len(pts) == 0:
        return np.argwhere(record.fixation_map).astype(np.int64)
    return pts


def hash_json(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class SaliencyDataset(Sequence):
    """A lazy ``Sequence[Record]``: an image is decoded only in ``__getitem__``.

    Subclasses set ``name``, ``split``, ``names`` and ``params`` and implement
    ``_load(i)`` and ``_content_hash()``; they should also implement
    ``_ground_truth(i)`` (and, where cheaper, ``_fixation_points(i)``) without decoding
    the image.

    Attributes
    ----------
    name : str
        Registered dataset name (``synthetic``, ``salicon``, ...).
    split : str
        Split name.
    names : list of str
        File name of every image, in dataset order. Assigning a list with a repeated
        name raises ValueError naming the repeats: results are keyed by image name, so
        a dataset with duplicates is refused when it is opened.
    params : dict
        JSON-serialisable options that, with the content, define the dataset.
    location : str or None
        Where the files are (``None`` for generated data that is not cached yet).
    """

    name: str = ""
    split: str = ""
    location: str | None = None
    #: Mixed into the training-array cache key when not empty: ``y48`` is built from the
    #: fixations, and datasets whose points can fall outside their image stacked clipped points
    #: before issue 19 (their content hash, kept for results files, did not change).
    points_rule: str = "outside points dropped"

    def __init__(self) -> None:
        self.names: list[str] = []
        self.params: dict[str, Any] = {}
        self._hash: str | None = None
        self._dropped: dict[int, tuple[int, int]] = {}  # image -> (dropped, recorded), filled as points are read
        self._dropped_warned = False

    @property
    def names(self) -> list[str]:
        return self._names

    @names.setter
    def names(self, value) -> None:
        value = [str(n) for n in value]
        check_unique_names(value, f"{self.name or type(self).__name__}/{self.split}"
                           + (f" ({self.location})" if self.location else ""))
        self._names = value

    # -- Sequence -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def _index(self, index) -> int:
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"{self.name}/{self.split}: index {index} out of range (0..{len(self) - 1})")
        return i

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._load(self._index(index))

    # -- ground truth without the image ---------------------------------------
    def ground_truth(self, index) -> Record:
        """Record ``index`` without its image: ``image``, ``x96`` are None (``y48`` may be).

        Fixations, observers and the fixation map are filled; ``density`` and
        ``y_original`` are lazy where the loader can defer them. Loaders read only the
        ground-truth files (and an image header for its size) where the format allows.
        """
        return self._ground_truth(self._index(index))

    def fixation_points(self, index) -> np.ndarray:
        """``(K, 2)`` int64 0-based ``(row, col)`` fixations of image ``index``, at the evaluated resolution.

        Every recorded fixation (duplicates kept) for point-based datasets; the fixated
        pixels (``argwhere(fixation_map)``) for map-only ones. Reads as little as the
        format allows (no image decoding, no density).
        """
        pts = np.asarray(self._fixation_points(self._index(index)), dtype=np.int64)
        return pts.reshape(-1, 2)

    def _ground_truth(self, i: int) -> Record:
        # Fallback for loaders that cannot separate the ground truth: the full record.
        return self._load(i).replace(image=None, x96=None)

    def _fixation_points(self, i: int) -> np.ndarray:
        return points_of(self._ground_truth(i))

    # -- fixations outside the image ------------------------------------------------------
    def dropped_fixations(self, index) -> int:
        """How many recorded fixations of image ``index`` fell outside it and were dropped.

        Points are never clipped onto the border (docs/datasets.md, "Fixations outside the
        image"). Counted when the image's points are read (``fixation_points``,
        ``ground_truth``, ``ds[i]``) and remembered; otherwise read as cheaply as
        ``fixation_points`` (no image decoding).
        """
        return self._dropped_counts(self._index(index))[0]

    @property
    def _dropped_table(self) -> dict[int, tuple[int, int]]:
        # setdefault: a subclass that skipped SaliencyDataset.__init__ still counts
        return self.__dict__.setdefault("_dropped", {})

    def _dropped_counts(self, i: int) -> tuple[int, int]:
        table = self._dropped_table
        hit = table.get(i)
        if hit is None:
            self._fixation_points(i)  # loaders record the counts while converting the points
            hit = table.get(i)
            if hit is None:  # a loader that does not record them: its ground-truth record says
                meta = self._ground_truth(i).meta
                hit = (int(meta.get("n_dropped", 0)), int(meta.get("n_recorded", 0)))
                table[i] = hit
        return hit

    def _note_dropped(self, i: int, n_dropped: int, n_recorded: int) -> None:
        self._dropped_table[i] = (int(n_dropped), int(n_recorded))

    def dropped_fixations_total(self, indices: Iterable[int] | None = None, *, warn: bool = True) -> dict[str, Any]:
        """Fixations dropped for lying outside their image, over the split (or ``indices``).

        Parameters
        ----------
        indices : iterable of int, optional
            Images to count (default: all). Images whose points were already read cost
            nothing; the others are read as ``fixation_points`` reads them.
        warn : bool
            Issue one :class:`DroppedFixationsWarning` with the count (once per dataset
            object) when any were dropped.

        Returns
        -------
        dict
            ``{"n_dropped", "n_recorded", "n_images"}`` (fixations dropped, fixations
            recorded, images that lost at least one) and ``"worst"``: up to 3
            ``[name, dropped, recorded]`` with the largest dropped share.
        """
        idx = range(len(self)) if indices is None else [self._index(i) for i in indices]
        n_dropped = n_recorded = 0
        hit: list[tuple[float, int, int]] = []
        for i in idx:
            d, r = self._dropped_counts(i)
            n_dropped += d
            n_recorded += r
            if d:
                hit.append((d / max(r, 1), d, i))
        hit.sort(key=lambda t: (-t[0], t[2]))
        worst = [[self.names[i], d, self._dropped_table[i][1]] for _, d, i in hit[:3]]
        out = {"n_dropped": n_dropped, "n_recorded": n_recorded, "n_images": len(hit), "worst": worst}
        if warn and n_dropped and not getattr(self, "_dropped_warned", False):
            self._dropped_warned = True
            warnings.warn(dropped_message(f"{self.name}/{self.split}", out), DroppedFixationsWarning, stacklevel=2)
        return out

    @classmethod
    def available_splits(cls, root: Path | None, **options) -> list[str]:  # pragma: no cover - abstract
        """Splits present (for file-based datasets, under ``root``)."""
        raise NotImplementedError

    def stats(self, i: int) -> dict[str, Any]:
        """``{"shape", "n_fixations", "n_observers"}`` of image ``i`` (from the ground truth, no image decoding)."""
        rec = self.ground_truth(i)
        n_obs = None if rec.observers is None else int(len(np.unique(rec.observers)))
        return {"shape": rec.shape, "n_fixations": int(len(rec.fixations)), "n_observers": n_obs}

    def _load(self, i: int) -> Record:  # pragma: no cover - abstract
        raise NotImplementedError

    def _content_hash(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- identity -----------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """``{"name", "split", "n_files", "content_hash", "params"}`` for results files.

        ``content_hash`` is a sha256 of the file *contents* that define the split (or, for
        generated data, of the generator parameters), so it agrees across clones and
        changes when the data does.
        """
        if self._hash is None:
            self._hash = self._content_hash()
        return {"name": self.name, "split": self.split, "n_files": len(self),
                "content_hash": self._hash, "params": dict(self.params)}

    # -- training arrays ----------------------------------------------------
    def arrays(self, keys: Iterable[str] = STACKABLE, *, cache: bool = True) -> tuple[np.ndarray, ...]:
        """Stack per-record arrays (``x96``, ``y48``) over the whole split, in ``keys`` order.

        The stack is cached as ``.npy`` under :func:`cache_dir`, keyed by the dataset's
        content hash, written atomically (an interrupted build leaves nothing behind) and
        memory-mapped read-only when loaded again.

        Returns
        -------
        tuple of ndarray
            One ``(N, ...)`` array per key.
        """
        keys = tuple(keys)
        bad = [k for k in keys if k not in STACKABLE]
        if bad:
            raise ValueError(f"cannot stack {bad}: only {STACKABLE} have one shape across records")
        if len(self) == 0:
            raise ValueError(f"{self.name}/{self.split} has no images")
        paths = {k: self._array_cache_path(k) for k in keys} if cache else {}
        if paths and all(p.is_file() for p in paths.values()):
            return tuple(np.load(paths[k], mmap_mode="r") for k in keys)
        first = self[0]
        out = {k: np.empty((len(self),) + getattr(first, k).shape, getattr(first, k).dtype) for k in keys}
        for i in range(len(self)):
            rec = first if i == 0 else self[i]
            for k in keys:
                out[k][i] = getattr(rec, k)
        for k, p in paths.items():
            with atomic_path(p) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, out[k])
        return tuple(out[k] for k in keys)

    def _array_cache_path(self, key: str) -> Path:
        ident = self.identity()
        tag = hash_json({**ident, "points_rule": self.points_rule} if self.points_rule else ident)[:16]
        return cache_dir() / "arrays" / f"{self.name}-{self.split}-{tag}-{key}.npy"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}/{self.split}: {len(self)} images>"
