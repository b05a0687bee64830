"""The ``coursework`` protocol: the evaluation script shipped with ``train.pkl``/``val.pkl``.

Per image (see PROTOCOLS.md): 2304 outputs -> 48x48; ``(p*255).astype(uint8)``
without clipping (values wrap modulo 256, with a warning); Pillow bicubic to
the ground truth's size; ``/255``; ``gaussian_filter(sigma=blur_sigma)``; fixated
pixels ``y_original > 0``; CC against ``gaussian_filter(y_original, cc_target_sigma)``
min-max normalised; AUC-Borji (100 splits, step 0.1, ``arange`` thresholds
without the end point, draws with replacement); sAUC with the OR of the
fixated pixels of 10 images drawn without replacement from the evaluated set
(the current image may be among them).

CC, AUC-Borji and sAUC run in one fused Numba kernel (:mod:`salbench.protocols._fused`;
CC through the registry's CC kernel); any other metric the registry lists for
``coursework`` is computed per image by its registry function.

Ground truth (the uint8 CC targets after the sigma-19 blur, and the packed
``y_original > 0`` bits) does not depend on the model: it is built once per dataset
version and cached on disk (:mod:`salbench.protocols._gt_cache`), zlib-compressed per
image (~22 KB target + ~4 KB bits for a 480x640 SALICON-style map, against 2.4 MB for
a float64 map), and read back per image with ``pread``.
"""

from __future__ import annotations

import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from salbench.metrics.auc_sampled import log_factorials, thresholds_for
from salbench.protocols import _gt_cache, _metrics
from salbench.protocols._draws import others_with_self, seed_table
from salbench.protocols._fused import coursework_batch
from salbench.protocols._resize import gaussian_blur, gaussian_weights, pillow_bicubic_u8, pillow_coeffs
from salbench.protocols.base import (Item, Protocol, Scorer, as_prediction, boolean, nonneg_float, positive_float,
                                     positive_int, step_value, y_original_of)

_PREPARE_CHUNK = 16  # ground truths blurred per parallel call
TARGET_FORMAT = 1  # bump when the cached blobs change
FUSED = ("cc", "auc_borji", "auc_shuffled")


class QuantisationWrapWarning(UserWarning):
    """A prediction left [0, 1) and wrapped around in the uint8 cast, as the original script."""


def quantise_like_script(p: np.ndarray) -> tuple[np.ndarray, int]:
    """``(p * 255).astype(np.uint8)`` as C casts it on common platforms: truncate, wrap mod 256.

    Returns the uint8 map and how many values wrapped (outside [0, 256) after scaling).
    """
    scaled = np.trunc(np.asarray(p, dtype=np.float64) * 255.0)
    wrapped = int(np.count_nonzero((scaled < 0) | (scaled > 255)))
    return np.mod(scaled.astype(np.int64), 256).astype(np.uint8), wrapped


