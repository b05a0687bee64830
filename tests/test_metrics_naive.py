"""Kernels against their slow NumPy twins in tests/naive.py on random small maps.

Maps mix few distinct values (ties), constants, uint8/bool/float32 inputs.
"""

from __future__ import annotations

import math

import naive
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import salbench.metrics as M

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def maps(draw, shape):
    """A map of the given shape: tie-heavy integers, floats, a constant, or bool."""
    kind = draw(st.sampled_from(["ties", "float", "constant", "uint8", "bool", "float32"]))
    if kind == "ties":
        return draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 3))).astype(np.float64)
    if kind == "float":
        return draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5, allow_subnormal=False)))
    if kind == "constant":
        return np.full(shape, draw(st.floats(-3, 3, allow_subnormal=False)))
    if kind == "uint8":
        return draw(hnp.arrays(np.uint8, shape))
    if kind == "bool":
        return draw(hnp.arrays(np.bool_, shape))
    return draw(hnp.arrays(np.float32, shape, elements=st.floats(0, 1, width=32, allow_subnormal=False)))


@st.composite
def cases(draw):
    shape = draw(st.tuples(st.integers(1, 7), st.integers(2, 7)))
    s = draw(maps(shape))
    g = draw(maps(shape))
    fix = draw(hnp.arrays(np.bool_, shape))
    other = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 2)))
    base = draw(maps(shape))
    return s, g, fix, other, base


def same(a, b, rel=1e-9, abs_=1e-12):
    if math.isnan(b):
        return math.isnan(a)
    return a == pytest.approx(b, rel=rel, abs=abs_)


def same_cc(got, s, g):
    """CC vs the twin; a density whose spread is a few ulps makes CC rounding noise in any code.

    (e.g. g = [1, 1 - 2**-53]: the deviations from the rounded mean are not symmetric,
    so both codes return some value in [-1, 1], not the same one.)
    """
    g = np.asarray(g, dtype=np.float64)
    spread = float(np.ptp(g))
    if 0.0 < min(spread, float(np.ptp(np.asarray(s, dtype=np.float64))) or 1.0) < 1e-150:
        # Squared deviations underflow to 0, so the map counts as constant (documented: constant
        # saliency -> 0.0, constant density -> NaN); the twin divides by ~0 instead.
        return math.isnan(got) or -1.0 <= got <= 1.0
    if 0.0 < spread < 1e-6 * max(1.0, float(np.abs(g).max())):
        return -1.0 <= got <= 1.0
    return same(got, naive.cc(s, g), rel=1e-7, abs_=1e-9)


@SETTINGS
@given(cases())
def test_density_metrics_match_twins(case):
    s, g, _, _, _ = case
    # CC/KLD over a few float32-spaced values lose digits to cancellation in both codes
    assert same_cc(M.cc(s, g), s, g)
    assert same(M.kld(s, g), naive.kld(s, g), rel=1e-9, abs_=1e-9)
    assert same(M.sim(s, g), naive.sim(s, g))


@SETTINGS
@given(cases())
def test_fixation_metrics_match_twins(case):
    s, _, fix, other, base = case
    assert same(M.nss(s, fix), naive.nss(s, fix), rel=1e-7, abs_=1e-9)
    assert same(M.auc_judd(s, fix), naive.auc_judd(s, fix))
    assert same(M.auc_exact(s, fix), naive.auc_exact(s, fix))
    assert same(M.auc_shuffled_exact(s, fix, other), naive.auc_shuffled_exact(s, fix, other))
    assert same(M.info_gain(s, fix, base), naive.info_gain(s, fix, base))


@SETTINGS
@given(cases(), st.data())
def test_nss_points_matches_twin(case, data):
    s = case[0]
    h, w = s.shape
    k = data.draw(st.integers(0, 6))
    rows = np.array(data.draw(st.lists(st.integers(0, h - 1), min_size=k, max_size=k)), dtype=np.int64)
    cols = np.array(data.draw(st.lists(st.integers(0, w - 1), min_size=k, max_size=k)), dtype=np.int64)
    assert same(M.nss_points(s, rows, cols), naive.nss_points(s, rows, cols), rel=1e-7, abs_=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.data())
def test_batch_matches_twins(n, data):
    shape = (n, data.draw(st.integers(1, 5)), data.draw(st.integers(2, 5)))
    s = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 3))).astype(np.float64)
    g = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    f = data.draw(hnp.arrays(np.bool_, shape))
    other = data.draw(hnp.arrays(np.bool_, shape[1:]))  # one shared map
    got = M.evaluate_batch(
        s, fixations=f, density=g, other=other, baseline=g,
        metrics=("cc", "nss", "auc_judd", "auc_exact", "auc_shuffled_exact", "kld", "sim", "info_gain"),
    )
    for i in range(n):
        assert same_cc(got["cc"][i], s[i], g[i])
        assert same(got["nss"][i], naive.nss(s[i], f[i]), rel=1e-7, abs_=1e-9)
        assert same(got["auc_judd"][i], naive.auc_judd(s[i], f[i]))
        assert same(got["auc_exact"][i], naive.auc_exact(s[i], f[i]))
        assert same(got["auc_shuffled_exact"][i], naive.auc_shuffled_exact(s[i], f[i], other))
        assert same(got["kld"][i], naive.kld(s[i], g[i]), abs_=1e-9)
        assert same(got["sim"][i], naive.sim(s[i], g[i]))
        assert same(got["info_gain"][i], naive.info_gain(s[i], f[i], g[i]))


@pytest.mark.parametrize("seed", range(3))
def test_larger_random_maps_match_twins(seed):
    # sizes where the binary-search counting really differs from a scan per threshold
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 50, (40, 60)).astype(np.float64)  # many ties
    f = rng.random((40, 60)) < 0.05
    o = rng.random((40, 60)) < 0.2
    assert M.auc_judd(s, f) == pytest.approx(naive.auc_judd(s, f), abs=1e-12)
    assert M.auc_exact(s, f) == pytest.approx(naive.auc_exact(s, f), abs=1e-12)
    assert M.auc_shuffled_exact(s, f, o) == pytest.approx(naive.auc_shuffled_exact(s, f, o), abs=1e-12)


@SETTINGS
@given(cases(), st.data())
def test_salicon_server_metrics_match_twins(case, data):
    s, _, _, other, _ = case
    h, w = s.shape
    k = data.draw(st.integers(0, 6))
    pts = np.array([[data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))] for _ in range(k)],
                   dtype=np.int64).reshape(-1, 2)
    step = data.draw(st.sampled_from([0.01, 0.1, 0.25]))
    seed = data.draw(st.integers(0, 2**32 - 1))
    draw = np.random.RandomState(seed).randint(s.size, size=50)
    assert same(M.auc_salicon(s, pts, n_random=50, step=step, seed=seed), naive.auc_salicon(s, pts, draw, step))
    assert same(M.sauc_salicon(s, pts, other, step=step), naive.sauc_salicon(s, pts, other, step))
