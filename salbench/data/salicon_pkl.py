"""The coursework pickles ``train.pkl`` / ``val.pkl``, read only through the restricted unpickler.

``train.pkl``: list of dicts ``X`` (3x96x96), ``y`` (48x48), ``file_name``.
``val.pkl``: list of dicts ``X``, ``y``, ``y_original`` (480x640), ``X_original``
(3x480x640), ``file_name``. The dtype and value range of each array key (``uint8``,
``float 0..1`` or ``float 0..255``) is detected over the whole file and recorded in
``params["formats"]`` and each record's ``meta``; keys beyond these are kept in
``meta["extra"]``.

Record fields:

* val: ``image`` = ``X_original`` as (H, W, 3) uint8, ``y_original`` as uint8,
  ``fixation_map = y_original > 0`` (the coursework script's convention),
  ``density = y_original / 255``, ``x96`` / ``y48`` from ``X`` / ``y`` in [0, 1] float32,
  ``fixations`` empty (the pickles hold none).
* train (no full-size data): ``image`` None, ``y_original`` None, metrics at 48x48:
  ``fixation_map = y > 0`` and ``density = y / max(y)``.

Repeated ``file_name`` values are refused (results are keyed by image name) unless
``duplicate_names="number"``: the k-th occurrence (k >= 2) of ``a.jpg`` is then named
``a#k.jpg`` (in file order), e.g. for a ``train.pkl`` whose mirrored copies kept their
original's name.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from salbench.data.base import SaliencyDataset, hash_file
from salbench.data.options import choice_option
from salbench.data.record import Record
from salbench.io import UnsafePickleError, safe_load_pickle

SPLITS = ("train", "val")
REQUIRED = {"train": ("X", "y", "file_name"), "val": ("X", "y", "y_original", "X_original", "file_name")}
ARRAY_KEYS = ("X", "y", "y_original", "X_original")


def detect_format(arrays) -> str:
    """``"uint8"``, ``"float 0..1"`` or ``"float 0..255"`` for a collection of arrays."""
    first = np.asarray(arrays[0])
    if first.dtype == np.uint8:
        return "uint8"
    if first.dtype.kind not in "fiu":
        raise ValueError(f"arrays of dtype {first.dtype} are not images")
    peak = max(float(np.max(a)) for a in arrays)
    return "float 0..1" if peak <= 1.0 + 1e-6 else "float 0..255"


def to_unit_float32(a: np.ndarray, fmt: str) -> np.ndarray:
    """Convert to float32 in [0, 1] (a float32 0..1 array is returned bit-exact)."""
    a = np.asarray(a)
    if fmt == "float 0..1":
        return a.astype(np.float32, copy=False)
    return (a.astype(np.float32) / np.float32(255)).astype(np.float32)


def to_uint8(a: np.ndarray, fmt: str) -> np.ndarray:
    """Convert to uint8 0..255 (rounding floats)."""
    a = np.asarray(a)
    if fmt == "uint8":
        return a
    scale = 255.0 if fmt == "float 0..1" else 1.0
    return np.clip(np.rint(a.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def number_duplicates(names: list[str]) -> list[str]:
    """Rename the k-th occurrence (k >= 2) of ``stem.ext`` to ``stem#k.ext``, keeping every name unique."""
    taken, count, out = set(names), {}, []
    for n in names:
        count[n] = count.get(n, 0) + 1
        if count[n] == 1:
            out.append(n)
            continue
        stem, dot, ext = n.rpartition(".") if "." in n else (n, "", "")
        k = count[n]
        while (new := f"{stem}#{k}{dot}{ext}") in taken:
            k += 1
        taken.add(new)
        out.append(new)
    return out


