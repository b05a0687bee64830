"""Metric-specific maps of a density (salbench.protocols.metric_maps, salbench.metrics.expected_sim).

References here are closed forms, slow NumPy twins and scipy; pysaliency's implementation is
compared in tests/test_metric_maps_pysaliency.py.
"""

from __future__ import annotations

import math

import naive
import numpy as np
import pytest
from conftest import REFS, _need
from hypothesis import given
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter
from scipy.optimize import linprog
from scipy.special import logsumexp

from salbench.metrics import auc_shuffled, info_gain, is_constant_map
from salbench.metrics._kernels import EPS
from salbench.metrics.expected_sim import (SeparableEmpiricalMaps, expected_sim, maximize_expected_sim,
                                           sample_fixations)
from salbench.protocols import get_protocol
from salbench.protocols import metric_maps as mm
from salbench.protocols.ground_truth import center_gaussian
from salbench.protocols.ground_truth import mit_fixation_density


def _log_density(shape, seed, floor=1e-3):
    rng = np.random.default_rng(seed)
    d = gaussian_filter(rng.random(shape) ** 4, 2.0) + floor
    return np.log(d) - logsumexp(np.log(d))


# ----------------------------------------------------------------------------- densities
def test_check_log_density_accepts_normalised_and_renormalises():
    ld = _log_density((20, 30), 0)
    out = mm.check_log_density(ld + 1e-5)  # sum exp = 1.00001: inside 1e-4
    assert logsumexp(out) == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(out, ld, atol=1e-14)
    assert mm.check_log_density(ld.astype(np.float32)).dtype == np.float64


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 4)), r"sums to 16"),                  # a saliency map of zeros: exp sums to 16
    (np.log(np.full((4, 4), 1 / 8)), r"sums to 2"),
    (np.full((3, 3), np.nan), "NaN or infinity"),
    (np.array([[0.0, -np.inf]]), "NaN or infinity"),
    (np.zeros(5), "2-D"),
])
def test_check_log_density_refuses_with_one_clear_line(bad, match):
    with pytest.raises(ValueError, match=match) as e:
        mm.check_log_density(bad, "img_007.png")
    assert str(e.value).startswith("img_007.png: ") and "\n" not in str(e.value)


@pytest.mark.parametrize("src, dst", [((48, 48), (480, 640)), ((48, 48), (600, 800)), ((30, 40), (30, 40)),
                                       ((7, 9), (20, 13)), ((48, 48), (24, 24))])
def test_resize_log_density_is_normalised_and_linear_in_the_log(src, dst):
    ld = _log_density(src, 1)
    out = mm.resize_log_density(ld, dst)
    assert out.shape == dst
    assert abs(np.exp(out).sum() - 1.0) <= 1e-12  # the stated tolerance of a resized density
    if src == dst:
        np.testing.assert_allclose(out, ld, atol=1e-14)
    else:  # corner-aligned linear interpolation of log p: the corners keep their values up to the shift
        shift = out[0, 0] - ld[0, 0]
        assert out[-1, -1] - ld[-1, -1] == pytest.approx(shift, abs=1e-12)
        assert out[0, -1] - ld[0, -1] == pytest.approx(shift, abs=1e-12)


# ----------------------------------------------------------------------------- sAUC baseline
def _loo_twin(log_densities):
    """Slow twin: for each image, the mean density of the *other* images of its size, then log."""
    out = []
    for i, a in enumerate(log_densities):
        others = [np.exp(b) for j, b in enumerate(log_densities) if j != i and b.shape == a.shape]
        out.append(np.log(np.mean(others, axis=0)) if others else None)
    return out


@given(st.lists(st.sampled_from([(6, 8), (5, 5)]), min_size=1, max_size=7), st.integers(0, 2**16))
def test_loo_baseline_equals_the_slow_twin(shapes, seed):
    lds = [_log_density(s, seed + k, floor=0.05) for k, s in enumerate(shapes)]
    b = mm.ShuffledBaseline()
    for a in lds:
        b.add(a)
    for a, want in zip(lds, _loo_twin(lds)):
        got = b.log_baseline_excluding(a)
        if want is None:
            assert got is None  # alone in its size: no baseline
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
            assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-12)
    assert sum(b.describe().values()) == len(lds)


