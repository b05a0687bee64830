"""The issue-17 kernels (lane sums, packed cell counts, one-pass CC) against obviously-correct twins.

Each fast kernel has a slow NumPy/Python twin written from its definition (lane order,
``_cell_of`` per pixel, a scaled copy), and the comparison is exact (bit for bit):
integer counts and sums in a defined order leave no room for tolerances.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.ndimage import gaussian_filter

from salbench.metrics import auc_shuffled, cc
from salbench.metrics._kernels import (EPS, LANES, centred_squares, mean_std, minmax, mm_distribution, mm_total,
                                       total, totals, true_indices, true_indices_counted)
from salbench.metrics.distribution import _kld_kernel, _sim_kernel
from salbench.metrics._validate import _times_power_of_two, flat_inputs_ranged
from salbench.metrics.auc_sampled import (NO_TABLE, _all_cells_scatter, _auc_shuffled_core, _cell_hists_core,
                                          _cell_of, cell_boundaries, log_factorials, thresholds_for)
from salbench.metrics.correlation import _cc_core, _cc_scan

FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- twins
def lane_sum(x: np.ndarray) -> float:
    """The documented order: lane j sums x[j], x[j+256], ... left to right; lanes folded in halves."""
    acc = [0.0] * LANES
    for i, v in enumerate(x.tolist()):
        acc[i % LANES] += v
    h = LANES
    while h > 1:
        h //= 2
        acc = [acc[j] + acc[j + h] for j in range(h)]
    return acc[0]


def cells_by_definition(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cell histogram of every pixel from ``_cell_of`` of its min-max normalised value."""
    lo, hi = float(s.min()), float(s.max())
    u = (s - lo) / (hi - lo)
    h = np.zeros(2 * t.size, dtype=np.int64)
    for v in u.tolist():
        h[_cell_of(v, t)] += 1
    return h


# ----------------------------------------------------------------------------- sums
@SETTINGS
@given(arrays(np.float64, st.integers(1, 1300), elements=FINITE))
def test_lane_sums_follow_the_documented_order(x):
    assert total(x) == lane_sum(x)
    a, b = totals(x, x[::-1].copy())
    assert a == lane_sum(x) and b == lane_sum(x[::-1])
    m = total(x) / x.size
    assert centred_squares(x, m) == lane_sum((x - m) ** 2)
    mean, std = mean_std(x, 0)
    assert mean == m and std == math.sqrt(lane_sum((x - m) ** 2) / x.size)
    assert abs(total(x) - math.fsum(x.tolist())) <= 1e-9 * max(1.0, float(np.abs(x).sum()))


@SETTINGS
@given(arrays(np.float64, st.integers(2, 1300), elements=FINITE), arrays(np.float64, st.integers(2, 1300), elements=FINITE))
def test_distribution_sums_follow_the_lane_order(x, y):
    """mm_total / mm_distribution, SIM and KLD: their sums in the documented order, bit for bit."""
    n = min(x.size, y.size)
    x, y = x[:n], np.abs(y[:n])
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12 * max(abs(hi), abs(lo)) or y.max() - y.min() <= 1e-12 * y.max():
        return  # constant maps have their own documented answers (test_metrics_edge.py)
    u = (x - lo) / (hi - lo)
    assert mm_total(x, lo, hi) == lane_sum(u)
    np.testing.assert_array_equal(mm_distribution(x), u / lane_sum(u))
    v = (y - y.min()) / (y.max() - y.min())
    assert _sim_kernel(x, y) == lane_sum(np.minimum(u / lane_sum(u), v / lane_sum(v)))
    p = (x - min(lo, 0.0)) / lane_sum(x - min(lo, 0.0)) if lo < 0 else x / lane_sum(x)
    q = y / lane_sum(y)
    logs = np.array([math.log(v) for v in (EPS + q / (p + EPS)).tolist()])  # libm's log, as the kernel's
    assert _kld_kernel(x, y) == lane_sum(q * logs)


@SETTINGS
@given(arrays(np.float64, st.integers(1, 1300), elements=FINITE))
def test_minmax_equals_numpy(x):
    assert minmax(x) == (x.min(), x.max())


@SETTINGS
@given(arrays(np.bool_, st.integers(0, 2000)))
def test_true_indices_equal_flatnonzero(mask):
    want = np.flatnonzero(mask)
    np.testing.assert_array_equal(true_indices(mask), want)
    np.testing.assert_array_equal(true_indices_counted(mask, want.size), want)


@SETTINGS
@given(arrays(np.float64, st.integers(1, 400), elements=st.floats(-1e300, 1e300, allow_nan=False)),
       st.integers(-1100, 1100))
def test_times_power_of_two_is_ldexp(a, k):
    with np.errstate(over="ignore"):  # both overflow to inf alike
        np.testing.assert_array_equal(_times_power_of_two(a, k), np.ldexp(a, k))
    tiny = np.array([5e-324, 2.2250738585072014e-308, 1e-310, 3.0])  # subnormal results round as ldexp's
    np.testing.assert_array_equal(_times_power_of_two(tiny, -3), np.ldexp(tiny, -3))


# ----------------------------------------------------------------------------- cell counts
def _maps(rng, h, w, kind):
    s = gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 6))
    if kind == "plateau":  # ReLU-like: 40% of the pixels at the minimum
        s[s < np.quantile(s, 0.4)] = s.min()
    elif kind == "levels":  # few distinct values, many exactly on thresholds
        s = np.round(s * 20) / 20
    elif kind == "thresholds":  # values exactly k/10 of the range
        s = rng.integers(0, 11, (h, w)) / 10.0
    return s.ravel()


