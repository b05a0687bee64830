"""Metric-specific saliency maps of a predicted fixation density (Kuemmerer, Wallis & Bethge, ECCV 2018).

A density model predicts, per image, a distribution ``p`` over pixels. Each metric rewards a
different map derived from it: the map that maximises the metric's expected value when the
fixations are drawn from ``p``. Following pysaliency 0.2.22 (``DensitySaliencyMapModel``,
``LogDensitySaliencyMapModel``, ``EqualizedSaliencyMapModel``, ``ShuffledBaselineModel``,
``BluringSaliencyMapModel``, ``SIMSaliencyMapModel``) and the MIT/Tuebingen benchmark's
``saliency_map_provider``, for ``p`` at the ground truth's size:

============================  ===========================================================
metric                        map
============================  ===========================================================
AUC-Judd, AUC-Borji, NSS      ``p`` (kind ``density``); the AUCs' map histogram-equalised
                              (``EqualizedSaliencyMapModel``, as the MIT/Tuebingen benchmark)
sAUC (every shuffled AUC)     ``log p - log p_b``, ``p_b`` the mean of the model's own
                              densities over the *other* images of the split (kind
                              ``log_ratio``; :class:`ShuffledBaseline`)
CC, KLD                       the expected empirical map: ``p`` blurred with the protocol's
                              own ground-truth kernel (kind ``expected_empirical``)
EMD                           the same blurred density: EMD has no closed-form optimum
SIM                           the map maximising the expected SIM against the protocol's
                              ground truth (kind ``sim_optimal``,
                              :func:`salbench.metrics.expected_sim.maximize_expected_sim`)
IG                            ``p`` with its least likely pixel set to 0 (kind
                              ``info_gain``): see :func:`info_gain_map`
============================  ===========================================================

Everything here works on one image at the ground truth's size; the model's density is
brought there by :func:`resize_log_density` (pysaliency's ``ResizingModel``). The scorer
makes two passes over a split when sAUC is scored: the first adds every density to a
:class:`ShuffledBaseline` (one running sum per image size), the second derives the maps.
:func:`derivation_record` lists every parameter used, for results files.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, zoom

from salbench.metrics.expected_sim import (MIX_WEIGHTS, SCORE_RESOLUTION, SeparableEmpiricalMaps, grid_positions,
                                           maximize_expected_sim)
from salbench.metrics.registry import METRICS
from salbench.predictions.density import DENSITY_SUM_TOL, check_log_density, log_sum_exp
from salbench.protocols._resize import gaussian_blur
# the filter of mit_fixation_density, as its two cached 1-D circulant matrices (read-only)
from salbench.protocols.ground_truth import _circulant, _padded_size

__all__ = [
    "DENSITY_SUM_TOL", "LOG_RATIO_RESOLUTION", "map_kind", "METRIC_SPECIFIC", "MapDerivation", "SIM_DEFAULTS",
    "ShuffledBaseline", "kernel_sigma", "sim_grid_stride", "upsample_linear",
    "check_log_density", "dataset_sigma", "derivation_record", "empirical_maps", "equalize",
    "expected_empirical_map", "image_seed", "info_gain_map", "log_ratio_map", "metric_specific_maps",
    "resize_log_density", "sim_map",
]

#: The sAUC map ``log p - log p_b`` is rounded to multiples of this (2**-30, ~9.3e-10 nats): the
#: leave-one-out baseline is known to ~1e-13 relative, so finer differences are rounding noise and
#: must not rank pixels (a model with the same density for every image must give a constant map).
LOG_RATIO_RESOLUTION = 2.0 ** -30
#: Map kind of every registry metric (metrics absent here have no metric-specific map).
def map_kind(metric: str) -> str | None:
    """The kind of metric-specific map ``metric`` is scored with (its registry entry's ``metric_map``; None: none)."""
    entry = METRICS.get(metric)
    return None if entry is None else entry.metric_map


def _equalized(metric: str, equalize_auc: bool) -> bool:
    """A ``density`` map is rank-equalised for a metric that only ranks it (the AUCs), when asked."""
    return equalize_auc and METRICS[metric].ranks_only and METRICS[metric].metric_map == "density"


#: SIM optimiser defaults: pysaliency's SIMSaliencyMapModel draws 100 fixations per empirical map
#: (the MIT/Tuebingen benchmark: 100 for MIT1003); ``samples`` empirical maps form the objective.
SIM_DEFAULTS = {"fixation_count": 100, "samples": 100, "grid": 0.5}
_SALICON_SIGMA_AT_480 = 19.0


# ------------------------------------------------------------------------- densities
def resize_log_density(log_density, shape) -> np.ndarray:
    """The density at ``shape``, as pysaliency's ``ResizingModel`` computes it.

    ``scipy.ndimage.zoom(log p, (H/h, W/w), order=1, mode="nearest")`` (linear interpolation
    of the log-density, grid corners aligned), then ``- logsumexp``: positive everywhere and
    normalised by construction. Same shape: only renormalised.
    """
    a = np.asarray(log_density, dtype=np.float64)
    shape = (int(shape[0]), int(shape[1]))
    if a.shape != shape:
        a = zoom(a, (shape[0] / a.shape[0], shape[1] / a.shape[1]), order=1, mode="nearest")
        if a.shape != shape:  # pragma: no cover - zoom rounds in * (out / in) to out
            raise RuntimeError(f"zoom produced {a.shape}, not {shape}")
    return a - log_sum_exp(a)


class ShuffledBaseline:
    """The leave-one-out baseline of shuffled AUC: the mean density of the *other* images.

    As pysaliency's ``ShuffledBaselineModel``: one pass adds every image's density, then
    ``p_b(i) = (sum_j p_j - p_i) / (n - 1)``. Kept as one running float64 sum per image size
    (not a copy of every map); images are averaged with the others *of their size*, as the
    protocols draw sAUC's negatives from images of the same size (pysaliency resizes every
    density to one compute size instead). An image alone in its size has no baseline.

    Where an image's own density exceeds the others' sum by ~1e13 the difference loses its
    digits; the baseline is floored at ``(n + 1) * eps * sum`` there (pysaliency returns
    ``log`` of a rounding residue, possibly ``-inf`` or NaN).
    """

    def __init__(self):
        self._sums: dict = {}
        self._counts: dict = {}

    def add(self, log_density) -> None:
        """Add one image's density (log, at the ground truth's size)."""
        self.add_density(np.exp(np.asarray(log_density, dtype=np.float64)))

    def add_density(self, density) -> None:
        """Add one image's density (``exp`` of its log-density, at the ground truth's size)."""
        a = np.asarray(density, dtype=np.float64)
        key = a.shape
        if key not in self._sums:
            self._sums[key] = np.zeros(key)
            self._counts[key] = 0
        self._sums[key] += a
        self._counts[key] += 1

    def count(self, shape) -> int:
        """How many images of ``shape`` were added."""
        return self._counts.get(tuple(shape), 0)

    def log_baseline_excluding(self, log_density) -> np.ndarray | None:
        """``log p_b`` for the image whose log-density is given (it must have been added); None alone."""
        a = np.asarray(log_density, dtype=np.float64)
        n = self.count(a.shape)
        if n < 2:
            return None
        total = self._sums[a.shape]
        rest = total - np.exp(a)
        np.maximum(rest, (n + 1) * np.finfo(np.float64).eps * total, out=rest)
        return np.log(rest) - math.log(n - 1)

    def describe(self) -> dict:
        """Images per size, for the derivation record."""
        return {f"{h}x{w}": int(c) for (h, w), c in sorted(self._counts.items())}


def log_ratio_map(log_density, log_baseline, *, resolution: float = LOG_RATIO_RESOLUTION) -> np.ndarray:
    """sAUC's map ``log p - log p_b``, rounded to multiples of ``resolution`` (see :data:`LOG_RATIO_RESOLUTION`)."""
    d = np.asarray(log_density, dtype=np.float64) - np.asarray(log_baseline, dtype=np.float64)
    if resolution > 0:
        d = np.round(d / resolution) * resolution
    return d + 0.0  # no negative zeros


def equalize(saliency) -> np.ndarray:
    """Histogram equalisation as pysaliency's ``EqualizedSaliencyMapModel``, ties kept tied.

    ``(rank - 1) / N`` with the 1-based rank of each pixel; tied pixels share their average
    rank (pysaliency's ``argsort(argsort())`` orders ties by position, which would make a
    constant map non-constant). Equal to pysaliency's map when there are no ties.
    """
    s = np.asarray(saliency, dtype=np.float64)
    flat = s.ravel()
    order = np.argsort(flat)
    ordered = flat[order]
    first = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))  # each run of ties
    ends = np.append(first[1:], flat.size)
    out = np.empty(flat.size)
    out[order] = np.repeat((first + ends - 1) / 2.0, ends - first)  # 0-based average rank of the run
    return (out / flat.size).reshape(s.shape)