def test_same_density_everywhere_gives_a_constant_sauc_map_and_auc_half():
    # center_bias / uniform: every image has the same density, so log p - log p_b is 0 up to rounding,
    # which the resolution removes: the map is exactly constant and every sAUC is 0.5
    for ld in (_log_density((60, 80), 3), np.full((60, 80), -math.log(4800))):
        b = mm.ShuffledBaseline()
        for _ in range(37):
            b.add(ld)
        raw = ld - b.log_baseline_excluding(ld)
        assert 0 < np.abs(raw).max() < 1e-13 or np.abs(raw).max() == 0.0
        m = mm.log_ratio_map(ld, b.log_baseline_excluding(ld))
        assert (m == 0.0).all() and is_constant_map(m)
        rng = np.random.default_rng(0)
        f, o = rng.random((60, 80)) < 0.02, rng.random((60, 80)) < 0.1
        assert auc_shuffled(m, f, o, seed=1) == 0.5


def test_log_ratio_rounds_to_the_stated_resolution():
    ld = _log_density((10, 12), 4)
    lb = _log_density((10, 12), 5)
    m = mm.log_ratio_map(ld, lb)
    assert np.abs(m - (ld - lb)).max() <= mm.LOG_RATIO_RESOLUTION / 2
    np.testing.assert_array_equal(np.round(m / mm.LOG_RATIO_RESOLUTION), m / mm.LOG_RATIO_RESOLUTION)


def test_baseline_floor_where_the_image_dominates():
    a = np.log(np.array([[1.0 - 1e-30, 1e-30]]))
    c = np.log(np.array([[1e-30, 1.0 - 1e-30]]))
    b = mm.ShuffledBaseline()
    b.add(a)
    b.add(c)
    lb = b.log_baseline_excluding(a)
    assert np.isfinite(lb).all() and lb[0, 1] == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- maps of one density
def test_equalize_is_rank_over_n_with_ties_shared():
    s = np.array([[0.3, 0.1], [0.3, 0.9]])
    np.testing.assert_array_equal(mm.equalize(s), np.array([[1.5, 0.0], [1.5, 3.0]]) / 4)
    assert is_constant_map(mm.equalize(np.full((3, 3), 0.2)))


def test_info_gain_map_scores_the_log_density():
    # Closed form: MIT's IG of the map at fixated pixels = mean log2(p / (1 - p_min)) - baseline term
    ld = _log_density((40, 50), 6, floor=0.2)
    p = np.exp(ld)
    s = mm.info_gain_map(p)
    assert s.min() == 0.0 and np.count_nonzero(s == 0) == 1
    rng = np.random.default_rng(1)
    f = rng.random(p.shape) < 0.03
    f.flat[np.argmin(p)] = False
    base = center_gaussian(p.shape)
    b = (base - base.min()) / (base - base.min()).sum()
    want = np.mean(np.log2(EPS + p[f] / (1 - p.min())) - np.log2(EPS + b[f]))
    assert info_gain(s, f, base) == pytest.approx(want, rel=1e-12)
    # and strictly better than the raw density, which MIT's min-max step distorts
    assert info_gain(s, f, base) > info_gain(p, f, base)
    assert mm.info_gain_map(np.full((4, 4), 1 / 16)).min() == 1 / 16  # constant stays constant


def test_mit_blur_is_antonio_gaussian_of_the_density():
    # linear: the FFT transcription of antonioGaussian.m applied to the dense density
    for shape in [(48, 64), (37, 50), (64, 30)]:
        p = np.exp(_log_density(shape, 7))
        got = mm.expected_empirical_map(p, "mit")
        want = np.maximum(naive.antonio_gaussian(p, 8.0), 0.0)
        assert np.abs(got - want).max() <= 1e-13 * want.max()


def test_blur_of_a_delta_is_the_protocol_kernel():
    shape = (60, 80)
    delta = np.zeros(shape)
    delta[30, 41] = 1.0
    np.testing.assert_allclose(mm.expected_empirical_map(delta, "mit"), mit_fixation_density(delta > 0),
                               rtol=0, atol=1e-15)
    sal = mm.expected_empirical_map(delta, "salicon", {"cc_sigma": 5.0})
    np.testing.assert_allclose(sal, gaussian_filter(delta, 5.0), rtol=0, atol=1e-15)
    cw = mm.expected_empirical_map(delta, "coursework", {"cc_target_sigma": 4.0}, sigma=3.0)
    np.testing.assert_allclose(cw, gaussian_filter(gaussian_filter(delta, 3.0), 4.0), rtol=0, atol=1e-15)
    ex = mm.expected_empirical_map(delta, get_protocol("exact"))
    np.testing.assert_allclose(ex, gaussian_filter(delta, 19.0 * 60 / 480), rtol=0, atol=1e-15)


