"""The `folder` dataset on small files written here: file kinds, rounding, errors naming the file, laziness."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
import scipy.io
from PIL import Image

from salbench.cli import main
from salbench.data import get_dataset
from salbench.data import folder as folder_mod

SHAPE = (30, 40)


def matlab_round_twin(a):
    """MATLAB's round (halves away from zero) through exact decimal arithmetic."""
    return np.vectorize(lambda v: float(Decimal(float(v)).quantize(Decimal(1), rounding=ROUND_HALF_UP)))(a)


def write_images(root, names, shape=SHAPE, folder="stim"):
    (root / folder).mkdir(parents=True, exist_ok=True)
    for k, n in enumerate(names):
        Image.fromarray(np.full(shape + (3,), 40 + 10 * k, np.uint8)).save(root / folder / n)


def write_mat(path, **variables):
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables)


def open_points(root, **kw):
    return get_dataset("folder", "all", data_dir=root, images="stim/{name}.png", fixations="fix/{name}.mat", **kw)


def test_mat_points_round_half_away_from_zero(tmp_path):
    """1-based [x y] with halves: MATLAB's round, not NumPy's half-to-even."""
    write_images(tmp_path, ["a.png"])
    xy = np.array([[1.5, 1.5], [2.5, 3.5], [40.5, 30.4], [0.4, 12.0], [10.0, 30.5]])
    write_mat(tmp_path / "fix" / "a.mat", points=xy)
    rec = open_points(tmp_path)[0]
    rows = matlab_round_twin(xy[:, 1] - 1)
    cols = matlab_round_twin(xy[:, 0] - 1)
    inside = (rows >= 0) & (rows <= 29) & (cols >= 0) & (cols <= 39)
    expect = np.stack([rows[inside], cols[inside]], 1).astype(np.int64)
    np.testing.assert_array_equal(rec.fixations, expect)
    assert rec.fixations.tolist() == [[1, 1], [3, 2]]  # np.round would give [0, 0], [2, 2]
    assert rec.meta["n_dropped"] == 3  # x = 40.5 -> col 40, x = 0.4 -> col -1, y = 30.5 -> row 30: dropped
    assert rec.observers is None and rec.meta["fixations_from"] == "points"


def test_mat_point_order_cells_and_single_points(tmp_path):
    write_images(tmp_path, ["a.png", "b.png"])
    write_mat(tmp_path / "fix" / "a.mat", fixations=np.array([[3.0, 5.0], [10.0, 20.0]]))  # [row col]
    cell = np.empty((2,), dtype=object)
    cell[0] = np.array([[5.0, 3.0]])  # one point: squeezed to a vector by loadmat
    cell[1] = np.array([[20.0, 10.0], [1.0, 1.0]])
    write_mat(tmp_path / "fix" / "b.mat", fixations=cell)
    rowcol = open_points(tmp_path, point_order="rowcol")
    assert rowcol[0].fixations.tolist() == [[2, 4], [9, 19]]
    ds = open_points(tmp_path)
    b = ds[1]
    assert b.fixations.tolist() == [[2, 4], [9, 19], [0, 0]] and b.observers.tolist() == [0, 1, 1]
    assert ds.stats(1) == {"shape": SHAPE, "n_fixations": 3, "n_observers": 2}


def test_salicon_gaze_struct_and_field(tmp_path):
    write_images(tmp_path, ["a.png"])
    g = np.zeros((2,), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")])
    g[0] = (np.array([[1.0, 1.0], [50.0, 2.0]]), np.arange(2.0), np.array([[4.0, 2.0], [6.0, 3.0]]))
    g[1] = (np.array([[3.0, 3.0]]), np.arange(1.0), np.array([[8.0, 9.0]]))
    write_mat(tmp_path / "fix" / "a.mat", image="a", resolution=np.array(SHAPE), gaze=g)
    rec = open_points(tmp_path)[0]
    assert rec.fixations.tolist() == [[1, 3], [2, 5], [8, 7]] and rec.observers.tolist() == [0, 0, 1]
    raw = open_points(tmp_path, mat_field="location")[0]
    assert raw.fixations.tolist() == [[0, 0], [2, 2]] and raw.meta["n_dropped"] == 1  # x = 50 of 40: dropped
    assert raw.observers.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"a\.mat.*no 'nope' field"):
        open_points(tmp_path, mat_field="nope")[0]


