"""Array files of predictions: ``.npy``, ``.npz``, ``.pkl``.

Two readers share the formats below. :func:`load_predictions` (the original,
eager one) returns every map stacked in file order. :class:`ArraySource` (through
``open_predictions``) reads only the header when opened, matches maps to images
by the ``names`` the file carries -- or by order when it carries none -- and
decodes one map at a time (a ``.npy`` file is memory-mapped).

Formats
-------
- ``.pkl`` / ``.pickle``: the original coursework script's format, a list of
  flattened outputs (2304 values each -> 48x48) or of 2-D maps. Read with the
  restricted unpickler (plain containers, numbers, strings, numpy arrays only).
- ``.npy``: an array ``(N, H, W)`` (or ``(N, 2304)``, reshaped to 48x48 maps).
- ``.npz``: one array as above (the key ``predictions`` if there are several),
  optionally with ``names`` (one image name per map), or ragged maps
  ``prediction_00000``, ``prediction_00001``, ... beside ``names`` (salbench's
  first predictions format); or a ``salbench.predictions/3 (or /2)`` archive (one member
  per map plus ``index.json`` with the names: what ``salbench eval --model``
  writes now, read through :mod:`salbench.io.map_store`).
- ``.pkl`` holding a dict ``{"predictions": [...], "names": [...]}`` is matched by name too.

Matching (``ArraySource.match``): with ``names``, each map serves the image whose
name (or name without extension) equals it, as for a folder; without, map ``i``
serves image ``i`` and the counts must be equal (``allow_missing`` cannot apply
to an order match: the file must carry names).
"""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import numpy as np

from salbench.io import UnsafePickleError, safe_load_pickle
from salbench.io.array_limits import ArrayTooLarge, check_bytes, check_npy_file, check_npz_member

UNLIMITED = float("inf")  # a memory-mapped file: only its consistency is checked, not its size
from salbench.predictions.matching import Matching, array_fingerprint, match_keys
from salbench.predictions.source import PredictionSource

__all__ = ["load_predictions", "as_maps", "ArraySource"]


def as_maps(obj, source: str = "predictions") -> np.ndarray:
    """Convert a list of flat square vectors or 2-D maps (or an array) to ``(N, h, w)`` float64.

    The float64 stack must fit in :func:`salbench.io.array_limits.max_array_bytes`; that is
    checked from the first map's size before the stack is allocated, and the maps are
    converted one at a time into it (a pickle can reference one large array many times).
    """
    if isinstance(obj, np.ndarray):
        items = obj if obj.ndim >= 2 else None
        if items is None:
            raise ValueError(f"{source}: expected an array (N, H, W) or (N, h*w), got shape {obj.shape}")
    elif isinstance(obj, (list, tuple)):
        items = obj
    else:
        raise ValueError(f"{source}: expected a list of maps, got {type(obj).__name__}")
    if len(items) == 0:
        raise ValueError(f"{source}: contains no predictions")
    out = None
    for i in range(len(items)):
        a = _as_map(items[i], i, source)
        if out is None:
            check_bytes(len(items) * a.size * 8, f"{source}: {len(items)} maps of {a.shape[0]}x{a.shape[1]} as float64")
            out = np.empty((len(items),) + a.shape)
        elif a.shape != out.shape[1:]:
            raise ValueError(f"{source}: predictions have different shapes {sorted({out.shape[1:], a.shape})} "
                             f"(prediction {i} is {a.shape[0]}x{a.shape[1]})")
        out[i] = a
    if not np.isfinite(out).all():
        raise ValueError(f"{source}: contains NaN or inf")
    return out