def test_protocols_by_name_need_what_their_kernel_reads():
    from salbench.protocols import PROTOCOLS

    assert set(mm.KERNEL_PARAMETERS) == set(PROTOCOLS)
    assert PROTOCOLS["mit"].defaults["ground_truth"] == "mit"  # the default a bare "mit" assumes
    for name, needed in mm.KERNEL_PARAMETERS.items():
        assert set(needed) <= set(PROTOCOLS[name].defaults)
    with pytest.raises(ValueError, match=r"pass its parameter\(s\) \['cc_sigma'\]"):
        mm.expected_empirical_map(np.ones((4, 4)), "salicon")
    with pytest.raises(ValueError, match="unknown protocol"):
        mm.expected_empirical_map(np.ones((4, 4)), "nope")


def test_dataset_sigma_is_the_datasets_rule():
    from salbench.data._maps import salicon_sigma

    for shape in [(480, 640), (600, 800), (60, 80)]:
        assert mm.dataset_sigma(shape) == salicon_sigma(shape)


@pytest.mark.shared_data
def test_mit_blur_of_the_fixation_map_is_octaves_ground_truth(ref_vectors):
    npz = _need(REFS / "osie_mit_density.npz", "MIT density references")
    arrays, _ = ref_vectors
    with np.load(npz) as z:
        ref = z["mit_density_0"].astype(np.float64)
    got = mm.expected_empirical_map(arrays["fixmap_0"].astype(np.float64), "mit")
    assert np.abs(got - ref).max() <= 1e-7 * ref.max()  # the reference is float32


def test_metric_specific_maps_entry_point():
    ld = _log_density((48, 64), 8)
    b = mm.ShuffledBaseline()
    others = [_log_density((48, 64), k) for k in range(9, 13)]
    for a in [ld, *others]:
        b.add(a)
    maps = mm.metric_specific_maps(ld, "mit", log_baseline=b.log_baseline_excluding(ld), seed=3, sim_samples=20)
    assert set(maps) == {"cc", "nss", "auc_judd", "auc_borji", "auc_shuffled", "kld", "sim", "info_gain", "emd"}
    p = np.exp(ld)
    np.testing.assert_allclose(maps["nss"], p, rtol=1e-12)
    np.testing.assert_allclose(maps["auc_borji"], mm.equalize(p))  # the binned AUC's map: equalised
    assert maps["auc_judd"] is maps["auc_borji"]
    assert maps["cc"] is maps["kld"] is maps["emd"]
    np.testing.assert_array_equal(maps["auc_shuffled"], mm.log_ratio_map(ld, b.log_baseline_excluding(ld)))
    again = mm.metric_specific_maps(ld, "mit", log_baseline=b.log_baseline_excluding(ld), seed=3, sim_samples=20)
    np.testing.assert_array_equal(maps["sim"], again["sim"])  # seeded
    assert "auc_shuffled" not in mm.metric_specific_maps(ld, "mit", metrics=["auc_shuffled"])  # no baseline
    plain = mm.metric_specific_maps(ld, "mit", metrics=["auc_judd", "auc_shuffled"], equalize_auc=False,
                                    equalize_sauc=True, log_baseline=b.log_baseline_excluding(ld))
    np.testing.assert_allclose(plain["auc_judd"], p, rtol=1e-12)
    np.testing.assert_allclose(plain["auc_shuffled"], mm.equalize(maps["auc_shuffled"]))
    with pytest.raises(ValueError, match="no metric-specific map"):
        mm.metric_specific_maps(ld, "mit", metrics=["nope"])
    with pytest.raises(ValueError, match="not a log-density"):
        mm.metric_specific_maps(ld + 1.0, "mit")


def test_derivation_record_is_json_and_names_every_parameter():
    import json

    b = mm.ShuffledBaseline()
    b.add(np.zeros((1, 1)))
    rec = mm.derivation_record("mit", {"ground_truth": "mit"}, seed=5, baseline=b)
    json.dumps(rec)
    assert rec["metric_maps"]["auc_shuffled"] == "log_ratio" and rec["sim_optimal"]["seed"] == 5
    assert rec["expected_empirical"]["480x640"]["kernel"] == "antonioGaussian"
    assert rec["parameters"] == mm.MapDerivation().parameters()
    assert mm.MapDerivation.from_parameters(rec["parameters"]) == mm.MapDerivation()
    assert rec["sim_optimal"]["grid"]["strides"] == {"480x640": mm.sim_grid_stride(
        rec["expected_empirical"]["480x640"], (480, 640), mm.SIM_DEFAULTS["grid"])}
    assert rec["log_ratio"]["images_per_size"] == {"1x1": 1} and rec["log_ratio"]["equalized"] is False
    assert rec["density"]["equalized_for"] == ["auc_judd", "auc_borji"]
    cw = mm.derivation_record(get_protocol("coursework"), shape=(480, 640))
    assert cw["expected_empirical"]["480x640"]["sigmas"] == [19.0, 19.0]
    assert "sim_optimal" not in cw and "info_gain" not in cw
    assert set(cw["metric_maps"]) == {"cc", "auc_borji", "auc_shuffled"}


