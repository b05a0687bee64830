"""Small in-memory datasets for the protocol, scoring and cache tests (no tests here)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.ndimage import gaussian_filter

from salbench.data.base import SaliencyDataset, hash_json
from salbench.data.record import Record


def make_record(i, shape=(30, 40), n_fix=12, rng=None, repeat=True):
    """A record with ``n_fix`` fixation points (some repeated), its map, a blurred density and y_original."""
    rng = rng or np.random.default_rng(i)
    H, W = shape
    pts = np.stack([rng.integers(0, H, n_fix), rng.integers(0, W, n_fix)], 1).astype(np.int64)
    if repeat and n_fix >= 4:
        pts = np.concatenate([pts, pts[:3]])  # repeated coordinates (SALICON's filter_anns keeps those)
    fmap = np.zeros(shape, dtype=bool)
    if len(pts):
        fmap[pts[:, 0], pts[:, 1]] = True
    g = gaussian_filter(fmap.astype(float), 3)
    density = g / g.max() if g.max() > 0 else g
    y = np.round(255 * density).astype(np.uint8)
    return Record(name=f"img{i:03d}.png", image=None, fixations=pts, observers=None, fixation_map=fmap,
                  density=density, x96=None, y48=None, y_original=y)


def make_records(n, shape=(30, 40), seed=0, empty=(), shapes=None):
    """``n`` records; indices in ``empty`` have no fixations; ``shapes`` optionally one size per record."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sh = shapes[i] if shapes is not None else shape
        out.append(make_record(i, sh, 0 if i in empty else int(rng.integers(6, 20)), rng))
    return out


def make_predictions(n, seed=0, sizes=((12, 16), (30, 40))):
    """Predictions of mixed sizes (resized by the protocols), values in [0, 1)."""
    rng = np.random.default_rng(seed + 100)
    return [gaussian_filter(rng.random(sizes[i % len(sizes)]), 1.5) * 0.9 + 0.05 * rng.random(sizes[i % len(sizes)])
            for i in range(n)]


class ListDataset(SaliencyDataset):
    """A dataset over records in memory, with a content hash (so the disk caches apply) and call counts."""

    name = "listds"

    def __init__(self, records, tag="v1"):
        super().__init__()
        self.split = "val"
        self._recs = list(records)
        self.names = [r.name for r in self._recs]
        self.params = {"tag": tag}
        self.calls = Counter()

    @classmethod
    def available_splits(cls, root=None):
        return ["val"]

    def _content_hash(self):
        return hash_json({"tag": self.params["tag"], "names": self.names})

    def _load(self, i):
        self.calls["load"] += 1
        return self._recs[i]

    def _ground_truth(self, i):
        self.calls["ground_truth"] += 1
        return self._recs[i]

    def _fixation_points(self, i):
        self.calls["fixation_points"] += 1
        r = self._recs[i]
        pts = np.asarray(r.fixations, dtype=np.int64).reshape(-1, 2)
        return pts if len(pts) else np.argwhere(r.fixation_map)

    # the base class of older checkouts has no ground_truth/fixation_points: provide them
    def ground_truth(self, i):
        return self._ground_truth(int(i))

    def fixation_points(self, i):
        return self._fixation_points(int(i))

    def stats(self, i):
        return {"shape": self._recs[i].shape, "n_fixations": len(self._recs[i].fixations), "n_observers": None}
