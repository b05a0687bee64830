"""Commit a JSON record and the content-addressed file it names as one unit.

An *entry* is ``DIR/STEM.json`` plus at most one companion file
``DIR/<first 16 hex of its sha256>.KIND EXT`` (``0123456789abcdef.predictions.npz``
for results entries) that the JSON names with its full SHA-256. The companion is
named by its content alone, so entries of one directory whose companions hold
the same bytes (one model's predictions scored under several protocols) share
one file. The protocol:

1. the companion is streamed into a temporary file ``.STEM.KIND.*.tmpEXT`` in
   ``DIR`` (locked with ``flock`` while its writer lives), hashed from the bytes
   as they are written, and fsynced;
2. under an exclusive lock on ``DIR`` (:func:`~salbench.io.lock.directory_lock`):
   if a companion of that name already holds the same bytes (full SHA-256), it is
   reused and the temporary file dropped, else the temporary file is renamed to
   the name; the JSON is replaced atomically (written to a temporary file,
   fsynced, renamed); the directory is fsynced; then companions that **no** JSON
   in ``DIR`` names any more are removed (the set named is read from every JSON
   in ``DIR`` under the lock), with temporary files whose writer has died;
3. the lock is released.

So a crash, a full disk or a concurrent writer leaves either the old entry or
the new one: the old JSON keeps naming its companion until the new JSON
replaces it, two writers never interleave steps 2, a companion is always named
by the hash of its own bytes and is never removed while any entry names it.
A companion left over by a crash between the rename and the JSON is an orphan
that the next commit removes; readers only ever follow a JSON to its named
companion, so orphans and temporary files are never read as entries.

Legacy companions (``STEM.KIND EXT`` of schema /1, ``STEM.KIND.<16 hex>EXT``) are
still read through the JSON that names them, and removed like the others once
no JSON names them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Mapping

from salbench.io.atomic import TMP_MARK, _umask, atomic_write_bytes, ensure_directory, fsync_directory
from salbench.io.digest import file_sha256
from salbench.io.errors import FileError, reason
from salbench.io.lock import directory_lock, is_abandoned, lock_open_file

_NAME_ERRORS = (ValueError, TypeError, AttributeError, KeyError, RecursionError)


def _default_references(record: Mapping) -> set[str]:
    pred = record.get("predictions") if isinstance(record, Mapping) else None
    name = pred.get("file") if isinstance(pred, Mapping) else None
    return {name} if isinstance(name, str) else set()


class EntryWriter:
    """Write ``DIR/STEM.json`` and its companion ``DIR/<digest16>.KIND EXT`` as one unit.

    Parameters
    ----------
    directory : path
        Created if missing; a file in the way is a :class:`~salbench.io.errors.FileError`.
    stem : str
        Entry name without ``.json``.
    kind, ext : str
        Companion naming: ``<digest16>.KIND EXT`` (shared by every entry of ``DIR``
        whose companion holds the same bytes).
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
        self._shared_re = re.compile(rf"[0-9a-f]{{16}}\.{k}{e}")
        self._legacy_re = re.compile(rf"{s}\.{k}(\.[0-9a-f]{{16}})?{e}")  # STEM.KIND.EXT, STEM.KIND.<16 hex>EXT
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
        """``<first 16 hex digits>.KIND EXT``: a name of the content alone."""
        if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"not a hex sha256: {sha256!r}")
        return f"{sha256[:16]}.{self.kind}{self.ext}"

    # -- commit / abort --------------------------------------------------------------------
    def commit(self, record: Mapping, json_bytes: bytes, *, companion_sha256: str | None = None,
               replaces_sha256: str | None = None) -> Path:
        """Make the entry ``record`` (serialised as ``json_bytes``) current; return the JSON path.

        ``companion_sha256`` is the digest of the companion streamed into
        :meth:`open_companion` (None when there is none); the record must name
        :meth:`companion_name` of it. ``replaces_sha256``: the entry is replaced only
        if its JSON still hashes to this (checked under the lock: a concurrent
        writer's newer entry is never overwritten).

        Raises
        ------
        FileError
            A write failed (e.g. disk full), or the JSON changed since it was read
            (``replaces_sha256``); the message names the entry and says that the
            previous entry is unchanged (or that none was written).
        """
        final = None
        if self._fh is not None:
            if companion_sha256 is None:
                raise ValueError("a companion was written: pass its sha256")
            final = self.directory / self.companion_name(companion_sha256)
            if final.name not in self._references(record):
                raise ValueError(f"the record does not name its companion file {final.name}")
        placed = False  # a new companion file was renamed into place (not an identical one reused)
        try:
            if self._fh is not None:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            with directory_lock(self.directory):
                if replaces_sha256 is not None:
                    self._still(replaces_sha256)
                if final is not None:
                    placed = self._place(final, companion_sha256)
                try:
                    atomic_write_bytes(self.json_path, json_bytes, what="results file")
                except BaseException:
                    if placed:
                        named = self._named_by_entries([final.name])
                        if named is not None and final.name not in named:
                            final.unlink(missing_ok=True)
                    raise
                self._cleanup(keep=self._references(record))
        except OSError as exc:
            raise self.error(exc, "could not write") from exc
        finally:
            self._close()
        return self.json_path

    def _still(self, sha256: str) -> None:
        """Raise FileError unless the entry's JSON still hashes to ``sha256`` (lock held)."""
        try:
            now = file_sha256(self.json_path)
        except OSError:
            now = None
        if now != sha256:
            raise FileError(f"{self.what} {self.json_path} changed while it was being rewritten; not updated "
                            "(the previous entry is unchanged; run the command again)", filename=self.json_path)

    def _place(self, final: Path, sha256: str) -> bool:
        """Put the companion at ``final`` (lock held); False when an identical file was already there."""
        existing = None
        if final.is_file():
            try:
                existing = file_sha256(final)
            except OSError:
                existing = None  # unreadable: replaced below by a file that hashes to its name
        if existing == sha256:
            # Another entry (or an earlier version of this one) stored the same bytes: share them.
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
            return False
        if existing is not None and existing[:16] == sha256[:16]:
            # Two contents with one 64-bit name prefix: replacing the file would break the entries
            # that name it, so refuse (never seen; astronomically unlikely by accident).
            raise FileError(f"{self.what} {self.json_path}: {final.name} already holds other content with the "
                            f"same name (sha256 {existing} vs {sha256}); nothing written; "
                            + ("the previous entry is unchanged" if self.json_path.exists()
                               else "no entry was written"), filename=final)
        # Absent, or a damaged file whose bytes do not hash to its name (no entry can be valid with
        # it): the new file takes the name.
        os.chmod(self._tmp, 0o666 & ~_umask())
        os.replace(self._tmp, final)
        self._tmp = None  # the name is free again: never unlink it later
        fsync_directory(self.directory)
        return True

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

    def _named_by_entries(self, candidates: Iterable[str]) -> set[str] | None:
        """The ``candidates`` that some JSON in ``DIR`` names (call with the lock held).

        Every ``*.json`` in ``DIR`` counts (not only entries: a companion named
        anywhere is kept): a candidate is named when the parsed record references
        it or, conservatively, when its name occurs in the file's text (a truncated
        or hand-edited JSON still protects what it mentions). None when a JSON
        cannot be read: then nothing may be removed.
        """
        pending = set(candidates)
        named: set[str] = set()
        if not pending:
            return named
        try:
            listing = sorted(os.listdir(self.directory))
        except OSError:
            return None
        for name in listing:
            if not name.endswith(".json") or name.startswith("."):
                continue  # hidden files are temporaries: never an entry
            path = self.directory / name
            try:
                if not path.is_file():
                    continue
                data = path.read_bytes()
            except OSError:
                return None
            found = {c for c in pending if c.encode("utf-8") in data}
            try:
                found |= pending & set(self._references(json.loads(data)))
            except _NAME_ERRORS:
                pass  # not a record: what its text mentions is kept all the same
            named |= found
            pending -= found
            if not pending:
                break
        return named

    def _cleanup(self, keep: set[str]) -> None:
        """Remove companions no JSON in ``DIR`` names (lock held), and temporaries whose writer died.

        Companions are the shared ``<16 hex>.KIND EXT`` files and this entry's legacy
        ``STEM.KIND[.<16 hex>]EXT``; ``keep`` (what the new JSON names) is kept without reading.
        """
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        candidates = [n for n in names if n not in keep and (self._shared_re.fullmatch(n)
                                                             or self._legacy_re.fullmatch(n))]
        named = self._named_by_entries(candidates)
        for name in names:
            path = self.directory / name
            try:
                if name in candidates:
                    if named is not None and name not in named:
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