def _as_map(item, i: int, source: str) -> np.ndarray:
    """One prediction as a 2-D float64 map (a flat square vector is reshaped)."""
    if isinstance(item, np.ndarray) and item.dtype.kind in "biuf":
        check_bytes(item.size * 8, f"{source}: prediction {i} ({item.shape}) as float64")
    try:
        a = np.asarray(item, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: prediction {i} is not numeric ({exc})") from None
    if a.ndim == 1:
        side = int(round(np.sqrt(a.size)))
        if side * side != a.size or a.size == 0:
            raise ValueError(f"{source}: prediction {i} has {a.size} values, not a square map (e.g. 2304 = 48x48)")
        a = a.reshape(side, side)
    if a.ndim != 2:
        raise ValueError(f"{source}: prediction {i} has shape {a.shape}; expected a 2-D map or a flat vector")
    return a


def load_predictions(path) -> np.ndarray:
    """Load predictions as a ``(N, h, w)`` float64 array; ValueError / FileNotFoundError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory: read a folder of maps with open_predictions(path).match(names), "
                         "which pairs each map with its image by name")
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".pkl", ".pickle"):
            obj = safe_load_pickle(path)
        elif suffix == ".npy":
            # a truncated file is said so (memory-mapped: no allocation)
            check_npy_file(path, f"cannot read predictions file {path}", limit=UNLIMITED)
            obj = np.load(path, mmap_mode="r", allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.files)
                if not keys:
                    raise ValueError(f"{path}: empty .npz")
                key = "predictions" if "predictions" in keys else keys[0]
                if len(keys) > 1 and key != "predictions":
                    raise ValueError(f"{path}: several arrays {keys}; name the predictions 'predictions'")
                # declared sizes, before decompressing
                check_npz_member(z.zip, key + ".npy", f"cannot read predictions file {path}")
                obj = z[key]
        else:
            raise ValueError(f"{path}: unknown predictions format {suffix!r} (use .pkl, .npy or .npz)")
    except (UnsafePickleError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"cannot read predictions file {path}: {exc}") from None
    except ValueError as exc:
        msg = str(exc)
        kind = ArrayTooLarge if isinstance(exc, ArrayTooLarge) else ValueError
        raise kind(msg if str(path) in msg else f"cannot read predictions file {path}: {msg}") from None
    return as_maps(obj, source=str(path))


class ArraySource(PredictionSource):
    """Maps in one ``.npy`` / ``.npz`` / ``.pkl`` file (see the module docstring).

    Opening reads only what matching needs: a ``.npy`` is memory-mapped, an
    ``.npz`` contributes its ``names`` and the header of its predictions array
    (a stacked ``.npz`` member is decompressed as a whole on the first
    :meth:`PredictionMatch.load`, then kept: prefer ``.npy`` or a folder when
    that would not fit in memory), a pickle is read whole (it cannot be read
    in parts).
    """

    kind = "array"

    def __init__(self, path) -> None:
        super().__init__(path)
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a directory, not an array file (open it with open_predictions)")
        if not self.path.is_file():
            raise FileNotFoundError(f"predictions file not found: {self.path}")
        self._lock = threading.Lock()
        self._names: list[str] | None = None
        self._stack = None          # (N, H, W) or (N, h*w) array (memmap, cached, or in memory)
        self._member: str | None = None  # stacked .npz member, decompressed on first use
        self._ragged = False        # .npz of prediction_00000, ... members
        self._side: int | None = None    # flat (N, side*side) rows -> side x side maps
        self._stored_file = None    # salbench.io.map_store.StoredPredictions of a predictions/2 archive
        self.suffix = self.path.suffix.lower()
        try:
            if self.suffix == ".npy":
                self._open_npy()
            elif self.suffix == ".npz":
                self._open_npz()
            elif self.suffix in (".pkl", ".pickle"):
                self._open_pickle()
            else:
                raise ValueError(f"unknown predictions format {self.suffix!r} (use .pkl, .npy or .npz)")
        except (UnsafePickleError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(f"cannot read predictions file {self.path}: {exc}") from None
        except ValueError as exc:
            msg = str(exc)
            kind = ArrayTooLarge if isinstance(exc, ArrayTooLarge) else ValueError
            raise kind(msg if str(self.path) in msg else f"cannot read predictions file {self.path}: {msg}") \
                from None

    # --- opening: headers only -------------------------------------------------------------
    def _set_shape(self, shape: tuple, dtype: np.dtype) -> None:
        if np.dtype(dtype).kind not in "biuf":
            raise ValueError(f"predictions have dtype {dtype}; expected numbers")
        if len(shape) == 2:
            side = int(round(np.sqrt(shape[1])))
            if side * side != shape[1] or shape[1] == 0:
                raise ValueError(f"rows of {shape[1]} values are not square maps (e.g. 2304 = 48x48)")
            self._side = side
        elif len(shape) != 3:
            raise ValueError(f"expected an array (N, H, W) or (N, h*w), got shape {tuple(shape)}")
        if shape[0] == 0:
            raise ValueError("contains no predictions")
        per_map = 1
        for v in shape[1:]:
            per_map *= int(v)
        check_bytes(per_map * 8, f"one map of {tuple(shape[1:])} as float64")
        self._count = int(shape[0])

    def _open_npy(self) -> None:
        # memory-mapped: any size, but it must hold what it declares
        check_npy_file(self.path, f"cannot read predictions file {self.path}", limit=UNLIMITED)
        arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        self._set_shape(arr.shape, arr.dtype)
        self._stack = arr

    def _open_npz(self) -> None:
        with zipfile.ZipFile(self.path) as zf:
            indexed = "index.json" in zf.namelist()
        if indexed:  # salbench.predictions/3 (or /2): its owner's reader checks the index and every member
            from salbench.io.map_store import open_stored_predictions

            self._stored_file = open_stored_predictions(self.path)
            self._names = list(self._stored_file.names)
            self._count = len(self._names)
            return
        with np.load(self.path, allow_pickle=False) as z:
            keys = list(z.files)
            if "names" in keys:
                names = z["names"]
                if names.ndim != 1 or names.dtype.kind not in "US":
                    raise ValueError(f"'names' must be a 1-D array of strings, got {names.dtype} {names.shape}")
                self._names = [str(n) for n in names]
            maps = [k for k in keys if k != "names"]
            if not maps:
                raise ValueError("empty .npz" if not keys else "holds names but no predictions")
            if "predictions" in maps or len(maps) == 1:
                self._member = "predictions" if "predictions" in maps else maps[0]
                # the zip directory's size and the member's header only: nothing decompressed beyond it,
                # and a stack that would not fit (it is decompressed whole) is refused now
                header = check_npz_member(z.zip, self._member + ".npy", f"cannot read predictions file {self.path}")
                self._set_shape(header.shape, header.dtype)
            elif all(k.startswith("prediction_") for k in maps):
                expected = [f"prediction_{i:05d}" for i in range(len(maps))]
                if sorted(maps) != expected:
                    raise ValueError(f"ragged members must be {expected[0]} ... {expected[-1]} without gaps")
                for info in z.zip.infolist():  # the directory's sizes (each member is checked in full when read)
                    check_bytes(info.file_size, f"member {info.filename} ({info.file_size} bytes uncompressed)")
                self._ragged, self._count = True, len(maps)
            else:
                raise ValueError(f"several arrays {keys}; name the predictions 'predictions'")
        if self._names is not None and len(self._names) != self._count:
            raise ValueError(f"holds {self._count} predictions but {len(self._names)} names")

    def _open_pickle(self) -> None:
        obj = safe_load_pickle(self.path)
        if isinstance(obj, dict) and "predictions" in obj:
            if obj.get("names") is not None:
                self._names = [str(n) for n in obj["names"]]
            obj = obj["predictions"]
        self._stack = as_maps(obj, source=str(self.path))
        self._count = len(self._stack)
        if self._names is not None and len(self._names) != self._count:
            raise ValueError(f"holds {self._count} predictions but {len(self._names)} names")

    # --- matching -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    @property
    def names(self) -> list[str] | None:
        """The image names the file carries, or None (then maps match by order)."""
        return None if self._names is None else list(self._names)

    def _match(self, names, *, allow_missing, allow_extra) -> Matching:
        if self._names is not None:
            return match_keys(names, self._names, self._names, source=f"predictions file {self.path}",
                              allow_missing=allow_missing, allow_extra=allow_extra, by="name")
        if self._count != len(names):
            raise ValueError(
                f"{self.path} holds {self._count} predictions but the dataset has {len(names)} images; a file "
                "without a 'names' array is matched by order, so the counts must be equal"
                + (" (allow_missing/allow_extra need a file that carries names, e.g. an .npz with 'names')"
                   if allow_missing or allow_extra else ""))
        return Matching(indices=np.arange(self._count, dtype=np.int64), entries=tuple(range(self._count)),
                        missing=(), extra=())

    # --- reading one map ------------------------------------------------------------------
    def _stored(self, i: int) -> np.ndarray:
        """Map ``i`` as stored (its own dtype), 2-D."""
        if self._stored_file is not None:
            with self._lock:  # one zip handle shared by the threads
                a = self._stored_file.load(i)
        elif self._ragged:
            with np.load(self.path, allow_pickle=False) as z:  # own handle: safe from any thread
                member = f"prediction_{i:05d}"
                header = check_npz_member(z.zip, member + ".npy", f"cannot read predictions file {self.path}")
                check_bytes(header.count * 8, f"{self.path}: {member} {header.shape} as float64")
                a = z[member]
        else:
            if self._stack is None:
                with self._lock:
                    if self._stack is None:
                        with np.load(self.path, allow_pickle=False) as z:
                            stack = z[self._member]
                        self._set_shape(stack.shape, stack.dtype)
                        self._stack = stack
            a = self._stack[i]
            if self._side is not None:
                a = a.reshape(self._side, self._side)
        a = np.asarray(a)
        if a.ndim != 2 or a.size == 0 or a.dtype.kind not in "biuf":
            raise ValueError(f"{self.path}: prediction {self.label(i)} has shape {a.shape} and dtype {a.dtype}; "
                             "expected a non-empty numeric 2-D map")
        return a

    def _as_float(self, i: int, stored: np.ndarray) -> np.ndarray:
        out = np.array(stored, dtype=np.float64)
        if not np.isfinite(out).all():
            raise ValueError(f"{self.path}: prediction {self.label(i)} contains NaN or infinity")
        return out

    def _load(self, i: int) -> np.ndarray:
        return self._as_float(i, self._stored(i))

    def _read(self, i: int) -> tuple[np.ndarray, str]:
        out = self._load(i)
        return out, array_fingerprint(out)

    def _fingerprint(self, i: int) -> str:
        return array_fingerprint(self._load(i))

    def label(self, i: int) -> str:
        return f"#{i}" if self._names is None else self._names[i]

    def close(self) -> None:
        if self._stored_file is not None:
            self._stored_file.close()
        self._stack = None if self._member is not None else self._stack

    def describe(self) -> dict:
        fmt = self.suffix.lstrip(".") if self._stored_file is None else self._stored_file.format
        return {"kind": self.kind, "path": str(self.path), "format": fmt,
                "n_maps": self._count, "match": "order" if self._names is None else "names"}