def test_mat_binary_map_and_errors_name_the_file(tmp_path):
    write_images(tmp_path, ["a.png", "b.png", "c.png"])
    m = np.zeros(SHAPE, np.uint8)
    m[3, 4] = m[10, 20] = 1
    write_mat(tmp_path / "fix" / "a.mat", fixLocs=m)
    write_mat(tmp_path / "fix" / "b.mat", fixLocs=np.zeros((10, 10)))  # wrong size
    write_mat(tmp_path / "fix" / "c.mat", one=np.zeros(3), two=np.zeros(3))  # which variable?
    ds = open_points(tmp_path)
    assert ds[0].fixations.tolist() == [[3, 4], [10, 20]] and ds[0].meta["fixations_from"] == "map"
    with pytest.raises(ValueError, match=r"b\.mat: fixLocs is 10x10, but the image is 30x40"):
        ds.ground_truth(1)
    with pytest.raises(ValueError, match=r"c\.mat: which variable.*mat_var"):
        ds.fixation_points(2)
    with pytest.raises(ValueError, match=r"c\.mat: one has shape \(3,\); expected \(K, 2\) points"):
        open_points(tmp_path, mat_var="one").fixation_points(2)
    with pytest.raises(ValueError, match=r"a\.mat: no variable 'one'"):
        open_points(tmp_path, mat_var="one").fixation_points(0)
    (tmp_path / "fix" / "a.mat").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"a\.mat: cannot read MATLAB file"):
        ds[0]


def test_map_images_lossless_jpeg_and_threshold(tmp_path):
    write_images(tmp_path, ["a.png", "b.png"])
    m = np.zeros(SHAPE, np.uint8)
    m[5, 5] = m[20, 30] = m[20, 31] = 255
    for d in ("png", "jpg"):
        (tmp_path / d).mkdir()
    for n in ("a", "b"):
        Image.fromarray(m // 255).save(tmp_path / "png" / f"{n}.png")  # a 0/1 PNG: nonzero is fixated
        Image.fromarray(m).save(tmp_path / "jpg" / f"{n}.jpg", quality=75)  # lossy: > half the maximum

    def opened(ext, **kw):
        return get_dataset("folder", "all", data_dir=tmp_path, images="stim/{name}.png",
                           fixations=f"{ext}/{{name}}.{ext}", **kw)

    expect = np.argwhere(m > 0).tolist()
    assert opened("png")[0].fixations.tolist() == expect and opened("jpg")[1].fixations.tolist() == expect
    raw_jpeg = np.asarray(Image.open(tmp_path / "jpg" / "b.jpg"))
    assert ((raw_jpeg > 0) & (m == 0)).any()  # why `> 0` would be wrong for JPEG
    assert opened("jpg", threshold=250)[1].fixations.tolist() == np.argwhere(raw_jpeg > 250).tolist()
    assert opened("jpg", threshold=0)[1].fixations.tolist() == np.argwhere(raw_jpeg > 0).tolist()


def test_map_image_of_another_size_is_named(tmp_path):
    write_images(tmp_path, ["a.png"])
    (tmp_path / "gt").mkdir()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "gt" / "a.png")
    ds = get_dataset("folder", "all", data_dir=tmp_path, images="stim/{name}.png", fixations="gt/{name}.png")
    with pytest.raises(ValueError, match=r"gt/a\.png: fixation map is 10x10, its image is 30x40"):
        ds[0]


def test_density_files_8_and_16_bit(tmp_path):
    write_images(tmp_path, ["a.png", "b.png"])
    write_mat(tmp_path / "fix" / "a.mat", points=np.array([[5.0, 5.0]]))
    write_mat(tmp_path / "fix" / "b.mat", points=np.array([[5.0, 5.0]]))
    (tmp_path / "den").mkdir()
    d8 = np.zeros(SHAPE, np.uint8)
    d8[4, 4], d8[4, 5] = 200, 100
    Image.fromarray(d8).save(tmp_path / "den" / "a.png")
    d16 = np.zeros(SHAPE, np.uint16)
    d16[4, 4], d16[4, 5] = 60000, 30000
    Image.fromarray(d16).save(tmp_path / "den" / "b.png")
    ds = open_points(tmp_path, density="den/{name}.png")
    a, b = ds[0], ds[1]
    np.testing.assert_array_equal(a.density, d8 / 200.0)
    np.testing.assert_array_equal(a.y_original, d8)  # the file's 8-bit values
    np.testing.assert_array_equal(b.density, d16 / 60000.0)
    assert b.y_original[4, 4] == 255 and b.y_original[4, 5] == 128  # round(255 * density)
    assert b.y48.shape == (48, 48)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "den" / "a.png")
    with pytest.raises(ValueError, match=r"den/a\.png: density map is 5x5, its image is 30x40"):
        ds[0].density


