"""Commit a JSON record and the content-addressed file it names as one unit.

An *entry* is ``DIR/STEM.json`` plus at most one companion file
``DIR/STEM.KIND.<first 16 hex of its sha256>EXT`` that the JSON names with its
full SHA-256 (``KIND`` is ``predictions`` for results entries). The protocol:

1. the companion is streamed into a temporary file ``.STEM.KIND.*.tmpEXT`` in
   ``DIR`` (locked with ``flock`` while its writer lives), hashed from the bytes
   as they are written, and fsynced;
2. under an exclusive lock on ``DIR`` (:func:`~salbench.io.lock.directory_lock`):
   the temporary file is renamed to its content-addressed name, the JSON is
   replaced atomically (written to a temporary file, fsynced, renamed), the
   directory is fsynced, and companions of ``STEM`` that the new JSON does not
   name are removed, with temporary files whose writer has died;
3. the lock is released.

So a crash, a full disk or a concurrent writer leaves either the old entry or
the new one: the old JSON keeps naming its own companion until the new JSON
replaces it, two writers never interleave steps 2, and a companion is always
named by the hash of its own bytes. A companion left over by a crash between
the rename and the JSON is an orphan that the next commit removes; readers only
ever follow a JSON to its named companion, so orphans and temporary files are
never read as entries.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

from salbench.io.atomic import TMP_MARK, _umask, atomic_write_bytes, ensure_directory, fsync_directory
from salbench.io.errors import FileError, reason
from salbench.io.lock import directory_lock, is_abandoned, lock_open_file


def _default_references(record: Mapping) -> set[str]:
    pred = record.get("predictions") if isinstance(record, Mapping) else None
    name = pred.get("file") if isinstance(pred, Mapping) else None
    return {name} if isinstance(name, str) else set()


class EntryWriter:
    """Write ``DIR/STEM.json`` and its companion ``DIR/STEM.KIND.<digest>EXT`` as one unit.

    Parameters
    ----------
    directory : path
        Created if missing; a file in the way is a :class:`~salbench.io.errors.FileError`.
    stem : str
        Entry name without ``.json``.
    kind, ext : str
        Companion naming: ``STEM.KIND.<digest16>EXT``.
    what : str
        How messages name the entry ("results entry").
    references : callable
        ``record -> set of companion file names`` the record names (default: ``record["predictions"]["file"]``).
    """

    def __init__(self, directory: str | os.PathLike, stem: str, *, kind: str = "predictions", ext: str = ".npz",
                 what: str = "results entry", references: Callable[[Mapping], set[str]] = _default_references):
        if not stem or "/" in stem or os.sep in stem or stem.startswith("."):
            raise ValueError(f"invalid entry name {stem!r}")
        self.directory = ensure_directory(directory, "results directory")
        self.stem, self.kind, self.ext, self.what = stem, kind, ext, what
        self.json_path = self.directory / f"{stem}.json"
        self._references = references
        self._fh: BinaryIO | None = None
        self._tmp: Path | None = None
        s, k, e = re.escape(stem), re.escape(kind), re.escape(ext)
        self._companion_re = re.compile(rf"{s}\.{k}(\.[0-9a-f]{{16}})?{e}")  # also the legacy STEM.KIND.EXT
        self._temp_re = re.compile(rf"\.{s}\.({k}|json)\.[A-Za-z0-9_]+{re.escape(TMP_MARK)}({e}|\.json)")

    # -- the companion ---------------------------------------------------------------------
    def open_companion(self) -> BinaryIO:
        """A binary file to stream the companion into (a locked temporary file in ``DIR``)."""
        if self._fh is not None:
            raise ValueError("the companion file is already open")
        try:
            # Created under the directory lock, and locked before the lock is released, so a
            # concurrent cleanup never mistakes a just-created temporary file for an abandoned one.
            with directory_lock(self.directory):
                fd, tmp = tempfile.mkstemp(prefix=f".{self.stem}.{self.kind}.", suffix=TMP_MARK + self.ext,
                                           dir=self.directory)
                lock_open_file(fd)
        except OSError as exc:
            raise self.error(exc, "could not start writing") from exc
        self._tmp = Path(tmp)
        self._fh = os.fdopen(fd, "wb")
        return self._fh

    def companion_name(self, sha256: str) -> str:
        """``STEM.KIND.<first 16 hex digits>EXT``."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"not a hex sha256: {sha256!r}")
        return f"{self.stem}.{self.kind}.{sha256[:16]}{self.ext}"

    # -- commit / abort --------------------------------------------------------------------
    def commit(self, record: Mapping, json_bytes: bytes, *, companion_sha256: str | None = None) -> Path:
        """Make the entry ``record`` (serialised as ``json_bytes``) current; return the JSON path.

        ``companion_sha256`` is the digest of the companion streamed into
        :meth:`open_companion` (None when there is none); the record must name
        :meth:`companion_name` of it.

        Raises
        ------
        FileError
            A write failed (e.g. disk full); the message names the entry and says
            that the previous entry is unchanged (or that none was written).
        """
        final = None
        if self._fh is not None:
            if companion_sha256 is None:
                raise ValueError("a companion was written: pass its sha256")
            final = self.directory / self.companion_name(companion_sha256)
            if final.name not in self._references(record):
                raise ValueError(f"the record does not name its companion file {final.name}")
        renamed = False
        try:
            if self._fh is not None:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            with directory_lock(self.directory):
                if final is not None:
                    os.chmod(self._tmp, 0o666 & ~_umask())
                    os.replace(self._tmp, final)
                    self._tmp, renamed = None, True  # the name is free again: never unlink it later
                    fsync_directory(self.directory)
                try:
                    atomic_write_bytes(self.json_path, json_bytes, what="results file")
                except BaseException:
                    if renamed and final.name not in self._on_disk_references():
                        final.unlink(missing_ok=True)
                    raise
                self._cleanup(keep=self._references(record))
        except OSError as exc:
            raise self.error(exc, "could not write") from exc
        finally:
            self._close()
        return self.json_path

    def abort(self) -> None:
        """Drop the companion being written; the entry on disk is untouched."""
        self._close()

    # -- internals --------------------------------------------------------------------------
    def _close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass  # a full disk may fail the final flush; the file is removed below
            self._fh = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)  # gone already when it was renamed
            self._tmp = None

    def _on_disk_references(self) -> set[str]:
        try:
            return self._references(json.loads(self.json_path.read_bytes()))
        except (OSError, ValueError):
            return set()

    def _cleanup(self, keep: set[str]) -> None:
        """Remove this entry's companions that the current JSON does not name, and dead temporaries."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            path = self.directory / name
            try:
                if self._companion_re.fullmatch(name) and name not in keep:
                    path.unlink()
                elif self._temp_re.fullmatch(name) and path != self._tmp and is_abandoned(path):
                    path.unlink()
            except OSError:
                pass  # best effort: an orphan is never read, only wasted space

    def error(self, exc: OSError, doing: str) -> FileError:
        """A one-line :class:`FileError` for a failed write of this entry, saying what is on disk now."""
        if isinstance(exc, FileError) and exc.message.startswith(f"{self.what} "):
            return exc
        state = "the previous entry is unchanged" if self.json_path.exists() else "no entry was written"
        where = exc.filename if exc.filename not in (None, str(self.json_path)) else None
        detail = reason(exc) + (f" at {where}" if where and not isinstance(exc, FileError) else "")
        return FileError(f"{self.what} {self.json_path}: {doing} ({detail}); {state}",
                         errno=exc.errno, filename=self.json_path)

    def __enter__(self) -> "EntryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.abort()