# ----------------------------------------------------------------------------- SIM optimiser
def _tiny_maps(shape, sigma=1.0, **kw):
    from scipy.ndimage import gaussian_filter1d

    k = [gaussian_filter1d(np.eye(n), sigma, axis=0, mode="reflect") for n in shape]
    return SeparableEmpiricalMaps(k[0], k[1], **kw)


def _sample_matrix(p, maps, n, samples, seed):
    """The normalised empirical maps the optimiser draws (same generator, same order), as rows."""
    rng = np.random.default_rng([seed, 0])
    rows = []
    for _ in range(samples):
        f = maps.fixation_set(sample_fixations(p, n, rng))
        shift, total = maps.offsets(f)
        rows.append(((maps.rows_of(f, 0, p.shape[0]) - shift) / total).ravel())
    return np.array(rows)


@pytest.mark.parametrize("normalisation, binary", [("minmax", True), ("sum", False)])
@pytest.mark.parametrize("seed", [0, 1])
def test_sim_optimum_is_the_linear_programs(normalisation, binary, seed):
    """The water-filling map maximises the sampled objective: equal to scipy's LP optimum value."""
    shape, n, samples = (4, 5), 6, 9
    p = np.exp(_log_density(shape, 20 + seed, floor=0.02))
    maps = _tiny_maps(shape, normalisation=normalisation, binary=binary)
    s, info = maximize_expected_sim(p, maps, fixation_count=n, samples=samples, seed=seed, block_bytes=8 * samples * 5)
    g = _sample_matrix(p, maps, n, samples, seed)
    npx = g.shape[1]
    # variables: s (npx), t (samples x npx); maximise mean_m sum_x t_mx; t <= s, t <= g, sum s = 1
    c = np.concatenate([np.zeros(npx), -np.ones(samples * npx) / samples])
    a_ub, b_ub = [], []
    for m in range(samples):
        for x in range(npx):
            row = np.zeros(npx + samples * npx)
            row[npx + m * npx + x] = 1.0
            row[x] = -1.0
            a_ub.append(row)
            b_ub.append(0.0)
    bounds = [(0, None)] * npx + [(None, gv) for gv in g.ravel()]
    a_eq = [np.concatenate([np.ones(npx), np.zeros(samples * npx)])]
    lp = linprog(c, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.array(a_eq), b_eq=[1.0], bounds=bounds, method="highs")
    assert lp.status == 0
    ours = np.minimum(s.ravel()[None], g).sum(axis=1).mean()
    assert ours == pytest.approx(-lp.fun, abs=1e-12)
    assert info["sampled_sim"] == pytest.approx(ours, abs=1e-12)
    assert s.min() >= 0 and s.sum() == pytest.approx(1.0, abs=1e-14)


def test_sim_map_does_not_depend_on_the_block_size_and_is_seeded():
    p = np.exp(_log_density((30, 40), 30))
    maps = mm.empirical_maps("mit", None, p.shape)
    a, _ = maximize_expected_sim(p, maps, fixation_count=15, samples=12, seed=4)
    b, _ = maximize_expected_sim(p, maps, fixation_count=15, samples=12, seed=4, block_bytes=8 * 12 * 40 * 3)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-17)
    c, _ = maximize_expected_sim(p, maps, fixation_count=15, samples=12, seed=5)
    assert not np.array_equal(a, c)


