"""The ``salicon`` protocol: the SALICON challenge server (NUS-VIP/salicon-evaluation).

Upsampling: ``scipy.ndimage.zoom(order=3)`` to the record's size (a constant prediction
stays constant). The server works on fixation points with 1-based ``(y, x)`` and reads
``map[y-1][x-1]``; salbench keeps 0-based points, which index the same pixels. The
metrics are the registry's (those that name ``salicon``, and plugin metrics whose inputs
it supplies), each computed through its registry function with these inputs:

- ``points``: every fixation point of the image (after ``filter_anns`` when on);
- ``other_weights``: the shuffle map, the sum of the binary fixation maps of all
  evaluated images, built once per evaluation (the server's mutable default argument
  keeps summing across calls; salbench does not reproduce that);
- ``density``: ``gaussian_filter(fixation map, cc_sigma)`` min-max normalised (CC);
- ``fixations``: the pixels of the points (each once);
- the AUC's draw: ``numpy.random.RandomState(seed)``, one ``randint(H*W, n_random)``
  per image, images in order (:class:`salbench.protocols._draws.SequentialDraws`).

``filter_anns`` (server default True) keeps a point only where the same coordinate
occurs again: meant for raw mouse samples.
"""

from __future__ import annotations

import numpy as np

from salbench.protocols._draws import SequentialDraws
from salbench.protocols._resize import gaussian_blur
from salbench.protocols.base import (Protocol, Scorer, boolean, positive_float, positive_int, resize_keeping_constants,
                                     step_value)
from salbench.protocols.inputs import ImageInputs, lazy


def filter_anns(points: np.ndarray) -> np.ndarray:
    """The server's ``filterAnns``: sort the points and keep each repeat of a coordinate."""
    if len(points) == 0:
        return points
    order = np.lexsort((points[:, 1], points[:, 0]))
    p = points[order]
    keep = np.zeros(len(p), dtype=bool)
    keep[1:] = np.all(p[1:] == p[:-1], axis=1)
    return p[keep]


def _zoom(s, shape):
    from scipy.ndimage import zoom  # here: importing scipy.ndimage costs ~0.1 s of every run's start-up

    return zoom(s, (shape[0] / s.shape[0], shape[1] / s.shape[1]), order=3)


def cc_target(points, shape, sigma) -> np.ndarray:
    """The server's CC ground truth: the binary map of ``points`` blurred (sigma), min-max normalised."""
    fixmap = np.zeros(shape, dtype=np.float64)
    if len(points):
        fixmap[points[:, 0], points[:, 1]] = 1.0
    g = gaussian_blur(fixmap, float(sigma))
    g = g - g.min()
    if g.max() > 0:
        g = g / g.max()
    return g


class SaliconProtocol(Protocol):
    name = "salicon"
    description = "SALICON challenge server: zoom(order=3), AUC 1x100k draws, weighted sAUC"
    defaults = {
        "n_random": 100000,
        "step": 0.01,
        "cc_sigma": 19.0,
        "filter_anns": True,
    }
    validators = {
        "n_random": positive_int,
        "step": step_value,
        "cc_sigma": positive_float,
        "filter_anns": boolean,
    }
    conventions = {
        "resize": "scipy.ndimage.zoom(order=3) to the ground truth's size; a constant prediction stays constant",
        "rng": "numpy.random.RandomState(seed), one randint(H*W, n_random) draw per image, images in order",
        "shuffle_map": "sum of the binary fixation maps of the evaluated images of the same size, built once "
                       "per evaluation; the image's own points are zeroed by sAUC",
        "points": "every fixation point (0-based here; the server's 1-based (y, x) index the same pixels)",
        "thresholds": "np.arange(0, max(P u Q), step) on (s - min) / max",
        "no_fixations": "an image without points (after filter_anns) is NaN in every metric and counted as excluded",
    }
    ground_truth_params = ("filter_anns", "cc_sigma")
    inputs = frozenset({"points", "density", "fixations", "other_weights"})


class SaliconScorer(Scorer):
    """Chunked scorer of the ``salicon`` protocol; draws replay the server's sequential stream."""

    needs_record = False  # points and sizes come from the ground-truth view
    stream_metrics = frozenset({"auc_salicon"})  # the server's one RandomState stream over the images in order

    def _setup(self, *, workers, progress):
        self.gt.load(workers=workers, progress=progress)
        shapes = self.gt.shapes
        self.shuffle = {}
        # built once per evaluation from every evaluated image of that size (each image once per pixel)
        for p in range(self.n):
            shape = (int(shapes[p, 0]), int(shapes[p, 1]))
            m = self.shuffle.setdefault(shape, np.zeros(shape, dtype=np.int64))
            if self.params["filter_anns"]:
                pts = self._points(p)
                if len(pts):
                    once = np.zeros(shape, dtype=bool)
                    once[pts[:, 0], pts[:, 1]] = True
                    m += once
            else:
                m += self.gt.fixation_mask(p)
        if len(self.shuffle) > 1:  # the server's shuffle map needs one size (as before: sAUC undefined)
            self.shuffle = {}
        self.draws = SequentialDraws(self.seed, shapes[:, 0] * shapes[:, 1], int(self.params["n_random"]))

    def _points(self, pos):
        """The image's points as the server scores them (every point; ``filter_anns`` applied)."""
        pts = self.gt.points(pos)
        return filter_anns(pts) if self.params["filter_anns"] else pts

    def stream_seed(self, pos):
        return self.draws.stream_at(pos)

    def image_inputs(self, pos, prediction, record):
        shape = self.gt.shape(pos)
        s = None if prediction is None else resize_keeping_constants(self.prediction_map(prediction, pos, shape),
                                                                     shape, _zoom)
        pts = self._points(pos)
        if len(pts) == 0:
            return None

        def fixations():
            fix = np.zeros(shape, dtype=bool)
            fix[pts[:, 0], pts[:, 1]] = True
            return fix

        return ImageInputs(saliency=s, points=pts, fixations=lazy(fixations),
                           density=lazy(lambda: cc_target(pts, shape, self.params["cc_sigma"])),
                           other_weights=self.shuffle.get(shape))  # None with several sizes: sAUC undefined


SaliconProtocol.scorer_class = SaliconScorer
