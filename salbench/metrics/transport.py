"""Earth mover's distance (EMD), the MIT saliency benchmark's eighth metric (``EMD.m``).

MIT's current ``EMD.m`` (cvzoya/saliency, ``code_forMetrics``; its histogram matching
step, ``histMatchMaps``, was removed in 2014, commit 53440b3 "removed histogram matching"):

1. downsamples the ground truth with ``imresize(G, 1/32)`` and the saliency map
   to the same size with ``imresize(s, size(im1))``: MATLAB's bicubic resize,
   which antialiases when shrinking (the cubic kernel is widened by the factor),
   reproduced by :func:`matlab_resize_matrix`;
2. divides each by its sum (a signed sum: the antialiased shrink leaves small
   negative cells, e.g. -6e-6 in 45 of 300 cells of an OSIE density);
3. calls FastEMD's ``emd_hat_gd_metric_mex`` (Pele & Werman) with the Euclidean
   distance between cell centres as ground distance and extra mass penalty 0.

Two variants (``variant=``):

``"mit"``
    ``EMD.m``'s numbers, step by step. ``emd_hat_gd_metric`` first lets each cell's
    common mass stay at zero cost (``P - min(P, Q)``, ``Q - min(P, Q)``, in
    floating point): a negative cell of one map thereby becomes mass of the other
    map. It then computes on integers: masses times ``1e6 / max(sum P, sum Q)``
    (sums of the original vectors, in MATLAB's column-major order) and distances
    times ``1e6 / max distance``, each rounded with ``floor(x + 0.5)``; a surplus of
    one side after rounding is dropped at zero cost (extra mass penalty 0); the
    integer minimum cost is divided back by both factors. salbench applies the
    same steps and solves the same integer problem exactly (POT's network simplex
    is exact on integer data below 2**53), so the result equals FastEMD's:
    MIT's values on the 10 OSIE reference cases (``../shared/refs/osie_mit_emd.json``)
    are reproduced to about 1e-15 relative.
``"exact"``
    Exact optimal transport between the two downsampled maps with negative cells
    clipped to 0, each normalised to sum 1 (no integer rounding). Differs from
    ``"mit"`` by up to ~1.2e-3 relative on OSIE (mostly the clipped cells).

Both variants first shift a map with negative values so its minimum is 0 (as
:func:`~salbench.metrics.kld`; ``EMD.m`` divides by a signed sum that can then be 0).
Both solve the transport problem on the cells where one distribution exceeds the
other (the common mass of a cell costs nothing under a metric ground distance):
about a quarter of the full problem's variables, the same optimum.

Degenerate inputs: a constant saliency map is the uniform distribution; a
density without mass (constant <= 0, e.g. all zero: an image without
fixations) gives NaN; a map whose downsampled sum is <= 0 is uniform; a single
cell gives 0.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from salbench.metrics._imresize import matlab_resize_matrix, resize
from salbench.metrics._kernels import is_constant_range
from salbench.metrics._pot import pot
from salbench.metrics._validate import as_float_map, check_same_shape
from salbench.metrics.degenerate import is_constant_map

__all__ = ["EMD_VARIANTS", "emd", "matlab_resize_matrix"]

MIT_DOWNSAMPLE = 32  # EMD.m: imresize(fixationMap, 1/32)
EMD_VARIANTS = ("exact", "mit")
FASTEMD_MULT = 1_000_000.0  # FastEMD's MULT_FACTOR for double input (emd_hat_impl<double>)
_MAX_ITER = 10_000_000  # network simplex iterations; the default 1e5 is short for ~1000+ cells
# Power-of-two rescaling (exact) keeps resize and sums away from overflow/underflow.
_BIG, _SMALL = 2.0**900, 2.0**-900


@functools.lru_cache(maxsize=8)
def _ground_distance(rows: int, cols: int) -> np.ndarray:
    """Euclidean distance between the centres of cells of a ``rows x cols`` grid (row-major)."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    d = np.sqrt((r[:, None] - r[None, :]) ** 2.0 + (c[:, None] - c[None, :]) ** 2.0)
    d.flags.writeable = False
    return d


