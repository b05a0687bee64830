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

Metrics come from the registry (every metric whose inputs the protocol supplies and that
names ``mit``, plugins included). With ``auc_method="binned"`` the columns the fused kernel
:func:`salbench.protocols._mit_kernel.mit_image` implements run there (same per-image
kernels as the public functions); it and every other metric (e.g. EMD) run per image in the
workers that prepare the images.
"""

from __future__ import annotations

import functools

import numpy as np

from salbench.metrics._validate import as_fixation_mask, as_float_map, check_same_shape
from salbench.metrics.auc_sampled import _kernel_seed, log_factorials, thresholds_for
from salbench.protocols._draws import others_excluding_self, seed_table
from salbench.protocols._mit_kernel import MIT_KERNELS, baseline_distribution, mit_image
from salbench.protocols._resize import matlab_bicubic
from salbench.protocols.base import (Protocol, Scorer, boolean, one_of, positive_float, positive_int,
                                     resize_keeping_constants, step_value)
from salbench.protocols.ground_truth import center_gaussian, mit_fixation_density
from salbench.protocols.inputs import FusedKernel, ImageInputs, lazy
from salbench.protocols.view import points_of


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
        "emd_variant": "mit",
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
        "emd_variant": one_of("mit", "exact"),
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
    inputs = frozenset({"density", "fixations", "points", "other", "baseline"})


def _fused_columns(params) -> tuple[str, ...]:
    """The fused kernel's columns under ``params``: none for ``auc_method="pixels"``; AUC-Judd per image when jittered."""
    if params["auc_method"] != "binned":
        return ()
    return tuple(m for m in MIT_KERNELS if not (m == "auc_judd" and params["auc_judd_jitter"]))


def _run_fused(scorer, batch, metrics, seeds):
    """:func:`mit_image` on one image (``batch`` of one: the scorer calls it in the worker threads)."""
    p = scorer.params
    (inputs,) = batch
    s = np.asarray(inputs["saliency"], dtype=np.float64)
    hw = s.size
    empty_f, empty_b = np.empty(0), np.empty(0, dtype=np.bool_)  # stand-ins for inputs no chosen column reads

    def flat(key, dtype, empty):
        return np.ascontiguousarray(inputs[key], dtype=dtype).ravel() if key in inputs else empty

    base = scorer.baseline_distribution(inputs["baseline"]) if "baseline" in inputs else empty_f
    kseeds = np.zeros(2, dtype=np.int64)
    for col, metric in enumerate(("auc_borji", "auc_shuffled")):
        if metric in seeds:
            kseeds[col] = _kernel_seed(int(seeds[metric][0]))
    want = np.array([c in metrics for c in MIT_KERNELS])
    out = mit_image(s.ravel(), flat("density", np.float64, empty_f), flat("fixations", np.bool_, empty_b),
                    flat("other", np.bool_, empty_b), base, thresholds_for(float(p["step"])), int(p["splits"]),
                    kseeds, bool(p["include_endpoint"]), want, log_factorials(hw + 2))
    return out[[list(MIT_KERNELS).index(c) for c in metrics]][None, :]


class MITScorer(Scorer):
    """Chunked scorer of the ``mit`` protocol."""

    # the per-image seed table, column per metric (kept from the first release: same values)
    seed_columns = {"auc_borji": 0, "auc_shuffled": 1, "auc_judd": 2}
    fused_kernels = (FusedKernel(metrics=tuple(MIT_KERNELS), run=_run_fused, kernels=MIT_KERNELS,
                                 available=_fused_columns, in_workers=True),)

    def __init__(self, protocol, gt, seed, **kw):
        super().__init__(protocol, gt, seed, **kw)
        self.needs_record = self.params["ground_truth"] == "dataset"
        self._baseline_dists: dict = {}

    def baseline_distribution(self, baseline) -> np.ndarray:
        """The IG baseline as the fused kernel reads it (``mm_distribution``, flat), once per baseline array.

        The baselines are cached per size (:func:`_baseline`): the same array comes back, so
        the distribution is kept by identity (with the array, so its id is not reused).
        """
        hit = self._baseline_dists.get(id(baseline))
        if hit is not None and hit[0] is baseline:
            return hit[1]
        d = baseline_distribution(as_float_map(baseline, "baseline").ravel())
        self._baseline_dists[id(baseline)] = (baseline, d)  # workers may both compute it: the same values
        return d

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

    def image_inputs(self, pos, prediction, record):
        shape = self.gt.shape(pos) if record is None else tuple(record.shape)
        s = None  # metric-specific maps (prediction None): only the ground truth
        if prediction is not None:
            s = as_float_map(resize_keeping_constants(self.prediction_map(prediction, pos, shape), shape,
                                                      matlab_bicubic), "saliency")
        if record is not None:
            f = as_fixation_mask(record.fixation_map, shape, "fixations")
        else:
            f = self.gt.fixation_mask(pos)
        if not f.any():
            return None

        def density():
            g = as_float_map(mit_fixation_density(f) if self.params["ground_truth"] == "mit" else record.density,
                             "density")
            if s is not None:
                check_same_shape(s, g, "saliency", "density")
            return g

        return ImageInputs(
            saliency=s, fixations=f, density=lazy(density), other=lazy(lambda: self._other_map(pos, shape)),
            points=lazy(lambda: points_of(record) if record is not None else self.gt.points(pos)),
            baseline=_baseline(shape, float(self.params["ig_baseline_sigma"])))


MITProtocol.scorer_class = MITScorer


@functools.lru_cache(maxsize=8)
def _baseline(shape, sigma_frac):
    b = center_gaussian(tuple(shape), float(sigma_frac))
    b.flags.writeable = False
    return b

