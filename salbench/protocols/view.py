"""What a protocol needs to know about the evaluated images before it sees any prediction.

A :class:`GroundTruthView` is the evaluated set of images seen from the ground-truth side:
their names and dataset indices, their sizes and fixation points (what sAUC's "other"
maps and SALICON's shuffle map are built from: points, not dense maps), a content hash
to key on-disk caches with, and per-image ground-truth records on demand. Build one from a
dataset (:meth:`GroundTruthView.from_dataset`, no image is decoded) or from records
already in memory (:meth:`GroundTruthView.from_records`, no disk cache).

Points and sizes of a dataset are read once and cached on disk (``points`` entries of
:mod:`salbench.protocols._gt_cache`), so a second run on the same split reads them from
the cache instead of the dataset's files.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from salbench.protocols import _gt_cache

POINTS_FORMAT = 2  # 2: points or packed bits per image


def points_of(record) -> np.ndarray:
    """``(K, 2)`` int64 fixation points of a record: its points, or (map-only datasets) every fixated pixel once."""
    pts = np.asarray(record.fixations, dtype=np.int64).reshape(-1, 2)
    if len(pts) == 0:
        return np.argwhere(record.fixation_map).astype(np.int64)
    return pts


def pack_bits(mask: np.ndarray) -> np.ndarray:
    """Bool map -> uint64 words, pixel ``j`` (row-major) at bit ``j % 64`` of word ``j // 64``."""
    flat = np.ascontiguousarray(mask, dtype=np.bool_).ravel()
    padded = np.zeros(-(-flat.size // 64) * 64, dtype=np.bool_)
    padded[: flat.size] = flat
    return np.packbits(padded, bitorder="little").view("<u8").astype(np.uint64)


def unpack_bits(words: np.ndarray, shape) -> np.ndarray:
    """Inverse of :func:`pack_bits`: the (H, W) bool map."""
    n = int(shape[0]) * int(shape[1])
    bits = np.unpackbits(np.ascontiguousarray(words, dtype="<u8").view(np.uint8), bitorder="little", count=n)
    return bits.astype(bool).reshape(shape)


def _ground_truth_record(dataset, i: int):
    """``dataset.ground_truth(i)`` (no image) where the dataset offers it, else the full record."""
    gt = getattr(dataset, "ground_truth", None)
    if gt is not None:
        return gt(i)
    return dataset[i]


class GroundTruthView:
    """The evaluated images, ground truth only.

    Attributes
    ----------
    names : list of str
        Image names, in evaluation order.
    indices : ndarray
        Dataset index of each evaluated image (``arange(n)`` for a list of records).
    content_hash : str or None
        Identifies the ground truth (dataset content hash plus the evaluated indices);
        None: nothing is cached on disk.
    timings : dict
        Seconds spent reading points and sizes (``points_s``) and whether the cache served them.
    """

    def __init__(self, names, indices, content_hash, record_fn, points_fn=None, dataset=None):
        self.names = list(names)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.content_hash = content_hash
        self._record_fn = record_fn
        self._points_fn = points_fn
        self.dataset = dataset
        self.records = None
        self._pos = None
        self._fix = None  # per image: int32 (K, 2) points, or uint64 packed bits (see _compact)
        self._is_bits = None  # (n,) bool
        self._shapes = None  # int64 (n, 2)
        self.timings: dict = {}

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_dataset(cls, dataset, indices=None, *, cache: bool = True) -> "GroundTruthView":
        """The view of ``dataset`` (all of it, or the dataset ``indices`` in that order)."""
        n_total = len(dataset)
        idx = np.arange(n_total) if indices is None else np.asarray(list(indices), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n_total):
            raise ValueError(f"indices must lie in 0..{n_total - 1}")
        if len(np.unique(idx)) != idx.size:
            raise ValueError("indices must not repeat")
        content = None
        if cache:
            try:
                content = dataset.identity().get("content_hash")
            except Exception:  # a dataset that cannot identify itself is simply not cached
                content = None
        content_hash = None if content is None else f"{content}:{_gt_cache.indices_tag(idx, n_total)}"
        names = [dataset.names[int(i)] for i in idx]
        points_fn = getattr(dataset, "fixation_points", None)
        return cls(names, idx, content_hash, lambda i: _ground_truth_record(dataset, i), points_fn, dataset)

    @classmethod
    def from_records(cls, records) -> "GroundTruthView":
        """The view of records already in memory (indices ``0..n-1``; no disk cache)."""
        records = list(records)
        view = cls([r.name for r in records], np.arange(len(records)), None, lambda i: records[i])
        view.records = records  # lets a protocol reuse in-memory preparation for the same record objects
        # the records are in memory already: fixations are read from them, nothing is copied
        view._fix = [None] * len(records)
        view._is_bits = np.zeros(len(records), dtype=bool)
        view._shapes = np.array([r.shape for r in records], dtype=np.int64).reshape(-1, 2)
        return view

    # -- basic queries ---------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return self.n

    def position(self, index: int) -> int:
        """Position in the evaluated set of dataset index ``index``."""
        if self._pos is None:
            self._pos = {int(i): p for p, i in enumerate(self.indices)}
        try:
            return self._pos[int(index)]
        except KeyError:
            raise ValueError(f"dataset index {index} is not among the evaluated images") from None

    def record(self, pos: int):
        """Ground-truth record of the image at position ``pos`` (no image where the dataset allows)."""
        return self._record_fn(int(self.indices[pos]))

    # -- fixations and sizes -------------------------------------------------------------
    # Each image's fixations are kept in the smaller of two forms: its points (int32 pairs,
    # duplicates kept: ~1 KB for 15 observers), or, when a map-only dataset marks thousands of
    # pixels (e.g. ``y > 0`` of SALICON-style maps: 30-60% of 307,200 pixels), the packed bits
    # of the fixated pixels (H*W/8 bytes, 38 KB at 480x640) instead of ~1 MB of points.
    def points(self, pos: int) -> np.ndarray:
        """``(K, 2)`` int64 fixation points of position ``pos`` (duplicates as the dataset keeps them)."""
        self.load()
        if self.records is not None:
            return points_of(self.records[pos])
        a = self._fix[pos]
        if self._is_bits[pos]:
            return np.argwhere(unpack_bits(a, self.shape(pos)))
        return a.astype(np.int64)

    def fixation_mask(self, pos: int) -> np.ndarray:
        """``(H, W)`` bool map of the fixated pixels of position ``pos`` (each pixel once)."""
        self.load()
        shape = self.shape(pos)
        if self.records is not None:
            return np.asarray(self.records[pos].fixation_map, dtype=bool)
        a = self._fix[pos]
        if self._is_bits[pos]:
            return unpack_bits(a, shape)
        m = np.zeros(shape, dtype=bool)
        if len(a):
            m.ravel()[a[:, 0].astype(np.intp) * shape[1] + a[:, 1]] = True
        return m

    def add_fixations(self, mask: np.ndarray, pos: int) -> None:
        """``mask |= fixated pixels of pos`` (``mask``: (H, W) bool of the image's size)."""
        self.load()
        if self.records is not None:
            mask |= np.asarray(self.records[pos].fixation_map, dtype=bool)
            return
        a = self._fix[pos]
        if self._is_bits[pos]:
            mask |= unpack_bits(a, mask.shape)
        elif len(a):
            mask.ravel()[a[:, 0].astype(np.intp) * mask.shape[1] + a[:, 1]] = True

    def shape(self, pos: int) -> tuple[int, int]:
        self.load()
        return int(self._shapes[pos, 0]), int(self._shapes[pos, 1])

    @property
    def shapes(self) -> np.ndarray:
        """``(n, 2)`` int64 ground-truth sizes."""
        self.load()
        return self._shapes

    def _set_points(self, pts_list, shapes) -> None:
        shapes = np.asarray(shapes, dtype=np.int64).reshape(-1, 2)
        self._fix, self._is_bits = [], np.zeros(len(pts_list), dtype=bool)
        for p, (pts, sh) in enumerate(zip(pts_list, shapes)):
            a, bits = _compact(np.asarray(pts).reshape(-1, 2), (int(sh[0]), int(sh[1])))
            self._fix.append(a)
            self._is_bits[p] = bits
        self._shapes = shapes

    def load(self, *, workers: int = 2, progress=None) -> "GroundTruthView":
        """Read every image's fixations and size (from the cache when it has them)."""
        if self._fix is not None:
            return self
        t0 = time.perf_counter()
        key = self._points_key()
        if key is not None:
            cached = _gt_cache.GTCache.open("points", key)
            if cached is not None:
                try:
                    fix, bits, shapes = [], np.zeros(self.n, dtype=bool), np.zeros((self.n, 2), dtype=np.int64)
                    for p in range(self.n):
                        a, bits[p], shapes[p] = _decode(cached.read("points", p))
                        fix.append(a)
                    self._fix, self._is_bits, self._shapes = fix, bits, shapes
                    self.timings.update(points_s=time.perf_counter() - t0, points_cached=True)
                    return self
                except _gt_cache.CacheCorrupted:
                    cached.invalidate()
                finally:
                    cached.close()
        pts, shapes = self._read_points(workers, progress)
        self._set_points(pts, shapes)
        del pts
        if key is not None:
            writer = _gt_cache.GTCacheWriter("points", key, self.n, ["points"])
            try:
                for p in range(self.n):
                    writer.put("points", p, _encode(self._fix[p], self._is_bits[p], self._shapes[p]))
                writer.commit({"names_sha256": _gt_cache.names_digest(self.names)})
            except BaseException:
                writer.abort()
                raise
        self.timings.update(points_s=time.perf_counter() - t0, points_cached=False)
        return self

    def _points_key(self):
        if self.content_hash is None:
            return None
        return {"what": "fixation points and sizes", "content_hash": self.content_hash,
                "points_format": POINTS_FORMAT}

    def _read_points(self, workers: int, progress):
        ds = self.dataset
        cheap_shape = ds is not None and _has_cheap_stats(ds)

        def one(p):
            i = int(self.indices[p])
            if self._points_fn is not None and cheap_shape:
                return np.asarray(self._points_fn(i), dtype=np.int64).reshape(-1, 2), tuple(ds.stats(i)["shape"])
            rec = self._record_fn(i)
            return points_of(rec), rec.shape

        if workers > 1 and self.n > 1:
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="salbench-points")
            try:
                out = []
                for r in pool.map(one, range(self.n)):
                    out.append(r)
                    if progress is not None:
                        progress.update(1)
            finally:  # on Ctrl-C: drop the queued reads instead of finishing them
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            out = []
            for p in range(self.n):
                out.append(one(p))
                if progress is not None:
                    progress.update(1)
        return [o[0] for o in out], [o[1] for o in out]


def _words(shape) -> int:
    return -(-(int(shape[0]) * int(shape[1])) // 64)


def _compact(pts: np.ndarray, shape):
    """``(array, is_bits)``: int32 points, or packed bits when the points are unique and bits are smaller."""
    k = len(pts)
    if k * 8 > _words(shape) * 8:  # more bytes as points than as a bit map
        m = np.zeros(shape, dtype=bool)
        m[pts[:, 0], pts[:, 1]] = True
        if np.count_nonzero(m) == k:  # unique pixels (map-only datasets): the bits lose nothing
            return pack_bits(m), True
    return np.ascontiguousarray(pts, dtype=np.int32), False


def _encode(a: np.ndarray, is_bits: bool, shape) -> bytes:
    head = np.array([shape[0], shape[1], int(is_bits)], dtype=np.int64).tobytes()
    return head + np.ascontiguousarray(a).tobytes()


def _decode(blob: bytes):
    head = np.frombuffer(blob[:24], dtype=np.int64)
    shape, is_bits = head[:2].copy(), bool(head[2])
    body = blob[24:]
    if is_bits:
        return np.frombuffer(body, dtype="<u8").copy(), True, shape
    return np.frombuffer(body, dtype=np.int32).reshape(-1, 2).copy(), False, shape


def _has_cheap_stats(ds) -> bool:
    """The loader answers ``stats(i)`` (the size) without decoding: it overrides the base method."""
    from salbench.data.base import SaliencyDataset

    return getattr(type(ds), "stats", None) is not getattr(SaliencyDataset, "stats", None)
