"""Expected SIM under a fixation density, and the saliency map that maximises it.

SIM compares a saliency map with an *empirical* saliency map: the fixations of one
viewing, put on a map and blurred, normalised to a distribution. Under a fixation
density ``p`` the empirical map is random, and the saliency map that maximises the
expected SIM (Kuemmerer, Wallis & Bethge, ECCV 2018) is not ``p`` itself.

pysaliency 0.2.22 finds it by stochastic projected gradient ascent on the simplex
(``metric_optimization_torch.maximize_expected_sim``). Here the same objective, the mean
SIM over ``samples`` empirical maps drawn from ``p`` with a seed, is maximised *exactly*:

    maximise  (1/M) sum_m sum_x min(s_x, g_m(x))   over  s >= 0, sum_x s_x = 1

is a sum over pixels of concave piecewise-linear functions of one variable each (the
normalised empirical maps ``g_m`` do not depend on ``s``). The slope of pixel ``x``'s term
at ``s_x`` is the fraction of samples with ``g_m(x) > s_x``, so the optimum fills every
pixel up to the same slope ``k/M`` ("water filling"): ``s_x`` is the ``k``-th largest of
``g_1(x) .. g_M(x)``, with ``k`` the largest rank whose maps still sum to at least 1, and
the remaining mass spread over the tied segments in proportion to their lengths. No
learning rate, no stopping rule, and the result is the optimum of the sampled objective
rather than an approximation of it; its expected SIM on fresh samples is what the tests
compare with pysaliency's optimiser (``tests/test_metric_maps_pysaliency.py``).

With few samples the exact optimum of the sampled objective over-fits them (each pixel's
value is an order statistic of ``M`` draws). As pysaliency starts from the blurred density
and lets a validation set decide, an ``anchor`` map (the protocol's blurred density) can be
given: the result is then the mix ``(1 - a) * anchor + a * optimum`` whose mean SIM on
``validation_samples`` fresh empirical maps is highest, for ``a`` in ``mix_weights`` (the
objective is concave in ``a``; ties go to the larger ``a``).

The empirical maps are described by :class:`SeparableEmpiricalMaps`: fixations -> a
fixation map (each fixated pixel once, or counts) -> a separable linear filter given by
its two 1-D matrices (any Gaussian, MIT's antonioGaussian, ...) -> optional clipping of
negatives -> the SIM normalisation (MIT's min-max then sum, or pysaliency's sum).

**A grid.** The filter matrices may keep only some rows: ``ky`` of shape ``(h, H)`` holds the
filter's rows at ``h`` grid rows of an ``H``-row image (likewise ``kx``), so the empirical maps
are evaluated on an ``h x w`` grid (:meth:`SeparableEmpiricalMaps.on_grid`). Their
normalisation is then taken over the grid, and the optimum is a map on the grid: the exact
optimum of the sampled objective of the grid's empirical maps. The protocols' ground truths
are Gaussian blurs of sigma ~24 px, smooth at a few pixels, so a grid a quarter of the kernel's
sigma apart loses almost nothing and costs ``(stride)^2`` times less (docs/metrics.md measures
it); :mod:`salbench.protocols.metric_maps` interpolates the grid's map back to every pixel.

**Cost and determinism.** Each empirical map is ``sum_f w_f ky[:, r_f] kx[:, c_f]^T`` over its
``K <= fixation_count`` fixated pixels, computed directly from them (``h * w * K`` products, no
dense filtering) by a Numba kernel whose summation order is fixed: the same bits with any
number of threads, on any machine (no BLAS, no FMA contraction). The fixation CDF is built
once per density. Memory: the ``M`` values of each grid pixel are needed together; the grid is
processed in row blocks of at most ``block_bytes``; a grid that fits one block (any grid of
the protocols' defaults) is evaluated once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salbench._numba import njit

__all__ = ["SeparableEmpiricalMaps", "maximize_expected_sim", "expected_sim", "sample_fixations",
           "FixationSampler", "grid_positions", "DEFAULT_BLOCK_BYTES", "MIX_WEIGHTS", "SCORE_RESOLUTION"]

DEFAULT_BLOCK_BYTES = 48 * 2**20  # values of one row block: M x rows x w float64
MIX_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Validation SIMs are compared after rounding to multiples of this, so that candidates equal up to
#: rounding (e.g. an optimum equal to the anchor) are tied and the tie goes to the larger weight
#: whatever the last bits of the arithmetic.
SCORE_RESOLUTION = 2.0 ** -40


@njit
def _separable_maps(ky, kxt, rows, cols, weights, starts, r0, r1, out):
    """``out[m, i - r0, j] = sum_f weights[f] * ky[i, rows[f]] * kxt[cols[f], j]`` over set ``m``'s fixations.

    ``starts[m]:starts[m + 1]`` indexes fixation set ``m``. The terms are added one fixation at a
    time, in order (four per sweep of the row, same order): bit-identical results with any thread
    count and on any machine (the loop over ``j`` is element-wise, so vectorising it keeps the order).
    """
    n_sets = starts.size - 1
    w = kxt.shape[1]
    for m in range(n_sets):
        f0, f1 = starts[m], starts[m + 1]
        for i in range(r0, r1):
            o = out[m, i - r0]
            for j in range(w):
                o[j] = 0.0
            f = f0
            while f + 4 <= f1:
                a0 = weights[f] * ky[i, rows[f]]
                a1 = weights[f + 1] * ky[i, rows[f + 1]]
                a2 = weights[f + 2] * ky[i, rows[f + 2]]
                a3 = weights[f + 3] * ky[i, rows[f + 3]]
                b0, b1, b2, b3 = kxt[cols[f]], kxt[cols[f + 1]], kxt[cols[f + 2]], kxt[cols[f + 3]]
                for j in range(w):
                    o[j] = (((o[j] + a0 * b0[j]) + a1 * b1[j]) + a2 * b2[j]) + a3 * b3[j]
                f += 4
            while f < f1:
                a = weights[f] * ky[i, rows[f]]
                b = kxt[cols[f]]
                for j in range(w):
                    o[j] += a * b[j]
                f += 1


def grid_positions(length: int, stride: int) -> np.ndarray:
    """Pixel positions of a grid ``stride`` apart covering ``length`` pixels: the block centres ``stride * i + stride // 2``.

    ``ceil(length / stride)`` positions (the last clipped to ``length - 1``); stride 1: every pixel.
    """
    length, stride = int(length), int(stride)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    n = -(-length // stride)
    return np.minimum(np.arange(n, dtype=np.int64) * stride + stride // 2, length - 1)


@dataclass(frozen=True, eq=False)
class SeparableEmpiricalMaps:
    """How a protocol turns a set of fixations into the ground truth that SIM compares with.

    Parameters
    ----------
    ky : ndarray (h, H)
        Vertical filter: column ``j`` is the response to a unit at image row ``j``, at the ``h``
        evaluated rows (``h == H``: every row; :meth:`on_grid` keeps some).
    kx : ndarray (w, W)
        Horizontal filter, likewise.
    binary : bool
        True: each fixated pixel counts once (MIT's binary fixation map); False: duplicate
        fixations add up (pysaliency).
    clip_negative : bool
        Clip the filtered map at 0 (MIT's ``max(antonioGaussian(F), 0)``).
    normalisation : {"minmax", "sum"}
        How SIM turns a map into a distribution: ``"minmax"`` subtracts the minimum then divides
        by the sum (MIT ``similarity.m``, :func:`salbench.metrics.sim`); ``"sum"`` divides by the
        sum after shifting a negative minimum to 0 (pysaliency ``SIM``). Over the evaluated grid.
    image_shape : (int, int), optional
        ``(H, W)``; default ``(ky.shape[1], kx.shape[1])``.
    """

    ky: np.ndarray
    kx: np.ndarray
    binary: bool = True
    clip_negative: bool = False
    normalisation: str = "minmax"

    def __post_init__(self):
        if self.normalisation not in ("minmax", "sum"):
            raise ValueError(f"normalisation must be 'minmax' or 'sum', got {self.normalisation!r}")
        for name, k in (("ky", self.ky), ("kx", self.kx)):
            if k.ndim != 2 or k.shape[0] < 1 or k.shape[0] > k.shape[1]:
                raise ValueError(f"{name} must be a matrix with at most as many rows as columns, got shape {k.shape}")
        object.__setattr__(self, "ky", np.ascontiguousarray(self.ky, dtype=np.float64))
        object.__setattr__(self, "_kxt", np.ascontiguousarray(np.asarray(self.kx, dtype=np.float64).T))

    @property
    def shape(self) -> tuple[int, int]:
        """The evaluated grid ``(h, w)``."""
        return self.ky.shape[0], self.kx.shape[0]

    @property
    def image_shape(self) -> tuple[int, int]:
        """The image ``(H, W)`` fixations are drawn on."""
        return self.ky.shape[1], self.kx.shape[1]

    def on_grid(self, rows, cols) -> "SeparableEmpiricalMaps":
        """The same maps evaluated at image rows ``rows`` and columns ``cols`` only."""
        return SeparableEmpiricalMaps(self.ky[np.asarray(rows)], self.kx[np.asarray(cols)], binary=self.binary,
                                      clip_negative=self.clip_negative, normalisation=self.normalisation)

    def fixation_set(self, flat_indices: np.ndarray):
        """``(rows, cols, weights)`` of the fixation map of sampled flat pixel indices."""
        if self.binary:
            idx = np.unique(flat_indices)
            w = np.ones(idx.size)
        else:
            idx, counts = np.unique(flat_indices, return_counts=True)
            w = counts.astype(np.float64)
        rows, cols = np.divmod(idx, self.image_shape[1])
        return rows, cols, w

    def values(self, fsets, r0: int = 0, r1: int | None = None, out=None) -> np.ndarray:
        """Rows ``r0:r1`` of the filtered (not yet normalised) maps of ``fsets``: ``(len(fsets), r1 - r0, w)``."""
        r1 = self.shape[0] if r1 is None else r1
        rows = np.concatenate([f[0] for f in fsets]).astype(np.int64)
        cols = np.concatenate([f[1] for f in fsets]).astype(np.int64)
        weights = np.concatenate([f[2] for f in fsets]).astype(np.float64)
        starts = np.zeros(len(fsets) + 1, dtype=np.int64)
        np.cumsum([len(f[0]) for f in fsets], out=starts[1:])
        if out is None:
            out = np.empty((len(fsets), r1 - r0, self.shape[1]))
        _separable_maps(self.ky, self._kxt, rows, cols, weights, starts, r0, r1, out)
        if self.clip_negative:
            np.maximum(out, 0.0, out=out)
        return out

    def rows_of(self, fset, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of the filtered (not yet normalised) map of one fixation set."""
        return self.values([fset], r0, r1)[0]

    def offsets(self, fset) -> tuple[float, float]:
        """``(shift, total)``: the normalised map is ``(G - shift) / total`` (total 0: uniform)."""
        return self._offsets(self.rows_of(fset, 0, self.shape[0]))

    def _offsets(self, g) -> tuple[float, float]:
        lo = float(g.min())
        shift = lo if (self.normalisation == "minmax" or lo < 0.0) else 0.0
        total = float((g - shift).sum())
        return shift, total if total > 0.0 else 0.0

    def normalised(self, fsets) -> np.ndarray:
        """The normalised maps of ``fsets`` on the whole grid, ``(len(fsets), h, w)``."""
        v = self.values(fsets)
        for m in range(len(fsets)):
            _normalise(v[m], *self._offsets(v[m]))
        return v


def _normalise(g, shift, total):
    """``(g - shift) / total`` in place; the uniform distribution when ``total`` is 0."""
    if total == 0.0:
        g[...] = 1.0 / g.size
    else:
        g -= shift
        g /= total
    return g


class FixationSampler:
    """Draws flat pixel indices from a density (inverse CDF; the CDF is built once)."""

    def __init__(self, density):
        self.cdf = np.cumsum(np.asarray(density, dtype=np.float64).ravel())
        if not self.cdf[-1] > 0:
            raise ValueError("density has no mass to sample fixations from")

    def draw(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` flat pixel indices drawn with replacement."""
        idx = np.searchsorted(self.cdf, rng.random(count) * self.cdf[-1], side="right")
        return np.minimum(idx, self.cdf.size - 1)


def sample_fixations(density: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` flat pixel indices drawn with replacement from ``density`` (inverse CDF)."""
    return FixationSampler(density).draw(count, rng)


def _row_blocks(shape, n_samples, block_bytes):
    h, w = shape
    rows = max(1, int(block_bytes) // (8 * n_samples * w))
    return [(r0, min(h, r0 + rows)) for r0 in range(0, h, rows)]


def _draw_sets(maps, sampler, fixation_count, samples, seed, stream=0):
    rng = np.random.default_rng([int(seed), stream])  # stream 0: the objective; 1: validation
    return [maps.fixation_set(sampler.draw(fixation_count, rng)) for _ in range(samples)]


def _water_level(sums, samples):
    """From the ascending order statistics' grid sums: ``(lo, hi, t)`` of the map ``v[lo] + t (v[hi] - v[lo])``."""
    # the smallest j whose order statistic sums to >= 1; the map lies between j-1 and j
    hi = min(int(np.searchsorted(sums, 1.0, side="left")), samples - 1)
    lo = hi - 1
    s_lo = sums[lo] if lo >= 0 else 0.0
    s_hi = sums[hi]
    t = (1.0 - s_lo) / (s_hi - s_lo) if s_hi > s_lo else 1.0
    return lo, hi, min(max(t, 0.0), 1.0)


def _optimum_one_block(maps, fsets, samples):
    v = maps.normalised(fsets)
    v.sort(axis=0)  # ascending: v[j] = (j+1)-th smallest
    lo, hi, t = _water_level(v.sum(axis=(1, 2)), samples)
    base = v[lo] if lo >= 0 else 0.0
    s = base + t * (v[hi] - base)
    return s, float(np.minimum(v, s[None]).sum()), hi


def _optimum_blocks(maps, fsets, samples, blocks):
    offsets = [maps.offsets(f) for f in fsets]
    buf = np.empty((samples, blocks[0][1] - blocks[0][0], maps.shape[1]))

    def block(r0, r1):
        v = maps.values(fsets, r0, r1, out=buf[:, : r1 - r0])
        for m, (shift, total) in enumerate(offsets):
            _normalise(v[m], shift, total)
        return v

    # pass 1: sum over pixels of each order statistic (ascending: index j = (j+1)-th smallest)
    sums = np.zeros(samples)
    for r0, r1 in blocks:
        v = block(r0, r1)
        v.sort(axis=0)
        sums += v.sum(axis=(1, 2))
    lo, hi, t = _water_level(sums, samples)
    # pass 2: the map, and the objective at it (per pixel the multiset of samples is what counts)
    out = np.empty(maps.shape)
    objective = 0.0
    for r0, r1 in blocks:
        v = block(r0, r1)
        v.partition([hi] if lo < 0 else [lo, hi], axis=0)
        base = v[lo] if lo >= 0 else 0.0
        s = base + t * (v[hi] - base)
        out[r0:r1] = s
        objective += float(np.minimum(v, s[None]).sum())
    return out, objective, hi


def maximize_expected_sim(density, maps: SeparableEmpiricalMaps, *, fixation_count: int, samples: int,
                          seed: int, anchor=None, validation_samples: int | None = None,
                          mix_weights=MIX_WEIGHTS, block_bytes: int = DEFAULT_BLOCK_BYTES) -> tuple[np.ndarray, dict]:
    """The saliency map with the highest mean SIM over ``samples`` empirical maps drawn from ``density``.

    Parameters
    ----------
    density : ndarray (H, W)
        Fixation density (non-negative; normalised here), on the image ``maps.image_shape``.
    maps : SeparableEmpiricalMaps
        How fixations become the protocol's ground truth, and how SIM normalises it; evaluated
        on its grid ``maps.shape`` (the image itself unless :meth:`~SeparableEmpiricalMaps.on_grid`).
    fixation_count : int
        Fixations drawn (with replacement) per empirical map.
    samples : int
        Empirical maps ``M`` in the objective.
    seed : int
        Seed of the draws (``numpy.random.default_rng([seed, 0])``; validation ``[seed, 1]``).
    anchor : ndarray (h, w), optional
        A map on the grid to mix with the optimum, chosen on validation draws (see the module
        notes); None: the optimum of the sampled objective itself.
    validation_samples : int, optional
        Validation empirical maps (default ``samples``).
    mix_weights : sequence of float
        Candidate weights ``a`` of the optimum in the mix.
    block_bytes : int
        Bound on the memory of one row block (values only, float64).

    Returns
    -------
    saliency : ndarray (h, w) float64
        Non-negative, sums to 1 over the grid: the exact maximiser of the sampled objective
        (with an anchor: the chosen mix).
    info : dict
        ``fixation_count``, ``samples``, ``seed``, ``rank`` (``k``: the map lies between the
        ``k``-th and ``(k+1)``-th largest sample values of each pixel), ``slope`` (``k / M``, the
        common marginal gain) and ``sampled_sim`` (the objective's value at the optimum); with an
        anchor also ``validation_samples``, ``validation_sim`` (mean SIM per weight) and
        ``mix_weight`` (the weight chosen).
    """
    p = np.asarray(density, dtype=np.float64)
    if p.shape != maps.image_shape:
        raise ValueError(f"density has shape {p.shape} but the empirical maps are of a {maps.image_shape} image")
    fixation_count, samples = int(fixation_count), int(samples)
    if fixation_count < 1 or samples < 1:
        raise ValueError(f"fixation_count and samples must be >= 1, got {fixation_count}, {samples}")
    sampler = FixationSampler(p)
    fsets = _draw_sets(maps, sampler, fixation_count, samples, seed)
    blocks = _row_blocks(maps.shape, samples, block_bytes)
    if len(blocks) == 1:
        out, objective, hi = _optimum_one_block(maps, fsets, samples)
    else:
        out, objective, hi = _optimum_blocks(maps, fsets, samples, blocks)
    out /= out.sum()
    k = samples - hi  # descending rank of the upper order statistic
    info = {"fixation_count": fixation_count, "samples": samples, "seed": int(seed), "rank": int(k),
            "slope": k / samples, "sampled_sim": objective / samples}
    if anchor is None:
        return out, info
    a = np.asarray(anchor, dtype=np.float64)
    if a.shape != maps.shape or not np.isfinite(a).all() or a.min() < 0 or not a.sum() > 0:
        raise ValueError(f"anchor must be a non-negative finite map of shape {maps.shape} with positive sum")
    a = a / a.sum()
    weights = [float(w) for w in mix_weights]
    n_val = samples if validation_samples is None else int(validation_samples)
    scores = validation_scores([(1.0 - w) * a + w * out for w in weights], maps,
                               _draw_sets(maps, sampler, fixation_count, n_val, seed, stream=1), block_bytes)
    best = max(range(len(weights)), key=lambda j: (np.round(scores[j] / SCORE_RESOLUTION), weights[j]))
    info.update(validation_samples=n_val, validation_sim={str(w): float(v) for w, v in zip(weights, scores)},
                mix_weight=weights[best], optimum=out)
    return (1.0 - weights[best]) * a + weights[best] * out, info


def validation_scores(candidates, maps: SeparableEmpiricalMaps, fsets, block_bytes: int = DEFAULT_BLOCK_BYTES):
    """Mean SIM of each candidate (a distribution on the grid) over the normalised maps of ``fsets``."""
    scores = np.zeros(len(candidates))
    if not fsets:
        return scores
    per = max(1, int(block_bytes) // (8 * maps.shape[0] * maps.shape[1]))  # maps per batch
    for b in range(0, len(fsets), per):
        g = maps.normalised(fsets[b:b + per])
        for j, c in enumerate(candidates):
            scores[j] += np.minimum(c[None], g).sum()
    return scores / len(fsets)


def _as_distribution(s: np.ndarray, normalisation: str) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    lo, hi = float(s.min()), float(s.max())
    if hi - lo <= 1e-12 * max(abs(hi), abs(lo), np.finfo(np.float64).tiny):
        return np.full(s.shape, 1.0 / s.size)  # salbench's constant-map rule: the uniform distribution
    shift = lo if (normalisation == "minmax" or lo < 0.0) else 0.0
    d = s - shift
    return d / d.sum()


def expected_sim(saliency, density, maps: SeparableEmpiricalMaps, *, fixation_count: int, samples: int,
                 seed: int) -> tuple[float, float]:
    """Monte-Carlo estimate of the expected SIM of ``saliency`` under ``density``: ``(mean, standard error)``.

    SIM is computed as ``maps.normalisation`` says on both sides (``"minmax"``: salbench's and
    MIT's ``sim``), against ``samples`` empirical maps of ``fixation_count`` fixations drawn
    with ``seed``, on the maps' grid (the saliency map must have the grid's shape). Use a seed
    other than the optimiser's to measure out of sample.
    """
    p = np.asarray(density, dtype=np.float64)
    s = _as_distribution(saliency, maps.normalisation)
    values = np.empty(int(samples))
    sampler = FixationSampler(p)
    for m, fset in enumerate(_draw_sets(maps, sampler, fixation_count, samples, seed)):
        values[m] = np.minimum(s, maps.normalised([fset])[0]).sum()
    se = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")
    return float(values.mean()), se
