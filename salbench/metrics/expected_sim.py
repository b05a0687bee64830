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

Memory: the ``M`` values of each pixel are needed together, so the image is processed in
row blocks of at most ``block_bytes`` (the empirical maps are recomputed per block from
their fixations, a few small matrix products); memory does not grow with the image.

The empirical maps are described by :class:`SeparableEmpiricalMaps`: fixations -> a
fixation map (each fixated pixel once, or counts) -> a separable linear filter given by
its two 1-D matrices (any Gaussian, MIT's antonioGaussian, ...) -> optional clipping of
negatives -> the SIM normalisation (MIT's min-max then sum, or pysaliency's sum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SeparableEmpiricalMaps", "maximize_expected_sim", "expected_sim", "sample_fixations",
           "DEFAULT_BLOCK_BYTES", "MIX_WEIGHTS"]

DEFAULT_BLOCK_BYTES = 48 * 2**20  # values of one row block: M x rows x W float64
MIX_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True, eq=False)
class SeparableEmpiricalMaps:
    """How a protocol turns a set of fixations into the ground truth that SIM compares with.

    Parameters
    ----------
    ky : ndarray (H, H)
        Vertical filter: column ``j`` is the response to a unit at row ``j``.
    kx : ndarray (W, W)
        Horizontal filter, likewise.
    binary : bool
        True: each fixated pixel counts once (MIT's binary fixation map); False: duplicate
        fixations add up (pysaliency).
    clip_negative : bool
        Clip the filtered map at 0 (MIT's ``max(antonioGaussian(F), 0)``).
    normalisation : {"minmax", "sum"}
        How SIM turns a map into a distribution: ``"minmax"`` subtracts the minimum then divides
        by the sum (MIT ``similarity.m``, :func:`salbench.metrics.sim`); ``"sum"`` divides by the
        sum after shifting a negative minimum to 0 (pysaliency ``SIM``).
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
            if k.ndim != 2 or k.shape[0] != k.shape[1]:
                raise ValueError(f"{name} must be a square matrix, got shape {k.shape}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.ky.shape[0], self.kx.shape[0]

    def fixation_set(self, flat_indices: np.ndarray):
        """``(rows, cols, weights)`` of the fixation map of sampled flat pixel indices."""
        if self.binary:
            idx = np.unique(flat_indices)
            w = np.ones(idx.size)
        else:
            idx, counts = np.unique(flat_indices, return_counts=True)
            w = counts.astype(np.float64)
        rows, cols = np.divmod(idx, self.shape[1])
        return rows, cols, w

    def rows_of(self, fset, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of the filtered (not yet normalised) map of one fixation set."""
        rows, cols, w = fset
        out = (self.ky[r0:r1, rows] * w) @ self.kx[:, cols].T
        if self.clip_negative:
            np.maximum(out, 0.0, out=out)
        return out

    def offsets(self, fset) -> tuple[float, float]:
        """``(shift, total)``: the normalised map is ``(G - shift) / total`` (total 0: uniform)."""
        g = self.rows_of(fset, 0, self.shape[0])
        lo = float(g.min())
        shift = lo if (self.normalisation == "minmax" or lo < 0.0) else 0.0
        total = float((g - shift).sum())
        return shift, total if total > 0.0 else 0.0


