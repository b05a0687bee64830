"""A predictions file written and read one saliency map at a time.

Format ``salbench.predictions/3``: a zip archive (numpy's ``.npz`` container)
holding one ``.npy`` member per distinct map, ``000000.npy``, ``000001.npy``, ...
(member ``i`` holds the ``i``-th map written), and, last, ``index.json``::

    {"format": "salbench.predictions/3", "names": [...], "dtypes": [...], "shapes": [[h, w], ...],
     "same": [null, null, 0, ...]}

Each map is stored in the narrowest of float16, float32 and float64 that holds
its values exactly (per image), so the stored maps are exactly the scored ones.
A map identical to an earlier one (same dtype, shape and bytes as stored) is
not written again: ``same[i]`` is null when map ``i`` has its own member
``{i:06d}.npy``, else the position ``j < i`` of the earlier map whose member
holds it (``same[j]`` is null). A baseline that predicts one map for every image
so costs one map, not one per image (DEFLATE compresses each member on its own
and cannot see across members); the positional list costs a few bytes
compressed where a name-to-member table would cost more than the map.

Writing is deterministic (member headers carry a fixed date, not the time of
writing), so equal maps under equal names make byte-identical files. It streams:
the archive is written strictly forwards (zip data
descriptors instead of seeking back to patch headers), so the SHA-256 of the
file is computed from the bytes as they are written and memory does not grow
with the maps: the writer remembers a SHA-256 per distinct map written, never
the maps. Reading opens one member at a time, so memory is one map plus the names.

Older forms are still read: ``salbench.predictions/2`` (the same without
``same``: one member per image), and ``np.savez_compressed`` with ``names`` and a
stacked ``predictions`` array, or ``prediction_00000`` ... for maps of different
sizes (schema ``salbench.result/1`` entries); a stacked legacy file is loaded
whole on first access.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from salbench.io.array_limits import ArrayTooLarge, check_bytes

FORMAT = "salbench.predictions/3"
#: Formats read: /2 is /3 without deduplicated members (``same``).
READ_FORMATS = ("salbench.predictions/2", FORMAT)
INDEX = "index.json"
#: Largest map a predictions file may hold (pixels); a larger header is refused before allocating.
MAX_MAP_PIXELS = 100_000_000
#: Largest ``index.json`` read (bytes, uncompressed): ~50 bytes per image for a million images.
MAX_INDEX_BYTES = 64 << 20
_DTYPES = ("float16", "float32", "float64")


class HashingSink(io.RawIOBase):
    """A write-only, unseekable stream that hashes and counts what passes through it.

    ``zipfile`` treats an unseekable output as a pipe and never seeks back, so
    the digest is exactly that of the file's final bytes.
    """

    def __init__(self, fh: BinaryIO):
        super().__init__()
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:  # zipfile probes tell(); failing it selects streaming mode
        raise io.UnsupportedOperation("unseekable")

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        written = 0
        while written < len(view):  # a raw write may be partial
            n = self._fh.write(view[written:])
            written += len(view) if n is None else n
        self.sha256.update(view)
        self.size += len(view)
        return len(view)

    def flush(self) -> None:
        self._fh.flush()


def storage_dtype(m: np.ndarray) -> np.dtype:
    """The narrowest of float16, float32, float64 that represents every value of ``m`` exactly."""
    for name in _DTYPES[:2]:
        if np.array_equal(m.astype(name).astype(m.dtype), m):
            return np.dtype(name)
    return np.dtype(np.float64)


def as_storable_map(prediction, name: str) -> np.ndarray:
    """Validate one prediction (finite, 2-D, numeric) and return it as float64, values unchanged."""
    m = np.asarray(prediction)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"prediction for {name} has shape {m.shape}; expected a non-empty 2-D map")
    if not (np.issubdtype(m.dtype, np.number) or m.dtype == np.bool_) or np.iscomplexobj(m):
        raise ValueError(f"prediction for {name} has dtype {m.dtype}; expected real numbers")
    m64 = m.astype(np.float64)
    if np.issubdtype(m.dtype, np.integer) and not np.array_equal(m64.astype(m.dtype), m):
        raise ValueError(f"prediction for {name}: integer values beyond float64's exact range")
    if not np.isfinite(m64).all():
        raise ValueError(f"prediction for {name} contains NaN or infinity")
    if m.size > MAX_MAP_PIXELS:
        raise ValueError(f"prediction for {name} has {m.size} pixels, more than {MAX_MAP_PIXELS}")
    return m64


def _member_info(name: str) -> zipfile.ZipInfo:
    """A member header without the time of writing: equal maps make byte-identical files.

    The file is named by its SHA-256 and shared by every entry that stored the same
    maps, so its bytes must depend on the maps alone (zipfile would stamp each member
    with the current time).
    """
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


class MapStreamWriter:
    """Append maps to a ``salbench.predictions/2`` archive written to an open binary file.

    Parameters
    ----------
    fh : binary file object
        Where the archive goes (positioned at 0); the writer never seeks.

    Examples
    --------
    >>> import io, numpy as np
    >>> buf = io.BytesIO()
    >>> w = MapStreamWriter(buf)
    >>> _ = w.add("a.png", np.full((2, 3), 0.5))
    >>> info = w.finish()
    >>> info["n"], info["dtypes"], len(info["sha256"])
    (1, {'float16': 1}, 64)
    """

    def __init__(self, fh: BinaryIO):
        self.sink = HashingSink(fh)
        self._zip = zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_DEFLATED)
        self.names: list[str] = []
        self._seen: set[str] = set()
        self._dtypes: list[str] = []
        self._shapes: list[list[int]] = []
        # (dtype, shape, sha256 of the stored bytes) -> position of the map holding them: a few
        # dozen bytes per distinct map, never the maps. SHA-256, not a cheaper hash: a collision
        # would silently store one map for another.
        self._members: dict[tuple, int] = {}
        self._same: list[int | None] = []
        self._closed = False

    def add(self, name: str, prediction) -> np.ndarray:
        """Store one map; return it as float64 with exactly the stored values.

        A map identical to one stored earlier (same dtype, shape and bytes) is
        recorded in the index as the same member instead of being written again.

        Raises
        ------
        ValueError
            Duplicate name, not a finite 2-D numeric map.
        """
        if self._closed:
            raise ValueError("the predictions archive is already finished")
        name = str(name)
        if name in self._seen:
            raise ValueError(f"duplicate image name {name!r}: each image is stored once")
        m64 = as_storable_map(prediction, name)
        dtype = storage_dtype(m64)
        stored = np.ascontiguousarray(m64.astype(dtype))
        position = len(self.names)
        key = (dtype.name, stored.shape, hashlib.sha256(memoryview(stored).cast("B")).digest())
        earlier = self._members.get(key)
        if earlier is None:
            with self._zip.open(_member_info(f"{position:06d}.npy"), "w") as fh:
                np.lib.format.write_array(fh, stored, allow_pickle=False)
            self._members[key] = position
        self._same.append(earlier)
        self.names.append(name)
        self._seen.add(name)
        self._dtypes.append(dtype.name)
        self._shapes.append(list(m64.shape))
        return m64

    def finish(self) -> dict:
        """Write the index and the zip directory.

        Returns
        -------
        dict
            ``{"sha256", "size", "n", "dtypes", "shape", "n_stored"}``: ``shape`` is
            ``[n, h, w]`` when every map has the same size, else None; ``dtypes``
            counts the maps (images) stored in each dtype; ``n_stored`` is the number
            of distinct maps written as members.
        """
        if not self.names:
            raise ValueError("no predictions to store")
        index = {"format": FORMAT, "names": self.names, "dtypes": self._dtypes, "shapes": self._shapes,
                 "same": self._same}
        self._zip.writestr(_member_info(INDEX), json.dumps(index, separators=(",", ":")))
        self._zip.close()
        self.sink.flush()
        self._closed = True
        shapes = {tuple(s) for s in self._shapes}
        counts = {d: self._dtypes.count(d) for d in _DTYPES if d in self._dtypes}
        return {"sha256": self.sink.sha256.hexdigest(), "size": self.sink.size, "n": len(self.names),
                "dtypes": counts, "shape": [len(self.names), *shapes.pop()] if len(shapes) == 1 else None,
                "n_stored": len(self._members)}

    def abort(self) -> None:
        """Stop without finishing (the caller removes the file)."""
        self._closed = True
        try:
            self._zip.fp = None  # nothing more is written, not even the directory
        except AttributeError:  # pragma: no cover
            pass


class StoredPredictions:
    """Read-only access to a predictions file, one map at a time.

    Use :func:`open_stored_predictions`. ``names`` lists the images in stored
    order; :meth:`load` returns one map as float64 (exactly the stored values)
    and may be called from several threads (zipfile serialises the file reads).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ValueError(f"predictions file {self.path} is not readable ({_why(exc)})") from None
        try:
            members = set(self._zip.namelist())
            if INDEX in members:
                self._read_index(members)
            elif "names.npy" in members:
                self._read_legacy(members)
            else:
                raise ValueError(f"predictions file {self.path} has no index (not written by salbench)")
        except BaseException:
            self._zip.close()
            raise
        self._stack: np.ndarray | None = None
        self._stack_lock = threading.Lock()  # load() is called from scoring worker threads

    # -- opening -------------------------------------------------------------------------
    def _read_index(self, members: set[str]) -> None:
        info = self._zip.getinfo(INDEX)
        if info.file_size > MAX_INDEX_BYTES:
            raise ValueError(f"predictions file {self.path}: index of {info.file_size} bytes is too large")
        try:
            index = json.loads(self._zip.read(INDEX))
        except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ValueError(f"predictions file {self.path}: unreadable index ({_why(exc)})") from None
        if not isinstance(index, dict) or index.get("format") not in READ_FORMATS:
            raise ValueError(f"predictions file {self.path}: unknown format {_get(index, 'format')!r}")
        names, dtypes, shapes = index.get("names"), index.get("dtypes"), index.get("shapes")
        if not (isinstance(names, list) and isinstance(dtypes, list) and isinstance(shapes, list)
                and len(names) == len(dtypes) == len(shapes) and all(isinstance(n, str) for n in names)):
            raise ValueError(f"predictions file {self.path}: malformed index")
        if any(d not in _DTYPES for d in dtypes) or not all(_is_shape(s) for s in shapes):
            raise ValueError(f"predictions file {self.path}: index lists an unsupported dtype or shape")
        if index["format"] == FORMAT:
            same = self._check_same(index.get("same"), dtypes, shapes)
        elif "same" in index:
            raise ValueError(f"predictions file {self.path}: {index['format']} has no deduplicated members")
        else:
            same = [None] * len(names)
        own = [f"{i:06d}.npy" for i in range(len(names))]
        expected = {m for m, j in zip(own, same) if j is None} | {INDEX}
        if members != expected:
            raise ValueError(f"predictions file {self.path}: members do not match its index")
        self.names = list(names)
        self.format = index["format"]
        self._members = [own[i if j is None else j] for i, j in enumerate(same)]
        self._dtypes = [np.dtype(d) for d in dtypes]
        self._shapes = [tuple(s) for s in shapes]
        self._check_unique()

    def _check_same(self, same, dtypes: list, shapes: list) -> list:
        """Validate ``same``: per map, null or the position of an earlier stored map of its dtype and shape."""
        if not (isinstance(same, list) and len(same) == len(dtypes)):
            raise ValueError(f"predictions file {self.path}: malformed index ('same' must list one entry per map)")
        for i, j in enumerate(same):
            if j is None:
                continue
            if not (isinstance(j, int) and not isinstance(j, bool) and 0 <= j < i and same[j] is None):
                raise ValueError(f"predictions file {self.path}: index says map {i} is map {j!r}, "
                                 "not an earlier stored map")
            if dtypes[i] != dtypes[j] or shapes[i] != shapes[j]:
                raise ValueError(f"predictions file {self.path}: index says map {i} is map {j}, "
                                 "of another dtype or shape")
        return same

    def _read_legacy(self, members: set[str]) -> None:
        names = self._read_member("names.npy", None, None)
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise ValueError(f"predictions file {self.path}: 'names' is not a list of strings")
        self.names = [str(n) for n in names]
        self.format = "salbench.predictions/1"
        if "predictions.npy" in members:
            self._members = None  # one stacked array, loaded whole on first access
        else:
            self._members = [f"prediction_{i:05d}.npy" for i in range(len(self.names))]
            missing = [m for m in self._members if m not in members]
            if missing:
                raise ValueError(f"predictions file {self.path}: missing {missing[:3]}")
        self._dtypes = self._shapes = None
        self._check_unique()

    def _check_unique(self) -> None:
        if len(set(self.names)) != len(self.names):
            seen, dups = set(), []
            for n in self.names:
                if n in seen:
                    dups.append(n)
                seen.add(n)
            raise ValueError(f"predictions file {self.path}: duplicate image names {dups[:3]}")

    # -- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def load(self, i: int) -> np.ndarray:
        """Map ``i`` (stored order) as a float64 2-D array."""
        if not 0 <= i < len(self.names):
            raise IndexError(f"{self.path}: map {i} out of range (0..{len(self.names) - 1})")
        if self._members is None:
            with self._stack_lock:
                if self._stack is None:
                    stack = self._read_member("predictions.npy", None, None)
                    if stack.ndim != 3 or len(stack) != len(self.names):
                        raise ValueError(f"predictions file {self.path}: stacked array has shape {stack.shape} "
                                         f"for {len(self.names)} names")
                    self._stack = stack
            return np.asarray(self._stack[i], dtype=np.float64)
        dtype = None if self._dtypes is None else self._dtypes[i]
        shape = None if self._shapes is None else self._shapes[i]
        m = self._read_member(self._members[i], dtype, shape)
        if m.ndim != 2 or m.dtype.name not in _DTYPES:
            raise ValueError(f"predictions file {self.path}: map {i} ({self.names[i]}) is not a float 2-D map")
        return m.astype(np.float64)

    def _read_member(self, member: str, dtype, shape) -> np.ndarray:
        """Read one ``.npy`` member, refusing a header that disagrees with the index or the zip sizes."""
        try:
            info = self._zip.getinfo(member)
            with self._zip.open(info) as fh:
                hshape, fortran, hdtype = _read_header(fh)
                header_len = fh.tell()
                n = int(np.prod(hshape, dtype=np.int64)) if hshape else 1
                if n > MAX_MAP_PIXELS and member not in ("predictions.npy", "names.npy"):
                    raise ValueError(f"{n} values exceed the {MAX_MAP_PIXELS}-pixel limit")
                # the legacy stacked predictions.npy is exempt from the per-map limit, not from memory's
                check_bytes(n * hdtype.itemsize, lambda: f"predictions file {self.path}: member {member} "
                                                         f"({hshape} {hdtype})")
                if info.file_size - header_len != n * hdtype.itemsize:
                    raise ValueError(f"header says {hshape} {hdtype}, but the member holds "
                                     f"{info.file_size - header_len} bytes")
                if dtype is not None and (hdtype != dtype or tuple(hshape) != shape):
                    raise ValueError(f"stored as {hshape} {hdtype}, index says {shape} {dtype}")
                data = fh.read(n * hdtype.itemsize)
        except ArrayTooLarge:
            raise  # its message names the file, the member and the limit
        except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as exc:
            raise ValueError(f"predictions file {self.path}: cannot read {member} ({_why(exc)})") from None
        if len(data) != n * hdtype.itemsize:
            raise ValueError(f"predictions file {self.path}: {member} is truncated")
        return np.frombuffer(data, dtype=hdtype).reshape(hshape, order="F" if fortran else "C")

    def close(self) -> None:
        self._stack = None
        self._zip.close()

    def __enter__(self) -> "StoredPredictions":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_stored_predictions(path: str | os.PathLike) -> StoredPredictions:
    """Open a predictions file (any format salbench wrote) for reading one map at a time.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (the message names it).
    ValueError
        Not a salbench predictions file, or a corrupt one (the message names it and the member).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} not found")
    return StoredPredictions(path)


def _read_header(fh) -> tuple[tuple, bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of a ``.npy`` stream positioned at its start."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    else:
        raise ValueError(f".npy format version {version} is not used by salbench")
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed")
    return tuple(shape), bool(fortran), dtype


def _is_shape(s) -> bool:
    return (isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                         for v in s) and s[0] * s[1] <= MAX_MAP_PIXELS)


def _get(obj, key):
    return obj.get(key) if isinstance(obj, dict) else None


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
