"""The aspect-ratio check protocols use to count stretched maps (issue 19)."""

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from salbench.predictions.aspect import aspect_distortion, aspect_mismatch


@pytest.mark.parametrize("pred, gt, stretched", [
    ((480, 640), (480, 640), False),
    ((60, 80), (480, 640), False),
    ((37, 49), (480, 640), False),      # 480x640 scaled by 0.0768, each side rounded
    ((481, 640), (480, 640), False),    # within 2 %
    ((100, 37), (480, 640), True),      # the example
    ((1, 1), (480, 640), True),         # the example: too small to claim rounding
    ((48, 48), (480, 640), True),       # square maps for a 4:3 stimulus
    ((640, 480), (480, 640), True),     # transposed
    ((7, 9), (480, 640), True),         # 3.7 % off and too small to claim rounding
    ((3, 100, 37), (480, 640), True),   # a stack: the last two sides
])
def test_examples(pred, gt, stretched):
    assert aspect_mismatch(pred, gt) is stretched


def test_distortion_values():
    assert aspect_distortion((60, 80), (480, 640)) == 0.0
    assert aspect_distortion((48, 48), (480, 640)) == pytest.approx(1 / 3)
    assert aspect_distortion((100, 37), (480, 640)) == pytest.approx((100 * 640) / (37 * 480) - 1)


@given(st.integers(1, 4000), st.integers(1, 4000), st.fractions(Fraction(1, 100), Fraction(4)))
def test_any_rounded_rescale_of_a_stimulus_is_accepted(h, w, s):
    """Twin: a map whose sides are round(side * s) for one s (and >= 8 px) is never called stretched."""
    ph, pw = (int(Fraction(v) * s + Fraction(1, 2)) for v in (h, w))  # round half up, exactly
    if min(ph, pw) >= 8:
        assert not aspect_mismatch((ph, pw), (h, w))


@given(st.integers(8, 2000), st.integers(8, 2000), st.integers(8, 2000), st.integers(8, 2000))
def test_symmetric_and_tolerance_monotone(a, b, c, d):
    assert aspect_distortion((a, b), (c, d)) == pytest.approx(aspect_distortion((c, d), (a, b)))
    if aspect_mismatch((a, b), (c, d), tol=0.5):
        assert aspect_mismatch((a, b), (c, d), tol=0.02)


@pytest.mark.parametrize("bad", [(0, 5), (5,), "480x640", (3, -1)])
def test_bad_shapes(bad):
    with pytest.raises(ValueError, match="shape"):
        aspect_mismatch(bad, (480, 640))
