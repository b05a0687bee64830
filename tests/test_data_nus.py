"""NUS loader on real OSIE data, checked against the reference vectors in shared/refs."""

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
import scipy.io

from salbench.data import get_dataset
from salbench.data.nus import read_fixations_mat, split_names

pytestmark = pytest.mark.shared_data


def matlab_round_twin(a):
    """MATLAB's round (halves away from zero) through exact decimal arithmetic."""
    return np.vectorize(lambda v: float(Decimal(float(v)).quantize(Decimal(1), rounding=ROUND_HALF_UP)))(a)


@pytest.fixture(scope="session")
def osie_480(osie_dir):
    return get_dataset("nus", "all", data_dir=osie_dir, resolution="480x640")


def test_osie_counts(osie_dir):
    fix = read_fixations_mat(osie_dir / "fixations.mat")
    assert len(fix) == 700
    assert {len(v) for v in fix.values()} == {15}
    assert sum(len(x) for v in fix.values() for x, _ in v) == 98321
    tr, va = (get_dataset("nus", s, data_dir=osie_dir) for s in ("train", "val"))
    assert (len(tr), len(va)) == (500, 200)
    assert tr.names[-1] == "1500.jpg" and va.names[0] == "1501.jpg"


def test_osie_fix_x_is_the_column(osie_dir):
    """fix_x spans the 800-px width and fix_y the 600-px height (1-based): x -> col, y -> row."""
    fix = read_fixations_mat(osie_dir / "fixations.mat")
    xs = np.concatenate([x for v in fix.values() for x, _ in v])
    ys = np.concatenate([y for v in fix.values() for _, y in v])
    assert 600 < xs.max() <= 800 and 1 <= xs.min() < 2 and 450 < ys.max() <= 600 and 1 <= ys.min() < 2
    rec = get_dataset("nus", "all", data_dir=osie_dir)[0]
    name = rec.name
    x0, y0 = fix[name][0]
    assert rec.shape == (600, 800) and rec.meta["n_dropped"] == 0
    # MATLAB rounding: fix_x[0] = 395.5 is column 395 (0-based), not NumPy's even 394.
    assert x0[0] == 395.5 and rec.fixations[0, 1] == 395
    np.testing.assert_array_equal(rec.fixations[:len(x0)], np.stack([matlab_round_twin(y0 - 1),
                                                                      matlab_round_twin(x0 - 1)], 1))


def test_osie_matches_reference_vectors(osie_480, ref_vectors):
    """Fixations, fixation maps and density maps equal those of shared/refs (made independently)."""
    arrays, _ = ref_vectors
    for i, name in enumerate(arrays["names"]):
        rec = osie_480[osie_480.names.index(str(name))]
        assert rec.shape == (480, 640) and rec.image.shape == (480, 640, 3)
        ref_pts = np.stack([arrays[f"fix_rows_{i}"], arrays[f"fix_cols_{i}"]], 1)
        np.testing.assert_array_equal(np.sort(rec.fixations.view("i8,i8"), axis=0),
                                      np.sort(ref_pts.astype(np.int64).view("i8,i8"), axis=0))
        np.testing.assert_array_equal(rec.fixation_map, arrays[f"fixmap_{i}"] > 0)
        np.testing.assert_allclose(rec.density, arrays[f"gt_u16_{i}"] / 65535.0, atol=1e-5)
        np.testing.assert_array_equal(rec.y_original, arrays[f"y_original_{i}"])
        assert rec.observers is not None and len(np.unique(rec.observers)) == 15


def test_original_resolution_and_sigma(osie_dir):
    rec = get_dataset("nus", "val", data_dir=osie_dir)[0]
    assert rec.shape == (600, 800) and rec.meta["blur_sigma"] == pytest.approx(19 * 600 / 480)


def _fixation_maps(ds):
    # Fixation maps without decoding images (the AUC needs only fixations).
    from salbench.data._maps import fixation_map
    return [fixation_map(ds._points(i, (480, 640), (0.8, 0.8))[0], (480, 640)) for i in range(len(ds))]


def test_center_bias_auc_judd_on_osie_val(osie_dir, ref_vectors):
    """A centred Gaussian (the refs' `center` map) on OSIE val at 480x640, scored with AUC-Judd.

    Measured: 0.735 (train 0.739, all 0.738; even the blurred empirical train-fixation prior
    reaches only 0.740). The issue expected 0.75-0.85; OSIE is less center-biased than that,
    see the report. The assertion pins the measurement to catch loader regressions.
    """
    from salbench.metrics import auc_judd

    arrays, expected = ref_vectors
    center = arrays["center_u16"] / 65535.0
    # Cross-check on the 10 reference cases against the MIT code's AUC-Judd.
    ds_all = get_dataset("nus", "all", data_dir=osie_dir, resolution="480x640")
    ds_all.names = [str(n) for n in arrays["names"]]  # the 10 reference cases
    ref_maps = _fixation_maps(ds_all)
    mine = [auc_judd(center, m) for m in ref_maps]
    np.testing.assert_allclose(mine, [c["mit"]["center"]["AUC_Judd"] for c in expected["cases"]], atol=1e-6)
    val = get_dataset("nus", "val", data_dir=osie_dir, resolution="480x640")
    score = float(np.mean([auc_judd(center, m) for m in _fixation_maps(val)]))
    print(f"center-bias AUC-Judd on OSIE val (200 images, 480x640): {score:.4f}")
    assert 0.72 < score < 0.75