def _nonnegative(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``a`` rescaled by a power of two where its magnitude is extreme, minimum shifted to 0 if < 0.

    The power-of-two factor is exact in floating point, so it changes no result bit
    (every later step is normalised); it only keeps sums finite.
    """
    big = max(abs(lo), abs(hi))
    if big > _BIG or big < _SMALL:
        k = -math.frexp(big)[1]
        a, lo = np.ldexp(a, k), math.ldexp(lo, k)
    return a - lo if lo < 0 else a


def _downsampled(a: np.ndarray, out_shape, scales) -> np.ndarray | None:
    """``a`` made non-negative and resized to ``out_shape`` (signed cells); None for a constant map."""
    lo, hi = float(a.min()), float(a.max())
    if is_constant_range(lo, hi):  # is_constant_map's rule on the extremes already at hand
        return None
    return resize(_nonnegative(a, lo, hi), out_shape, scales)


def _uniform(shape) -> np.ndarray:
    return np.full(shape, 1.0 / (shape[0] * shape[1]))


def _clipped_distribution(cells: np.ndarray | None, shape) -> np.ndarray:
    """The exact variant's distribution: negative cells clipped, sum 1 (uniform without mass)."""
    if cells is None:
        return _uniform(shape)
    d = np.maximum(cells, 0.0)
    total = d.sum()
    return d / total if total > 0 else _uniform(shape)


def _column_major_sum(a: np.ndarray) -> float:
    """``sum(a(:))`` as MATLAB and FastEMD accumulate it: sequentially, column by column."""
    return float(np.cumsum(a.T.ravel())[-1])


def _signed_distribution(cells: np.ndarray | None, shape) -> np.ndarray:
    """``EMD.m``'s ``im / sum(im(:))`` (signed cells kept; uniform when the sum is <= 0)."""
    if cells is None:
        return _uniform(shape)
    total = _column_major_sum(cells)
    return cells / total if total > 0 else _uniform(shape)


def _solve(supply: np.ndarray, demand: np.ndarray, cost: np.ndarray) -> float:
    """Minimal transport cost, POT's network simplex (exact; releases the GIL while it works)."""
    value, log = pot().emd2(supply, demand, cost, numItermax=_MAX_ITER, log=True)
    if log["result_code"] != 1:
        raise RuntimeError(f"EMD: the transport solver did not converge ({log['warning']})")
    return float(value)


def _exact_cost(p: np.ndarray, q: np.ndarray, dist: np.ndarray) -> float:
    """Optimal transport cost between distributions ``p`` and ``q`` (flat, same total).

    Under a metric ground distance an optimal plan leaves each cell's common mass
    ``min(p, q)`` in place, so only the excess of ``p`` over ``q`` (sources) moves
    to the cells where ``q`` exceeds ``p`` (sinks).
    """
    diff = p - q
    src, dst = diff > 0, diff < 0
    if not src.any() or not dst.any():
        return 0.0
    return _solve(diff[src], -diff[dst], dist[np.ix_(src, dst)])


def _fastemd_cost(p: np.ndarray, q: np.ndarray, sum_p: float, sum_q: float, dist: np.ndarray) -> float:
    """FastEMD's ``emd_hat_gd_metric`` on doubles with extra mass penalty 0 (see the module notes).

    ``p``, ``q`` are flat signed vectors; ``sum_p``, ``sum_q`` their sums as FastEMD
    accumulates them. Returns the integer optimum divided back, as FastEMD does.
    """
    # Common mass stays at zero cost (in floating point, as emd_hat_gd_metric).
    less = p < q
    p_rest = np.where(less, 0.0, p - q)
    q_rest = np.where(less, q - p, 0.0)
    mass_factor = FASTEMD_MULT / max(sum_p, sum_q)
    max_dist = float(dist.max())
    if max_dist == 0.0:  # a single cell: nothing can move (FastEMD would divide by 0)
        return 0.0
    dist_factor = FASTEMD_MULT / max_dist
    ip = np.floor(p_rest * mass_factor + 0.5)
    iq = np.floor(q_rest * mass_factor + 0.5)
    src, dst = ip > 0, iq > 0
    supply, demand = ip[src], iq[dst]
    icost = np.floor(dist[np.ix_(src, dst)] * dist_factor + 0.5)
    surplus = supply.sum() - demand.sum()  # exact: integers far below 2**53
    if min(supply.sum(), demand.sum()) == 0:
        return 0.0
    # Extra mass penalty 0: the larger side's surplus goes to a dummy cell at no cost.
    if surplus > 0:
        demand = np.append(demand, surplus)
        icost = np.hstack([icost, np.zeros((icost.shape[0], 1))])
    elif surplus < 0:
        supply = np.append(supply, -surplus)
        icost = np.vstack([icost, np.zeros((1, icost.shape[1]))])
    total = _solve(supply, demand, np.ascontiguousarray(icost))
    return total / mass_factor / dist_factor


def _check_downsample(downsample) -> int:
    if isinstance(downsample, bool) or not isinstance(downsample, (int, np.integer)) or downsample < 1:
        raise ValueError(f"downsample must be a positive integer, got {downsample!r}")
    return int(downsample)


def _check_variant(variant) -> str:
    if not isinstance(variant, str) or variant not in EMD_VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(map(repr, EMD_VARIANTS))}, got {variant!r}")
    return variant


