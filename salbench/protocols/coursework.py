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
CC through the registry's CC kernel); any other metric the protocol reports (one that
names ``coursework``, or a plugin metric whose inputs it supplies) is computed per image by
its registry function, on the script's saliency map (upsampled, ``/255``, blurred), the
min-max normalised CC target as ``density`` and ``y_original > 0`` as ``fixations``.

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
from salbench.metrics.correlation import _cc_kernel
from salbench.metrics.degenerate import is_constant_map
from salbench.protocols import _gt_cache
from salbench.protocols._draws import others_with_self, seed_table
from salbench.protocols._fused import coursework_batch
from salbench.protocols._resize import gaussian_blur, gaussian_weights, pillow_bicubic_u8, pillow_coeffs
from salbench.protocols.base import (Protocol, Scorer, boolean, nonneg_float, positive_float, positive_int,
                                     step_value, y_original_of)
from salbench.protocols.inputs import FusedKernel, ImageInputs, lazy
from salbench.protocols.view import pack_bits, unpack_bits

_PREPARE_CHUNK = 16  # ground truths blurred per parallel call
TARGET_FORMAT = 1  # bump when the cached blobs change
FUSED_COLUMNS = ("cc", "auc_borji", "auc_shuffled")  # coursework_batch's output columns


class QuantisationWrapWarning(UserWarning):
    """A prediction left [0, 1) and wrapped around in the uint8 cast, as the original script."""


def quantise_like_script(p: np.ndarray) -> tuple[np.ndarray, int]:
    """``(p * 255).astype(np.uint8)`` as C casts it on common platforms: truncate, wrap mod 256.

    Returns the uint8 map and how many values wrapped (outside [0, 256) after scaling).
    """
    scaled = np.trunc(np.asarray(p, dtype=np.float64) * 255.0)
    wrapped = int(np.count_nonzero((scaled < 0) | (scaled > 255)))
    return np.mod(scaled.astype(np.int64), 256).astype(np.uint8), wrapped


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
    inputs = frozenset({"density", "fixations", "points", "other"})


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


def _minmax(target: np.ndarray) -> np.ndarray:
    """The CC target min-max normalised as the script does (all zeros when constant)."""
    t = target.astype(np.float64)
    lo, hi = t.min(), t.max()
    return (t - lo) / (hi - lo) if hi > lo else np.zeros_like(t)


def _run_fused(scorer, batch, metrics, seeds):
    """:func:`coursework_batch` on one group of same-size quantised predictions."""
    p = scorer.params
    m = len(batch)
    H, W = scorer.shape
    want = np.array([c in metrics for c in FUSED_COLUMNS])

    def stack(key, dtype, width):
        if key not in batch[0]:  # no chosen column reads it: a stand-in the kernel never indexes
            return np.empty((m, 0), dtype=dtype)
        return np.stack([np.asarray(inputs[key]).reshape(width) for inputs in batch]).astype(dtype, copy=False)

    q = np.stack([inputs["_q"] for inputs in batch])
    targets = stack("_target", np.uint8, (H, W)) if want[0] else np.empty((m, 0, 0), dtype=np.uint8)
    fixbits = stack("_fixbits", np.uint64, -1)
    obits = stack("_obits", np.uint64, -1)
    for inputs in batch:
        inputs.clear()
    kseeds = np.zeros((m, 2), dtype=np.int64)
    for col, metric in enumerate(FUSED_COLUMNS[1:]):
        if metric in seeds:
            kseeds[:, col] = seeds[metric]
    hb, hk = pillow_coeffs(q.shape[2], W)
    vb, vk = pillow_coeffs(q.shape[1], H)
    # Pillow sums in 32-bit ints; int32 lets the vertical pass vectorise 16 lanes wide.
    if 255 * int(np.clip(vk, 0, None).sum(axis=1).max()) + (1 << 21) < 2**31:
        vk = vk.astype(np.int32)
    sigma = float(p["blur_sigma"])
    w = gaussian_weights(sigma, float(p["blur_truncate"])) if sigma > 0 else np.ones(1)
    out = coursework_batch(np.ascontiguousarray(q, dtype=np.uint8), hb, hk, vb, vk, w, targets, fixbits, obits,
                           thresholds_for(float(p["step"])), int(p["splits"]), kseeds, sigma > 0,
                           bool(p["include_endpoint"]), log_factorials(H * W + 2), numba.get_num_threads(),
                           want, H, W)
    return out[:, [FUSED_COLUMNS.index(c) for c in metrics]]


_FUSED = FusedKernel(
    metrics=FUSED_COLUMNS, run=_run_fused, kernels={"cc": _cc_kernel}, group_by="_q",
    reads={"cc": ("_q", "_target"), "auc_borji": ("_q", "_fixbits"), "auc_shuffled": ("_q", "_fixbits", "_obits")})


class CourseworkScorer(Scorer):
    """Chunked scorer of the ``coursework`` protocol (ground truth from the cache)."""

    needs_record = False  # the per-image ground truth comes from the prepared (cached) store
    scale_invariant = False  # the script quantises trunc(255 * p): scale is part of its recipe
    seed_columns = {"auc_borji": 0, "auc_shuffled": 1}  # the per-image seed table (same values since the start)
    fused_kernels = (_FUSED,)
    # The script's own recipe: the network's 48x48 outputs upsampled to the 480x640 ground truth.
    # Square maps are what this protocol is defined on, so they are not counted as stretched.
    aspect_exempt_shapes = ((48, 48),)
    row_state = Scorer.row_state + ("_wrapped",)

    def __init__(self, protocol, gt, seed, **kw):
        super().__init__(protocol, gt, seed, **kw)
        self._wrapped = np.zeros(self.n, dtype=np.int64)  # per image: written by the worker preparing it
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
            writer.commit({"shape": list(shape), "names_sha256": _gt_cache.names_digest(self.gt.names)})
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

    def map_shape(self, pos):
        return self.shape

    def image_inputs(self, pos, prediction, record):
        q = None  # metric-specific maps (prediction None): no quantisation, resize or blur; only the ground truth
        if prediction is not None:
            q, self._wrapped[pos] = _quantise_one(self.prediction_map(prediction, pos, self.shape))
        own = self._bits(pos)
        if not own.any():
            return None

        def obits():
            o = np.zeros(self.words, dtype=np.uint64)
            for j in self.others[pos]:
                o |= own if j == pos else self._bits(int(j))
            return o

        def target():
            return np.frombuffer(self._read("target", pos), dtype=np.uint8).reshape(self.shape)

        p = self.params
        inputs = ImageInputs(
            _q=q, _fixbits=own, _obits=lazy(obits), _target=lazy(target),
            saliency=None if q is None else lazy(lambda: coursework_saliency(q, self.shape, float(p["blur_sigma"]),
                                                                             float(p["blur_truncate"]))),
            density=lazy(lambda: _minmax(inputs["_target"])),
            fixations=lazy(lambda: unpack_bits(own, self.shape)),
            other=lazy(lambda: unpack_bits(inputs["_obits"], self.shape)),
            points=lazy(lambda: np.argwhere(inputs["fixations"])))
        return inputs

    def _finish(self):
        _warn_wrapped(int(self._wrapped.sum()), stacklevel=4)
        return {"cache_hit": self.cache_hit}


CourseworkProtocol.scorer_class = CourseworkScorer
