"""EMD (MIT EMD.m as documented in salbench.metrics.transport): closed forms, the LP twin, MATLAB's resize.

References no one here derived from the kernel: transport closed forms (a point mass moved
by d costs d; a translation by v costs |v|), scipy's HiGHS linear program on the same
distributions (tests/naive.py ``emd_lp``), and a per-pixel transcription of MATLAB
``imresize``'s contributions (tests/naive.py ``imresize``).
"""

from __future__ import annotations

import math

import naive
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from salbench.metrics import METRICS, emd, is_constant_map
from salbench.metrics.transport import matlab_resize_matrix


def point(shape, r, c, mass=1.0):
    a = np.zeros(shape)
    a[r, c] = mass
    return a


# ----------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("dr, dc", [(0, 1), (0, 3), (2, 0), (3, 4), (1, 1)])
def test_point_mass_moved_by_d_costs_d(dr, dc):
    a = point((5, 6), 0, 0)
    b = point((5, 6), dr, dc)
    assert emd(a, b, downsample=1) == pytest.approx(math.hypot(dr, dc), abs=1e-12)


def test_identical_maps_cost_nothing_and_scale_does_not_matter():
    rng = np.random.default_rng(0)
    a = rng.random((4, 5))
    assert emd(a, a, downsample=1) == pytest.approx(0.0, abs=1e-12)
    assert emd(7.0 * a, a, downsample=1) == pytest.approx(0.0, abs=1e-12)  # normalised to sum 1


def test_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 4)), rng.random((3, 4)) ** 4
    assert emd(a, b, downsample=1) == pytest.approx(emd(b, a, downsample=1), rel=1e-12)


def test_split_mass_and_uniform_closed_forms():
    # half the mass goes 2 cells down, half 2 cells right: 2
    b = point((3, 3), 2, 0, 0.5) + point((3, 3), 0, 2, 0.5)
    assert emd(point((3, 3), 0, 0), b, downsample=1) == pytest.approx(2.0, abs=1e-12)
    # a point at the end of a 1x3 strip against the uniform strip: (0 + 1 + 2) / 3
    assert emd(np.ones((1, 3)), point((1, 3), 0, 0), downsample=1) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shift, expected", [((0, 32), 1.0), ((32, 0), 1.0), ((32, 64), math.sqrt(5.0))])
def test_translation_by_whole_cells_at_the_mit_scale(shift, expected):
    # MIT's 1/32 resize maps a shift of 32 pixels to a shift of exactly one cell (away from
    # the borders, where mirroring would differ): the downsampled maps are translates.
    yy, xx = np.mgrid[0:480, 0:640]
    blob = lambda r, c: np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 20.0**2))  # noqa: E731
    a = blob(200, 250)
    b = blob(200 + shift[0], 250 + shift[1])
    assert emd(a, b) == pytest.approx(expected, abs=1e-9)


# ----------------------------------------------------------------------------- MATLAB resize
@pytest.mark.parametrize("in_len, out_len, scale", [
    (480, 15, 1 / 32), (640, 20, 1 / 32), (100, 4, 1 / 32), (100, 4, 4 / 100), (37, 12, 12 / 37),
    (7, 7, 1.0), (5, 9, 9 / 5),
])
def test_resize_matrix_matches_matlab_contributions(in_len, out_len, scale):
    eye = np.eye(in_len)
    want = naive.imresize_axis(eye, out_len, scale, 0)  # column j = response to input pixel j
    np.testing.assert_allclose(matlab_resize_matrix(in_len, out_len, scale), want, rtol=0, atol=1e-14)


def test_resize_keeps_a_constant_and_scale_one_is_identity():
    m = matlab_resize_matrix(480, 15, 1 / 32)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    assert np.array_equal(matlab_resize_matrix(9, 9, 1.0), np.eye(9))


# ----------------------------------------------------------------------------- the LP twin
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_matches_linear_program_twin_full_resolution(data):
    shape = data.draw(st.tuples(st.integers(1, 4), st.integers(2, 5)))
    elems = st.floats(0, 1, allow_subnormal=False)
    a = data.draw(hnp.arrays(np.float64, shape, elements=elems))
    b = data.draw(hnp.arrays(np.float64, shape, elements=elems))
    want = naive.emd(a, b, downsample=1)
    got = emd(a, b, downsample=1)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("shape", [(64, 96), (100, 70), (33, 65)])
@pytest.mark.parametrize("seed", range(2))
def test_matches_twin_through_mits_downsampling(shape, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    g = np.zeros(shape)
    for _ in range(4):  # a density: a few blobs
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        g += np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 9.0**2))
    s = rng.random(shape) ** 2
    assert emd(s, g) == pytest.approx(naive.emd(s, g), rel=1e-7, abs=1e-9)


# ----------------------------------------------------------------------------- degenerate inputs
def test_constant_map_is_the_uniform_distribution():
    rng = np.random.default_rng(3)
    g = rng.random((64, 96)) ** 3
    uniform = emd(np.ones((64, 96)), g)
    assert emd(np.full((64, 96), 0.7), g) == uniform
    assert emd(np.zeros((64, 96)), g) == uniform
    noisy = 0.7 + 1e-16 * rng.standard_normal((64, 96))  # a resized constant: a few ulps of spread
    assert is_constant_map(noisy) and emd(noisy, g) == uniform
    assert METRICS["emd"].constant_map == "uniform"


def test_density_without_mass_is_nan_and_constant_density_is_uniform():
    s = np.random.default_rng(4).random((40, 50))
    assert math.isnan(emd(s, np.zeros((40, 50))))
    assert emd(s, np.ones((40, 50))) == emd(s, np.full((40, 50), 3.0))


def test_negative_values_are_shifted_like_kld():
    s = np.random.default_rng(5).random((3, 4))
    g = np.random.default_rng(6).random((3, 4))
    assert emd(s - 2.0, g, downsample=1) == pytest.approx(emd(s - s.min(), g, downsample=1), abs=1e-12)


def test_validation():
    with pytest.raises(ValueError, match="downsample"):
        emd(np.ones((4, 4)), np.ones((4, 4)), downsample=0)
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(4, 5\)"):
        emd(np.ones((4, 4)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="saliency contains NaN"):
        emd(np.full((4, 4), np.nan), np.ones((4, 4)))


def test_registry_entry():
    m = METRICS["emd"]
    assert m.func is emd and not m.higher_is_better and m.needs == ("density",) and m.protocols == ("mit",)
    assert m.kernel is None and m.params == {} and not m.sampled  # no protocol parameter feeds downsample
