"""Baselines every benchmark needs: ``uniform``, ``center_bias`` and ``gold``.

``uniform`` is the chance floor, ``center_bias`` the image-independent prior
a model must beat, and ``gold`` (the synthetic dataset's generating density)
the ceiling every metric must rank first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from salbench.models.base import SaliencyModel, card_copy, check_records, log_densities_from_maps, scale_to_max1

# Fixation statistics of OSIE (700 images, 98,321 fixations of 15 observers; shared/data/osie),
# in image-normalised (row, col) coordinates: the unfitted center_bias default.
OSIE_CENTER_MEAN = (0.4718, 0.5012)
OSIE_CENTER_STD = (0.1962, 0.2141)

_BASE_CARD = {
    "input_size": None,
    "output_size": [48, 48],
    "trained_on": None,
    "published_scores": [],
    "source": "salbench baseline",
    "output": "density",
}

DEFAULT_CARDS = {
    "uniform": card_copy(
        _BASE_CARD,
        name="uniform",
        description="Constant map (every pixel equally salient): the chance floor of every metric.",
        trained_on="nothing",
    ),
    "center_bias": card_copy(
        _BASE_CARD,
        name="center_bias",
        description=(
            "Axis-aligned Gaussian in image-normalised coordinates, whose mean and standard "
            "deviations are the moments of the training fixations (center_bias.fit(records)). "
            "Unfitted default: OSIE's fixation moments, mean (row, col) = (0.4718, 0.5012), "
            "std = (0.1962, 0.2141) of the image height / width."
        ),
        trained_on="OSIE fixations (unfitted default); records passed to fit() otherwise",
    ),
    "gold": card_copy(
        _BASE_CARD,
        name="gold",
        output_size=None,
        description=(
            "The synthetic dataset's generating density (record.true_density, scaled to maximum 1): "
            "the best any model can do; refuses datasets that do not carry it."
        ),
        trained_on="nothing (reads the ground-truth generating density)",
    ),
}


def _resolve_size(output_size) -> tuple[int, int]:
    from salbench.io.map_store import MAX_MAP_PIXELS  # a larger map could not be stored in a results entry

    try:
        if isinstance(output_size, (str, bytes)):
            raise TypeError(output_size)
        h, w = (int(v) for v in output_size)
    except (TypeError, ValueError):
        h = w = 0
    if h < 1 or w < 1 or h * w > MAX_MAP_PIXELS:
        raise ValueError(f"output_size must be two positive integers (at most {MAX_MAP_PIXELS:,} pixels), "
                         f"got {output_size!r}")
    return h, w


class UniformModel(SaliencyModel):
    """Every pixel equally salient (a constant map of ones); as a density, uniform."""

    name = "uniform"
    output = "density"

    def __init__(self, output_size=(48, 48)):
        self.card = card_copy(DEFAULT_CARDS["uniform"], output_size=list(_resolve_size(output_size)))

    def predict(self, records: Sequence) -> np.ndarray:
        n = len(check_records(records))
        h, w = self.output_size
        return np.ones((n, h, w), dtype=np.float32)

    def predict_log_density(self, records: Sequence) -> np.ndarray:
        """``-log(h * w)`` everywhere."""
        n = len(check_records(records))
        h, w = self.output_size
        return np.full((n, h, w), -np.log(h * w))


class CenterBiasModel(SaliencyModel):
    """An axis-aligned Gaussian fitted to training fixations (image-normalised coordinates).

    Parameters
    ----------
    output_size : (int, int)
        Size of the predicted maps (the protocol resizes them to each image).
    mean, std : (float, float)
        ``(row, col)`` mean and standard deviation as fractions of the image height / width;
        default OSIE's fixation moments (see :data:`OSIE_CENTER_MEAN`).
    checkpoint : path, optional
        A JSON file written by :meth:`save` (fitted ``mean`` / ``std``).
    """

    name = "center_bias"
    output = "density"

    def __init__(self, output_size=(48, 48), mean=OSIE_CENTER_MEAN, std=OSIE_CENTER_STD, checkpoint=None):
        self.card = card_copy(DEFAULT_CARDS["center_bias"], output_size=list(_resolve_size(output_size)))
        if checkpoint is not None:
            path = Path(checkpoint)
            if not path.is_file():
                raise FileNotFoundError(f"center_bias checkpoint not found: {path}")
            try:
                params = json.loads(path.read_text())
                mean, std = params["mean"], params["std"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path} is not a center_bias checkpoint (JSON with 'mean' and 'std'): {exc}")
            self.card["trained_on"] = params.get("trained_on", str(path))
        self._set(mean, std)

    def _set(self, mean, std) -> None:
        try:
            mean = tuple(float(v) for v in mean)
            std = tuple(float(v) for v in std)
        except (TypeError, ValueError):  # e.g. --model-option mean=5
            raise ValueError(f"center_bias needs 2 finite means and 2 positive stds, got {mean!r}, {std!r}") from None
        if len(mean) != 2 or len(std) != 2 or not all(np.isfinite(mean + std)) or min(std) <= 0:
            raise ValueError(f"center_bias needs 2 finite means and 2 positive stds, got {mean}, {std}")
        self.mean, self.std = mean, std
        self.card["parameters"] = {"mean": list(mean), "std": list(std)}

    def fit(self, records: Sequence) -> "CenterBiasModel":
        """Fit mean and std to the fixations of ``records`` (density-weighted if none).

        Each fixation ``(r, c)`` becomes ``((r + 0.5) / H, (c + 0.5) / W)``; records
        without fixation points contribute their ``density`` map's moments with
        the weight of one fixation per unit of density mass. Returns ``self``.
        """
        recs = check_records(records, "records to fit center_bias on")
        pts, weights = [], []
        for rec in recs:
            h, w = rec.shape
            fix = np.asarray(rec.fixations)
            if fix.size:
                pts.append((fix + 0.5) / np.array([h, w], dtype=np.float64))
                weights.append(np.ones(len(fix)))
            else:
                d = np.asarray(rec.density, dtype=np.float64)
                if d.sum() <= 0:
                    continue
                rr, cc = np.nonzero(d > 0)
                pts.append(np.stack([(rr + 0.5) / h, (cc + 0.5) / w], axis=1))
                weights.append(d[rr, cc] / d.sum())
        if not pts:
            raise ValueError("center_bias.fit: the records carry no fixations and no density")
        p, wts = np.concatenate(pts), np.concatenate(weights)
        mean = np.average(p, axis=0, weights=wts)
        std = np.sqrt(np.average((p - mean) ** 2, axis=0, weights=wts))
        self._set(mean, np.maximum(std, 1e-3))
        self.card["trained_on"] = f"fixation moments of {len(recs)} records"
        return self

    def save(self, path) -> Path:
        """Write the fitted parameters as JSON (atomically); load with ``checkpoint=path``."""
        from salbench.io import atomic_write_json

        return atomic_write_json(
            path, {"mean": list(self.mean), "std": list(self.std), "trained_on": self.card["trained_on"]}
        )

    def map(self) -> np.ndarray:
        """The ``output_size`` Gaussian map, scaled to maximum 1 (see :func:`scale_to_max1`), float32."""
        h, w = self.output_size
        r = (np.arange(h) + 0.5) / h
        c = (np.arange(w) + 0.5) / w
        g = np.exp(-0.5 * ((r[:, None] - self.mean[0]) / self.std[0]) ** 2) * np.exp(
            -0.5 * ((c[None, :] - self.mean[1]) / self.std[1]) ** 2
        )
        return (g / g.max()).astype(np.float32)

    def log_density(self) -> np.ndarray:
        """The Gaussian as a log-density over the ``output_size`` grid (float64, computed in the log domain)."""
        from scipy.special import logsumexp

        h, w = self.output_size
        r = (np.arange(h) + 0.5) / h
        c = (np.arange(w) + 0.5) / w
        lg = (-0.5 * ((r[:, None] - self.mean[0]) / self.std[0]) ** 2
              - 0.5 * ((c[None, :] - self.mean[1]) / self.std[1]) ** 2)
        return lg - logsumexp(lg)

    def predict_log_density(self, records: Sequence) -> np.ndarray:
        n = len(check_records(records))
        return np.repeat(self.log_density()[None], n, axis=0)

    def predict(self, records: Sequence) -> np.ndarray:
        n = len(check_records(records))
        return np.repeat(self.map()[None], n, axis=0)


class GoldModel(SaliencyModel):
    """The generating density of the synthetic dataset, at each record's resolution."""

    name = "gold"
    output = "density"

    def __init__(self, output_size=None):
        self.card = card_copy(DEFAULT_CARDS["gold"])
        if output_size is not None:
            self.card["output_size"] = list(_resolve_size(output_size))

    def _densities(self, records: Sequence) -> list:
        maps = []
        for rec in check_records(records):
            td = getattr(rec, "true_density", None)
            if td is None:
                raise ValueError(
                    f"gold model: record {rec.name!r} has no true_density; only the synthetic "
                    "dataset knows its generating density (use --dataset synthetic)"
                )
            td = np.asarray(td, dtype=np.float64)
            if self.output_size is not None:
                td = _area_downsample(td, tuple(self.output_size))
            maps.append(td)
        shapes = {m.shape for m in maps}
        if len(shapes) > 1:
            raise ValueError(f"gold model: records have different shapes {sorted(shapes)}; predict them one at a time")
        return maps

    def predict(self, records: Sequence) -> np.ndarray:
        return np.stack([scale_to_max1(td) for td in self._densities(records)])

    def predict_log_density(self, records: Sequence) -> np.ndarray:
        """``log`` of the true density (block-averaged to ``output_size`` if set), renormalised."""
        return log_densities_from_maps(np.stack(self._densities(records)), "gold model")


