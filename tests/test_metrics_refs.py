"""Deterministic metrics against values computed by the MIT MATLAB code and pysaliency.

Inputs and expected values come from ../shared/refs (see its README); the tests
skip when it is absent. Tolerances: MIT 1e-6 relative (Octave vs NumPy
summation order), pysaliency 1e-9 relative (pysaliency's KLD uses a truncated
eps, 2.2204e-16, which moves it by about 5e-10).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import u16

from salbench.metrics import (
    auc_exact,
    auc_judd,
    auc_shuffled_exact,
    cc,
    evaluate_batch,
    info_gain,
    kld,
    nss,
    nss_points,
    sim,
)

pytestmark = pytest.mark.shared_data

CASES = range(10)
KINDS = ("center", "contrast", "mix")


def _prediction(arrays, kind, i):
    key = "center_u16" if kind == "center" else f"pred_{kind}_u16_{i}"
    return u16(arrays[key])


def _check(got: dict, expected: dict, rel: float):
    compared = 0
    for name, value in got.items():
        ref = expected[name]
        if ref is None:  # the reference returned no real number: nothing to compare
            continue
        assert value == pytest.approx(ref, rel=rel, abs=1e-12), name
        compared += 1
    assert compared, "every reference value was null"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("i", CASES)
def test_mit_reference(ref_vectors, i, kind):
    arrays, expected = ref_vectors
    s = _prediction(arrays, kind, i)
    g, f = u16(arrays[f"gt_u16_{i}"]), arrays[f"fixmap_{i}"]
    got = {
        "CC": cc(s, g),
        "NSS": nss(s, f),
        "AUC_Judd": auc_judd(s, f),
        "KLdiv": kld(s, g),
        "SIM": sim(s, g),
        "InfoGain": info_gain(s, f, u16(arrays["center_u16"])),
    }
    _check(got, expected["cases"][i]["mit"][kind], rel=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("i", CASES)
def test_pysaliency_reference(ref_vectors, i, kind):
    arrays, expected = ref_vectors
    s = _prediction(arrays, kind, i)
    g, f = u16(arrays[f"gt_u16_{i}"]), arrays[f"fixmap_{i}"]
    got = {
        "CC": cc(s, g),
        "SIM": sim(s, g),
        "KLDiv": kld(s, g),
        "NSS_points": nss_points(s, arrays[f"fix_rows_{i}"], arrays[f"fix_cols_{i}"]),
        "AUC_uniform_exact_pixels": auc_exact(s, f),
        "AUC_shuffled_exact_pixels": auc_shuffled_exact(s, f, arrays[f"other_{i}"]),
    }
    _check(got, expected["cases"][i]["pysaliency"][kind], rel=1e-9)


def test_mit_jitter_stays_close_and_is_seeded(ref_vectors):
    arrays, expected = ref_vectors
    s, f = u16(arrays["pred_mix_u16_0"]), arrays["fixmap_0"]
    a = auc_judd(s, f, jitter=True, seed=3)
    assert a == auc_judd(s, f, jitter=True, seed=3)
    # jitter (<= 1e-7) only reorders ties: the score moves by far less than 1e-3
    assert a == pytest.approx(expected["cases"][0]["mit"]["mix"]["AUC_Judd"], abs=1e-3)


def test_batch_equals_single_on_reference_images(ref_vectors):
    arrays, _ = ref_vectors
    s = np.stack([arrays[f"pred_mix_u16_{i}"] for i in CASES]) / 65535.0
    f = np.stack([arrays[f"fixmap_{i}"] for i in CASES])
    g = np.stack([arrays[f"gt_u16_{i}"] for i in CASES]) / 65535.0
    other = np.stack([arrays[f"other_{i}"] for i in CASES])
    base = u16(arrays["center_u16"])
    got = evaluate_batch(
        s,
        fixations=f,
        density=g,
        other=other,
        baseline=base,
        metrics=("cc", "nss", "auc_judd", "auc_exact", "auc_shuffled_exact", "kld", "sim", "info_gain"),
    )
    for i in CASES:
        single = {
            "cc": cc(s[i], g[i]),
            "nss": nss(s[i], f[i]),
            "auc_judd": auc_judd(s[i], f[i]),
            "auc_exact": auc_exact(s[i], f[i]),
            "auc_shuffled_exact": auc_shuffled_exact(s[i], f[i], other[i]),
            "kld": kld(s[i], g[i]),
            "sim": sim(s[i], g[i]),
            "info_gain": info_gain(s[i], f[i], base),
        }
        for name, value in single.items():
            assert got[name][i] == value or (math.isnan(value) and math.isnan(got[name][i])), (name, i)


def test_salicon_server_reference(ref_vectors):
    """The SALICON server's scorers (salicon-evaluation) as registry metrics, on its own inputs.

    The server upsamples with ``zoom(order=3)``, seeds NumPy's global RNG once (4321 here) and
    draws 100,000 pixels per image in order: one RandomState passed along reproduces that
    stream exactly. Its CC is ``cc`` against the sigma-19 blur; its NSS is ``nss_points``.
    """
    from scipy.ndimage import gaussian_filter, zoom

    from salbench.metrics import auc_salicon, sauc_salicon

    arrays, expected = ref_vectors
    points = [np.stack([arrays[f"fix_rows_{i}"], arrays[f"fix_cols_{i}"]], axis=1) for i in CASES]
    shuffle = np.zeros((480, 640), dtype=np.int64)
    for p in points:
        m = np.zeros((480, 640), dtype=np.int64)
        m[p[:, 0], p[:, 1]] = 1
        shuffle += m
    rng = np.random.RandomState(4321)
    for i in CASES:
        s = zoom(arrays[f"pred48_{i}"], (480 / 48, 640 / 48), order=3)
        fixmap = np.zeros((480, 640))
        fixmap[points[i][:, 0], points[i][:, 1]] = 1.0
        ref = expected["cases"][i]["salicon"]
        assert auc_salicon(s, points[i], seed=rng) == pytest.approx(ref["AUC"], abs=1e-12)
        assert sauc_salicon(s, points[i], shuffle) == pytest.approx(ref["sAUC"], rel=1e-9)
        assert cc(s, gaussian_filter(fixmap, 19)) == pytest.approx(ref["CC"], rel=1e-9)
        assert nss_points(s, points[i]) == pytest.approx(ref["NSS"], rel=1e-9)
