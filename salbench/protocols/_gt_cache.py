"""On-disk cache of model-independent ground truth (fixation points, coursework targets).

Layout: one directory per key under ``cache_dir()/ground_truth/``::

    <kind>-<sha256(key)[:20]>/
        manifest.json        written last: format, full key, n, per-stream sizes and index digests
        <stream>.bin         the per-image blobs of one stream, concatenated
        <stream>.idx.npy     (n, 3) int64: offset, length, crc32 of each image's blob

The key is a JSON object: the dataset's content hash, the evaluated indices (hashed when
not the whole split), the protocol's ground-truth parameters and :data:`FORMAT`. A
directory is built in a temporary sibling and renamed into place after its manifest is
written, so a crash leaves either nothing or a complete entry. Processes that share the
cache (Dask workers on one filesystem, two runs at once) may build the same entry at the
same time, each in its own temporary directory; publishing happens under the cache
directory's lock (:func:`salbench.io.lock.directory_lock`), and an intact entry a peer
published first is kept (same key, same content), never replaced under its readers.

Opening verifies the manifest (format, the full key, n), every stream's size and index
digest, and the crc32 of every blob (a streamed read: ~0.1 s per 100 MB, no RAM kept);
any mismatch means "absent" and the caller rebuilds the entry. Reading a blob re-checks
its crc32 (:class:`CacheCorrupted` if the file changed since); per-image reads are
``os.pread`` at the recorded offset, so a run never maps or loads the whole file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
import zlib
from pathlib import Path

import numpy as np

from salbench.io.lock import directory_lock

#: Bump when what is stored, or how, changes: older entries are then ignored.
FORMAT = 2  # 2: fixations outside the image are dropped, no longer clipped (issue 19)
_BLOCK = 4 << 20


class CacheCorrupted(RuntimeError):
    """A cached blob no longer matches its checksum."""


def root() -> Path:
    """``cache_dir()/ground_truth``: where every ground-truth cache entry lives."""
    from salbench.data.base import cache_dir

    return cache_dir() / "ground_truth"


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps({"format": FORMAT, **key}, sort_keys=True, default=str).encode()).hexdigest()


def entry_path(kind: str, key: dict) -> Path:
    return root() / f"{kind}-{key_digest(key)[:20]}"


def names_digest(names) -> str:
    """SHA-256 of the image names, one per line: recorded in a cache entry's manifest."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def indices_tag(indices, n_total: int | None) -> str:
    """``"all"`` when ``indices`` is ``range(n_total)``, else a digest of the index list."""
    idx = np.asarray(indices, dtype=np.int64)
    if n_total is not None and idx.size == n_total and np.array_equal(idx, np.arange(n_total)):
        return "all"
    return hashlib.sha256(idx.tobytes()).hexdigest()[:32]


def _file_crc(path: Path, offsets, lengths, crcs) -> bool:
    """Stream the file once and check every blob's crc32 (blobs are contiguous, in offset order)."""
    order = np.argsort(offsets, kind="stable")
    with open(path, "rb", buffering=0) as fh:
        for j in order:
            off, length = int(offsets[j]), int(lengths[j])
            fh.seek(off)
            crc = 0
            left = length
            while left:
                block = fh.read(min(left, _BLOCK))
                if not block:
                    return False
                crc = zlib.crc32(block, crc)
                left -= len(block)
            if crc != int(crcs[j]):
                return False
    return True


class GTCache:
    """A verified cache entry, open for per-image reads (thread-safe: ``os.pread``)."""

    def __init__(self, path: Path, manifest: dict, index: dict):
        self.path = path
        self.manifest = manifest
        self.meta = manifest.get("meta", {})
        self.n = int(manifest["n"])
        self._index = index
        self._fds = {name: os.open(path / f"{name}.bin", os.O_RDONLY) for name in index}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, kind: str, key: dict, *, verify: bool = True) -> "GTCache | None":
        """The entry for ``key`` if present and intact, else None (the caller rebuilds it)."""
        path = entry_path(kind, key)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
                or manifest.get("key") != json.loads(json.dumps(key, sort_keys=True, default=str))
                or manifest.get("kind") != kind):
            return None
        index = {}
        try:
            for name, info in manifest["streams"].items():
                idx_path = path / f"{name}.idx.npy"
                raw = idx_path.read_bytes()
                if hashlib.sha256(raw).hexdigest() != info["index_sha256"]:
                    return None
                idx = np.load(idx_path, allow_pickle=False)
                if idx.shape != (int(manifest["n"]), 3):
                    return None
                data = path / f"{name}.bin"
                if data.stat().st_size != int(info["bytes"]):
                    return None
                if int((idx[:, 1]).sum()) != int(info["bytes"]):
                    return None
                if verify and not _file_crc(data, idx[:, 0], idx[:, 1], idx[:, 2]):
                    return None
                index[name] = idx
        except (OSError, KeyError, ValueError, TypeError):
            return None
        return cls(path, manifest, index)

    def read(self, stream: str, i: int) -> bytes:
        """Blob ``i`` of ``stream``, checked against its crc32."""
        off, length, crc = (int(v) for v in self._index[stream][i])
        data = os.pread(self._fds[stream], length, off)
        if len(data) != length or zlib.crc32(data) != crc:
            raise CacheCorrupted(f"ground-truth cache {self.path}: {stream} blob {i} does not match its checksum")
        return data

    def invalidate(self) -> None:
        """Remove the manifest: the entry is rebuilt on next use and never opened again as is."""
        try:
            (self.path / "manifest.json").unlink()
        except OSError:
            pass

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._fds = {}

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


