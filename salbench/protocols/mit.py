"""The ``mit`` protocol: the MIT/Tuebingen benchmark code (``code_forMetrics``).

Predictions are resized to the fixation map's size with MATLAB-compatible bicubic
``imresize`` (no blur; a constant prediction stays constant). NSS, AUC-Judd,
AUC-Borji, sAUC and IG use the binary fixation map; CC, SIM, KLD (and EMD) compare
with the continuous ground truth chosen by ``ground_truth``:

- ``"mit"`` (default): ``max(antonioGaussian(fixation map, 8), 0)`` at the evaluated
  resolution, as the MIT benchmark builds it
  (:func:`salbench.protocols.ground_truth.mit_fixation_density`);
- ``"dataset"``: the dataset's density (SALICON's convention, a Gaussian of sigma 19 at
  480x640), what salbench used before the parameter existed.

sAUC's other map is the OR of the fixation maps of ``n_other`` other images drawn with
the seed (points, not dense maps, are kept across images). IG's baseline is a centred
Gaussian (``ig_baseline_sigma`` x min(H, W)).

Metrics come from the registry (``metrics_for("mit")``). With ``auc_method="binned"``
the ones the fused kernel :func:`salbench.protocols._mit_kernel.mit_batch` implements run
there (same per-image kernels as the public functions, images in parallel); any other
metric of the registry's ``mit`` list (e.g. EMD) is computed per image by its registry
function.
"""

from __future__ import annotations

import functools

import numpy as np

from salbench.metrics._validate import as_fixation_mask, as_float_map, check_same_shape
from salbench.metrics.auc_sampled import _kernel_seed, log_factorials, thresholds_for
from salbench.protocols import _metrics
from salbench.protocols._common import center_gaussian
from salbench.protocols._draws import others_excluding_self, seed_table
from salbench.protocols._mit_kernel import FUSED_KERNELS, MIT_COLUMNS, mit_batch
from salbench.protocols._resize import matlab_bicubic
from salbench.protocols.base import (Item, Protocol, Scorer, as_prediction, boolean, one_of, positive_float,
                                     positive_int, resize_keeping_constants, step_value)

# Seed columns of the per-image draw table (kept from the first release: same values).
SEED_COLUMN = {"auc_borji": 0, "auc_shuffled": 1, "auc_judd": 2}


class MITProtocol(Protocol):
    name = "mit"
    description = "MIT saliency benchmark code: MATLAB bicubic resize, MIT's metrics and ground truth"
    defaults = {
        "ground_truth": "mit",
        "splits": 100,
        "step": 0.1,
        "include_endpoint": True,
        "n_other": 10,
        "auc_judd_jitter": False,
        "ig_baseline_sigma": 0.25,
        "auc_method": "binned",
    }
    validators = {
        "ground_truth": one_of("mit", "dataset"),
        "splits": positive_int,
        "step": step_value,
        "include_endpoint": boolean,
        "n_other": positive_int,
        "auc_judd_jitter": boolean,
        "ig_baseline_sigma": positive_float,
        "auc_method": one_of("binned", "pixels"),
    }
    conventions = {
        "resize": "MATLAB imresize bicubic (a = -0.5, pixel-centre aligned) to the fixation map's size; "
                  "a constant prediction stays exactly constant",
        "fixations": "fixated pixels of the binary fixation map, each counted once (NSS, AUCs, IG)",
        "continuous_ground_truth": "ground_truth='mit': max(antonioGaussian(fixation map, 8 cycles/image), 0) "
                                   "at the evaluated resolution (MIT code_forMetrics); 'dataset': the dataset's "
                                   "density map (SALICON style: Gaussian sigma 19 at 480x640); used by CC, SIM, "
                                   "KLD and EMD",
        "shuffled_negatives": "OR of the fixation maps of n_other other images of the same size, drawn without "
                              "replacement from the evaluated images (the image itself excluded)",
        "ig_baseline": "centred isotropic Gaussian, sigma = ig_baseline_sigma * min(H, W)",
        "thresholds": "AUC-Borji/sAUC thresholds 0:step:max(P u Q) (include_endpoint) on the min-max map; "
                      "AUC-Borji negatives drawn uniformly with replacement",
        "no_fixations": "an image without fixated pixels is NaN in every metric and counted as excluded",
    }
    ground_truth_params = ("ground_truth",)
    legacy_keys = {"resize": "matlab_bicubic", "ig_baseline": "center_gaussian"}
    legacy_defaults = {"ground_truth": "dataset"}  # what results recorded before the parameter existed

    def _evaluate_per_image(self, predictions, records, others, seeds):
        """Every metric through its registry function, image by image (the reference path)."""
        n = len(records)
        scores = {k: np.full(n, np.nan) for k in self.metrics}
        p = self.params
        for i, (pred, r) in enumerate(zip(predictions, records)):
            s = resize_keeping_constants(as_prediction(pred, i), r.shape, matlab_bicubic)
            f = np.asarray(r.fixation_map, dtype=bool)
            if not f.any():
                continue
            other = np.zeros(r.shape, dtype=bool)
            for j in others[i]:
                if records[int(j)].shape == r.shape:
                    other |= np.asarray(records[int(j)].fixation_map, dtype=bool)
            inputs = _inputs(f, _density(self, r, f), other, _points_of(r), _baseline(r.shape, p["ig_baseline_sigma"]))
            for k in self.metrics:
                scores[k][i] = _metrics.call_metric(k, s, inputs, p, seed=_seed_for(k, seeds, i, n))
        return scores


