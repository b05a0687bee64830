"""Map helpers against scipy / obvious NumPy twins."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.ndimage import gaussian_filter

from salbench.data._maps import blur_points, density_from_points, model_input, model_target, one_based_to_pixels


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1), st.sampled_from([(40, 50), (30, 64)]), st.floats(1.0, 6.0))
def test_blur_points_equals_gaussian_filter(n, seed, shape, sigma):
    rng = np.random.default_rng(seed)
    pts = np.stack([rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)], 1)
    pts[0] = [0, shape[1] - 1]  # a corner: reflections on both axes
    counts = np.zeros(shape)
    np.add.at(counts, (pts[:, 0], pts[:, 1]), 1.0)
    np.testing.assert_allclose(blur_points(pts, shape, sigma), gaussian_filter(counts, sigma), atol=1e-12)


def test_density_counts_each_pixel_once():
    pts = np.array([[5, 5], [5, 5], [10, 12]])
    fmap = np.zeros((40, 40))
    fmap[5, 5] = fmap[10, 12] = 1
    ref = gaussian_filter(fmap, 3.0)
    np.testing.assert_allclose(density_from_points(pts, (40, 40), 3.0), ref / ref.max(), atol=1e-12)


def test_one_based_conversion_drops_points_outside_never_clips():
    """Row 481 (1-based) is past the last row, -3 is negative, column 700 past the last: dropped, not
    moved onto the border (where they would score as fixations of border pixels)."""
    pts, keep = one_based_to_pixels([1, 480, 481.0, -3, 0.4, 1e300], [1, 640, 2, 700, 5, 3], (480, 640))
    assert pts.tolist() == [[0, 0], [479, 639]]
    assert keep.tolist() == [True, True, False, False, False, False]  # 0.4 - 1 = -0.6 -> row -1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 90, allow_nan=False), st.floats(-50, 90, allow_nan=False)), max_size=30),
       st.sampled_from([(40, 50), (17, 3)]))
def test_one_based_conversion_keeps_exactly_the_points_inside(points, shape):
    rows = np.array([p[0] for p in points])
    cols = np.array([p[1] for p in points])
    pts, keep = one_based_to_pixels(rows, cols, shape)
    twin = [(_matlab_round_twin(r - 1), _matlab_round_twin(c - 1)) for r, c in points]
    inside = [(int(r), int(c)) for r, c in twin if 0 <= r < shape[0] and 0 <= c < shape[1]]
    assert [tuple(p) for p in pts.tolist()] == inside
    assert keep.sum() == len(inside) and keep.size == len(points)


def test_one_based_conversion_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        one_based_to_pixels([np.nan], [1.0], (10, 10))


def test_downscales_are_uint8_over_255():
    rng = np.random.default_rng(0)
    x = model_input(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    y = model_target(rng.integers(0, 256, (480, 640), dtype=np.uint8))
    assert x.shape == (3, 96, 96) and x.dtype == np.float32 and y.shape == (48, 48) and y.dtype == np.float32
    for a in (x, y):
        q = a * np.float32(255)
        np.testing.assert_array_equal(np.rint(q) / np.float32(255), a)


def test_blur_points_salicon_size_and_reused_canvas():
    """SALICON size and sigma (kernel radius 76), corners included; the second call reuses the canvas."""
    rng = np.random.default_rng(3)
    for shape in [(480, 640), (600, 800)]:
        pts = np.concatenate([np.stack([rng.integers(0, shape[0], 150), rng.integers(0, shape[1], 150)], 1),
                              [[0, 0], [shape[0] - 1, shape[1] - 1], [0, shape[1] - 1]]])
        counts = np.zeros(shape)
        np.add.at(counts, (pts[:, 0], pts[:, 1]), 1.0)
        ref = gaussian_filter(counts, 19.0)
        for _ in range(2):
            np.testing.assert_allclose(blur_points(pts, shape, 19.0), ref, atol=1e-12)
            np.testing.assert_allclose(blur_points(pts, shape, 19.0, normalise=True), ref / ref.max(), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1.0, 1.5, 255.0]))
def test_to_uint8_map_rounds_and_clips(seed, scale):
    from salbench.data._maps import to_uint8_map

    d = np.random.default_rng(seed).normal(0.5, 0.5, (17, 23)) * scale
    expected = np.array([[min(max(int(np.rint(255 * v)), 0), 255) for v in row] for row in d], dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8_map(d), expected)
    with pytest.raises(ValueError, match="NaN"):
        to_uint8_map(np.full((2, 2), np.nan))


def _matlab_round_twin(v: float) -> float:
    from decimal import ROUND_HALF_UP, Decimal

    return float(Decimal(v).quantize(Decimal(1), rounding=ROUND_HALF_UP))  # exact: Decimal(float) is exact


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.floats(-1e6, 1e6, allow_nan=False),
                 st.integers(-10**6, 10**6).map(lambda k: k + 0.5),  # exact halves
                 st.sampled_from([0.49999999999999994, -0.49999999999999994, 2.5, -2.5, 0.5, -0.5, 1.5])))
def test_matlab_round_is_half_away_from_zero(v):
    from salbench.data._maps import matlab_round

    assert matlab_round(v) == _matlab_round_twin(v)


def test_one_based_conversion_rounds_halves_as_matlab():
    """A 1-based 2.5 is pixel round(1.5) = 2 (NumPy: 2); 3.5 -> round(2.5) = 3 (NumPy: 2)."""
    pts, keep = one_based_to_pixels([2.5, 3.5, 1.5, 0.5], [4.5, 5.5, 10.0, 1.0], (10, 10))
    assert pts.tolist() == [[2, 4], [3, 5], [1, 9]]
    assert keep.tolist() == [True, True, True, False]  # row 0.5 - 1 = -0.5 rounds away from zero to -1: dropped
    scaled, _ = one_based_to_pixels([1.0 + 2.5 / 0.5], [1.0], (10, 10), scale=(0.5, 1.0))
    assert scaled.tolist() == [[3, 0]]  # (v - 1) * scale = 2.5 -> 3
