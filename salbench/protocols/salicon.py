"""The ``salicon`` protocol: the SALICON challenge server (NUS-VIP/salicon-evaluation).

Upsampling: ``scipy.ndimage.zoom(order=3)`` to the record's size. The server
works on fixation points with 1-based ``(y, x)`` and reads ``map[y-1][x-1]``;
salbench keeps 0-based points, which index the same pixels. Metrics:

- AUC: ``s - min``, ``/ max``; one draw of ``n_random`` (100,000) uniform pixels
  per image from ``numpy.random.RandomState(seed)`` (the server's legacy RNG, seeded
  once per evaluation, images in order); thresholds ``arange(0, max(P u Q), step)``, step 0.01.
- sAUC: negatives = pixels of the shuffle map (sum of the binary fixation maps
  of all evaluated images, built once per evaluation) with the current image's
  fixated pixels zeroed, each weighted by its count; step 0.01; deterministic.
- CC: Pearson against ``gaussian_filter(fixation map, 19)`` min-max normalised.
- NSS: ``(s - mean) / std`` (population std) averaged over the fixation points.

``filter_anns`` (server default True) keeps a point only where the same
coordinate occurs again: meant for raw mouse samples.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import zoom

from salbench.protocols._resize import gaussian_blur
from salbench.protocols.base import Protocol, as_prediction


def filter_anns(points: np.ndarray) -> np.ndarray:
    """The server's ``filterAnns``: sort the points and keep each repeat of a coordinate."""
    if len(points) == 0:
        return points
    order = np.lexsort((points[:, 1], points[:, 0]))
    p = points[order]
    keep = np.zeros(len(p), dtype=bool)
    keep[1:] = np.all(p[1:] == p[:-1], axis=1)
    return p[keep]


def _points(record) -> np.ndarray:
    pts = np.asarray(record.fixations, dtype=np.int64).reshape(-1, 2)
    if pts.size == 0:  # map-only datasets: every fixated pixel once
        pts = np.argwhere(record.fixation_map)
    return pts


def _normalise01(s):
    s = s - s.min()
    if s.max() > 0:
        s = s / s.max()
    return s


def _roc_area(sth, neg_values, neg_weights, step):
    """Server's trapezoid over ``arange(0, max, step)`` (descending) with (0,0), (1,1)."""
    top = max(sth.max(), neg_values.max())
    thr = np.arange(0, top, step)[::-1]
    # counts >= t for every threshold at once, via sorting
    ps = np.sort(sth)
    order = np.argsort(neg_values, kind="stable")
    nv = neg_values[order]
    nw = np.cumsum(neg_weights[order][::-1])[::-1]  # weight of values >= nv[j]
    tp = (sth.size - np.searchsorted(ps, thr, side="left")) / sth.size
    j = np.searchsorted(nv, thr, side="left")
    total = neg_weights.sum()
    fp = np.where(j < nv.size, nw[np.minimum(j, nv.size - 1)], 0.0) / total
    tp = np.concatenate(([0.0], tp, [1.0]))
    fp = np.concatenate(([0.0], fp, [1.0]))
    return float(np.trapezoid(tp, fp))


def salicon_auc(s, points, rng_values, step=0.01) -> float:
    """Server AUC given the random pixel draw ``rng_values`` (flat indices)."""
    s = _normalise01(s)
    sth = s[points[:, 0], points[:, 1]]
    rand = s.ravel()[rng_values]
    return _roc_area(sth, rand, np.ones(rand.size), step)


def salicon_sauc(s, points, shuffle_map, step=0.01) -> float:
    """Server sAUC with the (weighted) shuffle map; the image's own points are zeroed."""
    s = _normalise01(s)
    sth = s[points[:, 0], points[:, 1]]
    others = shuffle_map.astype(np.float64).copy()
    others[points[:, 0], points[:, 1]] = 0
    ind = np.nonzero(others)
    if ind[0].size == 0:
        return float("nan")
    return _roc_area(sth, s[ind], others[ind], step)


def salicon_cc(s, fixation_map, sigma=19.0) -> float:
    g = gaussian_blur(fixation_map.astype(np.float64), sigma)
    g = _normalise01(g)
    if s.std() == 0 or g.std() == 0:
        return float("nan")
    return float(np.corrcoef(s.ravel(), g.ravel())[0, 1])


def salicon_nss(s, points) -> float:
    z = s - s.mean()
    sd = s.std()
    if sd > 0:
        z = z / sd
    return float(np.mean(z[points[:, 0], points[:, 1]]))


class SaliconProtocol(Protocol):
    name = "salicon"
    metrics = ("auc", "sauc", "cc", "nss")
    description = "SALICON challenge server: zoom(order=3), AUC 1x100k draws, weighted sAUC"
    defaults = {
        "resize": "scipy_zoom_order3",
        "n_random": 100000,
        "step": 0.01,
        "cc_sigma": 19.0,
        "filter_anns": True,
        "rng": "numpy.random.RandomState(seed), sequential over images",
        "shuffle_map": "sum of binary fixation maps of the evaluated images",
    }

    def _evaluate(self, predictions, records, seed):
        p = self._params
        n = len(records)
        # The server's own RNG: legacy MT19937 seeded once, one draw per image in order
        # (seed 4321 reproduces the reference values exactly).
        rng = np.random.RandomState(None if seed is None else int(seed) % 2**32)
        pts_all = []
        for r in records:
            pts = _points(r)
            if p["filter_anns"]:
                pts = filter_anns(pts)
            pts_all.append(pts)
        shapes = {r.shape for r in records}
        shuffle = None
        if len(shapes) == 1:  # built once per evaluation (the server's keeps growing across calls)
            shuffle = np.zeros(next(iter(shapes)), dtype=np.int64)
            for pts in pts_all:
                m = np.zeros(shuffle.shape, dtype=np.int64)
                m[pts[:, 0], pts[:, 1]] = 1
                shuffle += m
        scores = {k: np.full(n, np.nan) for k in self.metrics}
        for i, (pred, r) in enumerate(zip(predictions, records)):
            s = as_prediction(pred, i)
            if s.shape != r.shape:
                s = zoom(s, (r.shape[0] / s.shape[0], r.shape[1] / s.shape[1]), order=3)
            pts = pts_all[i]
            draw = rng.randint(s.size, size=int(p["n_random"]))
            if len(pts) == 0:
                continue
            fixmap = np.zeros(r.shape, dtype=np.float64)
            fixmap[pts[:, 0], pts[:, 1]] = 1.0
            scores["auc"][i] = salicon_auc(s, pts, draw, float(p["step"]))
            if shuffle is not None:
                scores["sauc"][i] = salicon_sauc(s, pts, shuffle, float(p["step"]))
            scores["cc"][i] = salicon_cc(s, fixmap, float(p["cc_sigma"]))
            scores["nss"][i] = salicon_nss(s, pts)
        return scores, {}
