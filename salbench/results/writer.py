"""Writing results entries: predictions and JSON committed as one unit.

An evaluation writes its predictions and its results file with :class:`ResultWriter`,
one map at a time::

    with ResultWriter(results_dir, result_stem(model, dataset, split, protocol)) as w:
        for name, prediction in ...:            # dataset order
            stored = w.add_prediction(name, quantise_map(prediction, name))
            ...score `stored` (float64, exactly the stored values)...
        result = build_result(model=..., dataset=..., protocol=..., params=..., seed=...,
                              names=names, scores=scores, n_skipped=0)
        path = w.commit(result)                 # fills result["predictions"]

Predictions that live in the user's folder of maps are recorded, not copied:
``ResultWriter(results_dir, stem, folder=DIR)`` and ``w.add_map_file(name,
sha256_of_the_map_file)`` per scored image (``salbench.predictions``'
``m.fingerprint(k)``); ``salbench check`` re-reads the folder and verifies each
map's hash before recomputing.

The predictions file is ``<16 hex of its sha256>.predictions.npz`` beside the
JSON (:mod:`salbench.io.map_store`, streamed, hashed from the bytes written; a
map identical to an earlier one is stored once). It is named by its content
alone, so the entries of one directory that scored the same maps (one model
under several protocols) share one file: a writer whose file already exists
with the same SHA-256 reuses it, and a file is removed only once no JSON in the
directory names it. The JSON ``STEM.json`` is written last and atomically under
a directory lock (:mod:`salbench.io.entry`): a crash, a full disk or a
concurrent writer leaves the old entry or the new one, never a mix, and a
failure is one :class:`~salbench.io.errors.FileError` line naming the entry.
Leaving the ``with`` block without ``commit`` (an exception, Ctrl-C) discards
the new predictions and leaves the old entry as it was.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from salbench.io import atomic_write_bytes
from salbench.io.atomic import ensure_directory, json_bytes
from salbench.io.entry import EntryWriter
from salbench.io.errors import FileError
from salbench.io.lock import directory_lock
from salbench.io.map_store import MapStreamWriter
from salbench.results.maps import folder_digest, stored_record
from salbench.results.schema import HEX64, validate_result


def _record_without_private_keys(result: Mapping[str, Any]) -> dict[str, Any]:
    """The record as written: keys starting with ``_`` (``_path``, ``_sha256`` of a loaded file) dropped."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


