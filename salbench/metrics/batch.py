"""Evaluate deterministic metrics over a stack of images in one parallel call.

One generic kernel runs the single-image kernels under ``prange``: one image per
task (all its requested metrics while its maps are in cache), one output slot
per (image, metric), so no reduction is shared between threads.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from salbench._numba import njit
from salbench.metrics._validate import as_fixation_stack, as_float_stack
from salbench.metrics.auc import _auc_exact_kernel, _auc_judd_kernel, _auc_shuffled_exact_kernel
from salbench.metrics.correlation import _cc_kernel, _nss_kernel
from salbench.metrics.distribution import _info_gain_kernel, _kld_kernel, _sim_kernel

# metric -> the extra inputs its kernel takes after the saliency stack
BATCH_METRICS = {
    "cc": ("density",),
    "nss": ("fixations",),
    "auc_judd": ("fixations",),
    "auc_exact": ("fixations",),
    "auc_shuffled_exact": ("fixations", "other"),
    "kld": ("density",),
    "sim": ("density",),
    "info_gain": ("fixations", "baseline"),
}
_CODES = {name: code for code, name in enumerate(BATCH_METRICS)}
_NONE_F = np.zeros((1, 1))  # stand-ins for inputs no requested metric reads
_NONE_B = np.zeros((1, 1), dtype=np.bool_)


@njit
def _score(code, s, g, f, o, b):
    """The single-image kernel of metric ``code`` (the order of BATCH_METRICS)."""
    if code == 0:
        return _cc_kernel(s, g)
    if code == 1:
        return _nss_kernel(s, f)
    if code == 2:
        return _auc_judd_kernel(s, f)
    if code == 3:
        return _auc_exact_kernel(s, f)
    if code == 4:
        return _auc_shuffled_exact_kernel(s, f, o)
    if code == 5:
        return _kld_kernel(s, g)
    if code == 6:
        return _sim_kernel(s, g)
    return _info_gain_kernel(s, f, b)


@njit
def _row(x, i):
    return x[0] if x.shape[0] == 1 else x[i]  # one map shared by every image


@njit(parallel=True)
def _batch(codes, s, g, f, o, b):
    """``out[i, j]`` = metric ``codes[j]`` of image ``i``; one image per task, all its metrics."""
    out = np.empty((s.shape[0], codes.size))
    for i in prange(s.shape[0]):
        for j in range(codes.size):
            out[i, j] = _score(codes[j], s[i], _row(g, i), _row(f, i), _row(o, i), _row(b, i))
    return out


def evaluate_batch(
    saliency,
    *,
    fixations=None,
    density=None,
    other=None,
    baseline=None,
    metrics=("cc", "nss", "auc_judd", "kld", "sim"),
) -> dict[str, np.ndarray]:
    """Score a stack of saliency maps with deterministic metrics, images in parallel.

    Parameters
    ----------
    saliency : array_like, shape (N, H, W)
        Predicted maps, any real dtype.
    fixations : array_like, shape (N, H, W), optional
        Fixation maps (nonzero = fixated); needed by nss, auc_*, info_gain.
    density : array_like, shape (N, H, W), optional
        Ground-truth densities; needed by cc, kld, sim.
    other : array_like, shape (N, H, W) or (H, W), optional
        Negatives of ``auc_shuffled_exact``: one map per image, or one shared map.
    baseline : array_like, shape (N, H, W) or (H, W), optional
        Baseline of ``info_gain``: one map per image, or one shared map.
    metrics : sequence of str
        Any of ``cc, nss, auc_judd, auc_exact, auc_shuffled_exact, kld, sim,
        info_gain``. Sampled AUCs are not offered here (they need a seed per image;
        use :func:`salbench.metrics.auc_borji` per image).

    Returns
    -------
    dict of str to numpy.ndarray
        ``{metric: scores}``, each of shape (N,), equal to calling the single-image
        function on each image (same kernels, same edge-case answers).

    Raises
    ------
    ValueError
        Unknown metric, a missing input a metric needs, mismatched stack shapes or
        lengths, NaN/inf.

    Notes
    -----
    Inputs are converted to float64 stacks: 100 images of 480x640 take about
    250 MB, so evaluate large datasets in chunks. ``auc_judd`` has no jitter here.
    """
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in BATCH_METRICS]
    if unknown:
        raise ValueError(f"evaluate_batch does not offer {unknown}; choose from {sorted(BATCH_METRICS)}")
    given = {"fixations": fixations, "density": density, "other": other, "baseline": baseline}
    needed = {need for m in metrics for need in BATCH_METRICS[m]}
    for m in metrics:
        for need in BATCH_METRICS[m]:
            if given[need] is None:
                raise ValueError(f"metric {m!r} needs {need}=...")
    s = as_float_stack(saliency, "saliency")
    n = s.shape[0]
    inputs = {"density": _NONE_F, "fixations": _NONE_B, "other": _NONE_B, "baseline": _NONE_F}
    for name in ("fixations", "density", "other", "baseline"):  # validation order: first error wins
        if name not in needed:
            continue
        if name in ("fixations", "other"):
            stack = as_fixation_stack(given[name], s.shape, name)
        else:
            stack = as_float_stack(given[name], name)
            _check_maps(stack, s, name)
        inputs[name] = _stack_of(stack, n, name, name in ("other", "baseline"))
    codes = np.array([_CODES[m] for m in metrics], dtype=np.int64)
    out = _batch(codes, s.reshape(n, -1), inputs["density"], inputs["fixations"], inputs["other"],
                 inputs["baseline"])
    return {m: out[:, j].copy() for j, m in enumerate(metrics)}


def _check_maps(stack: np.ndarray, s: np.ndarray, name: str) -> None:
    if stack.shape[1:] != s.shape[1:]:
        raise ValueError(f"saliency has shape {s.shape} but {name} has shape {stack.shape}")


def _stack_of(stack: np.ndarray, n: int, name: str, may_share: bool) -> np.ndarray:
    """Flatten to (M, H*W) after checking M == n (or M == 1 when one map may be shared)."""
    m = stack.shape[0]
    if m != n and not (may_share and m == 1):
        share = " or 1 shared map" if may_share else ""
        raise ValueError(f"{name} has {m} maps but saliency has {n}{share}")
    return stack.reshape(m, -1)
