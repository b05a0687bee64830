"""Evaluate deterministic metrics over a stack of images in one parallel call.

Each batch kernel runs the single-image kernel under ``prange``: one image per
task, one output slot per image, so no reduction is shared between threads.
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


@njit(parallel=True)
def _batch_cc(s, g):
    out = np.empty(s.shape[0])
    for i in prange(s.shape[0]):
        out[i] = _cc_kernel(s[i], g[i])
    return out


@njit(parallel=True)
def _batch_kld(s, g):
    out = np.empty(s.shape[0])
    for i in prange(s.shape[0]):
        out[i] = _kld_kernel(s[i], g[i])
    return out


@njit(parallel=True)
def _batch_sim(s, g):
    out = np.empty(s.shape[0])
    for i in prange(s.shape[0]):
        out[i] = _sim_kernel(s[i], g[i])
    return out


@njit(parallel=True)
def _batch_nss(s, f):
    out = np.empty(s.shape[0])
    for i in prange(s.shape[0]):
        out[i] = _nss_kernel(s[i], f[i])
    return out


@njit(parallel=True)
def _batch_auc_judd(s, f):
    out = np.empty(s.shape[0])
    for i in prange(s.shape[0]):
        out[i] = _auc_judd_kernel(s[i], f[i])
    return out


@njit(parallel=True)
def _batch_auc_exact(s, f):
    out = np.empty(s.shape[0])
    for i in prange(s.shape[0]):
        out[i] = _auc_exact_kernel(s[i], f[i])
    return out


@njit(parallel=True)
def _batch_auc_shuffled_exact(s, f, other):
    out = np.empty(s.shape[0])
    shared = other.shape[0] == 1
    for i in prange(s.shape[0]):
        out[i] = _auc_shuffled_exact_kernel(s[i], f[i], other[0] if shared else other[i])
    return out


@njit(parallel=True)
def _batch_info_gain(s, f, base):
    out = np.empty(s.shape[0])
    shared = base.shape[0] == 1
    for i in prange(s.shape[0]):
        out[i] = _info_gain_kernel(s[i], f[i], base[0] if shared else base[i])
    return out


_KERNELS = {
    "cc": _batch_cc,
    "nss": _batch_nss,
    "auc_judd": _batch_auc_judd,
    "auc_exact": _batch_auc_exact,
    "auc_shuffled_exact": _batch_auc_shuffled_exact,
    "kld": _batch_kld,
    "sim": _batch_sim,
    "info_gain": _batch_info_gain,
}


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
    unknown = [m for m in metrics if m not in _KERNELS]
    if unknown:
        raise ValueError(f"evaluate_batch does not offer {unknown}; choose from {sorted(_KERNELS)}")
    given = {"fixations": fixations, "density": density, "other": other, "baseline": baseline}
    for m in metrics:
        for need in BATCH_METRICS[m]:
            if given[need] is None:
                raise ValueError(f"metric {m!r} needs {need}=...")
    s = as_float_stack(saliency, "saliency")
    n = s.shape[0]
    flat_s = s.reshape(n, -1)
    prepared = {}
    if fixations is not None and any("fixations" in BATCH_METRICS[m] for m in metrics):
        prepared["fixations"] = _stack_of(as_fixation_stack(fixations, s.shape, "fixations"), n, "fixations", False)
    if density is not None and any("density" in BATCH_METRICS[m] for m in metrics):
        g = as_float_stack(density, "density")
        _check_maps(g, s, "density")
        prepared["density"] = _stack_of(g, n, "density", False)
    if other is not None and "auc_shuffled_exact" in metrics:
        prepared["other"] = _stack_of(as_fixation_stack(other, s.shape, "other"), n, "other", True)
    if baseline is not None and "info_gain" in metrics:
        b = as_float_stack(baseline, "baseline")
        _check_maps(b, s, "baseline")
        prepared["baseline"] = _stack_of(b, n, "baseline", True)
    return {m: _KERNELS[m](flat_s, *(prepared[k] for k in BATCH_METRICS[m])) for m in metrics}


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
