"""The ``mit`` protocol: MIT/Tuebingen benchmark code (``code_forMetrics``).

Predictions are resized to the fixation map's size with MATLAB-compatible
bicubic ``imresize`` (no blur); CC, KLD and SIM compare with ``record.density``;
NSS, AUC-Judd, AUC-Borji, sAUC and IG use ``record.fixation_map``. sAUC's other
map is the OR of the fixation maps of ``n_other`` other images drawn with the
seed. IG's baseline is a centred Gaussian (``ig_baseline_sigma`` x min(H, W)).
"""

from __future__ import annotations

import numpy as np

from salbench import metrics as M
from salbench.protocols._common import center_gaussian, draw_others, union_map
from salbench.protocols._resize import matlab_bicubic
from salbench.protocols.base import Protocol, as_prediction


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
        scores = {k: np.full(n, np.nan) for k in self.metrics}
        kw = dict(splits=int(p["splits"]), step=float(p["step"]),
                  include_endpoint=bool(p["include_endpoint"]), method=p["auc_method"])
        for i, (pred, r) in enumerate(zip(predictions, records)):
            s = as_prediction(pred, i)
            if s.shape != r.shape:
                s = matlab_bicubic(s, r.shape)
            f = r.fixation_map
            g = r.density
            base = center_gaussian(r.shape, float(p["ig_baseline_sigma"]))
            scores["cc"][i] = M.cc(s, g)
            scores["nss"][i] = M.nss(s, f)
            scores["auc_judd"][i] = M.auc_judd(s, f, jitter=bool(p["auc_judd_jitter"]), seed=int(seeds[i, 2]))
            scores["auc_borji"][i] = M.auc_borji(s, f, seed=int(seeds[i, 0]), **kw)
            scores["auc_shuffled"][i] = M.auc_shuffled(s, f, union_map(records, others[i], r.shape),
                                                       seed=int(seeds[i, 1]), **kw)
            scores["kld"][i] = M.kld(s, g)
            scores["sim"][i] = M.sim(s, g)
            scores["info_gain"][i] = M.info_gain(s, f, base)
        return scores, {}
