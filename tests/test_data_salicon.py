"""SALICON official layout: .mat files written here in the documented layout, and the real JSON examples."""

import json
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
import scipy.io
from PIL import Image

from salbench.data import dataset_splits, get_dataset


def matlab_round_twin(a):
    """MATLAB's round (halves away from zero) through exact decimal arithmetic."""
    return np.vectorize(lambda v: float(Decimal(float(v)).quantize(Decimal(1), rounding=ROUND_HALF_UP)))(a)


def _gaze(observers):
    g = np.zeros((len(observers),), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")])
    for j, (loc, fix) in enumerate(observers):
        loc = np.asarray(loc, float).reshape(-1, 2)
        g[j] = (loc, np.arange(len(loc), dtype=float), np.asarray(fix, float).reshape(-1, 2))
    return g


def _write_salicon(root, split="val", n=2, with_maps=False, shape=(48, 64)):
    for i in range(n):
        stem = f"COCO_{split}2014_{i:012d}"
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "fixations" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full(shape + (3,), 60 + i, np.uint8)).save(root / "images" / split / f"{stem}.jpg")
        # observer 0: fixations [x y] 1-based; raw locations include one outside the image.
        obs = [([[1, 1], [70, 10], [5, 5]], [[1, 1], [64, 48]]), ([[3, 4]], [[10, 20]])]
        scipy.io.savemat(root / "fixations" / split / f"{stem}.mat",
                         {"image": stem, "resolution": np.array([shape[0], shape[1]]), "gaze": _gaze(obs)})
        if with_maps:
            (root / "maps" / split).mkdir(parents=True, exist_ok=True)
            m = np.zeros(shape, np.uint8)
            m[10, 10] = 200
            Image.fromarray(m).save(root / "maps" / split / f"{stem}.png")
    return root


def test_mat_fixations_field(tmp_path):
    root = _write_salicon(tmp_path)
    ds = get_dataset("salicon", "val", data_dir=root)
    assert len(ds) == 2 and dataset_splits("salicon", root) == ["val"]
    rec = ds[0]
    assert rec.shape == (48, 64)
    assert rec.fixations.tolist() == [[0, 0], [47, 63], [19, 9]]  # [x y] 1-based -> (row, col) 0-based
    assert rec.observers.tolist() == [0, 0, 1]
    assert rec.meta["n_dropped"] == 0 and rec.meta["density_from"] == "fixations"
    assert rec.density.max() == 1.0 and rec.y_original.dtype == np.uint8


def test_mat_location_field_drops_points_outside(tmp_path):
    ds = get_dataset("salicon", "val", data_dir=_write_salicon(tmp_path), fixations="location")
    rec = ds[0]
    assert rec.fixations.tolist() == [[0, 0], [4, 4], [3, 2]]  # (9, 70) of a 64-px-wide image: dropped, not clipped
    assert rec.meta["n_dropped"] == 1 and ds.dropped_fixations(0) == 1


def test_maps_png_used_when_present(tmp_path):
    rec = get_dataset("salicon", "val", data_dir=_write_salicon(tmp_path, with_maps=True))[0]
    assert rec.meta["density_from"] == "png" and rec.y_original[10, 10] == 200 and rec.density[10, 10] == 1.0


def test_mat_missing_field(tmp_path):
    root = _write_salicon(tmp_path, n=1)
    path = next((root / "fixations" / "val").glob("*.mat"))
    scipy.io.savemat(path, {"image": "x", "gaze": np.zeros((1,), dtype=[("location", "O")])})
    ds = get_dataset("salicon", "val", data_dir=root)
    with pytest.raises(ValueError, match=r"\.mat.*no 'fixations' field"):
        ds[0]


def test_count_mismatch(tmp_path):
    root = _write_salicon(tmp_path, n=2)
    next((root / "fixations" / "val").glob("*.mat")).unlink()
    with pytest.raises(ValueError, match="mismatch"):
        get_dataset("salicon", "val", data_dir=root)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        get_dataset("salicon", "val", data_dir=tmp_path / "nope")


@pytest.mark.shared_data
def test_real_json_examples(salicon_examples_dir):
    ann = salicon_examples_dir / "annotations"
    for split, order, fname in (("train", "rowcol", "fixations_train2014examples.json"),
                                ("val", "xy", "fixations_val2014_examples.json")):
        ds = get_dataset("salicon", split, data_dir=salicon_examples_dir)
        assert len(ds) == 10
        data = json.loads((ann / fname).read_text())
        rec = ds[0]
        img_id = next(im["id"] for im in data["images"] if im["file_name"] == rec.name)
        pairs = [np.asarray(a["fixations"], float) for a in data["annotations"] if a["image_id"] == img_id]
        raw = np.concatenate(pairs)
        assert rec.meta["pair_order"] == order and rec.shape == (480, 640)
        assert rec.meta["n_recorded"] == len(raw) and len(rec.observers) == len(rec.fixations)
        # Independent conversion: train 1-based [row, col]; val 0-based [x, y] rounded as
        # MATLAB does (halves away from zero; decimal's ROUND_HALF_UP on the exact float).
        rc = raw - 1 if order == "rowcol" else matlab_round_twin(raw[:, ::-1])
        outside = ((rc < 0) | (rc > [479, 639])).any(1)
        np.testing.assert_array_equal(rec.fixations, rc[~outside].astype(np.int64))
        assert rec.meta["n_dropped"] == outside.sum()
        assert rec.image.shape == (480, 640, 3)


def test_ground_truth_and_points_without_decoding(tmp_path, monkeypatch):
    from salbench.data import salicon as salicon_mod

    ds = get_dataset("salicon", "val", data_dir=_write_salicon(tmp_path, with_maps=True))
    full = ds[0]
    y = full.y_original.copy()

    def no_image(*a, **k):
        raise AssertionError("decoded the image")

    monkeypatch.setattr(salicon_mod, "load_image", no_image)
    gt = ds.ground_truth(0)
    assert gt.image is None and not gt.is_computed("y_original")
    np.testing.assert_array_equal(ds.fixation_points(0), full.fixations)
    np.testing.assert_array_equal(gt.y_original, y)
    assert gt.density[10, 10] == 1.0


def test_mat_halves_round_away_from_zero(tmp_path):
    root = _write_salicon(tmp_path, n=1)
    path = next((root / "fixations" / "val").glob("*.mat"))
    scipy.io.savemat(path, {"image": "x", "resolution": np.array([48, 64]),
                            "gaze": _gaze([([[1, 1]], [[2.5, 3.5], [4.5, 1.5]])])})
    rec = get_dataset("salicon", "val", data_dir=root)[0]
    assert rec.fixations.tolist() == [[3, 2], [1, 4]]  # np.round: [[2, 2], [0, 4]]