def emd(saliency, density, *, downsample=MIT_DOWNSAMPLE, variant="mit") -> float:
    """Earth mover's distance between a saliency map and the density (MIT ``EMD.m``).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted saliency map, any real dtype.
    density : array_like, shape (H, W)
        Continuous ground truth (under ``mit``: MIT's antonioGaussian density).
    downsample : int, default 32
        The density is resized by ``1 / downsample`` to ``ceil(H / downsample) x
        ceil(W / downsample)`` cells (MATLAB bicubic with antialiasing, as
        ``EMD.m``), the saliency map to the same size; 1 keeps the full
        resolution (only for small maps: the problem has (cells)^2 variables).
    variant : {"mit", "exact"}, default "mit"
        ``"mit"``: ``EMD.m`` with FastEMD, step by step (negative cells of the
        antialiased shrink kept as signed mass, FastEMD's integer rounding);
        reproduces MIT's numbers. ``"exact"``: exact optimal transport between the
        downsampled maps with negative cells clipped to 0. See
        :mod:`salbench.metrics.transport`.

    Returns
    -------
    float
        Minimal cost of moving the saliency distribution onto the density's, in
        downsampled cells (one cell = ``downsample`` pixels); lower is better, 0
        for identical distributions.

    Raises
    ------
    ValueError
        Bad maps or shapes, NaN/inf, bad ``downsample`` or ``variant``.
    RuntimeError
        The solver did not reach an optimal solution.

    Notes
    -----
    Negative values are shifted (both variants); the differences between the
    variants and from ``EMD.m`` are listed in :mod:`salbench.metrics.transport`.
    Edge cases: a constant saliency map is the uniform distribution; a density
    without mass (constant <= 0, e.g. all zero) returns NaN; a constant positive
    density is uniform; a single cell gives 0. POT's solver releases the GIL, so
    calls in several threads run in parallel.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((1, 5)); a[0, 0] = 1.0
    >>> b = np.zeros((1, 5)); b[0, 3] = 1.0
    >>> round(emd(a, b, downsample=1), 12), round(emd(a, b, downsample=1, variant="mit"), 12)
    (3.0, 3.0)
    """
    s = as_float_map(saliency, "saliency")
    g = as_float_map(density, "density")
    check_same_shape(s, g, "saliency", "density")
    k = _check_downsample(downsample)
    variant = _check_variant(variant)
    if is_constant_map(g) and g.max() <= 0:
        return float("nan")  # a density without mass
    h, w = g.shape
    scale = 1.0 / k
    out = (math.ceil(h * scale), math.ceil(w * scale))  # imresize(G, 1/k): ceil(scale * size)
    g_cells = _downsampled(g, out, (scale, scale))
    s_cells = _downsampled(s, out, (out[0] / h, out[1] / w))  # imresize(s, size(im1)): scale = out / in
    dist = _ground_distance(*out)
    if variant == "exact":
        p = _clipped_distribution(g_cells, out)
        q = _clipped_distribution(s_cells, out)
        return _exact_cost(p.ravel(), q.ravel(), dist)
    p = _signed_distribution(g_cells, out)
    q = _signed_distribution(s_cells, out)
    return _fastemd_cost(p.ravel(), q.ravel(), _column_major_sum(p), _column_major_sum(q), dist)