def _write_nus(tmp_path, entries, images):
    from PIL import Image

    (tmp_path / "stimuli").mkdir()
    for name in images:
        Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(tmp_path / "stimuli" / name)
    dt = [("img", "O"), ("subjects", "O")]
    arr = np.zeros((len(entries),), dtype=dt)
    for k, (img, subjects) in enumerate(entries):
        subj = np.zeros((len(subjects),), dtype=[("fix_x", "O"), ("fix_y", "O"), ("fix_duration", "O")])
        for j, (x, y) in enumerate(subjects):
            subj[j] = (np.asarray(x, float), np.asarray(y, float), np.full(np.size(x), 200.0))
        arr[k] = (img, subj)
    scipy.io.savemat(tmp_path / "fixations.mat", {"fixations": arr})
    return tmp_path


def test_tiny_nus_scalar_observer_and_dropping(tmp_path):
    """x = 45 on a 40-px-wide image is dropped (it used to be clipped onto column 39), with its observer entry."""
    root = _write_nus(tmp_path, [("a.png", [([1.0, 40.0, 45.0], [1.0, 30.0, 2.0]), (20.0, 10.0)])], ["a.png"])
    ds = get_dataset("nus", "all", data_dir=root)
    rec = ds[0]
    assert rec.fixations.tolist() == [[0, 0], [29, 39], [9, 19]]
    assert rec.observers.tolist() == [0, 0, 1]
    assert rec.meta["n_dropped"] == 1 and rec.meta["n_recorded"] == 4
    assert not rec.fixation_map[:, 39].any() or rec.fixation_map[29, 39]  # nothing moved onto the border
    assert int(rec.fixation_map[1, 39]) == 0
    assert ds.stats(0) == {"shape": (30, 40), "n_fixations": 3, "n_observers": 2}
    assert ds.dropped_fixations(0) == 1


def test_count_mismatch_names_file(tmp_path):
    root = _write_nus(tmp_path, [("a.png", [([1.0], [1.0])]), ("b.png", [([1.0], [1.0])])], ["a.png"])
    with pytest.raises(ValueError, match=r"fixations\.mat.*mismatch.*b\.png"):
        get_dataset("nus", "all", data_dir=root)


def test_mat_without_fields(tmp_path):
    (tmp_path / "stimuli").mkdir()
    scipy.io.savemat(tmp_path / "fixations.mat", {"something": np.zeros(3)})
    with pytest.raises(ValueError, match="no 'fixations' variable"):
        get_dataset("nus", "all", data_dir=tmp_path)


def test_unreadable_image(tmp_path):
    root = _write_nus(tmp_path, [("a.png", [([1.0], [1.0])])], ["a.png"])
    (root / "stimuli" / "a.png").write_bytes(b"not an image")
    ds = get_dataset("nus", "all", data_dir=root)
    with pytest.raises(ValueError, match=r"a\.png"):
        ds[0]


def test_split_rule():
    names = [f"{i:03d}.jpg" for i in range(14)]
    assert split_names(names, "val") == names[10:] and split_names(names, "train") == names[:10]


def test_ground_truth_and_points_without_decoding(osie_480, monkeypatch):
    """ground_truth / fixation_points read the fixations and the image header only; same values."""
    from salbench.data import nus as nus_mod

    full = [osie_480[i] for i in (0, 5)]
    dens = [r.density.copy() for r in full]

    def no_image(*a, **k):
        raise AssertionError("decoded the image")

    monkeypatch.setattr(nus_mod, "load_image", no_image)
    for k, i in enumerate((0, 5)):
        gt = osie_480.ground_truth(i)
        assert gt.image is None and gt.x96 is None and not gt.is_computed("density")
        np.testing.assert_array_equal(osie_480.fixation_points(i), full[k].fixations)
        np.testing.assert_array_equal(gt.fixations, full[k].fixations)
        np.testing.assert_array_equal(gt.observers, full[k].observers)
        np.testing.assert_array_equal(gt.density, dens[k])
        np.testing.assert_array_equal(gt.y48, full[k].y48)


def test_native_eye_layout(tmp_path):
    root = _write_nus(tmp_path, [("a.png", [([1.0, 40.0], [1.0, 30.0])])], ["a.png"])
    (root / "eye").mkdir()
    (root / "fixations.mat").rename(root / "eye" / "fixations.mat")
    ds = get_dataset("nus", "all", data_dir=root)
    assert ds.params["fixations_file"] == "eye/fixations.mat" and ds[0].fixations.tolist() == [[0, 0], [29, 39]]
    (root / "eye" / "fixations.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"no fixations\.mat or eye/fixations\.mat"):
        get_dataset("nus", "all", data_dir=root)