def info_gain_map(density) -> np.ndarray:
    """The map whose MIT information gain is that of the density: ``p`` with its smallest pixel set to 0.

    MIT's ``InfoGain.m`` (and :func:`salbench.metrics.info_gain`) min-max normalises the map
    before dividing by its sum, so ``p`` itself would be scored as ``(p - min p) / sum``: the
    pixels near the minimum (a density's uniform floor) would get ~0 probability and cost up
    to 52 bits per fixation. Setting the least likely pixel to 0 makes the min-max step a
    no-op: MIT's IG then scores ``p / (1 - min p)`` on every other pixel, the log-density
    itself up to ``log2(1 / (1 - min p))`` (< 1e-6 bits per fixation at 480x640). A constant
    density is returned as it is (a constant map is the uniform distribution).
    """
    s = np.array(density, dtype=np.float64)
    lo, hi = float(s.min()), float(s.max())
    if hi - lo <= 1e-12 * max(abs(hi), abs(lo), np.finfo(np.float64).tiny):
        return s
    s.flat[int(np.argmin(s))] = 0.0
    return s


# ------------------------------------------------------------------------- protocol kernels
def dataset_sigma(shape) -> float:
    """salbench's dataset density blur: sigma ``19 * H / 480`` (``salbench.data._maps.salicon_sigma``)."""
    return _SALICON_SIGMA_AT_480 * int(shape[0]) / 480.0


