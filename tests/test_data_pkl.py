"""Coursework pickles: format detection, bad files, and the synthetic -> pkl -> load round trip."""

import pickle

import numpy as np
import pytest

from salbench.cli import main
from salbench.data import get_dataset
from salbench.data.export import export_pickles


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("pkl")
    src = {s: get_dataset("synthetic", s, preset="small", n_images=3) for s in ("train", "val")}
    export_pickles(src, out)
    return src, out


def test_round_trip_bit_exact(exported):
    src, out = exported
    for split in ("train", "val"):
        back = get_dataset("salicon-pkl", split, data_dir=out)
        assert back.names == src[split].names
        for a, b in zip(src[split], back):
            np.testing.assert_array_equal(a.x96, b.x96)
            np.testing.assert_array_equal(a.y48, b.y48)
            assert a.x96.dtype == b.x96.dtype == np.float32
            if split == "val":
                np.testing.assert_array_equal(a.y_original, b.y_original)
                np.testing.assert_array_equal(a.image, b.image)
                np.testing.assert_array_equal(b.fixation_map, a.y_original > 0)
                np.testing.assert_array_equal(b.density, a.y_original / 255.0)
    assert back.params["formats"] == {"X": "float 0..1", "y": "float 0..1", "y_original": "uint8",
                                      "X_original": "uint8"}


def test_exact_coursework_keys(exported):
    _, out = exported
    with open(out / "val.pkl", "rb") as fh:  # our own file: plain pickle is fine here
        val = pickle.load(fh)
    with open(out / "train.pkl", "rb") as fh:
        train = pickle.load(fh)
    assert set(val[0]) == {"X", "y", "y_original", "X_original", "file_name"}
    assert set(train[0]) == {"X", "y", "file_name"} and len(train) == 6
    assert val[0]["X"].shape == (3, 96, 96) and val[0]["X_original"].shape == (3, 480, 640)
    assert val[0]["y_original"].dtype == np.uint8 and val[0]["y"].shape == (48, 48)


def _item(scale, dtype, **extra):
    rng = np.random.default_rng(1)
    x = (rng.random((3, 96, 96)) * scale).astype(dtype)
    y = (rng.random((48, 48)) * scale).astype(dtype)
    yo = (rng.random((8, 10)) * scale).astype(dtype)
    xo = (rng.random((3, 8, 10)) * scale).astype(dtype)
    return {"X": x, "y": y, "y_original": yo, "X_original": xo, "file_name": "a.jpg", **extra}


@pytest.mark.parametrize("scale,dtype,fmt", [(255, np.uint8, "uint8"), (1.0, np.float64, "float 0..1"),
                                             (255.0, np.float32, "float 0..255")])
def test_format_detection(tmp_path, scale, dtype, fmt):
    item = _item(scale, dtype, extra_key=7)
    (tmp_path / "val.pkl").write_bytes(pickle.dumps([item]))
    ds = get_dataset("salicon-pkl", "val", data_dir=tmp_path)
    rec = ds[0]
    assert ds.params["formats"]["X"] == fmt and rec.meta["extra"] == {"extra_key": 7}
    unit = item["X"].astype(np.float64) / (1.0 if fmt == "float 0..1" else 255.0)
    np.testing.assert_allclose(rec.x96, unit, atol=1e-6)
    assert rec.image.shape == (8, 10, 3) and rec.y_original.dtype == np.uint8
    assert 0.0 <= rec.x96.min() and rec.x96.max() <= 1.0


class Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch pwned",))


def test_malicious_pickle_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "val.pkl").write_bytes(pickle.dumps([{"X": Evil()}]))
    with pytest.raises(ValueError, match=r"val\.pkl.*refusing"):
        get_dataset("salicon-pkl", "val", data_dir=tmp_path)
    assert not (tmp_path / "pwned").exists()
    assert main(["data", "info", "--dataset", "salicon-pkl", "--data-dir", str(tmp_path)]) == 2
    assert not (tmp_path / "pwned").exists()


def test_truncated_pickle(tmp_path, capsys):
    data = pickle.dumps([_item(255, np.uint8)])
    (tmp_path / "val.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"val\.pkl.*truncated"):
        get_dataset("salicon-pkl", "val", data_dir=tmp_path)
    assert main(["data", "info", "--dataset", "salicon-pkl", "--data-dir", str(tmp_path)]) == 2
    assert "val.pkl" in capsys.readouterr().err


def test_missing_keys(tmp_path):
    (tmp_path / "val.pkl").write_bytes(pickle.dumps([{"X": np.zeros((3, 96, 96))}]))
    with pytest.raises(ValueError, match="lacks"):
        get_dataset("salicon-pkl", "val", data_dir=tmp_path)


def test_cli_export_round_trip(tmp_path):
    assert main(["data", "export", "--dataset", "synthetic", "--preset", "small", "--option", "n_images=2",
                 "--splits", "val", "--to", "pkl", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["val.pkl"]  # nothing temporary left
    assert len(get_dataset("salicon-pkl", "val", data_dir=tmp_path)) == 2


def test_export_error_leaves_nothing(tmp_path):
    # salicon-pkl train records have no full-size image: cannot become a val.pkl.
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.pkl").write_bytes(pickle.dumps([{"X": np.zeros((3, 96, 96), np.float32),
                                                                 "y": np.zeros((48, 48), np.float32),
                                                                 "file_name": "a"}]))
    src = get_dataset("salicon-pkl", "train", data_dir=tmp_path / "src")
    with pytest.raises(ValueError, match="full-size"):
        export_pickles({"val": src}, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_duplicate_file_names_refused_or_numbered(tmp_path):
    items = [_item(255, np.uint8, file_name=n) for n in ("a.jpg", "b.jpg", "a.jpg", "a.jpg")]
    with open(tmp_path / "val.pkl", "wb") as fh:
        pickle.dump(items, fh)
    with pytest.raises(ValueError, match=r"1 duplicate image name\(s\) refused \('a\.jpg' at \[0, 2, 3\]\)"):
        get_dataset("salicon-pkl", "val", data_dir=tmp_path)
    ds = get_dataset("salicon-pkl", "val", data_dir=tmp_path, duplicate_names="number")
    assert ds.names == ["a.jpg", "b.jpg", "a#2.jpg", "a#3.jpg"]
    assert ds.params["duplicate_names"] == "number"


def test_ground_truth_and_points_of_a_map_only_dataset(exported):
    """The pickles hold maps only: fixation points are the fixated pixels of y_original."""
    _, out = exported
    ds = get_dataset("salicon-pkl", "val", data_dir=out)
    rec, gt = ds[1], ds.ground_truth(1)
    assert gt.image is None and gt.x96 is None
    np.testing.assert_array_equal(gt.fixation_map, rec.fixation_map)
    np.testing.assert_array_equal(gt.density, rec.density)
    np.testing.assert_array_equal(ds.fixation_points(1), np.argwhere(rec.y_original > 0))
