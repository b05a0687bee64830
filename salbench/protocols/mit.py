"""The ``mit`` protocol: MIT/Tuebingen benchmark code (``code_forMetrics``).

Predictions are resized to the fixation map's size with MATLAB-compatible
bicubic ``imresize`` (no blur); CC, KLD and SIM compare with ``record.density``;
NSS, AUC-Judd, AUC-Borji, sAUC and IG use ``record.fixation_map``. sAUC's other
map is the OR of the fixation maps of ``n_other`` other images drawn with the
seed. IG's baseline is a centred Gaussian (``ig_baseline_sigma`` x min(H, W)).

With ``auc_method="binned"`` (default) images of one size run through the fused
parallel kernel :func:`salbench.protocols._mit_kernel.mit_batch`, which calls the
same metric kernels as the public functions (same values, same seeds).
"""

from __future__ import annotations

import functools

import numpy as np

from salbench import metrics as M
from salbench.metrics._validate import as_fixation_mask, as_float_map, check_same_shape
from salbench.metrics.auc_sampled import _kernel_seed, log_factorials, thresholds_for
from salbench.protocols._common import center_gaussian, draw_others, union_map
from salbench.protocols._mit_kernel import MIT_COLUMNS, mit_batch
from salbench.protocols._resize import matlab_bicubic
from salbench.protocols.base import Protocol, as_prediction

_CHUNK = 32  # images per parallel call: bounds the float64 stacks to ~160 MB at 480x640


class MITProtocol(Protocol):
    name = "mit"
    metrics = ("cc", "nss", "auc_judd", "auc_borji", "auc_shuffled", "kld", "sim", "info_gain")
    description = "MIT saliency benchmark code: MATLAB bicubic resize, 8 metrics"
    defaults = {
        "resize": "matlab_bicubic",
        "splits": 100,
        "step": 0.1,
        "include_endpoint": True,
        "n_other": 10,
        "auc_judd_jitter": False,
        "ig_baseline": "center_gaussian",
        "ig_baseline_sigma": 0.25,
        "auc_method": "binned",
    }

    def _evaluate(self, predictions, records, seed):
        p = self._params
        rng = np.random.default_rng(seed)
        n = len(records)
        others = draw_others(n, int(p["n_other"]), rng, exclude_self=True)
        seeds = rng.integers(0, 2**32 - 1, size=(n, 3))
        if p["auc_method"] != "binned":
            return self._evaluate_per_image(predictions, records, others, seeds), {}
        out = np.full((n, len(MIT_COLUMNS)), np.nan)
        groups: dict = {}
        for i, r in enumerate(records):
            groups.setdefault(tuple(r.shape), []).append(i)
        logfact = log_factorials(max(h * w for h, w in groups) + 2)
        t = thresholds_for(float(p["step"]))
        jitter = bool(p["auc_judd_jitter"])
        for shape, idx in groups.items():
            base = as_float_map(_baseline(shape, float(p["ig_baseline_sigma"])), "baseline").ravel()
            for c0 in range(0, len(idx), _CHUNK):
                chunk = idx[c0:c0 + _CHUNK]
                m = len(chunk)
                S = np.empty((m, shape[0] * shape[1]))
                G = np.empty_like(S)
                F = np.empty(S.shape, dtype=np.bool_)
                O = np.empty(S.shape, dtype=np.bool_)
                kseeds = np.empty((m, 2), dtype=np.int64)
                for row, i in enumerate(chunk):
                    s = as_prediction(predictions[i], i)
                    if s.shape != shape:
                        s = matlab_bicubic(s, shape)
                    S[row] = as_float_map(s, "saliency").ravel()
                    g = as_float_map(records[i].density, "density")
                    check_same_shape(S[row].reshape(shape), g, "saliency", "density")
                    G[row] = g.ravel()
                    F[row] = as_fixation_mask(records[i].fixation_map, shape, "fixations").ravel()
                    O[row] = union_map(records, others[i], shape).ravel()
                    kseeds[row] = (_kernel_seed(int(seeds[i, 0])), _kernel_seed(int(seeds[i, 1])))
                    if jitter:
                        out[i, 2] = M.auc_judd(s, records[i].fixation_map, jitter=True, seed=int(seeds[i, 2]))
                res = mit_batch(S, G, F, O, base, t, int(p["splits"]), kseeds, bool(p["include_endpoint"]),
                                not jitter, logfact)
                if jitter:
                    res[:, 2] = out[chunk, 2]
                out[chunk] = res
        return {k: out[:, j] for j, k in enumerate(MIT_COLUMNS)}, {}

    def _evaluate_per_image(self, predictions, records, others, seeds):
        """One public metric call per image (any ``auc_method``): the reference path."""
        p = self._params
        n = len(records)
        scores = {k: np.full(n, np.nan) for k in self.metrics}
        kw = dict(splits=int(p["splits"]), step=float(p["step"]),
                  include_endpoint=bool(p["include_endpoint"]), method=p["auc_method"])
        for i, (pred, r) in enumerate(zip(predictions, records)):
            s = as_prediction(pred, i)
            if s.shape != r.shape:
                s = matlab_bicubic(s, r.shape)
            f = r.fixation_map
            g = r.density
            base = _baseline(r.shape, float(p["ig_baseline_sigma"]))
            scores["cc"][i] = M.cc(s, g)
            scores["nss"][i] = M.nss(s, f)
            scores["auc_judd"][i] = M.auc_judd(s, f, jitter=bool(p["auc_judd_jitter"]), seed=int(seeds[i, 2]))
            scores["auc_borji"][i] = M.auc_borji(s, f, seed=int(seeds[i, 0]), **kw)
            scores["auc_shuffled"][i] = M.auc_shuffled(s, f, union_map(records, others[i], r.shape),
                                                       seed=int(seeds[i, 1]), **kw)
            scores["kld"][i] = M.kld(s, g)
            scores["sim"][i] = M.sim(s, g)
            scores["info_gain"][i] = M.info_gain(s, f, base)
        return scores


@functools.lru_cache(maxsize=8)
def _baseline(shape, sigma_frac):
    b = center_gaussian(shape, sigma_frac)
    b.flags.writeable = False
    return b