class GTCacheWriter:
    """Build one cache entry in a temporary directory; :meth:`commit` publishes it atomically.

    ``put(stream, i, blob)`` may be called in any image order (from one thread).
    """

    def __init__(self, kind: str, key: dict, n: int, streams):
        self.kind, self.key, self.n = kind, key, int(n)
        self.final = entry_path(kind, key)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        _sweep(self.final.parent)
        self.tmp = self.final.with_name(f".{self.final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.tmp.mkdir()
        self._files = {s: open(self.tmp / f"{s}.bin", "wb") for s in streams}
        self._index = {s: np.full((self.n, 3), -1, dtype=np.int64) for s in streams}
        self._pos = {s: 0 for s in streams}

    def put(self, stream: str, i: int, blob: bytes) -> None:
        if self._index[stream][i, 0] >= 0:
            raise ValueError(f"blob {i} of {stream} written twice")
        self._files[stream].write(blob)
        self._index[stream][i] = (self._pos[stream], len(blob), zlib.crc32(blob))
        self._pos[stream] += len(blob)

    def commit(self, meta: dict | None = None) -> Path:
        """Write indices and the manifest (last), then rename the directory into place."""
        streams = {}
        for s, fh in self._files.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            idx = self._index[s]
            if (idx[:, 0] < 0).any():
                raise ValueError(f"{int((idx[:, 0] < 0).sum())} blobs of {s} were never written")
            idx_path = self.tmp / f"{s}.idx.npy"
            with open(idx_path, "wb") as fh2:
                np.save(fh2, idx, allow_pickle=False)
                fh2.flush()
                os.fsync(fh2.fileno())
            streams[s] = {"bytes": int(self._pos[s]), "index_sha256": hashlib.sha256(idx_path.read_bytes()).hexdigest()}
        manifest = {"format": FORMAT, "kind": self.kind, "key": self.key, "n": self.n, "streams": streams,
                    "meta": meta or {}}
        mpath = self.tmp / "manifest.json"
        with open(mpath, "w") as fh:
            json.dump(manifest, fh, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        with directory_lock(self.final.parent):  # one publisher at a time (processes sharing the cache)
            if self.final.exists():
                peer = GTCache.open(self.kind, self.key)
                if peer is not None:  # a peer published this key meanwhile: keep theirs (its readers too)
                    peer.close()
                    shutil.rmtree(self.tmp, ignore_errors=True)
                    return self.final
                # a stale or corrupt entry under the same key: replace it
                trash = self.final.with_name(f".{self.final.name}.old-{uuid.uuid4().hex[:8]}")
                try:
                    os.rename(self.final, trash)
                    shutil.rmtree(trash, ignore_errors=True)
                except OSError:
                    pass
            try:
                os.rename(self.tmp, self.final)
            except OSError:  # pragma: no cover - the final name is taken by something that is no entry
                shutil.rmtree(self.tmp, ignore_errors=True)
            _fsync_dir(self.final.parent)
        return self.final

    def abort(self) -> None:
        for fh in self._files.values():
            try:
                fh.close()
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def _sweep(parent: Path, max_age_s: float = 86400.0) -> None:
    """Remove temporary directories of builds killed more than a day ago (never read as entries)."""
    now = time.time()
    for p in parent.glob(".*-*"):
        if (".tmp-" in p.name or ".old-" in p.name) and p.is_dir():
            try:
                if now - p.stat().st_mtime > max_age_s:
                    shutil.rmtree(p, ignore_errors=True)
            except OSError:
                pass


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class MemoryStore:
    """The same ``read(stream, i)`` interface over blobs kept in memory (no content hash: no disk)."""

    def __init__(self, n: int, streams):
        self.n = int(n)
        self._blobs = {s: [None] * self.n for s in streams}
        self.meta: dict = {}

    def put(self, stream: str, i: int, blob: bytes) -> None:
        self._blobs[stream][i] = blob

    def read(self, stream: str, i: int) -> bytes:
        return self._blobs[stream][i]

    def invalidate(self) -> None:
        pass

    def close(self) -> None:
        pass
