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


def test_nss_points_takes_a_points_array():
    pts = np.array([[1, 2], [4, 5], [1, 2]])
    assert M.nss_points(S, pts) == M.nss_points(S, pts[:, 0], pts[:, 1])
    assert math.isnan(M.nss_points(S, np.zeros((0, 2), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"shape \(K, 2\)"):
        M.nss_points(S, np.array([1, 2, 3]))


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


# ----------------------------------------------------------------------------- degenerate inputs
# One rule for every metric (docs/metrics.md, salbench.metrics.degenerate): a constant map scores
# the registry's constant_map (a number, or "uniform": the uniform distribution's score); an image
# without fixations scores NaN; a density without mass gives NaN.
def _gt(shape, rng, with_fixations=True):
    from salbench.protocols.ground_truth import mit_fixation_density

    f = rng.random(shape) < 0.08 if with_fixations else np.zeros(shape, dtype=bool)
    if with_fixations:
        f[1, 1] = f[2, 5] = True
    other = rng.random(shape) < 0.2
    return {"fixations": f, "density": mit_fixation_density(f, 2.0), "points": np.argwhere(f),
            "other": other, "other_weights": other.astype(np.int64) * 2, "baseline": rng.random(shape) + 0.1}


def _call(m, s, inputs, **kw):
    if m.sampled:
        kw.setdefault("seed", 0)
    if m.name == "auc_salicon":
        kw.setdefault("n_random", 500)
    return m.func(s, *(inputs[n] for n in m.needs), **kw)


def _constant_maps(shape):
    from salbench.protocols._resize import matlab_bicubic

    resized = matlab_bicubic(np.full((6, 8), 0.7), shape)  # a bicubic resize spreads 0.7 over a few ulps
    assert resized.max() != resized.min() and M.is_constant_map(resized)
    return {"zeros": np.zeros(shape), "0.7": np.full(shape, 0.7), "negative": np.full(shape, -3.0),
            "resized 0.7": resized}


@pytest.mark.parametrize("name", list(M.METRICS))
def test_constant_map_scores_the_documented_value(name):
    m = M.METRICS[name]
    shape = (30, 40)
    inputs = _gt(shape, np.random.default_rng(0))
    if m.constant_map == M.UNIFORM:
        expected = _call(m, np.ones(shape), inputs)  # the uniform distribution's score
        assert math.isfinite(expected)
    else:
        assert isinstance(m.constant_map, float)
        expected = m.constant_map
    for label, c in _constant_maps(shape).items():
        assert _call(m, c, inputs) == expected, (name, label)


def test_constant_map_answers_that_depend_on_options():
    shape = (30, 40)
    inputs = _gt(shape, np.random.default_rng(1))
    c = _constant_maps(shape)["resized 0.7"]
    f, o = inputs["fixations"], inputs["other"]
    assert M.auc_judd(c, f, jitter=True, seed=3) == 0.5  # the expectation over MIT's jitter, exactly
    for method in ("binned", "pixels"):
        for endpoint in (True, False):
            assert M.auc_borji(c, f, seed=1, method=method, include_endpoint=endpoint) == 0.5
            assert M.auc_shuffled(c, f, o, seed=1, method=method, include_endpoint=endpoint) == 0.5
    assert M.auc_borji_expected(c, f, include_endpoint=False) == 0.5
    g = inputs["density"]
    batch = M.evaluate_batch(np.stack([c, c]), fixations=np.stack([f, f]), density=np.stack([g, g]),
                             metrics=("cc", "nss", "auc_judd", "auc_exact"))
    assert {k: v.tolist() for k, v in batch.items()} == {"cc": [0.0, 0.0], "nss": [0.0, 0.0],
                                                          "auc_judd": [0.5, 0.5], "auc_exact": [0.5, 0.5]}
    assert M.emd(c, inputs["density"], downsample=8) == M.emd(np.ones(shape), inputs["density"], downsample=8)


def test_near_constant_is_not_constant_beyond_the_tolerance():
    s = np.full((6, 8), 0.7)
    s[0, 0] += 1e-9  # a real (if tiny) signal: scored
    assert not M.is_constant_map(s)
    assert M.auc_judd(s, s > 0.7) == 1.0


@pytest.mark.parametrize("name", list(M.METRICS))
def test_image_without_fixations_is_nan_everywhere(name):
    m = M.METRICS[name]
    rng = np.random.default_rng(2)
    inputs = _gt((30, 40), rng, with_fixations=False)
    assert math.isnan(_call(m, rng.random((30, 40)), inputs)), name
    assert math.isnan(_call(m, np.full((30, 40), 0.7), inputs)), name  # NaN wins over "constant"


def test_density_without_mass_and_constant_density():
    s = S
    for zero in (np.zeros((6, 8)), np.full((6, 8), -1.0)):
        for fn in (M.cc, M.sim, M.kld):
            assert math.isnan(fn(s, zero)), fn.__name__
        assert math.isnan(M.emd(s, zero, downsample=1))
    assert math.isnan(M.sim(np.ones((6, 8)), np.zeros((6, 8))))  # was 1.0: SIM scored images without fixations
    two = np.full((6, 8), 2.0)  # constant positive: CC undefined, the distribution metrics see a uniform density
    assert math.isnan(M.cc(s, two))
    uniform = np.full((6, 8), 1 / 48)
    assert M.sim(s, two) == pytest.approx(np.minimum((s - s.min()) / (s - s.min()).sum(), uniform).sum())
    assert M.kld(s, two) == M.kld(s, np.ones((6, 8)))
    assert M.emd(s, two, downsample=1) == M.emd(s, np.ones((6, 8)), downsample=1)
