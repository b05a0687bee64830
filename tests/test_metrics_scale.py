"""Every metric is scale-invariant: a map times 10**k scores as the map, for k in [-300, 300] (issue 19).

Maps are small integers (ties included), so ``x * 10**k`` keeps their order and ties exactly and
the only differences are rounding. Each metric with a twin in ``tests/naive.py`` is compared with
the twin on the unscaled map; the sampled AUCs (same seed) with themselves on the unscaled map.

The threshold-binned AUCs (SALICON server, Borji, shuffled) compare the min-max normalised map
with thresholds 0, 0.1, ...: ``x * 10**k`` is ``x`` up to one rounding per value, and a value
exactly on a threshold (6/20 = 0.3) can land on either side of it, in any implementation. Their
maps hold 0 and 23 and integers between, so normalised values k/23 never sit on a threshold.
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
from salbench.metrics._validate import unit_magnitude

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REL = 1e-12
EXPONENTS = st.integers(-300, 300) | st.sampled_from([-300, -200, 200, 300])


def close(got, want, rel=REL, abs_=1e-12):
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=rel, abs=abs_)


@st.composite
def case(draw):
    shape = draw(st.tuples(st.integers(2, 6), st.integers(2, 7)))
    ints = lambda hi: hnp.arrays(np.int64, shape, elements=st.integers(0, hi))  # noqa: E731
    s = draw(ints(20)).astype(np.float64)
    g = draw(ints(9)).astype(np.float64)
    fix = draw(hnp.arrays(np.bool_, shape))
    other = draw(ints(2)).astype(np.uint8)
    base = draw(ints(5)).astype(np.float64)
    return s, g, fix, other, base


@SETTINGS
@given(case(), EXPONENTS)
def test_saliency_times_10k_scores_as_the_map(c, k):
    s, g, fix, other, base = c
    t = s * 10.0 ** k
    assert close(M.cc(t, g), naive.cc(s, g))
    assert close(M.nss(t, fix), naive.nss(s, fix))
    assert close(M.auc_judd(t, fix), naive.auc_judd(s, fix))
    assert close(M.auc_exact(t, fix), naive.auc_exact(s, fix))
    assert close(M.auc_shuffled_exact(t, fix, other), naive.auc_shuffled_exact(s, fix, other))
    assert close(M.kld(t, g), naive.kld(s, g))
    assert close(M.sim(t, g), naive.sim(s, g))
    assert close(M.info_gain(t, fix, base), naive.info_gain(s, fix, base))
    rows, cols = np.nonzero(fix)
    assert close(M.nss_points(t, rows, cols), naive.nss_points(s, rows, cols))


@st.composite
def binned_case(draw):
    """A case whose saliency map holds 0 and 23 (normalised values k/23: off every 0.1 threshold)."""
    s, g, fix, other, base = draw(case())
    s = np.minimum(s, 22.0)
    s.flat[0], s.flat[-1] = 0.0, 23.0
    return s, g, fix, other, base


@SETTINGS
@given(binned_case(), EXPONENTS)
def test_density_baseline_and_weights_times_10k(c, k):
    s, g, fix, other, base = c
    f = 10.0 ** k
    assert close(M.cc(s, g * f), naive.cc(s, g))
    assert close(M.kld(s, g * f), naive.kld(s, g))
    assert close(M.sim(s, g * f), naive.sim(s, g))
    assert close(M.info_gain(s, fix, base * f), naive.info_gain(s, fix, base))
    pts = np.argwhere(fix)
    assert close(M.sauc_salicon(s * f, pts, other * f, step=0.1), naive.sauc_salicon(s, pts, other, 0.1))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case(), EXPONENTS)
def test_emd_times_10k(c, k):
    s, g, *_ = c
    want = naive.emd(s, g, downsample=1)  # exact optimal transport of the clipped maps
    assert close(M.emd(s * 10.0 ** k, g, downsample=1, variant="exact"), want, rel=1e-9, abs_=1e-9)
    assert close(M.emd(s, g * 10.0 ** k, downsample=1, variant="exact"), want, rel=1e-9, abs_=1e-9)
    mit = M.emd(s, g, downsample=1, variant="mit")  # MIT's variant: scale-invariant too
    assert close(M.emd(s * 10.0 ** k, g, downsample=1, variant="mit"), mit, rel=1e-9, abs_=1e-9)


@SETTINGS
@given(binned_case(), EXPONENTS, st.integers(0, 2**32 - 1))
def test_sampled_aucs_times_10k(c, k, seed):
    s, _, fix, other, _ = c
    t = s * 10.0 ** k
    pts = np.argwhere(fix)
    draw = np.random.RandomState(seed).randint(s.size, size=50)
    assert close(M.auc_salicon(t, pts, n_random=50, step=0.1, seed=seed), naive.auc_salicon(s, pts, draw, 0.1))
    for name, args in (("auc_borji", (fix,)), ("auc_shuffled", (fix, other != 0))):
        f = getattr(M, name)
        assert close(f(t, *args, splits=5, seed=seed), f(s, *args, splits=5, seed=seed)), name
        assert close(f(t, *args, splits=5, seed=seed, method="pixels"), f(s, *args, splits=5, seed=seed,
                                                                           method="pixels")), name
    assert close(M.auc_borji_expected(t, fix), M.auc_borji_expected(s, fix))
    assert close(M.auc_shuffled_expected(t, fix, other != 0), M.auc_shuffled_expected(s, fix, other != 0))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.data())
def test_batch_scales_each_image_on_its_own(n, data):
    shape = (n, data.draw(st.integers(2, 5)), data.draw(st.integers(2, 5)))
    s = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 9))).astype(np.float64)
    g = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 9))).astype(np.float64)
    f = data.draw(hnp.arrays(np.bool_, shape))
    ks = data.draw(st.lists(EXPONENTS, min_size=n, max_size=n))
    scaled = s * (10.0 ** np.array(ks, dtype=np.float64))[:, None, None]
    got = M.evaluate_batch(scaled, fixations=f, density=g, metrics=("cc", "nss", "auc_judd", "kld", "sim"))
    for i in range(n):
        assert close(got["cc"][i], naive.cc(s[i], g[i]))
        assert close(got["nss"][i], naive.nss(s[i], f[i]))
        assert close(got["auc_judd"][i], naive.auc_judd(s[i], f[i]))
        assert close(got["kld"][i], naive.kld(s[i], g[i]))
        assert close(got["sim"][i], naive.sim(s[i], g[i]))


def test_the_issue_examples():
    """A map times 1e200 or 1e300 used to score CC = NSS = 0, and AUC-Judd moved with the scale."""
    rng = np.random.default_rng(19)
    s, g = rng.random((30, 40)), rng.random((30, 40))
    f = rng.random((30, 40)) < 0.05
    for k in (200, 300, -300):
        t = s * 10.0 ** k
        assert M.cc(t, g) == pytest.approx(M.cc(s, g), rel=REL) and M.cc(s, g) != 0
        assert M.nss(t, f) == pytest.approx(M.nss(s, f), rel=REL) and M.nss(s, f) != 0
        assert M.auc_judd(t, f) == M.auc_judd(s, f)
        assert M.auc_judd(t, f, jitter=True, seed=3) == pytest.approx(M.auc_judd(s * 2.0 ** 30, f, jitter=True, seed=3),
                                                                     rel=REL)


def test_unit_magnitude_is_exact_and_lazy():
    a = np.array([[0.75, -0.25], [0.0, 0.5]])
    assert unit_magnitude(a) is a  # already in [0.5, 2): untouched, no copy
    b = a * 2.0 ** 900
    np.testing.assert_array_equal(unit_magnitude(b), a)  # powers of two: every bit kept
    np.testing.assert_array_equal(unit_magnitude(a * 2.0 ** -1000), a)
    z = np.zeros((2, 2))
    assert unit_magnitude(z) is z
    d = np.array([[1.0, 0.3]])  # a density with maximum 1 is not touched
    assert unit_magnitude(d) is d