@functools.lru_cache(maxsize=2)
def _load(path: str, mtime_ns: int, size: int, split: str):
    try:
        items = safe_load_pickle(path)
    except UnsafePickleError as exc:  # a ValueError, so the CLI reports it in one line (exit 2)
        raise ValueError(f"unsafe pickle refused (nothing was executed): {exc}") from None
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: expected a non-empty list of dicts, got {type(items).__name__}")
    for k, it in enumerate(items):
        if not isinstance(it, dict):
            raise ValueError(f"{path}: item {k} is a {type(it).__name__}, not a dict")
        missing = [key for key in REQUIRED[split] if key not in it]
        if missing:
            raise ValueError(f"{path}: item {k} lacks {missing} (a {split}.pkl item needs {list(REQUIRED[split])})")
    shapes = {"X": (3, 96, 96), "y": (48, 48)}
    formats = {}
    for key in ARRAY_KEYS:
        if key not in items[0]:
            continue
        arrays = [np.asarray(it[key]) for it in items]
        for k, a in enumerate(arrays):
            want = shapes.get(key)
            if (want and a.shape != want) or (key == "y_original" and a.ndim != 2) or \
                    (key == "X_original" and (a.ndim != 3 or 3 not in (a.shape[0], a.shape[-1]))):
                raise ValueError(f"{path}: item {k} {key} has shape {a.shape}")
        try:
            formats[key] = detect_format(arrays)
        except ValueError as exc:
            raise ValueError(f"{path}: {key}: {exc}") from None
    return items, formats


class SaliconPickleDataset(SaliencyDataset):
    """The coursework ``train.pkl`` / ``val.pkl`` in ``root`` (see the module docstring)."""

    name = "salicon-pkl"
    points_rule = ""  # no point can fall outside: the array cache key is what it was

    def __init__(self, root, split: str = "val", *, duplicate_names: str = "refuse"):
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"salicon-pkl has splits {list(SPLITS)}, not {split!r}")
        choice_option(f"salicon-pkl/{split}", "duplicate_names", duplicate_names, ("refuse", "number"))
        root = Path(root)
        self.path = root / f"{split}.pkl" if root.is_dir() else root
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file (salicon-pkl reads train.pkl / val.pkl)")
        st = self.path.stat()
        self._items, self.formats = _load(str(self.path), st.st_mtime_ns, st.st_size, split)
        self.split = split
        self.location = str(self.path)
        names = [str(it["file_name"]) for it in self._items]
        self.names = number_duplicates(names) if duplicate_names == "number" else names
        self.params = {"formats": dict(self.formats)}
        if duplicate_names == "number":
            self.params["duplicate_names"] = "number"

    @classmethod
    def available_splits(cls, root, **_options) -> list[str]:
        return [s for s in SPLITS if (Path(root) / f"{s}.pkl").is_file()]

    def _content_hash(self) -> str:
        return hash_file(self.path).hexdigest()

    def stats(self, i: int) -> dict:
        it = self._items[i]
        shape = np.asarray(it["y_original"]).shape if "y_original" in it else np.asarray(it["y"]).shape
        return {"shape": shape, "n_fixations": 0, "n_observers": None}

    def _dropped_counts(self, i: int) -> tuple[int, int]:
        return 0, 0  # the pickles hold maps, not points: nothing can fall outside

    def _ground_truth(self, i: int) -> Record:
        return self._load(i, with_image=False)

    def _load(self, i: int, with_image: bool = True) -> Record:
        it, fm = self._items[i], self.formats
        x96 = to_unit_float32(it["X"], fm["X"]) if with_image else None
        y48 = to_unit_float32(it["y"], fm["y"])
        extra = {k: v for k, v in it.items() if k not in REQUIRED["val"]}
        meta = {"source": str(self.path), "index": i, "formats": dict(fm), "extra": extra}
        if "y_original" in it:
            y_original = to_uint8(it["y_original"], fm["y_original"])
            image = None
            if "X_original" in it and with_image:
                xo = to_uint8(it["X_original"], fm["X_original"])
                image = np.ascontiguousarray(xo.transpose(1, 2, 0)) if xo.shape[0] == 3 and xo.shape[-1] != 3 else xo
            fmap = y_original > 0
            density = y_original / 255.0
        else:
            image, y_original = None, None
            fmap = y48 > 0
            peak = float(y48.max())
            density = y48.astype(np.float64) / peak if peak > 0 else y48.astype(np.float64)
        return Record(name=self.names[i], image=image, fixations=np.zeros((0, 2), np.int64), observers=None,
                      fixation_map=fmap, density=density, x96=x96, y48=y48, y_original=y_original, meta=meta)