class ResultWriter:
    """Write one results entry (its predictions, then its JSON) as one unit.

    Parameters
    ----------
    results_dir : path
        Created if missing; a file there is a :class:`~salbench.io.errors.FileError`
        naming it.
    stem : str
        Entry name, :func:`~salbench.results.result_stem` (``<dataset>__<split>__<model>__<protocol>``).
    folder : path, optional
        The predictions are a folder of map files the user keeps: record each map's
        hash with :meth:`add_map_file` instead of storing maps.

    See the module docstring for the protocol. Use as a context manager: leaving
    it without :meth:`commit` discards what was written.
    """

    def __init__(self, results_dir: str | os.PathLike, stem: str, *, folder: str | os.PathLike | None = None):
        self._entry = EntryWriter(results_dir, stem)
        self.json_path = self._entry.json_path
        self.folder = None if folder is None else Path(folder)
        self.names: list[str] = []
        self._seen: set[str] = set()
        self._map_sha256: list[str] = []
        self._maps: MapStreamWriter | None = None
        self._done = False
        # add_* may be called from scoring worker threads (score_stream's get_prediction)
        self._lock = threading.RLock()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._done:
            self.abort()

    def _add_name(self, name: str) -> str:
        """Validate a new name (call with the lock held)."""
        if self._done:
            raise ValueError(f"{self.json_path}: entry already committed or aborted")
        name = str(name)
        if name in self._seen:
            raise ValueError(f"duplicate image name {name!r}: each image is scored once")
        return name

    def add_prediction(self, name: str, prediction) -> np.ndarray:
        """Append one map to the predictions file; return it as float64, exactly as stored.

        Score the returned map (or the one passed in: the values are equal). A map
        is stored in float16 when that is lossless (pass :func:`~salbench.results.quantise_map`
        output to get that), else float32, else float64. Thread-safe; maps may come in
        any order (the file is indexed by name).

        Raises
        ------
        ValueError
            Duplicate name; not a finite 2-D numeric map; a folder-backed writer.
        FileError
            The write failed (e.g. disk full): the message names the entry; the
            previous entry is unchanged and the writer is closed.
        """
        if self.folder is not None:
            raise ValueError("this entry records a folder of maps: use add_map_file")
        with self._lock:
            name = self._add_name(name)
            try:
                if self._maps is None:
                    self._maps = MapStreamWriter(self._entry.open_companion())
                stored = self._maps.add(name, prediction)
            except OSError as exc:
                self.abort()
                raise self._entry.error(exc, "could not write the predictions") from exc
            self.names.append(name)
            self._seen.add(name)
            return stored

    def add_map_file(self, name: str, sha256: str) -> None:
        """Record the SHA-256 of the map file scored for image ``name`` (folder-backed entries).

        Thread-safe; any order (the record lists the hashes in ``image_names`` order).
        """
        if self.folder is None:
            raise ValueError("pass folder= to ResultWriter to record a folder of maps")
        if not (isinstance(sha256, str) and HEX64.fullmatch(sha256)):
            raise ValueError(f"map of {name}: {sha256!r} is not a hex sha256")
        with self._lock:
            name = self._add_name(name)
            self.names.append(name)
            self._seen.add(name)
            self._map_sha256.append(sha256)

    def commit(self, result: Mapping[str, Any], *, replaces_sha256: str | None = None) -> Path:
        """Finish the predictions, then write ``result`` as the entry's JSON; return its path.

        ``result`` comes from :func:`~salbench.results.build_result`; its ``image_names``
        must be the names added (in any order). Its ``predictions`` is filled here;
        :attr:`record` is what was written. With ``replaces_sha256``, the entry is
        replaced only if its JSON still hashes to that (``salbench check --update``).

        Raises
        ------
        ValueError
            The names differ, or the record is invalid (nothing is written).
        FileError
            A write failed: the previous entry is unchanged (the message says so).
        """
        with self._lock:
            return self._commit(result, replaces_sha256)

    def _commit(self, result: Mapping[str, Any], replaces_sha256: str | None) -> Path:
        if self._done:
            raise ValueError(f"{self.json_path}: entry already committed or aborted")
        record = _record_without_private_keys(result)
        image_names = list(record.get("image_names", []))
        if len(image_names) != len(self.names) or set(image_names) != self._seen:
            self.abort()
            raise ValueError(f"{self.json_path}: the record's image_names differ from the {len(self.names)} "
                             "predictions added")
        if "tolerances" in record:
            self.abort()
            raise ValueError("a results file cannot set its own tolerances")
        sha = None
        try:
            if self.folder is not None:
                by_name = dict(zip(self.names, self._map_sha256))
                shas = [by_name[n] for n in image_names]  # recorded in image_names order
                record["predictions"] = {
                    "kind": "folder", "path": _relative_to(self.folder, self.json_path.parent),
                    "n": len(shas), "map_sha256": shas, "sha256": folder_digest(image_names, shas)}
            else:
                if self._maps is None:
                    raise ValueError("no predictions were added")
                info = self._maps.finish()
                sha = info["sha256"]
                record["predictions"] = stored_record(self._entry.companion_name(sha), info)
            validate_result(record, source=str(self.json_path))
            data = json_bytes(record)
        except OSError as exc:
            self.abort()
            raise self._entry.error(exc, "could not write the predictions") from exc
        except BaseException:
            self.abort()
            raise
        self._done = True
        path = self._entry.commit(record, data, companion_sha256=sha, replaces_sha256=replaces_sha256)
        self.record = record  # what was written, ``predictions`` filled in
        return path

    def abort(self) -> None:
        """Discard what was written; the entry on disk stays as it was."""
        self._done = True
        if self._maps is not None:
            self._maps.abort()
        self._entry.abort()


def _relative_to(folder: Path, base: Path) -> str:
    """``folder`` relative to ``base`` where it can be (results move with their data), else absolute."""
    folder = folder.resolve()
    try:
        return Path(os.path.relpath(folder, base.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return str(folder)


def write_result(path: str | os.PathLike, result: Mapping[str, Any]) -> Path:
    """Validate and write a results file atomically, under the directory's lock.

    For records whose predictions were written separately
    (:func:`~salbench.results.save_predictions`); an evaluation writes both as one
    unit with :class:`ResultWriter`.
    """
    path = Path(path)
    record = _record_without_private_keys(result)
    if "tolerances" in record:
        raise ValueError(f"{path}: a results file cannot set its own tolerances")
    validate_result(record, source=str(path))
    data = json_bytes(record)
    ensure_directory(path.parent, "results directory")
    with directory_lock(path.parent):
        return atomic_write_bytes(path, data, what="results file")


def rewrite_result(result: Mapping[str, Any], updated: Mapping[str, Any]) -> Path:
    """Replace the results file ``result`` was loaded from with ``updated``, if unchanged since.

    Used by ``salbench check --update``: under the directory lock, the file's
    bytes must still hash to ``result["_sha256"]``, so a concurrent evaluation's
    new entry is never overwritten with values recomputed for the old one.
    """
    path = Path(result["_path"])
    record = _record_without_private_keys(updated)
    validate_result(record, source=str(path))
    data = json_bytes(record)
    with directory_lock(path.parent):
        try:
            now = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            now = None
        if now != result.get("_sha256"):
            raise FileError(f"results file {path} changed while it was being checked; not updated "
                            "(run salbench check again)", filename=path)
        return atomic_write_bytes(path, data, what="results file")