def sample_fixations(density: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` flat pixel indices drawn with replacement from ``density`` (inverse CDF)."""
    cdf = np.cumsum(np.asarray(density, dtype=np.float64).ravel())
    if not cdf[-1] > 0:
        raise ValueError("density has no mass to sample fixations from")
    idx = np.searchsorted(cdf, rng.random(count) * cdf[-1], side="right")
    return np.minimum(idx, cdf.size - 1)


def _normalised_block(maps, fsets, offsets, r0, r1, out):
    n_pix = maps.shape[0] * maps.shape[1]
    for m, (fset, (shift, total)) in enumerate(zip(fsets, offsets)):
        if total == 0.0:
            out[m] = 1.0 / n_pix  # a constant empirical map is the uniform distribution
        else:
            out[m] = (maps.rows_of(fset, r0, r1) - shift) / total
    return out


def _row_blocks(shape, n_samples, block_bytes):
    h, w = shape
    rows = max(1, int(block_bytes) // (8 * n_samples * w))
    return [(r0, min(h, r0 + rows)) for r0 in range(0, h, rows)]


def _draw_sets(maps, density, fixation_count, samples, seed, stream=0):
    rng = np.random.default_rng([int(seed), stream])  # stream 0: the objective; 1: validation
    return [maps.fixation_set(sample_fixations(density, fixation_count, rng)) for _ in range(samples)]


def _normalised(maps, fset):
    shift, total = maps.offsets(fset)
    if total == 0.0:
        return np.full(maps.shape, 1.0 / (maps.shape[0] * maps.shape[1]))
    return (maps.rows_of(fset, 0, maps.shape[0]) - shift) / total


def maximize_expected_sim(density, maps: SeparableEmpiricalMaps, *, fixation_count: int, samples: int,
                          seed: int, anchor=None, validation_samples: int | None = None,
                          mix_weights=MIX_WEIGHTS, block_bytes: int = DEFAULT_BLOCK_BYTES) -> tuple[np.ndarray, dict]:
    """The saliency map with the highest mean SIM over ``samples`` empirical maps drawn from ``density``.

    Parameters
    ----------
    density : ndarray (H, W)
        Fixation density (non-negative; normalised here).
    maps : SeparableEmpiricalMaps
        How fixations become the protocol's ground truth, and how SIM normalises it.
    fixation_count : int
        Fixations drawn (with replacement) per empirical map.
    samples : int
        Empirical maps ``M`` in the objective.
    seed : int
        Seed of the draws (``numpy.random.default_rng([seed, 0])``; validation ``[seed, 1]``).
    anchor : ndarray (H, W), optional
        A map to mix with the optimum, chosen on validation draws (see the module notes);
        None: the optimum of the sampled objective itself.
    validation_samples : int, optional
        Validation empirical maps (default ``samples``).
    mix_weights : sequence of float
        Candidate weights ``a`` of the optimum in the mix.
    block_bytes : int
        Bound on the memory of one row block (values only, float64).

    Returns
    -------
    saliency : ndarray (H, W) float64
        Non-negative, sums to 1: the exact maximiser of the sampled objective.
    info : dict
        ``fixation_count``, ``samples``, ``seed``, ``rank`` (``k``: the map lies between the
        ``k``-th and ``(k+1)``-th largest sample values of each pixel), ``slope`` (``k / M``, the
        common marginal gain) and ``sampled_sim`` (the objective's value at the optimum); with an
        anchor also ``validation_samples``, ``validation_sim`` (mean SIM per weight) and
        ``mix_weight`` (the weight chosen).
    """
    p = np.asarray(density, dtype=np.float64)
    if p.shape != maps.shape:
        raise ValueError(f"density has shape {p.shape} but the empirical maps are {maps.shape}")
    fixation_count, samples = int(fixation_count), int(samples)
    if fixation_count < 1 or samples < 1:
        raise ValueError(f"fixation_count and samples must be >= 1, got {fixation_count}, {samples}")
    fsets = _draw_sets(maps, p, fixation_count, samples, seed)
    offsets = [maps.offsets(f) for f in fsets]
    blocks = _row_blocks(p.shape, samples, block_bytes)
    w = p.shape[1]
    # pass 1: sum over pixels of each order statistic (ascending: column j = (j+1)-th smallest)
    sums = np.zeros(samples)
    buf = np.empty((samples, blocks[0][1] - blocks[0][0], w))
    for r0, r1 in blocks:
        v = _normalised_block(maps, fsets, offsets, r0, r1, buf[:, : r1 - r0])
        v.sort(axis=0)
        sums += v.sum(axis=(1, 2))
    # the smallest j whose order statistic sums to >= 1; the map lies between j-1 and j
    hi = int(np.searchsorted(sums, 1.0, side="left"))
    hi = min(hi, samples - 1)
    lo = hi - 1
    s_lo = sums[lo] if lo >= 0 else 0.0
    s_hi = sums[hi]
    t = (1.0 - s_lo) / (s_hi - s_lo) if s_hi > s_lo else 1.0
    t = min(max(t, 0.0), 1.0)
    # pass 2: the map, and the objective at it (per pixel the multiset of samples is what counts)
    out = np.empty(p.shape)
    objective = 0.0
    for r0, r1 in blocks:
        v = _normalised_block(maps, fsets, offsets, r0, r1, buf[:, : r1 - r0])
        kth = [hi] if lo < 0 else [lo, hi]
        v.partition(kth, axis=0)
        base = v[lo] if lo >= 0 else 0.0
        s = base + t * (v[hi] - base)
        out[r0:r1] = s
        objective += float(np.minimum(v, s[None]).sum())
    total = out.sum()
    out /= total
    k = samples - hi  # descending rank of the upper order statistic
    info = {"fixation_count": fixation_count, "samples": samples, "seed": int(seed), "rank": int(k),
            "slope": k / samples, "sampled_sim": objective / samples}
    if anchor is None:
        return out, info
    a = np.asarray(anchor, dtype=np.float64)
    if a.shape != p.shape or not np.isfinite(a).all() or a.min() < 0 or not a.sum() > 0:
        raise ValueError(f"anchor must be a non-negative finite map of shape {p.shape} with positive sum")
    a = a / a.sum()
    weights = [float(w) for w in mix_weights]
    candidates = [(1.0 - w) * a + w * out for w in weights]
    n_val = samples if validation_samples is None else int(validation_samples)
    scores = np.zeros(len(weights))
    for fset in _draw_sets(maps, p, fixation_count, n_val, seed, stream=1):
        g = _normalised(maps, fset)
        scores += [np.minimum(c, g).sum() for c in candidates]
    scores /= max(n_val, 1)
    best = max(range(len(weights)), key=lambda j: (scores[j], weights[j]))
    info.update(validation_samples=n_val, validation_sim={str(w): float(v) for w, v in zip(weights, scores)},
                mix_weight=weights[best])
    return candidates[best], info


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
    with ``seed``. Use a seed other than the optimiser's to measure out of sample.
    """
    p = np.asarray(density, dtype=np.float64)
    s = _as_distribution(saliency, maps.normalisation)
    values = np.empty(int(samples))
    for m, fset in enumerate(_draw_sets(maps, p, fixation_count, samples, seed)):
        values[m] = np.minimum(s, _normalised(maps, fset)).sum()
    se = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")
    return float(values.mean()), se