#: The parameters each protocol's ground-truth kernel reads (with a name instead of a Protocol
#: they must be given, except ``mit``'s ``ground_truth``, whose default is ``"mit"``).
KERNEL_PARAMETERS = {"mit": (), "exact": (), "coursework": ("cc_target_sigma",), "salicon": ("cc_sigma",)}


def _resolve(protocol, params):
    """``(name, parameters)`` from a Protocol, or a name and its recorded/overridden parameters.

    Not the protocol registry: this module sits below the protocols (their scorer derives the
    maps), so a bare name must come with the parameters its kernel reads (:data:`KERNEL_PARAMETERS`).
    """
    if hasattr(protocol, "params") and hasattr(protocol, "name") and not isinstance(protocol, str):
        p = dict(protocol.params)
        return protocol.name, p
    name = str(protocol)
    if name not in KERNEL_PARAMETERS:
        raise ValueError(f"unknown protocol {name!r}; metric-specific maps know {sorted(KERNEL_PARAMETERS)}")
    p = dict(params or {})
    p.pop("name", None)
    missing = [k for k in KERNEL_PARAMETERS[name] if k not in p]
    if missing:
        raise ValueError(f"protocol {name!r} given by name: pass its parameter(s) {missing} or the protocol itself "
                         f"(salbench.protocols.get_protocol({name!r}))")
    return name, {**p, "name": name}


def _empirical_kernel(name, p, shape, sigma_override):
    """How the protocol builds the continuous ground truth of CC/KLD/SIM/EMD from fixations.

    Returns ``(kind, description dict)``; kind ``"antonio"`` or ``"gaussian"`` with its sigmas.
    """
    ds = float(sigma_override) if sigma_override is not None else dataset_sigma(shape)
    if name == "mit" and p.get("ground_truth", "mit") == "mit":
        return {"kernel": "antonioGaussian", "cutoff_cycles_per_image": 8.0, "clip_negative": True,
                "boundary": "circular on the zero-padded power-of-two square (MIT)"}
    if name in ("mit", "exact"):
        return {"kernel": "gaussian", "sigmas": [ds], "truncate": 4.0, "mode": "reflect",
                "source": "the dataset's density: fixation map blurred with sigma 19 * H / 480"
                          + ("" if sigma_override is None else " (overridden)")}
    if name == "coursework":
        return {"kernel": "gaussian", "sigmas": [ds, float(p["cc_target_sigma"])], "truncate": 4.0, "mode": "reflect",
                "source": "y_original (fixations blurred with the dataset's sigma) blurred again with cc_target_sigma"
                          "; uint8 rounding of the script ignored"}
    if name == "salicon":
        return {"kernel": "gaussian", "sigmas": [float(p["cc_sigma"])], "truncate": 4.0, "mode": "reflect",
                "source": "the server's CC target: binary fixation map blurred with cc_sigma"}
    raise ValueError(f"no ground-truth kernel known for protocol {name!r}")