def test_missing_files_and_mismatched_names_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        get_dataset("folder", "all", data_dir=tmp_path / "nowhere", layout="mit1003")
    write_images(tmp_path, ["a.png", "b.png", "c.png"])
    with pytest.raises(FileNotFoundError, match=r"no image matches 'stim/\{name\}\.jpg'"):
        get_dataset("folder", "all", data_dir=tmp_path, images="stim/{name}.jpg", fixations="fix/{name}.mat")
    write_mat(tmp_path / "fix" / "a.mat", points=np.array([[1.0, 1.0]]))
    write_mat(tmp_path / "fix" / "B.mat", points=np.array([[1.0, 1.0]]))  # b.png's, misnamed
    with pytest.raises(FileNotFoundError, match=r"fix/b\.mat: fixation file not found \(2 of 3 images lack one "
                                                r"under fixations='fix/\{name\}\.mat'; first: \['fix/b\.mat', "
                                                r"'fix/c\.mat'\]"):
        open_points(tmp_path)
    write_mat(tmp_path / "fix" / "b.mat", points=np.array([[1.0, 1.0]]))
    write_mat(tmp_path / "fix" / "c.mat", points=np.array([[1.0, 1.0]]))
    assert open_points(tmp_path).params["n_unused_fixation_files"] == 1  # B.mat
    with pytest.raises(FileNotFoundError, match=r"den/a\.png: density file not found \(3 of 3"):
        open_points(tmp_path, density="den/{name}.png")
    ds = open_points(tmp_path)
    (tmp_path / "fix" / "c.mat").unlink()  # removed after opening: named when read
    with pytest.raises(FileNotFoundError, match=r"fix/c\.mat"):
        ds.ground_truth(2)


def test_template_errors(tmp_path):
    write_images(tmp_path, ["a.png"])
    with pytest.raises(ValueError, match=r"must contain \{name\}"):
        get_dataset("folder", "all", data_dir=tmp_path, images="stim/a.png", fixations="fix/{name}.mat")
    with pytest.raises(ValueError, match=r"uses \{category\}, which the images template does not define"):
        get_dataset("folder", "all", data_dir=tmp_path, images="stim/{name}.png", fixations="fix/{category}/{name}.mat")
    with pytest.raises(ValueError, match=r"unknown layout 'mit'.*cat2000, mit1003, salicon"):
        get_dataset("folder", "all", data_dir=tmp_path, layout="mit")
    with pytest.raises(ValueError, match=r"give --option images=TEMPLATE and --option fixations=TEMPLATE"):
        get_dataset("folder", "all", data_dir=tmp_path)
    with pytest.raises(ValueError, match="relative"):
        get_dataset("folder", "all", data_dir=tmp_path, images="../stim/{name}.png", fixations="f/{name}.mat")


def test_images_sharing_one_fixation_file_are_refused(tmp_path):
    write_images(tmp_path, ["a.png", "a.jpg"])
    write_mat(tmp_path / "fix" / "a.mat", points=np.array([[1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"fix/a\.mat: 2 images share this ground-truth file"):
        get_dataset("folder", "all", data_dir=tmp_path, images="stim/{name}.{ext}", fixations="fix/{name}.mat")


def test_ground_truth_and_points_decode_no_image_and_defer_density(tmp_path, monkeypatch):
    write_images(tmp_path, ["a.png"])
    write_mat(tmp_path / "fix" / "a.mat", points=np.array([[5.0, 6.0], [7.0, 8.0], [5.0, 6.0]]))
    (tmp_path / "den").mkdir()
    Image.fromarray(np.eye(30, 40, dtype=np.uint8) * 9).save(tmp_path / "den" / "a.png")
    ds = open_points(tmp_path, density="den/{name}.png")
    full = ds[0]
    expected_density = full.density.copy()
    reads = []
    real = folder_mod.read_density_values

    def no_image(*a, **k):
        raise AssertionError("decoded the image")

    monkeypatch.setattr(folder_mod, "load_image", no_image)
    monkeypatch.setattr(folder_mod, "read_density_values", lambda p: reads.append(p) or real(p))
    gt = ds.ground_truth(0)
    assert gt.image is None and gt.x96 is None and not gt.is_computed("density") and reads == []
    np.testing.assert_array_equal(ds.fixation_points(0), full.fixations)
    assert ds.fixation_points(0).tolist() == [[5, 4], [7, 6], [5, 4]]  # duplicates kept
    np.testing.assert_array_equal(gt.density, expected_density)
    assert len(reads) == 1 and gt.is_computed("density")
    assert "density=<lazy>" in repr(ds.ground_truth(0))


def test_cli_data_info_on_a_folder(tmp_path, capsys):
    write_images(tmp_path, ["a.png", "b.png"])
    write_mat(tmp_path / "fix" / "a.mat", points=np.array([[1.0, 1.0], [2.0, 2.0]]))
    write_mat(tmp_path / "fix" / "b.mat", points=np.array([[3.0, 3.0]]))
    code = main(["data", "info", "--dataset", "folder", "--data-dir", str(tmp_path),
                 "--option", "images=stim/{name}.png", "--option", "fixations=fix/{name}.mat"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "all: 2 images" in out.out and "30x40" in out.out