def _density(proto_or_params, record, fmap):
    p = proto_or_params.params if hasattr(proto_or_params, "params") else proto_or_params
    if p["ground_truth"] == "mit":
        from salbench.protocols.ground_truth import mit_fixation_density

        return mit_fixation_density(fmap)
    return record.density


def _points_of(record):
    pts = np.asarray(record.fixations, dtype=np.int64).reshape(-1, 2)
    return pts if len(pts) else np.argwhere(record.fixation_map)


def _inputs(f, g, other, points, baseline):
    return {"fixations": f, "density": g, "other": other, "points": points, "baseline": baseline}


def _seed_for(metric, seeds, pos, n):
    """Seed of a sampled metric for image ``pos``: its column of the draw table, or one derived from it."""
    col = SEED_COLUMN.get(metric)
    if col is not None:
        return int(seeds[pos, col])
    return _metrics.derived_seed(int(seeds[pos, 0]), n, pos, metric)


class MITScorer(Scorer):
    """Chunked scorer of the ``mit`` protocol."""

    def __init__(self, protocol, gt, seed):
        super().__init__(protocol, gt, seed)
        p = self.params
        self.needs_record = p["ground_truth"] == "dataset"
        fused_ok = p["auc_method"] == "binned"
        jitter = bool(p["auc_judd_jitter"])  # MIT's jittered AUC-Judd draws: per image, with its seed column
        self.fused = tuple(m for m in self.metrics
                           if fused_ok and m in MIT_COLUMNS and _fused_is_registry(m)
                           and not (jitter and m == "auc_judd"))
        # everything else (e.g. EMD, or all metrics with auc_method="pixels") runs per image in
        # prepare(), i.e. in score_stream's worker threads, beside the fused kernel
        self.per_image = tuple(m for m in self.metrics if m not in self.fused)

    def _setup(self, *, workers, progress):
        self.gt.load(workers=workers, progress=progress)
        rng = np.random.default_rng(self.seed)
        self.others = others_excluding_self(self.n, int(self.params["n_other"]), rng)
        self.seeds = seed_table(rng, self.n, 3)

    def _other_map(self, pos, shape):
        """OR of the fixated pixels of image ``pos``'s drawn other images of its size."""
        m = np.zeros(shape, dtype=np.bool_)
        shapes = self.gt.shapes
        for j in self.others[pos]:
            if shapes[j, 0] == shape[0] and shapes[j, 1] == shape[1]:
                self.gt.add_fixations(m, int(j))
        return m

    def prepare(self, index, prediction, record=None) -> Item:
        self.setup()
        pos = self._position(index)
        if record is None and self.needs_record:
            record = self.gt.record(pos)
        shape = self.gt.shape(pos) if record is None else tuple(record.shape)
        s = resize_keeping_constants(as_prediction(prediction, index), shape, matlab_bicubic)
        s = as_float_map(s, "saliency")
        if record is not None:
            f = as_fixation_mask(record.fixation_map, shape, "fixations")
        else:
            f = self.gt.fixation_mask(pos)
        data = {"shape": shape, "F": f}
        if f.any():
            g = as_float_map(_density(self.params, record, f), "density")
            check_same_shape(s, g, "saliency", "density")
            data.update(S=s, G=g, O=self._other_map(pos, shape))
            if self.per_image:
                needs_points = any("points" in _metrics.get_metric(k).needs for k in self.per_image)
                pts = (_points_of(record) if record is not None else self.gt.points(pos)) if needs_points else None
                data["values"] = self._per_image_values(pos, data, pts)
            if not self.fused:
                data = {"values": data["values"]}
        return Item(pos, index, data)

    def _score(self, items):
        live = []
        for it in items:
            if "values" not in it.data and "S" not in it.data:
                self._exclude(it.pos)
            else:
                live.append(it)
                self._store(it.pos, it.data.get("values", {}))
        if self.fused and live:
            groups: dict = {}
            for it in live:
                groups.setdefault(it.data["shape"], []).append(it)
            for shape, group in groups.items():
                self._score_fused(shape, group)
        for it in live:
            it.data.clear()  # the chunk's maps are no longer needed: memory stays flat

    def _score_fused(self, shape, group):
        p = self.params
        m = len(group)
        hw = shape[0] * shape[1]
        S = np.empty((m, hw))
        G = np.empty((m, hw))
        F = np.empty((m, hw), dtype=np.bool_)
        O = np.empty((m, hw), dtype=np.bool_)
        kseeds = np.empty((m, 2), dtype=np.int64)
        for row, it in enumerate(group):
            d = it.data
            S[row] = d["S"].ravel()
            G[row] = d["G"].ravel()
            F[row] = d["F"].ravel()
            O[row] = d["O"].ravel()
            d.clear()  # the stack holds them now: free the item's copies as we go (peak memory)
            kseeds[row] = (_kernel_seed(int(self.seeds[it.pos, 0])), _kernel_seed(int(self.seeds[it.pos, 1])))
        base = as_float_map(_baseline(shape, float(p["ig_baseline_sigma"])), "baseline").ravel()
        out = mit_batch(S, G, F, O, base, thresholds_for(float(p["step"])), int(p["splits"]), kseeds,
                        bool(p["include_endpoint"]), "auc_judd" in self.fused, log_factorials(hw + 2))
        del S, G, F, O
        for row, it in enumerate(group):
            self._store(it.pos, {k: out[row, MIT_COLUMNS.index(k)] for k in self.fused})

    def _per_image_values(self, pos, d, points):
        """The metrics without a fused implementation, through their registry functions (thread-safe)."""
        p = self.params
        inputs = _inputs(d["F"], d["G"], d["O"], points, _baseline(d["shape"], float(p["ig_baseline_sigma"])))
        return {k: _metrics.call_metric(k, d["S"], inputs, p, seed=_seed_for(k, self.seeds, pos, self.n))
                for k in self.per_image}


def _fused_is_registry(name: str) -> bool:
    """The fused kernel computes ``name`` with the kernel the registry declares for it."""
    if not _metrics.has_metric(name):
        return False
    declared = _metrics.kernel_of(name)
    used = FUSED_KERNELS.get(name)
    return declared is None or used is None or declared is used


MITProtocol.scorer_class = MITScorer


@functools.lru_cache(maxsize=8)
def _baseline(shape, sigma_frac):
    b = center_gaussian(tuple(shape), float(sigma_frac))
    b.flags.writeable = False
    return b