@functools.lru_cache(maxsize=8)
def _gaussian_matrix(length: int, sigma: float, truncate: float, mode: str) -> np.ndarray:
    """The 1-D ``scipy.ndimage.gaussian_filter1d`` as a matrix: column ``j`` filters a unit at ``j``."""
    k = gaussian_filter1d(np.eye(length), sigma, axis=0, mode=mode, truncate=truncate)
    k.flags.writeable = False
    return k


def _kernel_matrices(kernel: dict, shape):
    h, w = shape
    if kernel["kernel"] == "antonioGaussian":
        n = _padded_size(h, w)
        c = float(kernel["cutoff_cycles_per_image"])
        return [(_circulant(h, n, c), _circulant(w, n, c))]
    return [(_gaussian_matrix(h, s, kernel["truncate"], kernel["mode"]),
             _gaussian_matrix(w, s, kernel["truncate"], kernel["mode"])) for s in kernel["sigmas"]]


def _antonio_blur(d: np.ndarray, cutoff: float) -> np.ndarray:
    """antonioGaussian.m's linear filter of a dense map: one real FFT per axis on the zero-padded ``n``.

    The transfer function ``exp(-k^2 / s^2)`` is a product over the axes and is its own DFT
    of the circular kernel (:func:`~salbench.protocols.ground_truth.antonio_gaussian_kernel`),
    so filtering each axis with a length-``n`` real FFT is MIT's ``n x n`` FFT filter, cropped:
    the same linear map as the circulant matrices, to rounding, in a fixed order of
    operations (numpy's FFT: no BLAS, no threads).
    """
    h, w = d.shape
    n = _padded_size(h, w)
    s = cutoff / math.sqrt(math.log(2.0))
    k = np.arange(n // 2 + 1, dtype=np.float64)
    gain = np.exp(-(k * k) / (s * s))
    out = np.fft.irfft(np.fft.rfft(d, n=n, axis=0) * gain[:, None], n=n, axis=0)[:h]
    return np.ascontiguousarray(np.fft.irfft(np.fft.rfft(out, n=n, axis=1) * gain[None, :], n=n, axis=1)[:, :w])


def expected_empirical_map(density, protocol, params=None, *, sigma=None) -> np.ndarray:
    """``p`` blurred as the protocol blurs fixations into its continuous ground truth (CC, KLD, EMD).

    ``mit`` (``ground_truth="mit"``): MIT's antonioGaussian at 8 cycles/image, the same linear
    filter as :func:`salbench.protocols.ground_truth.mit_fixation_density` (circular on the
    padded square; by FFT, :func:`_antonio_blur`), clipped at 0. ``mit`` with ``ground_truth="dataset"`` and ``exact``: the
    dataset's Gaussian (sigma ``19 * H / 480``, or ``sigma``); ``coursework``: that Gaussian then
    ``cc_target_sigma`` (the script blurs ``y_original`` again); ``salicon``: ``cc_sigma``.
    Gaussians are ``scipy.ndimage.gaussian_filter`` (reflect, truncate 4), as the protocols'.
    """
    name, p = _resolve(protocol, params)
    d = np.asarray(density, dtype=np.float64)
    kernel = _empirical_kernel(name, p, d.shape, sigma)
    if kernel["kernel"] == "antonioGaussian":
        out = _antonio_blur(d, float(kernel["cutoff_cycles_per_image"]))
        np.maximum(out, 0.0, out=out)
        return out
    out = d
    for s in kernel["sigmas"]:
        out = gaussian_blur(out, s, kernel["truncate"])
    return out


def empirical_maps(protocol, params=None, shape=(480, 640), *, sigma=None) -> SeparableEmpiricalMaps:
    """The protocol's SIM ground truth as :class:`~salbench.metrics.expected_sim.SeparableEmpiricalMaps`.

    Binary fixation maps (each fixated pixel once: MIT's fixation map, the datasets' density
    rule), the protocol's kernel (one Gaussian composed as a product of matrices), MIT's
    min-max SIM normalisation.
    """
    name, p = _resolve(protocol, params)
    kernel = _empirical_kernel(name, p, shape, sigma)
    mats = _kernel_matrices(kernel, shape)
    ky, kx = mats[0]
    for ky2, kx2 in mats[1:]:
        ky, kx = ky2 @ ky, kx2 @ kx
    return SeparableEmpiricalMaps(np.asarray(ky), np.asarray(kx), binary=True,
                                  clip_negative=bool(kernel.get("clip_negative", False)), normalisation="minmax")


def image_seed(seed: int, position: int) -> int:
    """The SIM optimiser's seed for image ``position`` of a run seeded ``seed`` (independent of chunking)."""
    return int(np.random.SeedSequence([int(seed), int(position)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def kernel_sigma(kernel: dict, shape) -> float:
    """The standard deviation (pixels) of the protocol's ground-truth kernel at image size ``shape``.

    antonioGaussian at ``fc`` cycles on the padded ``n x n`` square: ``n sqrt(ln 2) / (sqrt(2) pi fc)``
    (24.0 px at 480x640 and 600x800); composed Gaussians: the root sum of squares.
    """
    if kernel["kernel"] == "antonioGaussian":
        n = _padded_size(int(shape[0]), int(shape[1]))
        return n * math.sqrt(math.log(2.0)) / (math.sqrt(2.0) * math.pi * float(kernel["cutoff_cycles_per_image"]))
    return math.sqrt(sum(float(x) ** 2 for x in kernel["sigmas"]))


def sim_grid_stride(kernel: dict, shape, grid: float) -> int:
    """Pixels between the SIM optimiser's grid points: ``max(1, floor(grid * kernel sigma))`` (0: every pixel)."""
    if grid <= 0:
        return 1
    return max(1, int(math.floor(float(grid) * kernel_sigma(kernel, shape))))


def upsample_linear(grid_map, rows, cols, shape) -> np.ndarray:
    """A map known at grid ``rows`` x ``cols`` to every pixel of ``shape``: separable linear interpolation.

    Between grid points linear; before the first and after the last point held constant. Element-wise
    (a fixed order of operations: the same bits on any machine and thread count).
    """
    g = np.asarray(grid_map, dtype=np.float64)
    for axis, (pos, n) in enumerate(((rows, shape[0]), (cols, shape[1]))):
        pos = np.asarray(pos, dtype=np.int64)
        if pos.size == n:
            continue
        x = np.arange(n, dtype=np.float64)
        i = np.clip(np.searchsorted(pos, x, side="right") - 1, 0, max(pos.size - 2, 0))
        if pos.size == 1:
            g = np.repeat(g, n, axis=axis)
            continue
        t = np.clip((x - pos[i]) / (pos[i + 1] - pos[i]), 0.0, 1.0)
        shape_t = (-1, 1) if axis == 0 else (1, -1)
        a, b = np.take(g, i, axis=axis), np.take(g, i + 1, axis=axis)
        g = a + t.reshape(shape_t) * (b - a)
    return g


def sim_map(density, protocol, params=None, *, seed: int, fixation_count: int = SIM_DEFAULTS["fixation_count"],
            samples: int = SIM_DEFAULTS["samples"], validation_samples: int | None = None,
            grid: float = SIM_DEFAULTS["grid"], sigma=None, anchor=None) -> tuple[np.ndarray, dict]:
    """The map maximising the expected SIM against the protocol's ground truth: ``(map, info)``.

    See :func:`salbench.metrics.expected_sim.maximize_expected_sim`: the exact optimum over
    ``samples`` empirical maps evaluated on a grid ``stride`` pixels apart (:func:`sim_grid_stride`;
    ``grid=0``: every pixel), interpolated linearly to every pixel (:func:`upsample_linear`), mixed
    with the expected empirical map (the anchor, pysaliency's starting point; ``anchor`` passes it
    when already computed) by the weight that scores best on ``validation_samples`` fresh empirical
    maps on the same grid. ``info`` holds the parameters, the stride, the rank / slope / sampled
    SIM of the optimum and the weight chosen.
    """
    name, p = _resolve(protocol, params)
    d = np.asarray(density, dtype=np.float64)
    kernel = _empirical_kernel(name, p, d.shape, sigma)
    stride = sim_grid_stride(kernel, d.shape, grid)
    rows, cols = grid_positions(d.shape[0], stride), grid_positions(d.shape[1], stride)
    maps = empirical_maps(name, p, d.shape, sigma=sigma)
    if stride > 1:
        maps = maps.on_grid(rows, cols)
    if anchor is None:
        anchor = expected_empirical_map(d, name, p, sigma=sigma)
    anchor = np.asarray(anchor, dtype=np.float64)
    _, info = maximize_expected_sim(d, maps, fixation_count=fixation_count, samples=samples, seed=seed,
                                    anchor=anchor[np.ix_(rows, cols)], validation_samples=validation_samples)
    optimum = info.pop("optimum")
    w = info["mix_weight"]
    info["grid_stride"] = stride
    if w == 0.0:
        return anchor / anchor.sum(), info
    up = upsample_linear(optimum, rows, cols, d.shape)
    up /= up.sum()
    return (1.0 - w) * (anchor / anchor.sum()) + w * up if w < 1.0 else up, info


# ------------------------------------------------------------------------- entry point
def _check_bool(name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"map parameter {name} must be true or false, got {v!r}")
    return bool(v)


def _check_count(name, v, low=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= v <= 1_000_000:
        raise ValueError(f"map parameter {name} must be an integer in [{low}, 1000000], got {v!r}")
    return int(v)


def _check_grid(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 0 <= v <= 4:
        raise ValueError(f"map parameter {name} must be a number in [0, 4] (0: every pixel), got {v!r}")
    return float(v)


def _check_sigma(name, v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not (0 < v < 1e4):
        raise ValueError(f"map parameter {name} must be a positive number of pixels or null, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class MapDerivation:
    """How the metric-specific maps of a density are derived: every parameter, as results entries record them.

    Parameters
    ----------
    equalize_auc : bool
        Histogram-equalise the AUCs' density map (:func:`equalize`), as the MIT/Tuebingen
        benchmark. Exact AUCs (and AUC-Judd, whose thresholds are the fixated values) do not
        change; the binned AUC-Borji (thresholds every 0.1 of the min-max map) does: on the
        synthetic set's true densities 0.784 -> 0.868 (docs/metrics.md).
    equalize_sauc : bool
        Histogram-equalise the sAUC map too (the MIT/Tuebingen benchmark does; there sAUC is
        exact). Off by default: under the binned sAUC of ``mit``/``coursework`` the log-ratio
        itself scores higher (0.837 against 0.826 on the same densities).
    sim_fixation_count, sim_samples, sim_validation_samples : int
        Fixations per empirical map, empirical maps in the SIM objective, and fresh empirical
        maps that choose the mix with the blurred density.
    sim_grid : float
        The SIM optimiser's grid: points ``max(1, floor(sim_grid * sigma))`` pixels apart, ``sigma``
        the protocol's ground-truth kernel (:func:`sim_grid_stride`); 0: every pixel.
    sigma : float, optional
        The dataset's density blur, where the protocol's ground truth is the dataset's density
        (default ``19 * H / 480``, salbench's rule for every built-in dataset).
    """

    equalize_auc: bool = True
    equalize_sauc: bool = False
    sim_fixation_count: int = SIM_DEFAULTS["fixation_count"]
    sim_samples: int = SIM_DEFAULTS["samples"]
    sim_validation_samples: int = SIM_DEFAULTS["samples"]
    sim_grid: float = SIM_DEFAULTS["grid"]
    sigma: float | None = None

    _CHECKS = {"equalize_auc": _check_bool, "equalize_sauc": _check_bool, "sim_fixation_count": _check_count,
               "sim_samples": _check_count, "sim_validation_samples": functools.partial(_check_count, low=0),
               "sim_grid": _check_grid, "sigma": _check_sigma}

    def __post_init__(self):
        for name, check in self._CHECKS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))

    @classmethod
    def from_parameters(cls, parameters=None) -> "MapDerivation":
        """From a mapping of parameters (a results entry's ``map_derivation.parameters``, user options).

        Raises
        ------
        ValueError
            An unknown parameter or a bad value (one line naming it).
        """
        parameters = dict(parameters or {})
        unknown = sorted(set(parameters) - set(cls._CHECKS))
        if unknown:
            raise ValueError(f"unknown map parameter(s) {unknown}; known: {', '.join(cls._CHECKS)}")
        return cls(**parameters)

    def parameters(self) -> dict:
        """Every parameter, JSON-ready (what :meth:`from_parameters` reads back)."""
        return {name: getattr(self, name) for name in self._CHECKS}

    def maps(self, log_density, protocol, params=None, *, metrics=None, log_baseline=None, seed: int = 0,
             info: dict | None = None) -> dict:
        """Every metric's map of one image's density, at the ground truth's size.

        Parameters
        ----------
        log_density : ndarray (H, W)
            The model's log-density at the ground truth's size (:func:`resize_log_density`);
            normalised (checked by :func:`check_log_density`).
        protocol : str or Protocol
            Protocol name (then ``params``: its recorded or overridden parameters) or instance.
        metrics : sequence of str, optional
            Metrics to derive maps for; default the protocol's (``metrics_for``).
        log_baseline : ndarray (H, W), optional
            ``log p_b`` from :meth:`ShuffledBaseline.log_baseline_excluding`; needed for sAUC
            (without it the shuffled metrics get no map: score them NaN).
        seed : int
            Seed of the SIM optimiser for this image (:func:`image_seed`).
        info : dict, optional
            Receives ``info["sim"]``, the SIM optimiser's report (stride, weight chosen, ...).

        Returns
        -------
        dict
            ``{metric: map}`` (float64, the ground truth's size); maps of one kind are one array.
        """
        name, p = _resolve(protocol, params)
        ld = check_log_density(log_density)
        metrics = _metrics(name, metrics)
        density = np.exp(ld)
        cache: dict = {}

        def kind_map(kind, metric):
            key = (kind, _equalized(metric, self.equalize_auc)) if kind == "density" else kind
            if key in cache:
                return cache[key]
            if kind == "density":
                out = equalize(density) if _equalized(metric, self.equalize_auc) else density
            elif kind == "log_ratio":
                if log_baseline is None:
                    out = None
                else:
                    out = log_ratio_map(ld, log_baseline)
                    out = equalize(out) if self.equalize_sauc else out
            elif kind == "expected_empirical":
                out = expected_empirical_map(density, name, p, sigma=self.sigma)
            elif kind == "sim_optimal":
                out, sim_info = sim_map(density, name, p, seed=seed, fixation_count=self.sim_fixation_count,
                                        samples=self.sim_samples, validation_samples=self.sim_validation_samples,
                                        grid=self.sim_grid, sigma=self.sigma, anchor=kind_map("expected_empirical", None))
                if info is not None:
                    info["sim"] = sim_info
            else:  # info_gain
                out = info_gain_map(density)
            cache[key] = out
            return out

        out = {}
        for m in metrics:
            mp = kind_map(map_kind(m), m)
            if mp is not None:
                out[m] = mp
        return out

    def record(self, protocol, params=None, *, metrics=None, seed: int = 0, shapes=None,
               baseline: ShuffledBaseline | None = None, sim_weights=None) -> dict:
        """Every parameter the maps used, as a JSON-ready dict for a results entry (``map_derivation``).

        ``parameters`` is what :meth:`from_parameters` rebuilds this object from; the rest says
        what each kind of map is. ``shapes`` (image sizes, ``{(H, W): count}`` or a list) make
        the kernels concrete (the dataset sigma scales with the height) and list the SIM grid's
        strides; ``baseline`` adds the images per size of the sAUC baseline; ``sim_weights``
        (the mix weight chosen per image) adds how often each weight was chosen.
        """
        name, p = _resolve(protocol, params)
        metrics = _metrics(name, metrics)
        kinds = {map_kind(m) for m in metrics}
        sizes = sorted({(int(h), int(w)) for h, w in (shapes or [(480, 640)])})
        kernels = {f"{h}x{w}": _empirical_kernel(name, p, (h, w), self.sigma) for h, w in sizes}
        for (h, w), k in zip(sizes, kernels.values()):
            if self.sigma is None and k["kernel"] == "gaussian":
                k["dataset_sigma"] = dataset_sigma((h, w))
        rec = {
            "maps": METRIC_SPECIFIC,
            "parameters": self.parameters(),
            "seed": None if seed is None else int(seed),
            "reference": "Kuemmerer, Wallis & Bethge, ECCV 2018; pysaliency 0.2.22",
            "predictions": "natural-log densities on the model's output grid, each renormalised "
                           "(- logsumexp) before use",
            "density_resize": "pysaliency ResizingModel: scipy.ndimage.zoom(log p, order=1, mode='nearest') "
                              "to the ground truth's size, minus logsumexp; no other resize, quantisation or blur "
                              "of the protocol's prediction pipeline",
            "density_sum_tolerance": DENSITY_SUM_TOL,
            "protocol": name,
            "metric_maps": {m: map_kind(m) for m in metrics},
        }
        if "density" in kinds:
            rec["density"] = {"applies_to": [m for m in metrics if map_kind(m) == "density"],
                              "equalized_for": [m for m in metrics if _equalized(m, self.equalize_auc)],
                              "equalization": "(average rank - 1) / N, ties share their average rank"}
        if "log_ratio" in kinds:
            rec["log_ratio"] = {"baseline": "leave-one-out mean of the model's own densities over the other images "
                                            "of the split with the same size (running sum, image order)",
                                "resolution": LOG_RATIO_RESOLUTION, "equalized": self.equalize_sauc}
            if baseline is not None:
                rec["log_ratio"]["images_per_size"] = baseline.describe()
        if kinds & {"expected_empirical", "sim_optimal"}:
            rec["expected_empirical"] = kernels
        if "emd" in metrics:
            rec["emd"] = "no closed-form optimum: the expected empirical map"
        if "sim_optimal" in kinds:
            rec["sim_optimal"] = {
                "method": "exact maximiser of the mean SIM over sampled empirical maps (water filling) on a grid, "
                          "interpolated linearly to every pixel, mixed with the expected empirical map by the weight "
                          "best on validation maps (ties: the larger weight)",
                "fixation_count": self.sim_fixation_count, "samples": self.sim_samples,
                "validation_samples": self.sim_validation_samples, "mix_weights": list(MIX_WEIGHTS),
                "validation_resolution": SCORE_RESOLUTION,
                "fixation_map": "binary (each fixated pixel once)", "normalisation": "minmax, over the grid",
                "grid": {"rule": f"points max(1, floor({self.sim_grid:g} * kernel sigma)) pixels apart at "
                                 "stride * i + stride // 2; 0: every pixel",
                         "strides": {key: sim_grid_stride(k, hw, self.sim_grid)
                                     for (key, k), hw in zip(kernels.items(), sizes)},
                         "kernel_sigma": {key: round(kernel_sigma(k, hw), 6)
                                          for (key, k), hw in zip(kernels.items(), sizes)}},
                "seed": None if seed is None else int(seed),
                "image_seed": "numpy SeedSequence([seed, position]) (salbench.protocols.metric_maps.image_seed)"}
            if sim_weights is not None:
                w = [float(x) for x in sim_weights if x is not None and np.isfinite(x)]
                rec["sim_optimal"]["mix_weight_chosen"] = {f"{v:g}": w.count(v) for v in sorted(set(w))}
        if "info_gain" in kinds:
            rec["info_gain"] = "density with its least likely pixel set to 0 (MIT's min-max step then keeps p)"
        return rec


METRIC_SPECIFIC = "metric-specific"


def _metrics(name, metrics):
    if metrics is None:
        from salbench.metrics.registry import metrics_for

        metrics = metrics_for(name)
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRICS or METRICS[m].metric_map is None]
    if unknown:
        known = sorted(m for m, e in METRICS.items() if e.metric_map is not None)
        raise ValueError(f"no metric-specific map is defined for {unknown}; known: {known}")
    return metrics


def metric_specific_maps(log_density, protocol, params=None, *, metrics=None, log_baseline=None, seed: int = 0,
                         **parameters) -> dict:
    """Every metric's map of one image's density: ``MapDerivation(**parameters).maps(...)`` (see there)."""
    return MapDerivation(**parameters).maps(log_density, protocol, params, metrics=metrics, log_baseline=log_baseline,
                                            seed=seed)


def derivation_record(protocol, params=None, *, shape=None, metrics=None, seed: int = 0,
                      baseline: ShuffledBaseline | None = None, **parameters) -> dict:
    """``MapDerivation(**parameters).record(...)`` for images of one ``shape`` (see there)."""
    return MapDerivation(**parameters).record(protocol, params, metrics=metrics, seed=seed,
                                              shapes=None if shape is None else [tuple(shape)], baseline=baseline)