def _area_downsample(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Block mean to ``size`` when it divides the shape (exact), else Pillow's box filter."""
    h, w = size
    H, W = m.shape
    if H % h == 0 and W % w == 0:
        return m.reshape(h, H // h, w, W // w).mean(axis=(1, 3))
    from PIL import Image

    return np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((w, h), Image.BOX), dtype=np.float64)


def uniform(**kwargs: Any) -> UniformModel:
    """Constant map (chance level)."""
    return UniformModel(**kwargs)


def center_bias(**kwargs: Any) -> CenterBiasModel:
    """Gaussian center prior; eval fits it to the dataset's train split (first 1000 images).

    Unfitted (created without a checkpoint and never ``fit``), its moments are OSIE's.
    ``EvaluationRequest.fit_limit`` sets how many train images eval fits it to.
    """
    return CenterBiasModel(**kwargs)


def gold(**kwargs: Any) -> GoldModel:
    """The synthetic dataset's true density (refuses records without one).

    ``output_size=(h, w)`` block-averages it to a smaller map (compact stored predictions);
    default: each record's own resolution.
    """
    unknown = set(kwargs) - {"output_size"}
    if unknown:
        raise TypeError(f"gold takes only output_size, got {sorted(unknown)}")
    return GoldModel(**kwargs)
