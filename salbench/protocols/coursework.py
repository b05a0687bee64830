"""The ``coursework`` protocol: the evaluation script shipped with ``train.pkl``/``val.pkl``.

Per image (see PROTOCOLS.md): 2304 outputs -> 48x48; ``(p*255).astype(uint8)``
without clipping (values wrap modulo 256, with a warning); Pillow bicubic to
the ground truth's size; ``/255``; ``gaussian_filter(sigma=2)``; fixated
pixels ``y_original > 0``; CC against ``gaussian_filter(y_original, 19)``
min-max normalised; AUC-Borji (100 splits, step 0.1, ``arange`` thresholds
without the end point, draws with replacement); sAUC with the OR of the
fixated pixels of 10 images drawn without replacement from the evaluated set
(the current image may be among them).

Everything runs in one fused Numba kernel (:mod:`salbench.protocols._fused`);
ground-truth-side arrays are prepared once per record set (:meth:`prepare`).
"""

from __future__ import annotations

import time
import warnings

import numba
import numpy as np

from salbench.metrics.auc_sampled import log_factorials, thresholds_for
from salbench.protocols._fused import coursework_batch
from salbench.protocols._resize import gaussian_blur, gaussian_weights, pillow_coeffs
from salbench.protocols.base import Protocol, as_prediction, y_original_of


_PREPARE_CHUNK = 16  # ground truths blurred per parallel call


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


class CourseworkProtocol(Protocol):
    name = "coursework"
    metrics = ("cc", "auc_borji", "auc_shuffled")
    description = "the coursework evaluation script (uint8 wrap, Pillow bicubic, blur 2, y_original > 0)"
    defaults = {
        "input_size": [48, 48],
        "quantise": "uint8_wrap",
        "resize": "pillow_bicubic_uint8",
        "blur_sigma": 2.0,
        "blur_truncate": 4.0,
        "fixations": "y_original > 0",
        "cc_target_sigma": 19.0,
        "cc_target": "gaussian_filter(y_original, 19) as uint8, min-max",
        "splits": 100,
        "step": 0.1,
        "include_endpoint": False,
        "n_other": 10,
        "auc_method": "binned",
    }

    def __init__(self, **overrides):
        super().__init__(**overrides)
        self._cache = None

    # ------------------------------------------------------------------ ground truth
    def prepare(self, records):
        """Ground-truth-side arrays for ``records`` (cached per record set, by identity).

        Returns a dict: ``shape``, ``gc`` (N, H, W) centred CC target, ``gnorm`` (N,),
        ``fixbits`` (N, words) packed ``y_original > 0``.
        """
        records = list(records)
        if self._cache is not None:
            cached_records, prepared = self._cache
            if len(cached_records) == len(records) and all(a is b for a, b in zip(cached_records, records)):
                return prepared
        shapes = {tuple(np.shape(y_original_of(r))) for r in records}
        if len(shapes) != 1:
            raise ValueError(f"coursework protocol needs one ground-truth size, got {sorted(shapes)}")
        (shape,) = shapes
        n = len(records)
        gc = np.empty((n, *shape))
        gnorm = np.empty(n)
        words = -(-(shape[0] * shape[1]) // 64)
        fixbits = np.empty((n, words), dtype=np.uint64)
        sigma = float(self._params["cc_target_sigma"])
        for c0 in range(0, n, _PREPARE_CHUNK):  # a chunk at a time: the blur runs images in parallel
            ys = [y_original_of(r) for r in records[c0:c0 + _PREPARE_CHUNK]]
            # The script blurs the uint8 map itself: scipy keeps the uint8 dtype, truncating
            # after each axis pass; gaussian_blur does the same for integer input.
            blurred = gaussian_blur(np.stack(ys), sigma)
            for j, (y, g) in enumerate(zip(ys, blurred)):
                i = c0 + j
                lo, hi = g.min(), g.max()
                g = (g - lo) / (hi - lo) if hi > lo else np.zeros_like(g)
                gc[i] = g - g.mean()
                gnorm[i] = np.sqrt(np.sum(gc[i] ** 2))
                fixbits[i] = pack_bits(y.astype(np.int64) > 0)
        prepared = {"shape": shape, "gc": gc, "gnorm": gnorm, "fixbits": fixbits}
        self._cache = (records, prepared)
        return prepared

    # ------------------------------------------------------------------ evaluation
    def quantise(self, predictions) -> np.ndarray:
        """Stack predictions as uint8 maps, wrapping like the script (and warning when it does)."""
        maps = [as_prediction(p, i) for i, p in enumerate(predictions)]
        shapes = {m.shape for m in maps}
        if len(shapes) != 1:
            raise ValueError(f"coursework protocol needs predictions of one size, got {sorted(shapes)}")
        q, wrapped = quantise_like_script(np.stack(maps))
        if wrapped:
            warnings.warn(
                f"{wrapped} prediction values lie outside [0, 1] and wrapped around in the uint8 "
                "cast (as the original coursework script does, e.g. -0.3 -> 180, 1.2 -> 50)",
                QuantisationWrapWarning,
                stacklevel=3,
            )
        return q

    def score(self, q, gt, others, seeds) -> np.ndarray:
        """Run the fused kernel: ``(N, 3)`` array of CC, AUC-Borji, sAUC.

        ``q``: (N, h, w) uint8 from :meth:`quantise`; ``gt``: from :meth:`prepare`;
        ``others``: (N, k) indices whose fixated pixels form each image's sAUC other
        map; ``seeds``: (N, 2) integer seeds of the AUC-Borji and sAUC draws.
        """
        p = self._params
        H, W = gt["shape"]
        hb, hk = pillow_coeffs(q.shape[2], W)
        vb, vk = pillow_coeffs(q.shape[1], H)
        # Pillow sums in 32-bit ints; int32 lets the vertical pass vectorise 16 lanes wide.
        if 255 * int(np.clip(vk, 0, None).sum(axis=1).max()) + (1 << 21) < 2**31:
            vk = vk.astype(np.int32)
        sigma = float(p["blur_sigma"])
        w = gaussian_weights(sigma, float(p["blur_truncate"])) if sigma > 0 else np.ones(1)
        return coursework_batch(np.ascontiguousarray(q, dtype=np.uint8), hb, hk, vb, vk, w, gt["gc"],
                                gt["gnorm"], gt["fixbits"], np.ascontiguousarray(others, dtype=np.int64),
                                thresholds_for(float(p["step"])), int(p["splits"]),
                                np.ascontiguousarray(seeds, dtype=np.int64), sigma > 0,
                                bool(p["include_endpoint"]), log_factorials(H * W + 2), numba.get_num_threads())

    def _evaluate(self, predictions, records, seed):
        p = self._params
        if p["auc_method"] != "binned":
            raise ValueError("coursework protocol evaluates with auc_method='binned' only")
        t0 = time.perf_counter()
        gt = self.prepare(records)
        t1 = time.perf_counter()
        q = self.quantise(predictions)
        n = len(records)
        rng = np.random.default_rng(seed)
        k = min(int(p["n_other"]), n)
        others = np.stack([rng.choice(n, size=k, replace=False) for _ in range(n)]).astype(np.int64)
        seeds = rng.integers(0, 2**32 - 1, size=(n, 2)).astype(np.int64)
        out = self.score(q, gt, others, seeds)
        t2 = time.perf_counter()
        scores = {"cc": out[:, 0], "auc_borji": out[:, 1], "auc_shuffled": out[:, 2]}
        return scores, {"prepare_s": t1 - t0, "evaluate_s": t2 - t1}
