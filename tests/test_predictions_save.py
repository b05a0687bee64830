"""save_maps: the documented quantisation, exact read-back, names, atomic files.

A saved map holds integer levels 0..255 (0..65535 at 16 bits); it reads back as
level / 255 (level / 65535), MATLAB's im2double, which is what ``saved_values`` returns.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from scipy.ndimage import gaussian_filter

from salbench.predictions import map_filename, open_predictions, save_map, save_maps, saved_values

RNG = np.random.default_rng(2)


@pytest.mark.parametrize("m, expected", [
    ([[0.0, 0.5, 1.0]], [[0, 128, 255]]),                    # 127.5 rounds half up, as MATLAB's uint8()
    ([[1.0, 2.0], [3.0, 4.0]], [[64, 128], [191, 255]]),     # by scale: 255 * m / max, min not subtracted
    ([[-1.0, 0.0, 1.0]], [[0, 128, 255]]),                   # negatives: shifted by -min first
    ([[0.0, 0.0]], [[0, 0]]),                                # zeros stay zeros
    ([[0.3, 0.3]], [[255, 255]]),                            # positive constant: all 255
    ([[0.0, 5e-324]], [[0, 255]]),                           # subnormal maximum: no overflow
])
def test_quantisation_rule(m, expected, tmp_path):
    out = saved_values(np.array(m))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.array(expected) / 255.0)   # read back as im2double does
    save_map(tmp_path / "m.png", np.array(m))
    with Image.open(tmp_path / "m.png") as im:                      # the file holds the levels themselves
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), expected)


def test_16bit(tmp_path):
    np.testing.assert_array_equal(saved_values(np.array([[0.0, 0.5, 1.0]]), bits=16),
                                  [[0, 32768 / 65535, 1]])
    save_map(tmp_path / "m.png", np.array([[0.0, 0.5, 1.0]]), bits=16)
    with Image.open(tmp_path / "m.png") as im:
        np.testing.assert_array_equal(np.asarray(im), [[0, 32768, 65535]])
    with pytest.raises(ValueError, match="bits must be 8 or 16"):
        saved_values(np.ones((2, 2)), bits=12)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
              elements=st.floats(0, 1e6, allow_subnormal=False)))
def test_within_half_a_level_of_the_scaled_map(m):
    q = saved_values(m)
    levels = np.round(q * 255)
    assert np.array_equal(q, levels / 255) and levels.min() >= 0 and levels.max() <= 255
    if m.max() > 0:
        assert q.max() == 1
        assert np.abs(levels - 255 * m / m.max()).max() <= 0.5 + 1e-9


def test_scale_rule_keeps_offset_sensitive_metrics(tmp_path):
    """Why by scale: KLD divides by the sum, so min-max quantisation would change it; this rule does not."""
    from salbench.metrics import cc, kld

    m = 0.6 + gaussian_filter(RNG.random((60, 80)), 4)        # minimum well above 0
    g = gaussian_filter(RNG.random((60, 80)), 6)
    minmax = np.round(255 * (m - m.min()) / (m.max() - m.min()))
    q = saved_values(m)
    assert abs(kld(q, g) - kld(m, g)) < 1e-4 < 0.05 < abs(kld(minmax, g) - kld(m, g))
    assert abs(cc(q, g) - cc(m, g)) < 1e-3


def test_round_trip_reads_back_saved_values_exactly(tmp_path):
    names = ["a.jpg", "COCO_val2014_000000000042.jpg", "sub/c.png", "noext"]
    maps = [RNG.random((30, 40)), RNG.random((12, 9)) * 1e-7, RNG.random((5, 5)) - 0.5, np.zeros((4, 4))]
    paths = save_maps(tmp_path / "out", names, maps)
    assert [p.relative_to(tmp_path / "out").as_posix() for p in paths] == [
        "a.png", "COCO_val2014_000000000042.png", "sub/c.png", "noext.png"]
    assert all(Image.open(p).mode == "L" for p in paths)
    m = open_predictions(tmp_path / "out").match(names)
    for k, x in enumerate(maps):
        np.testing.assert_array_equal(m.load(k), saved_values(x))
    assert not [p for p in (tmp_path / "out").rglob(".*")]    # no temporary files left
    paths16 = save_maps(tmp_path / "o16", names[:1], maps[:1], bits=16)
    assert Image.open(paths16[0]).mode == "I;16"
    np.testing.assert_array_equal(open_predictions(tmp_path / "o16").match(names[:1]).load(0),
                                  saved_values(maps[0], bits=16))


def test_overwrites_and_accepts_a_generator(tmp_path):
    save_maps(tmp_path, ["x.jpg"], [np.ones((3, 3))])
    save_maps(tmp_path, ["x.jpg"], (m for m in [np.eye(3)]))
    np.testing.assert_array_equal(open_predictions(tmp_path).match(["x.jpg"]).load(0), np.eye(3))


def test_names_checked_before_writing(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(ValueError, match=r"'x\.jpg' and 'x\.png' would both be saved as 'x\.png'"):
        save_maps(out, ["x.jpg", "x.png"], [np.ones((2, 2))] * 2)
    with pytest.raises(ValueError, match="would both be saved"):
        save_maps(out, ["A.jpg", "a.jpg"], [np.ones((2, 2))] * 2)   # collide on case-insensitive file systems
    assert not out.exists()
    for bad in ("../x.jpg", "/abs.jpg", "", "a//b.jpg"):
        with pytest.raises(ValueError, match="cannot be a file name"):
            map_filename(bad)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is not a directory"):
        save_maps(tmp_path / "file", ["x.jpg"], [np.ones((2, 2))])


def test_bad_maps_and_counts(tmp_path):
    with pytest.raises(ValueError, match="map of 'b.jpg': map contains NaN"):
        save_maps(tmp_path, ["a.jpg", "b.jpg"], [np.ones((2, 2)), np.full((2, 2), np.nan)])
    with pytest.raises(ValueError, match="3 maps for 2 image names"):
        save_maps(tmp_path, ["a.jpg", "b.jpg"], [np.ones((2, 2))] * 3)
    with pytest.raises(ValueError, match="1 maps for 2 image names"):
        save_maps(tmp_path, ["a.jpg", "b.jpg"], iter([np.ones((2, 2))]))
    with pytest.raises(ValueError, match="expected a non-empty 2-D map"):
        save_maps(tmp_path, ["a.jpg"], [np.ones((2, 2, 3))])