def _peaked(shape=(60, 80)):
    """Three Gaussian blobs (sigma 4, 6, 10 px) over a 5 % uniform floor, like the synthetic set's densities."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    d = sum(w * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))
            for w, cy, cx, s in [(1.0, 20, 25, 4), (0.6, 40, 60, 6), (0.3, 30, 40, 10)])
    return d / d.sum() * 0.95 + 0.05 / d.size


@pytest.mark.slow
def test_sim_map_out_of_sample():
    # On fresh draws (another seed) the map's MIT SIM beats p and the blurred p (the anchor) on a
    # peaked density, where validation keeps the optimum (weight 1); on a flat one, 200 draws
    # over-fit and validation mixes towards the blur: within 1e-3 of it (measured 3e-4).
    maps = mm.empirical_maps("mit", None, (60, 80))
    for p, weight in [(_peaked(), 1.0), (np.exp(_log_density((60, 80), 31, floor=0.01)), None)]:
        s, info = mm.sim_map(p, "mit", seed=0, fixation_count=40, samples=200)
        blur = mm.expected_empirical_map(p, "mit")
        ev = {k: expected_sim(v, p, maps, fixation_count=40, samples=1000, seed=99)[0]
              for k, v in {"sim": s, "p": p, "blur": blur}.items()}
        assert ev["blur"] > ev["p"] and ev["sim"] > ev["p"]
        if weight is not None:
            assert info["mix_weight"] == weight
            assert ev["sim"] > ev["blur"] + 0.005  # measured +0.0078
        else:
            assert ev["sim"] >= ev["blur"] - 1e-3


# ----------------------------------------------------------------------------- SIM: kernel and grid
@given(h=st.integers(1, 9), w=st.integers(1, 9), n_sets=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       binary=st.booleans(), clip=st.booleans())
def test_empirical_maps_equal_the_dense_filter_of_the_fixation_map(h, w, n_sets, seed, binary, clip):
    """The Numba kernel's maps equal ``ky @ F @ kx.T`` of the fixation map built here (NumPy twin);
    on a grid they are exactly the full maps' values at the grid's rows and columns."""
    from salbench.metrics.expected_sim import grid_positions

    rng = np.random.default_rng(seed)
    ky, kx = rng.normal(size=(h, h)), rng.normal(size=(w, w))
    maps = SeparableEmpiricalMaps(ky, kx, binary=binary, clip_negative=clip)
    draws = [rng.integers(0, h * w, size=int(rng.integers(1, 12))) for _ in range(n_sets)]
    got = maps.values([maps.fixation_set(d) for d in draws])
    for m, d in enumerate(draws):
        f = np.zeros(h * w)
        if binary:
            f[d] = 1.0
        else:
            np.add.at(f, d, 1.0)
        want = ky @ f.reshape(h, w) @ kx.T
        if clip:
            want = np.maximum(want, 0.0)
        np.testing.assert_allclose(got[m], want, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max()))
    rows, cols = grid_positions(h, 2), grid_positions(w, 3)
    on_grid = maps.on_grid(rows, cols).values([maps.fixation_set(d) for d in draws])
    np.testing.assert_array_equal(on_grid, got[:, rows][:, :, cols])


def test_grid_positions_and_linear_upsampling():
    from salbench.metrics.expected_sim import grid_positions

    assert grid_positions(10, 4).tolist() == [2, 6, 9]  # block centres, the last clipped to the image
    assert grid_positions(5, 1).tolist() == [0, 1, 2, 3, 4]
    rows, cols = np.array([1, 4, 7]), np.array([0, 5])
    grid = np.arange(6.0).reshape(3, 2)
    up = mm.upsample_linear(grid, rows, cols, (9, 6))
    assert up.shape == (9, 6)
    np.testing.assert_array_equal(up[np.ix_(rows, cols)], grid)  # through the grid's values
    # numpy's interp (linear, held constant outside) along the rows, then along the columns
    by_rows = np.stack([np.interp(np.arange(9), rows, grid[:, c]) for c in range(2)], axis=1)
    want = np.stack([np.interp(np.arange(6), cols, by_rows[i]) for i in range(9)])
    np.testing.assert_allclose(up, want, rtol=0, atol=1e-14)


@pytest.mark.slow
def test_sim_map_on_the_grid_scores_as_the_full_resolution_optimum():
    """The default grid (points half the kernel's sigma apart) against ``grid=0`` (every pixel, the
    slow definition): the same expected MIT SIM on fresh draws, to 1e-3 (measured below 1e-4 at
    480x640, docs/metrics.md), at a fraction of the cost."""
    shape = (120, 160)
    maps = mm.empirical_maps("mit", None, shape)
    for seed in (0, 1):
        p = np.exp(_log_density(shape, 40 + seed, floor=1e-4))
        fast, info = mm.sim_map(p, "mit", seed=seed)
        slow, _ = mm.sim_map(p, "mit", seed=seed, grid=0)
        assert info["grid_stride"] > 1 and fast.shape == slow.shape == shape
        assert fast.min() >= 0 and fast.sum() == pytest.approx(1.0, abs=1e-12)
        e_fast, se = expected_sim(fast, p, maps, fixation_count=100, samples=300, seed=99)
        e_slow, _ = expected_sim(slow, p, maps, fixation_count=100, samples=300, seed=99)
        assert abs(e_fast - e_slow) <= 1e-3, (seed, e_fast, e_slow, se)