@pytest.mark.parametrize("kind", ["smooth", "plateau", "levels", "thresholds"])
@pytest.mark.parametrize("step", [0.1, 0.25, 1 / 11, 0.05])
def test_all_pixel_cells_equal_the_definition(kind, step):
    """Packed counting (step >= 1/11) and the scatter histogram both equal ``_cell_of`` per pixel."""
    rng = np.random.default_rng(7)
    t = thresholds_for(step)
    for h, w in ((1, 1), (3, 700), (31, 256), (97, 101), (120, 160)):
        s = _maps(rng, h, w, kind)
        lo, hi = float(s.min()), float(s.max())
        none = np.zeros(0, dtype=np.int64)
        h_all = _cell_hists_core(s, none, none, t, lo, hi, True)[0]
        if hi == lo:
            assert h_all[0] == s.size and h_all.sum() == s.size
            continue
        want = cells_by_definition(s, t)
        np.testing.assert_array_equal(h_all, want)
        b, e = cell_boundaries(lo, hi, t)
        scatter = np.zeros(2 * t.size, dtype=np.int64)
        _all_cells_scatter(s, lo, 1.0 / ((t[1] - t[0]) * (hi - lo)), True, t.size - 1, b, e, scatter)
        np.testing.assert_array_equal(scatter, want)


def test_shuffled_auc_without_the_all_pixel_pass_and_with_the_table():
    """sAUC skips the histogram of all pixels and reads log(k!) from a table: the same value."""
    rng = np.random.default_rng(3)
    s = gaussian_filter(rng.random((60, 80)), 3).ravel()
    f = np.flatnonzero(rng.random(s.size) < 0.02)
    o = np.flatnonzero(rng.random(s.size) < 0.1)
    t = thresholds_for(0.1)
    lo, hi = minmax(s)
    a = _auc_shuffled_core(s, f, o, t, lo, hi, 100, 12345, True, NO_TABLE)
    b = _auc_shuffled_core(s, f, o, t, lo, hi, 100, 12345, True, log_factorials(o.size + 2))
    assert a == b
    fm, om = np.zeros(s.size, bool), np.zeros(s.size, bool)
    fm[f], om[o] = True, True
    assert auc_shuffled(s.reshape(60, 80), fm.reshape(60, 80), om.reshape(60, 80), seed=1) == pytest.approx(a, abs=0.05)


# ----------------------------------------------------------------------------- one-pass CC
def _cc_validated(s, g):
    """CC of unit-magnitude copies through the registry's core (what the fused kernels run)."""
    (sf, gf), ((s_lo, s_hi), (g_lo, g_hi)) = flat_inputs_ranged(s, density=g)
    return _cc_core(sf, gf, s_lo, s_hi, g_lo, g_hi)


@SETTINGS
@given(st.integers(0, 2**31), st.integers(1, 40), st.integers(1, 40), st.integers(-390, 390), st.integers(-390, 390))
def test_one_pass_cc_equals_the_validated_path(seed, h, w, es, eg):
    """Within 2**±400 the one-pass scan of the unscaled maps gives the scaled copies' CC, bit for bit."""
    rng = np.random.default_rng(seed)
    s = gaussian_filter(rng.normal(size=(h, w)), rng.uniform(0.3, 3)) * 2.0 ** es
    g = gaussian_filter((rng.random((h, w)) < 0.1).astype(float), rng.uniform(0.5, 4)) * 2.0 ** eg
    ok, value = _cc_scan(s.ravel(), g.ravel())
    want = _cc_validated(s, g)
    assert ok
    assert value == want or (math.isnan(value) and math.isnan(want))
    got = cc(s, g)
    assert got == want or (math.isnan(got) and math.isnan(want))


def test_one_pass_cc_hands_bad_and_extreme_maps_to_validation():
    rng = np.random.default_rng(0)
    s, g = rng.random((20, 30)), gaussian_filter(rng.random((20, 30)), 2)
    for bad in (np.nan, np.inf, -np.inf):
        for name, args in (("saliency", (s.copy(), g)), ("density", (s, g.copy()))):
            args[0 if name == "saliency" else 1][3, 4] = bad
            assert not _cc_scan(args[0].ravel(), args[1].ravel())[0]
            with pytest.raises(ValueError, match=f"{name} contains NaN or inf"):
                cc(*args)
    for k in (1e300, 1e-300, 1.5e308):  # outside 2**±400: scaled first, and still the map's CC
        assert not _cc_scan((s * k).ravel(), g.ravel())[0]
        assert cc(s * k, g) == pytest.approx(cc(s, g), abs=1e-15)
    assert cc(np.full((4, 4), 3.0), g[:4, :4]) == 0.0 and math.isnan(cc(g[:4, :4], np.full((4, 4), 3.0)))


def test_one_pass_cc_is_accurate():
    """Sums about a sampled mean lose nothing to the subtraction: CC to ~1e-15 of a long-double two-pass."""
    rng = np.random.default_rng(5)
    for trial in range(40):
        s = gaussian_filter(rng.random((90, 120)), rng.uniform(0.5, 8))
        if trial % 3 == 0:
            s = s * 1e-6 + 7.0  # far from zero: a one-pass formula without a shift would cancel
        g = gaussian_filter((rng.random((90, 120)) < 0.01).astype(float), 6)
        sl, gl = s.astype(np.longdouble), g.astype(np.longdouble)
        ds, dg = sl - sl.mean(), gl - gl.mean()
        ref = float((ds * dg).sum() / np.sqrt((ds * ds).sum() * (dg * dg).sum()))
        assert abs(cc(s, g) - ref) <= 1e-13 * max(abs(ref), 1e-3)
