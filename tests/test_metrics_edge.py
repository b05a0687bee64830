"""Documented edge-case answers, input validation and metadata of salbench.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

import salbench.metrics as M

RNG = np.random.default_rng(0)
S = RNG.random((6, 8))
G = RNG.random((6, 8))
F = np.zeros((6, 8), dtype=bool)
F[1, 2] = F[4, 5] = F[0, 0] = True
O = RNG.random((6, 8)) < 0.3

# metric -> call with valid inputs, built from the arguments given
CALLS = {
    "cc": lambda s, g, f, o: M.cc(s, g),
    "nss": lambda s, g, f, o: M.nss(s, f),
    "auc_judd": lambda s, g, f, o: M.auc_judd(s, f),
    "auc_exact": lambda s, g, f, o: M.auc_exact(s, f),
    "auc_shuffled_exact": lambda s, g, f, o: M.auc_shuffled_exact(s, f, o),
    "kld": lambda s, g, f, o: M.kld(s, g),
    "sim": lambda s, g, f, o: M.sim(s, g),
    "info_gain": lambda s, g, f, o: M.info_gain(s, f, g),
}


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64, np.bool_])
def test_dtypes_are_accepted(name, dtype):
    s = (S * 200).astype(dtype) if dtype == np.uint8 else (S > 0.5 if dtype == np.bool_ else S.astype(dtype))
    value = CALLS[name](s, G, F.astype(np.uint8), O)
    assert isinstance(value, float) and math.isfinite(value)


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_saliency_is_rejected(name, bad):
    s = S.copy()
    s[2, 3] = bad
    with pytest.raises(ValueError, match="saliency contains NaN or inf"):
        CALLS[name](s, G, F, O)


@pytest.mark.parametrize("name", ["cc", "kld", "sim"])
def test_non_finite_density_is_rejected(name):
    g = G.copy()
    g[0, 0] = np.nan
    with pytest.raises(ValueError, match="density contains NaN or inf"):
        CALLS[name](S, g, F, O)


@pytest.mark.parametrize("name", CALLS)
def test_shape_mismatch_names_both_shapes(name):
    small = np.ones((5, 8))
    with pytest.raises(ValueError, match=r"\(6, 8\).*\(5, 8\)"):
        CALLS[name](S, small, small, small)


@pytest.mark.parametrize("bad", [np.ones(5), np.ones((2, 3, 4)), np.ones((0, 3)), np.array([["a", "b"]])])
def test_bad_saliency_arrays_are_rejected(bad):
    with pytest.raises(ValueError, match="saliency"):
        M.cc(bad, bad)


def test_constant_saliency_answers():
    c = np.full((6, 8), 0.3)
    assert M.cc(c, G) == 0.0
    assert M.nss(c, F) == 0.0
    assert M.nss_points(c, [1, 2], [3, 4]) == 0.0
    assert M.auc_judd(c, F) == 0.5
    assert M.auc_exact(c, F) == 0.5
    assert M.auc_shuffled_exact(c, F, O) == 0.5
    # a constant map is the uniform distribution
    uniform = np.full((6, 8), 1 / 48)
    assert M.sim(c, G) == pytest.approx(np.minimum(uniform, (G - G.min()) / (G - G.min()).sum()).sum())
    assert M.kld(c, c) == pytest.approx(0.0, abs=1e-12)
    assert M.info_gain(c, F, np.ones((6, 8))) == pytest.approx(0.0, abs=1e-12)


def test_degenerate_ground_truth_is_nan():
    none = np.zeros((6, 8), dtype=bool)
    assert math.isnan(M.cc(S, np.full((6, 8), 2.0)))
    assert math.isnan(M.kld(S, np.zeros((6, 8))))
    for value in (M.nss(S, none), M.auc_judd(S, none), M.auc_exact(S, none), M.info_gain(S, none, G),
                  M.auc_shuffled_exact(S, none, O), M.auc_shuffled_exact(S, F, none), M.nss_points(S, [], [])):
        assert math.isnan(value)
    # every pixel fixated: AUC-Judd has no negatives
    assert math.isnan(M.auc_judd(S, np.ones((6, 8))))


def test_single_fixation_is_scored():
    one = np.zeros((6, 8), dtype=bool)
    one[np.unravel_index(np.argmax(S), S.shape)] = True
    assert M.auc_judd(S, one) == 1.0
    assert M.auc_exact(S, one) == pytest.approx(1 - 0.5 / 48)  # ties with itself count half


def test_kld_negative_and_zero_maps_follow_pysaliency():
    # a negative map is shifted to minimum 0; an all-zero prediction is uniform
    assert M.kld(S - 5.0, G) == pytest.approx(M.kld(S - S.min(), G))
    assert M.kld(np.zeros((6, 8)), G) == pytest.approx(M.kld(np.ones((6, 8)), G))


def test_auc_judd_jitter_is_seeded_and_default_is_deterministic():
    ties = np.round(S * 3)
    assert M.auc_judd(ties, F) == M.auc_judd(ties, F)
    a = M.auc_judd(ties, F, jitter=True, seed=7)
    assert a == M.auc_judd(ties, F, jitter=True, seed=7)
    assert any(M.auc_judd(ties, F, jitter=True, seed=k) != a for k in range(8))


def test_nss_points_validation():
    with pytest.raises(ValueError, match="outside the 6x8 map"):
        M.nss_points(S, [6], [0])
    with pytest.raises(ValueError, match="outside"):
        M.nss_points(S, [-1], [0])
    with pytest.raises(ValueError, match="equal length"):
        M.nss_points(S, [1, 2], [0])
    with pytest.raises(ValueError, match="integers"):
        M.nss_points(S, [1.5], [0.0])


def test_nss_points_counts_duplicates():
    once = M.nss_points(S, [1, 4], [2, 5])
    twice = M.nss_points(S, [1, 1, 4], [2, 2, 5])
    z = (S - S.mean()) / S.std()
    assert once == pytest.approx((z[1, 2] + z[4, 5]) / 2)
    assert twice == pytest.approx((2 * z[1, 2] + z[4, 5]) / 3)


def test_evaluate_batch_validation():
    s = np.stack([S, S])
    with pytest.raises(ValueError, match="does not offer"):
        M.evaluate_batch(s, fixations=np.stack([F, F]), metrics=("auc_borji",))
    with pytest.raises(ValueError, match="needs density"):
        M.evaluate_batch(s, fixations=np.stack([F, F]), metrics=("cc",))
    with pytest.raises(ValueError, match="fixations has 3 maps but saliency has 2"):
        M.evaluate_batch(s, fixations=np.stack([F, F, F]), metrics=("nss",))
    with pytest.raises(ValueError, match=r"saliency\[1\] contains NaN"):
        M.evaluate_batch(np.stack([S, S * np.nan]), fixations=np.stack([F, F]), metrics=("nss",))
    with pytest.raises(ValueError, match=r"\(2, 6, 8\).*\(2, 5, 8\)"):
        M.evaluate_batch(s, density=np.ones((2, 5, 8)), metrics=("cc",))
