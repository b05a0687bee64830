"""The ``exact`` protocol: deterministic, no sampling anywhere.

Bilinear upsampling (pixel-centre aligned); exact AUCs over all thresholds
(ties count half) with uniform negatives (all pixels) and shuffled negatives
(fixated pixels of every other evaluated image of the same size); CC, NSS,
KLD, SIM as MIT.
"""

from __future__ import annotations

import numpy as np

from salbench import metrics as M
from salbench.protocols._common import union_map
from salbench.protocols._resize import bilinear
from salbench.protocols.base import Protocol, as_prediction


class ExactProtocol(Protocol):
    name = "exact"
    metrics = ("cc", "nss", "auc_exact", "auc_shuffled_exact", "kld", "sim")
    description = "deterministic: bilinear resize, exact AUCs (uniform and shuffled)"
    defaults = {"resize": "bilinear", "shuffled_negatives": "all other images' fixated pixels"}

    def _evaluate(self, predictions, records, seed):
        n = len(records)
        scores = {k: np.full(n, np.nan) for k in self.metrics}
        for i, (pred, r) in enumerate(zip(predictions, records)):
            s = as_prediction(pred, i)
            if s.shape != r.shape:
                s = bilinear(s, r.shape)
            f = r.fixation_map
            scores["cc"][i] = M.cc(s, r.density)
            scores["nss"][i] = M.nss(s, f)
            scores["auc_exact"][i] = M.auc_exact(s, f)
            other = union_map(records, [j for j in range(n) if j != i], r.shape)
            scores["auc_shuffled_exact"][i] = M.auc_shuffled_exact(s, f, other) if other.any() else np.nan
            scores["kld"][i] = M.kld(s, r.density)
            scores["sim"][i] = M.sim(s, r.density)
        return scores, {}