def pack_bits(mask: np.ndarray) -> np.ndarray:
    """Bool map -> uint64 words, pixel j at bit ``j % 64`` of word ``j // 64``."""
    flat = np.ascontiguousarray(mask, dtype=np.bool_).ravel()
    n_words = -(-flat.size // 64)
    padded = np.zeros(n_words * 64, dtype=np.bool_)
    padded[: flat.size] = flat
    return np.packbits(padded, bitorder="little").view("<u8").astype(np.uint64)


def unpack_bits(words: np.ndarray, shape) -> np.ndarray:
    """Inverse of :func:`pack_bits`."""
    n = int(shape[0]) * int(shape[1])
    bits = np.unpackbits(np.ascontiguousarray(words, dtype="<u8").view(np.uint8), bitorder="little")
    return bits[:n].astype(bool).reshape(shape)


def coursework_saliency(q: np.ndarray, shape, blur_sigma: float, blur_truncate: float) -> np.ndarray:
    """The script's saliency map of one quantised prediction: Pillow bicubic, ``/255``, Gaussian blur."""
    up = pillow_bicubic_u8(q, tuple(shape)).astype(np.float64) / 255.0
    if blur_sigma > 0:
        up = gaussian_blur(up, blur_sigma, blur_truncate)
    return up


class CourseworkProtocol(Protocol):
    name = "coursework"
    description = "the coursework evaluation script (uint8 wrap, Pillow bicubic, blur 2, y_original > 0)"
    defaults = {
        "blur_sigma": 2.0,
        "blur_truncate": 4.0,
        "cc_target_sigma": 19.0,
        "splits": 100,
        "step": 0.1,
        "include_endpoint": False,
        "n_other": 10,
    }
    validators = {
        "blur_sigma": nonneg_float,
        "blur_truncate": positive_float,
        "cc_target_sigma": positive_float,
        "splits": positive_int,
        "step": step_value,
        "include_endpoint": boolean,
        "n_other": positive_int,
    }
    conventions = {
        "input": "a flat vector of 2304 outputs is reshaped to 48x48; any 2-D map is taken as it is",
        "quantise": "(p * 255) cast to uint8 without clipping: truncated, out-of-range values wrap modulo 256 "
                    "(warned), as the script's astype(uint8)",
        "resize": "Pillow 8-bit bicubic to the ground truth's size, then / 255",
        "fixations": "y_original > 0: every pixel with nonzero SALICON density counts as fixated",
        "cc_target": "gaussian_filter(y_original, cc_target_sigma) on the uint8 map (uint8 result), "
                     "min-max normalised",
        "shuffled_negatives": "OR of y_original > 0 of n_other images drawn without replacement from the "
                              "evaluated images (the image itself may be drawn)",
        "auc_method": "binned: per-bin counts of the negatives drawn with the law of the script's per-pixel draws",
        "thresholds": "np.arange(0, max(P u Q), step) on the min-max map unless include_endpoint",
        "no_fixations": "an image whose y_original is all zero is NaN in every metric and counted as excluded",
    }
    ground_truth_params = ("cc_target_sigma",)
    legacy_keys = {"input_size": [48, 48], "quantise": "uint8_wrap", "resize": "pillow_bicubic_uint8",
                   "fixations": "y_original > 0", "cc_target": "gaussian_filter(y_original, 19) as uint8, min-max",
                   "auc_method": "binned"}

    # ------------------------------------------------------------------ in-memory pieces
    def prepare(self, records):
        """Ground-truth arrays of ``records`` in memory: ``shape``, ``targets`` (N, H, W) uint8, ``fixbits``."""
        records = list(records)
        shape = _one_shape(y_original_of(r).shape for r in records)
        targets, fixbits = [], []
        for c0 in range(0, len(records), _PREPARE_CHUNK):
            ys = [y_original_of(r) for r in records[c0:c0 + _PREPARE_CHUNK]]
            t, b = _prepare_chunk(ys, float(self._params["cc_target_sigma"]))
            targets.extend(t)
            fixbits.extend(b)
        return {"shape": shape, "targets": np.stack(targets), "fixbits": np.stack(fixbits)}

    def quantise(self, predictions) -> np.ndarray:
        """Stack predictions as uint8 maps, wrapping like the script (and warning when it does)."""
        maps = [as_prediction(p, i) for i, p in enumerate(predictions)]
        shapes = {m.shape for m in maps}
        if len(shapes) != 1:
            raise ValueError(f"coursework protocol needs predictions of one size, got {sorted(shapes)}")
        q, wrapped = zip(*(_quantise_one(m) for m in maps))
        _warn_wrapped(sum(wrapped), stacklevel=3)
        return np.stack(q)

    def score(self, q, gt, others, seeds) -> np.ndarray:
        """Run the fused kernel: ``(N, 3)`` array of CC, AUC-Borji, sAUC.

        ``q``: (N, h, w) uint8 from :meth:`quantise`; ``gt``: from :meth:`prepare`;
        ``others``: (N, k) indices whose fixated pixels form each image's sAUC other
        map; ``seeds``: (N, 2) integer seeds of the AUC-Borji and sAUC draws.
        """
        fix = gt["fixbits"]
        obits = np.stack([np.bitwise_or.reduce(fix[np.asarray(o, dtype=np.int64)], axis=0) for o in others])
        return _run_kernel(self._params, q, gt["targets"], fix, obits, seeds, with_cc=True)


def _one_shape(shapes):
    shapes = {tuple(s) for s in shapes}
    if len(shapes) != 1:
        raise ValueError(f"coursework protocol needs one ground-truth size, got {sorted(shapes)}")
    return next(iter(shapes))


def _prepare_chunk(ys, sigma):
    """uint8 CC targets and packed fixation bits of a few ``y_original`` maps (blurred in parallel)."""
    # The script blurs the uint8 map itself: scipy keeps the uint8 dtype, truncating after
    # each axis pass; gaussian_blur does the same for integer input (values are integers).
    blurred = gaussian_blur(np.stack(ys), sigma)
    targets = [np.asarray(b, dtype=np.uint8) for b in blurred]
    bits = [pack_bits(np.asarray(y).astype(np.int64) > 0) for y in ys]
    return targets, bits


def _quantise_one(m):
    from salbench.protocols._metrics import is_constant_map

    if is_constant_map(m):  # a constant prediction stays constant (not a few ulps that quantise apart)
        q, wrapped = quantise_like_script(m.flat[:1])
        return np.full(m.shape, q[0], dtype=np.uint8), wrapped * m.size
    return quantise_like_script(m)


def _warn_wrapped(wrapped, stacklevel=2):
    if wrapped:
        warnings.warn(
            f"{wrapped} prediction values lie outside [0, 1] and wrapped around in the uint8 "
            "cast (as the original coursework script does, e.g. -0.3 -> 180, 1.2 -> 50)",
            QuantisationWrapWarning,
            stacklevel=stacklevel + 1,
        )


def _run_kernel(p, q, targets, fixbits, obits, seeds, with_cc):
    H, W = targets.shape[1:]
    hb, hk = pillow_coeffs(q.shape[2], W)
    vb, vk = pillow_coeffs(q.shape[1], H)
    # Pillow sums in 32-bit ints; int32 lets the vertical pass vectorise 16 lanes wide.
    if 255 * int(np.clip(vk, 0, None).sum(axis=1).max()) + (1 << 21) < 2**31:
        vk = vk.astype(np.int32)
    sigma = float(p["blur_sigma"])
    w = gaussian_weights(sigma, float(p["blur_truncate"])) if sigma > 0 else np.ones(1)
    return coursework_batch(np.ascontiguousarray(q, dtype=np.uint8), hb, hk, vb, vk, w,
                            np.ascontiguousarray(targets, dtype=np.uint8),
                            np.ascontiguousarray(fixbits, dtype=np.uint64),
                            np.ascontiguousarray(obits, dtype=np.uint64),
                            thresholds_for(float(p["step"])), int(p["splits"]),
                            np.ascontiguousarray(seeds, dtype=np.int64), sigma > 0,
                            bool(p["include_endpoint"]), log_factorials(H * W + 2), numba.get_num_threads(),
                            bool(with_cc))


class CourseworkScorer(Scorer):
    """Chunked scorer of the ``coursework`` protocol (ground truth from the cache)."""

    needs_record = False  # the per-image ground truth comes from the prepared (cached) store

    def __init__(self, protocol, gt, seed):
        super().__init__(protocol, gt, seed)
        cc_fused = _metrics.kernel_of("cc") in (None, _cc_kernel())
        self.fused = tuple(m for m in self.metrics if m in FUSED and (m != "cc" or cc_fused))
        self.per_image = tuple(m for m in self.metrics if m not in self.fused)
        self._wrapped = 0
        self.store = None
        self.cache_hit = None

    # ------------------------------------------------------------------ set-up
    def _setup(self, *, workers, progress):
        p = self.params
        rng = np.random.default_rng(self.seed)
        self.others = others_with_self(self.n, int(p["n_other"]), rng)
        self.seeds = seed_table(rng, self.n, 2).astype(np.int64)
        self.store, self.shape, self.cache_hit = self._open_store(workers, progress)
        self.words = -(-(self.shape[0] * self.shape[1]) // 64)

    def _cache_key(self):
        if self.gt.content_hash is None:
            return None
        return {"content_hash": self.gt.content_hash, **self.protocol.ground_truth_key(),
                "target_format": TARGET_FORMAT}

    def _open_store(self, workers, progress):
        key = self._cache_key()
        if key is not None:
            cached = _gt_cache.GTCache.open("coursework", key)
            if cached is not None and cached.n == self.n:
                if progress is not None:
                    progress.update(self.n)
                return cached, tuple(cached.meta["shape"]), True
        if key is None:  # records in memory: keep the preparation on the protocol for the same records
            memo = getattr(self.protocol, "_memo", None)
            recs = self.gt.records
            if (memo is not None and recs is not None and memo[1] == self.protocol.ground_truth_key()
                    and len(memo[0]) == len(recs) and all(a is b for a, b in zip(memo[0], recs))):
                return memo[2], memo[3], True
        writer = (_gt_cache.GTCacheWriter("coursework", key, self.n, ["target", "fixbits"]) if key is not None
                  else _gt_cache.MemoryStore(self.n, ["target", "fixbits"]))
        try:
            shape = self._build(writer, workers, progress)
            if key is None:
                writer.meta = {"shape": list(shape)}
                if self.gt.records is not None:
                    self.protocol._memo = (list(self.gt.records), self.protocol.ground_truth_key(), writer, shape)
                return writer, shape, False
            writer.commit({"shape": list(shape), "names_sha256": _names_digest(self.gt.names)})
        except BaseException:
            if key is not None:
                writer.abort()
            raise
        store = _gt_cache.GTCache.open("coursework", key, verify=False)
        if store is None:  # pragma: no cover - the file system lost what was just written
            raise RuntimeError(f"ground-truth cache {_gt_cache.entry_path('coursework', key)} unreadable after writing")
        return store, shape, False

    def _build(self, writer, workers, progress):
        sigma = float(self.params["cc_target_sigma"])
        shape = None
        # on disk: zlib per image (~14x smaller); in memory (records already in RAM): raw, no decoding
        on_disk = isinstance(writer, _gt_cache.GTCacheWriter)
        pack = (lambda b: zlib.compress(b, 6)) if on_disk else (lambda b: b)
        pool = (ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="salbench-gt")
                if workers > 1 else None)

        def load(pos):
            return y_original_of(self.gt.record(pos))

        try:
            for c0 in range(0, self.n, _PREPARE_CHUNK):
                chunk = range(c0, min(c0 + _PREPARE_CHUNK, self.n))
                ys = list(pool.map(load, chunk)) if pool is not None else [load(pos) for pos in chunk]
                s = _one_shape([y.shape for y in ys] + ([shape] if shape is not None else []))
                shape = s
                targets, bits = _prepare_chunk(ys, sigma)
                for pos, t, b in zip(chunk, targets, bits):
                    writer.put("target", pos, pack(t.tobytes()))
                    writer.put("fixbits", pos, pack(b.tobytes()))
                if progress is not None:
                    progress.update(len(chunk))
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return shape

    # ------------------------------------------------------------------ per image
    def _read(self, stream, pos):
        """A blob from the store; a corrupted cache is dropped and the image recomputed from its record."""
        try:
            raw = self.store.read(stream, pos)
            return raw if isinstance(self.store, _gt_cache.MemoryStore) else zlib.decompress(raw)
        except (_gt_cache.CacheCorrupted, zlib.error):
            self.store.invalidate()  # rebuilt on the next run
            t, b = _prepare_chunk([y_original_of(self.gt.record(pos))], float(self.params["cc_target_sigma"]))
            return (t[0] if stream == "target" else b[0]).tobytes()

    def _bits(self, pos):
        return np.frombuffer(self._read("fixbits", pos), dtype=np.uint64)

    def prepare(self, index, prediction, record=None) -> Item:
        self.setup()
        pos = self._position(index)
        q, wrapped = _quantise_one(as_prediction(prediction, index))
        own = self._bits(pos)
        data = {"q": q, "wrapped": wrapped}
        if own.any():
            obits = np.zeros(self.words, dtype=np.uint64)
            for j in self.others[pos]:
                obits |= own if j == pos else self._bits(int(j))
            target = np.frombuffer(self._read("target", pos), dtype=np.uint8).reshape(self.shape)
            data.update(target=target, fixbits=own, obits=obits)
        return Item(pos, index, data)

    def _score(self, items):
        live = []
        for it in items:
            self._wrapped += it.data["wrapped"]
            if "target" not in it.data:
                self._exclude(it.pos)
            else:
                live.append(it)
        groups: dict = {}
        for it in live:
            groups.setdefault(it.data["q"].shape, []).append(it)
        for _, group in groups.items():
            pos = np.array([it.pos for it in group])
            if self.fused:
                out = _run_kernel(self.params, np.stack([it.data["q"] for it in group]),
                                  np.stack([it.data["target"] for it in group]),
                                  np.stack([it.data["fixbits"] for it in group]),
                                  np.stack([it.data["obits"] for it in group]), self.seeds[pos],
                                  with_cc="cc" in self.fused)
                for row, it in enumerate(group):
                    self._store(it.pos, {k: out[row, FUSED.index(k)] for k in self.fused})
            for it in group:
                if self.per_image:
                    self._score_per_image(it)
                it.data.clear()

    def _score_per_image(self, it):
        d = it.data
        p = self.params
        s = coursework_saliency(d["q"], self.shape, float(p["blur_sigma"]), float(p["blur_truncate"]))
        t = d["target"].astype(np.float64)
        lo, hi = t.min(), t.max()
        g = (t - lo) / (hi - lo) if hi > lo else np.zeros_like(t)
        fix = unpack_bits(d["fixbits"], self.shape)
        inputs = {"density": g, "fixations": fix, "other": unpack_bits(d["obits"], self.shape),
                  "points": np.argwhere(fix)}
        seeds = self.seeds
        vals = {}
        for k in self.per_image:
            col = {"auc_borji": 0, "auc_shuffled": 1}.get(k)
            seed = int(seeds[it.pos, col]) if col is not None else _metrics.derived_seed(
                int(seeds[it.pos, 0]), self.n, it.pos, k)
            vals[k] = _metrics.call_metric(k, s, inputs, p, seed=seed)
        self._store(it.pos, vals)

    def _finish(self):
        _warn_wrapped(self._wrapped, stacklevel=4)
        return {"cache_hit": self.cache_hit}


def _cc_kernel():
    from salbench.metrics.correlation import _cc_kernel as k

    return k


def _names_digest(names) -> str:
    import hashlib

    return hashlib.sha256("\n".join(names).encode()).hexdigest()


CourseworkProtocol.scorer_class = CourseworkScorer
