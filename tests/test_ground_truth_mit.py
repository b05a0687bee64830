"""Contract B: mit_fixation_density = max(antonioGaussian(fixation map, 8), 0) as MIT computes it.

References: ../shared/refs/osie_mit_density.{npz,json} (Octave running MIT's code), a line-by-line
FFT transcription of antonioGaussian.m (tests/naive.py), and the closed form of the filter
(a Gaussian of sigma n*sqrt(log 2)/(sqrt(2)*pi*fc) on the padded n x n grid).
"""

from __future__ import annotations

import json
import math

import naive
import numpy as np
import pytest
from conftest import REFS, _need, u16

from salbench.metrics import cc, kld, sim
from salbench.protocols.ground_truth import mit_fixation_density

CASES = range(10)
KINDS = ("center", "contrast", "mix")


@pytest.fixture(scope="module")
def mit_density_refs(ref_vectors):
    npz = _need(REFS / "osie_mit_density.npz", "MIT density references")
    js = _need(REFS / "osie_mit_density.json", "MIT density reference values")
    with np.load(npz) as z:
        maps = {k: z[k] for k in z.files}
    return ref_vectors[0], maps, json.loads(js.read_text())


@pytest.mark.shared_data
@pytest.mark.parametrize("i", CASES)
def test_density_matches_octave_within_float32(mit_density_refs, i):
    arrays, maps, _ = mit_density_refs
    got = mit_fixation_density(arrays[f"fixmap_{i}"])
    ref = maps[f"mit_density_{i}"].astype(np.float64)
    assert got.dtype == np.float64 and got.shape == ref.shape and got.min() >= 0.0
    # the reference is float32: half an ulp of float32 is 6e-8 of the value
    assert np.abs(got - ref).max() <= 1e-7 * ref.max()


@pytest.mark.shared_data
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("i", CASES)
def test_mit_cc_sim_kldiv_against_mits_density(mit_density_refs, i, kind):
    arrays, _, expected = mit_density_refs
    g = mit_fixation_density(arrays[f"fixmap_{i}"])
    s = u16(arrays["center_u16"] if kind == "center" else arrays[f"pred_{kind}_u16_{i}"])
    want = expected["cases"][i]["mit_density"][kind]
    assert cc(s, g) == pytest.approx(want["CC"], rel=1e-9)
    assert sim(s, g) == pytest.approx(want["SIM"], rel=1e-9)
    assert kld(s, g) == pytest.approx(want["KLdiv"], rel=1e-9)


@pytest.mark.parametrize("shape", [(480, 640), (60, 64), (37, 50), (1, 9), (64, 30), (129, 70)])
@pytest.mark.parametrize("cutoff", [8.0, 3.0])
def test_matches_the_fft_transcription(shape, cutoff):
    # (60, 64) and (64, 30): little or no padding, so the circular boundary wraps mass around
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    f = rng.random(shape) < 0.05
    f.flat[rng.integers(0, f.size)] = True
    want = np.maximum(naive.antonio_gaussian(f, cutoff), 0.0)
    got = mit_fixation_density(f, cutoff)
    assert np.abs(got - want).max() <= 1e-13 * want.max()


def test_dense_and_sparse_paths_agree():
    rng = np.random.default_rng(7)
    f = rng.random((48, 64)) < 0.5  # dense: the two-product path
    assert f.sum() > 48 + 64
    want = np.maximum(naive.antonio_gaussian(f, 8.0), 0.0)
    assert np.abs(mit_fixation_density(f) - want).max() <= 1e-13 * want.max()


def test_one_fixation_is_a_gaussian_of_the_documented_sigma():
    f = np.zeros((480, 640), dtype=bool)
    f[240, 320] = True
    g = mit_fixation_density(f)
    n, fc = 1024, 8.0
    sigma = n * math.sqrt(math.log(2.0)) / (math.sqrt(2.0) * math.pi * fc)
    assert sigma == pytest.approx(24.0, abs=0.05)  # "about sigma 24 px at 480x640"
    for d in (0, 10, 24, 50):
        assert g[240, 320 + d] / g[240, 320] == pytest.approx(math.exp(-d * d / (2 * sigma**2)), rel=1e-9)
        assert g[240 + d, 320] == pytest.approx(g[240, 320 + d], rel=1e-12)
    # the continuous Gaussian's peak: 1 / (2 pi sigma^2) per fixation
    assert g.max() == pytest.approx(1.0 / (2 * math.pi * sigma**2), rel=1e-9)


def test_edge_cases_and_validation():
    assert not mit_fixation_density(np.zeros((30, 40))).any()  # no fixations: all zero
    assert mit_fixation_density(np.full((5, 5), 3)).shape == (5, 5)  # nonzero counts as fixated
    np.testing.assert_array_equal(mit_fixation_density(np.eye(6) * 7), mit_fixation_density(np.eye(6) > 0))
    with pytest.raises(ValueError, match="2-D"):
        mit_fixation_density(np.ones(5))
    with pytest.raises(ValueError, match="cutoff"):
        mit_fixation_density(np.ones((4, 4)), cutoff=0)
    with pytest.raises(ValueError, match="NaN"):
        mit_fixation_density(np.full((4, 4), np.nan))
