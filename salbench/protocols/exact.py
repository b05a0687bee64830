"""The ``exact`` protocol: deterministic, no sampling anywhere.

Bilinear upsampling (pixel-centre aligned; a constant prediction stays constant); exact
AUCs over all thresholds (ties count half) with uniform negatives (all pixels) and
shuffled negatives (fixated pixels of every other evaluated image of the same size);
CC, NSS, KLD, SIM as MIT against the dataset's density. Every metric is the registry's
(``metrics_for("exact")``), computed per image by its registry function. The protocol
has no parameters, only conventions.
"""

from __future__ import annotations

import numpy as np

from salbench.metrics._validate import as_fixation_mask
from salbench.protocols import _metrics
from salbench.protocols._resize import bilinear
from salbench.protocols.base import Item, Protocol, Scorer, as_prediction, resize_keeping_constants


class ExactProtocol(Protocol):
    name = "exact"
    description = "deterministic: bilinear resize, exact AUCs (uniform and shuffled)"
    defaults: dict = {}
    conventions = {
        "resize": "bilinear (pixel-centre aligned) to the fixation map's size; a constant prediction stays constant",
        "shuffled_negatives": "fixated pixels of every other evaluated image of the same size",
        "auc": "exact area over all thresholds, ties count half",
        "continuous_ground_truth": "the dataset's density map",
        "no_fixations": "an image without fixated pixels is NaN in every metric and counted as excluded",
    }
    legacy_keys = {"resize": "bilinear", "shuffled_negatives": "all other images' fixated pixels"}


class ExactScorer(Scorer):
    """Chunked scorer of the ``exact`` protocol (shuffled negatives from per-size fixation counts)."""

    def _setup(self, *, workers, progress):
        self.gt.load(workers=workers, progress=progress)
        shapes = self.gt.shapes
        self.counts = {}  # per size: how many evaluated images fixate each pixel
        for p in range(self.n):
            shape = (int(shapes[p, 0]), int(shapes[p, 1]))
            c = self.counts.setdefault(shape, np.zeros(shape, dtype=np.int32))
            c += self.gt.fixation_mask(p)

    def prepare(self, index, prediction, record=None) -> Item:
        self.setup()
        pos = self._position(index)
        if record is None:
            record = self.gt.record(pos)
        shape = tuple(record.shape)
        s = resize_keeping_constants(as_prediction(prediction, index), shape, bilinear)
        f = as_fixation_mask(record.fixation_map, shape, "fixations")
        if not f.any():
            return Item(pos, index, {})
        other = (self.counts[shape] - f) > 0  # every other image's fixated pixels
        pts = np.asarray(record.fixations, dtype=np.int64).reshape(-1, 2)
        inputs = {"fixations": f, "density": record.density, "other": other,
                  "points": pts if len(pts) else np.argwhere(f)}
        # every metric is per image: computed here (score_stream's worker threads)
        vals = {}
        for k in self.metrics:
            if "other" in _metrics.get_metric(k).needs and not other.any():
                vals[k] = np.nan  # no other image fixated anything of this size
                continue
            vals[k] = _metrics.call_metric(k, s, inputs, self.params, seed=None)
        return Item(pos, index, {"values": vals})

    def _score(self, items):
        for it in items:
            if not it.data:
                self._exclude(it.pos)
                continue
            self._store(it.pos, it.data["values"])
            it.data.clear()


ExactProtocol.scorer_class = ExactScorer
