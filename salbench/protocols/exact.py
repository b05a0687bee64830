"""The ``exact`` protocol: deterministic, no sampling anywhere.

Bilinear upsampling (pixel-centre aligned; a constant prediction stays constant); exact
AUCs over all thresholds (ties count half) with uniform negatives (all pixels) and
shuffled negatives (fixated pixels of every other evaluated image of the same size);
CC, NSS, KLD, SIM as MIT against the dataset's density. Every metric is the registry's
(those that name ``exact``, and plugin metrics whose inputs it supplies, none sampled),
computed per image by its registry function. The protocol has no parameters, only
conventions, and draws nothing.
"""

from __future__ import annotations

import numpy as np

from salbench.metrics._validate import as_fixation_mask
from salbench.protocols._resize import bilinear
from salbench.protocols.base import Protocol, Scorer, resize_keeping_constants
from salbench.protocols.inputs import ImageInputs, lazy
from salbench.protocols.view import points_of


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
    inputs = frozenset({"density", "fixations", "points", "other"})
    draws_seeds = False  # deterministic: no sampled metric


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

    def image_inputs(self, pos, prediction, record):
        shape = tuple(record.shape)
        s = None if prediction is None else resize_keeping_constants(self.prediction_map(prediction, pos, shape),
                                                                     shape, bilinear)
        f = as_fixation_mask(record.fixation_map, shape, "fixations")
        if not f.any():
            return None

        def other():
            o = (self.counts[shape] - f) > 0  # every other image's fixated pixels
            return o if o.any() else None  # no other image fixated anything of this size: sAUC undefined

        return ImageInputs(saliency=s, fixations=f, density=record.density, other=lazy(other),
                           points=lazy(lambda: points_of(record)))


ExactProtocol.scorer_class = ExactScorer
