"""EMD (salbench.metrics.transport), both variants: MIT's values, twins, closed forms, MATLAB's resize.

References no one here derived from the code under test:
- ``variant="mit"``: MIT's own EMD.m + FastEMD under Octave on 10 OSIE cases
  (../shared/refs/osie_mit_emd.json), and a transcription of EMD.m and FastEMD's
  emd_hat_gd_metric with an exact integer min-cost flow (networkx; tests/naive.py ``emd_mit``);
- ``variant="exact"``: POT's ``ot.emd2`` on the full problem (tests/naive.py ``emd_pot``) and
  scipy's HiGHS linear program (``emd_lp``) on the same distributions;
- transport closed forms (a point mass moved by d costs d; a translation by v costs |v|) and a
  per-pixel transcription of MATLAB ``imresize``'s contributions (tests/naive.py ``imresize``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import naive
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import REFS, _need, u16

from salbench.metrics import METRICS, emd, is_constant_map
from salbench.metrics.transport import EMD_VARIANTS, matlab_resize_matrix

VARIANTS = pytest.mark.parametrize("variant", EMD_VARIANTS)


def point(shape, r, c, mass=1.0):
    a = np.zeros(shape)
    a[r, c] = mass
    return a


# ----------------------------------------------------------------------------- MIT's values
KINDS = ("center", "contrast", "mix")


@pytest.fixture(scope="module")
def mit_emd_refs(ref_vectors):
    js = _need(REFS / "osie_mit_emd.json", "MIT EMD reference values")
    npz = _need(REFS / "osie_mit_density.npz", "MIT density references")
    with np.load(npz) as z:
        maps = {k: z[k].astype(np.float64) for k in z.files}
    return ref_vectors[0], maps, json.loads(js.read_text())["cases"]


def ref_prediction(arrays, i, kind):
    return u16(arrays["center_u16" if kind == "center" else f"pred_{kind}_u16_{i}"])


@pytest.mark.shared_data
@pytest.mark.parametrize("i", range(10))
def test_mit_variant_reproduces_mits_emd(mit_emd_refs, i):
    # Target 1e-9 relative; reached: 3.4e-16 at worst over the 30 values.
    arrays, maps, cases = mit_emd_refs
    for kind in KINDS:
        got = emd(ref_prediction(arrays, i, kind), maps[f"mit_density_{i}"], variant="mit")
        assert got == pytest.approx(cases[i][kind], rel=1e-12, abs=0), kind


@pytest.mark.shared_data
def test_exact_variant_is_the_clipped_transport_not_mits_number(mit_emd_refs):
    # What "mit" adds: the shrink leaves negative cells (FastEMD keeps them as signed mass)
    # and FastEMD rounds to integers; without both, up to ~1.2e-3 relative away.
    arrays, maps, cases = mit_emd_refs
    rel = [abs(emd(ref_prediction(arrays, i, k), maps[f"mit_density_{i}"], variant="exact") - cases[i][k]) / cases[i][k]
           for i in range(10) for k in KINDS]
    assert 1e-4 < max(rel) < 2e-3
    cells = matlab_resize_matrix(480, 15, 1 / 32) @ maps["mit_density_0"] @ matlab_resize_matrix(640, 20, 1 / 32).T
    assert (cells < 0).sum() > 10 and cells.min() > -1e-4


@pytest.mark.shared_data
def test_the_fastemd_twin_itself_reproduces_mit(mit_emd_refs):
    pytest.importorskip("networkx")
    arrays, maps, cases = mit_emd_refs
    got = naive.emd_mit(ref_prediction(arrays, 4, "mix"), maps["mit_density_4"])
    assert got == pytest.approx(cases[4]["mix"], rel=1e-12, abs=0)


# ----------------------------------------------------------------------------- closed forms
@VARIANTS
@pytest.mark.parametrize("dr, dc", [(0, 1), (0, 3), (2, 0), (3, 4), (1, 1)])
def test_point_mass_moved_by_d_costs_d(variant, dr, dc):
    a = point((5, 6), 0, 0)
    b = point((5, 6), dr, dc)
    d = math.sqrt(dr * dr + dc * dc)
    if variant == "mit":  # FastEMD rounds the distance to 1e-6 of the largest (sqrt(41) here)
        factor = 1e6 / math.sqrt(41.0)
        d = math.floor(d * factor + 0.5) / factor
    assert emd(a, b, downsample=1, variant=variant) == pytest.approx(d, rel=1e-15, abs=0)


@VARIANTS
def test_identical_maps_cost_nothing_and_scale_does_not_matter(variant):
    rng = np.random.default_rng(0)
    a = rng.random((4, 5))
    assert emd(a, a, downsample=1, variant=variant) == 0.0
    assert emd(7.0 * a, a, downsample=1, variant=variant) == pytest.approx(0.0, abs=1e-12)


@VARIANTS
def test_symmetric(variant):
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 4)), rng.random((3, 4)) ** 4
    assert emd(a, b, downsample=1, variant=variant) == pytest.approx(emd(b, a, downsample=1, variant=variant),
                                                                     rel=1e-12)


def test_split_mass_and_uniform_closed_forms():
    # half the mass goes 2 cells down, half 2 cells right: 2
    b = point((3, 3), 2, 0, 0.5) + point((3, 3), 0, 2, 0.5)
    assert emd(point((3, 3), 0, 0), b, downsample=1, variant="exact") == pytest.approx(2.0, abs=1e-12)
    # a point at the end of a 1x3 strip against the uniform strip: (0 + 1 + 2) / 3
    assert emd(np.ones((1, 3)), point((1, 3), 0, 0), downsample=1, variant="exact") == pytest.approx(1.0, abs=1e-12)
    # the same under FastEMD's integers: 1/3 of the mass is 333333 units, distances exact
    assert emd(np.ones((1, 3)), point((1, 3), 0, 0), downsample=1, variant="mit") == pytest.approx(
        (333333 * 1 + 333333 * 2) / 1e6, rel=1e-15)


@pytest.mark.parametrize("shift, expected", [((0, 32), 1.0), ((32, 0), 1.0), ((32, 64), math.sqrt(5.0))])
def test_translation_by_whole_cells_at_the_mit_scale(shift, expected):
    # MIT's 1/32 resize maps a shift of 32 pixels to a shift of exactly one cell (away from
    # the borders, where mirroring would differ): the downsampled maps are translates.
    yy, xx = np.mgrid[0:480, 0:640]
    blob = lambda r, c: np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 20.0**2))  # noqa: E731
    a = blob(200, 250)
    b = blob(200 + shift[0], 250 + shift[1])
    assert emd(a, b, variant="exact") == pytest.approx(expected, abs=1e-9)
    # mit: the shrink's negative cells are signed mass (1.8% of it here). Moving the first
    # moment by |v| costs at least |v| (duality with the 1-Lipschitz f(x) = x . v/|v|); moving
    # every cell, negative ones too, along v costs |v| * sum|cells| / sum(cells). FastEMD's
    # integer rounding: 1e-6 relative.
    cells = matlab_resize_matrix(480, 15, 1 / 32) @ a @ matlab_resize_matrix(640, 20, 1 / 32).T
    upper = expected * np.abs(cells).sum() / cells.sum()
    assert expected * (1 - 1e-5) <= emd(a, b, variant="mit") <= upper * (1 + 1e-5)


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


# ----------------------------------------------------------------------------- twins
MAPS = st.data()


def draw_maps(data, max_side=12, low=0.0):
    shape = data.draw(st.tuples(st.integers(1, max_side), st.integers(2, max_side)))
    elems = st.floats(low, 1, allow_subnormal=False)
    a = data.draw(hnp.arrays(np.float64, shape, elements=elems))
    b = data.draw(hnp.arrays(np.float64, shape, elements=elems))
    return a, b


def same(got, want, rel):
    return (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=rel, abs=1e-12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MAPS)
def test_exact_matches_linear_program_twin_full_resolution(data):
    a, b = draw_maps(data, max_side=5)
    assert same(emd(a, b, downsample=1, variant="exact"), naive.emd(a, b, downsample=1), rel=1e-7)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MAPS, st.sampled_from([1, 2, 3, 4]))
def test_exact_matches_pot_on_the_full_problem(data, downsample):
    # salbench moves only each cell's excess; POT here solves every cell to every cell.
    a, b = draw_maps(data, max_side=12, low=-1.0)
    want = naive.emd(a, b, downsample=downsample, solver=naive.emd_pot)
    assert same(emd(a, b, downsample=downsample, variant="exact"), want, rel=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MAPS, st.sampled_from([1, 2, 3, 4]))
def test_mit_matches_the_fastemd_transcription(data, downsample):
    # Shrinking sharp random maps leaves negative cells: the signed path is exercised.
    pytest.importorskip("networkx")
    a, b = draw_maps(data, max_side=12, low=-1.0)
    want = naive.emd_mit(a, b, downsample=downsample)
    assert same(emd(a, b, downsample=downsample, variant="mit"), want, rel=1e-13)


@pytest.mark.parametrize("shape", [(64, 96), (100, 70), (33, 65)])
@pytest.mark.parametrize("seed", range(2))
def test_both_variants_match_their_twins_through_mits_downsampling(shape, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    g = np.zeros(shape)
    for _ in range(4):  # a density: a few blobs
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        g += np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 9.0**2))
    s = rng.random(shape) ** 2
    exact = emd(s, g, variant="exact")
    assert exact == pytest.approx(naive.emd(s, g), rel=1e-7, abs=1e-9)
    assert exact == pytest.approx(naive.emd(s, g, solver=naive.emd_pot), rel=1e-12)
    pytest.importorskip("networkx")
    assert emd(s, g, variant="mit") == pytest.approx(naive.emd_mit(s, g), rel=1e-13)


@pytest.mark.parametrize("shape, downsample", [((600, 800), 32), ((480, 640), 32), ((200, 300), 8)])
def test_exact_matches_pot_at_benchmark_sizes(shape, downsample):
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    g = sum(np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 30.0**2))
            for r, c in zip(rng.integers(0, shape[0], 6), rng.integers(0, shape[1], 6)))
    s = np.exp(-((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2) / (2 * (shape[0] / 4) ** 2))
    from salbench.metrics._imresize import resize

    out = (math.ceil(shape[0] / downsample), math.ceil(shape[1] / downsample))
    p = np.maximum(resize(g, out, (1 / downsample,) * 2), 0)
    q = np.maximum(resize(s, out, (out[0] / shape[0], out[1] / shape[1])), 0)
    want = naive.emd_pot(p / p.sum(), q / q.sum())
    assert emd(s, g, downsample=downsample, variant="exact") == pytest.approx(want, rel=1e-12)


# ----------------------------------------------------------------------------- degenerate inputs
@VARIANTS
def test_constant_map_is_the_uniform_distribution(variant):
    rng = np.random.default_rng(3)
    g = rng.random((64, 96)) ** 3
    uniform = emd(np.ones((64, 96)), g, variant=variant)
    assert emd(np.full((64, 96), 0.7), g, variant=variant) == uniform
    assert emd(np.zeros((64, 96)), g, variant=variant) == uniform
    noisy = 0.7 + 1e-16 * rng.standard_normal((64, 96))  # a resized constant: a few ulps of spread
    assert is_constant_map(noisy) and emd(noisy, g, variant=variant) == uniform
    assert METRICS["emd"].constant_map == "uniform"


@VARIANTS
def test_density_without_mass_is_nan_and_constant_density_is_uniform(variant):
    s = np.random.default_rng(4).random((40, 50))
    assert math.isnan(emd(s, np.zeros((40, 50)), variant=variant))
    assert math.isnan(emd(s, np.full((40, 50), -2.0), variant=variant))
    assert emd(s, np.ones((40, 50)), variant=variant) == emd(s, np.full((40, 50), 3.0), variant=variant)


@VARIANTS
def test_negative_values_are_shifted_like_kld(variant):
    s = np.random.default_rng(5).random((3, 4))
    g = np.random.default_rng(6).random((3, 4))
    assert emd(s - 2.0, g, downsample=1, variant=variant) == pytest.approx(
        emd(s - s.min(), g, downsample=1, variant=variant), abs=1e-12)


@VARIANTS
def test_a_single_cell_costs_nothing(variant):
    rng = np.random.default_rng(8)
    assert emd(rng.random((20, 30)), rng.random((20, 30)), variant=variant) == 0.0  # 1x1 cell at 1/32
    assert emd(rng.random((1, 1)), rng.random((1, 1)), downsample=1, variant=variant) == 0.0


@VARIANTS
@pytest.mark.parametrize("power", [-1000, -60, 60, 1000])
def test_power_of_two_scales_change_no_bit_and_extremes_stay_finite(variant, power):
    # Maps beyond 2**+-900 are rescaled by a power of two first: exact, so no bit changes.
    rng = np.random.default_rng(9)
    s, g = rng.random((64, 96)) - 0.3, rng.random((64, 96)) ** 4
    base = emd(s, g, variant=variant)
    assert emd(np.ldexp(s, power), g, variant=variant) == base
    assert emd(s, np.ldexp(g, power), variant=variant) == base
    huge = s * 1.7e308  # min -5e307, max 1.2e308: shifting unscaled would overflow
    assert np.isfinite(huge).all() and emd(huge, g, variant=variant) == pytest.approx(base, rel=1e-12)


def test_validation():
    with pytest.raises(ValueError, match="downsample"):
        emd(np.ones((4, 4)), np.ones((4, 4)), downsample=0)
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(4, 5\)"):
        emd(np.ones((4, 4)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="saliency contains NaN"):
        emd(np.full((4, 4), np.nan), np.ones((4, 4)))
    with pytest.raises(ValueError, match="variant must be one of 'exact', 'mit', got 'fastemd'"):
        emd(np.ones((4, 4)), np.ones((4, 4)), variant="fastemd")


def test_registry_entry():
    m = METRICS["emd"]
    assert m.func is emd and not m.higher_is_better and m.needs == ("density",) and m.protocols == ("mit",)
    assert m.kernel is None and m.params == {"variant": "emd_variant"} and not m.sampled


# ----------------------------------------------------------------------------- POT import
def _run(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POT_BACKEND")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_pot_is_imported_lazily_without_torch_and_the_environment_is_restored():
    code = ("import os, sys; import numpy as np; from salbench.metrics import emd; "
            "print('ot' in sys.modules, end=' '); emd(np.eye(4), np.ones((4, 4)), downsample=1); "
            "print('ot' in sys.modules, 'torch' in sys.modules, [k for k in os.environ if k.startswith('POT_')])")
    assert _run(code) == "False True False []"


@pytest.mark.slow
def test_a_process_that_loaded_torch_keeps_pots_torch_backend():
    code = ("import torch, numpy as np; from salbench.metrics import emd; "
            "emd(np.eye(4), np.ones((4, 4)), downsample=1); import ot; "
            "print(any(type(b).__name__ == 'TorchBackend' for b in ot.backend.get_backend_list()))")
    assert _run(code) == "True"
