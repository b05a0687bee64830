"""The usual dataset layouts, built under tmp_path from 6 real OSIE images, read as one dataset.

The same images and fixations written as the flattened NUS layout, the NUS repositories'
own (``eye/fixations.mat``), SALICON's ``images/ fixations/`` (``gaze`` .mat), MIT1003's
``ALLSTIMULI/ ALLFIXATIONMAPS/`` and CAT2000's ``Stimuli/ FIXATIONLOCS/ FIXATIONMAPS/`` per
category must give the same ground truth and the same scores.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import scipy.io
from PIL import Image

from salbench.data import get_dataset
from salbench.data.nus import read_fixations_mat

pytestmark = pytest.mark.shared_data
N_IMAGES = 6
CATEGORIES = ("Action", "Indoor")


def write_nus_mat(path, fix: dict, names) -> None:
    """A NUS ``fixations.mat``: struct array ``fixations`` with img, subjects(fix_x, fix_y, fix_duration)."""
    arr = np.zeros((len(names),), dtype=[("img", "O"), ("subjects", "O")])
    for k, name in enumerate(names):
        observers = fix[name]
        subj = np.zeros((len(observers),), dtype=[("fix_x", "O"), ("fix_y", "O"), ("fix_duration", "O")])
        for j, (x, y) in enumerate(observers):
            subj[j] = (np.asarray(x, float), np.asarray(y, float), np.full(np.size(x), 250.0))
        arr[k] = (name, subj)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"fixations": arr})


def write_salicon_mat(path, observers, shape) -> None:
    """A SALICON-style .mat: image, resolution, gaze(location, timestamp, fixations [x y] 1-based)."""
    g = np.zeros((len(observers),), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")])
    for j, (x, y) in enumerate(observers):
        xy = np.stack([np.atleast_1d(x), np.atleast_1d(y)], 1).astype(float)
        g[j] = (xy, np.arange(len(xy), dtype=float), xy)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"image": path.stem, "resolution": np.array(shape), "gaze": g})


def save_gray(path, a, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, **kw)


def copy(src, dst) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


@pytest.fixture(scope="module")
def layouts(osie_dir, tmp_path_factory):
    """``{layout: root}`` of the same 6 OSIE images and fixations, plus the names used."""
    fix = read_fixations_mat(osie_dir / "fixations.mat")
    names = sorted(fix)[::113][:N_IMAGES]
    fix = {n: fix[n] for n in names}
    root = tmp_path_factory.mktemp("layouts")
    stimuli = osie_dir / "stimuli"
    for n in names:
        copy(stimuli / n, root / "nus" / "stimuli" / n)
        copy(stimuli / n, root / "native" / "stimuli" / n)
    write_nus_mat(root / "nus" / "fixations.mat", fix, names)
    copy(root / "nus" / "fixations.mat", root / "native" / "eye" / "fixations.mat")
    nus = get_dataset("nus", "all", data_dir=root / "nus")
    for k, n in enumerate(names):
        stem = n.rsplit(".", 1)[0]
        gt = nus.ground_truth(k)
        copy(stimuli / n, root / "salicon" / "images" / "val" / n)
        write_salicon_mat(root / "salicon" / "fixations" / "val" / f"{stem}.mat", fix[n], gt.shape)
        # MIT1003: binary fixation map as JPEG (lossy, as the real files), density as JPEG.
        copy(stimuli / n, root / "mit1003" / "ALLSTIMULI" / f"{stem}.jpeg")
        save_gray(root / "mit1003" / "ALLFIXATIONMAPS" / f"{stem}_fixPts.jpg", gt.fixation_map.astype(np.uint8) * 255,
                  quality=75)
        save_gray(root / "mit1003" / "ALLFIXATIONMAPS" / f"{stem}_fixMap.jpg", gt.y_original, quality=75)
        # CAT2000: per category; fixLocs binary map in .mat, the same density JPEG bytes.
        cat = CATEGORIES[k % 2]
        copy(stimuli / n, root / "cat2000" / "Stimuli" / cat / n)
        (root / "cat2000" / "FIXATIONLOCS" / cat).mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "cat2000" / "FIXATIONLOCS" / cat / f"{stem}.mat",
                         {"fixLocs": gt.fixation_map.astype(np.uint8)})
        copy(root / "mit1003" / "ALLFIXATIONMAPS" / f"{stem}_fixMap.jpg",
             root / "cat2000" / "FIXATIONMAPS" / cat / f"{stem}.jpg")
        # Lossless fixation maps (PNG) under templates of one's own.
        copy(stimuli / n, root / "own" / "stim" / n)
        save_gray(root / "own" / "gt" / f"{stem}-fix.png", gt.fixation_map.astype(np.uint8))
    return root, names


def by_stem(ds):
    return {name.rsplit("/", 1)[-1].rsplit(".", 1)[0]: i for i, name in enumerate(ds.names)}


def open_all(root):
    return {
        "nus": get_dataset("nus", "all", data_dir=root / "nus"),
        "native": get_dataset("nus", "all", data_dir=root / "native"),
        "salicon": get_dataset("folder", "val", data_dir=root / "salicon", layout="salicon"),
        "mit1003": get_dataset("folder", "all", data_dir=root / "mit1003", layout="mit1003"),
        "mit1003-computed": get_dataset("folder", "all", data_dir=root / "mit1003", layout="mit1003", density="none"),
        "cat2000": get_dataset("folder", "all", data_dir=root / "cat2000", layout="cat2000"),
        "own": get_dataset("folder", "all", data_dir=root / "own", images="stim/{name}.jpg",
                           fixations="gt/{name}-fix.png"),
    }


def aligned(ds, stems):
    """Records of ``ds`` in the order of ``stems``."""
    index = by_stem(ds)
    return [ds[index[s]] for s in stems]


@pytest.fixture(scope="module")
def opened(layouts):
    root, names = layouts
    sets = open_all(root)
    stems = [n.rsplit(".", 1)[0] for n in names]
    return sets, stems


def test_every_layout_opens_with_every_image(opened):
    sets, stems = opened
    for key, ds in sets.items():
        assert len(ds) == N_IMAGES, key
        assert sorted(by_stem(ds)) == sorted(stems), key
    assert sets["cat2000"].names[0].split("/")[0] in CATEGORIES  # names keep the category folder
    assert sets["mit1003"].names[0].endswith(".jpeg")


def test_nus_native_eye_layout_equals_flat(opened):
    sets, _ = opened
    flat, native = sets["nus"], sets["native"]
    assert flat.names == native.names
    assert flat.params["fixations_file"] == "fixations.mat"
    assert native.params["fixations_file"] == "eye/fixations.mat"
    assert flat.identity()["content_hash"] == native.identity()["content_hash"]  # same bytes, same names
    for i in range(len(flat)):
        a, b = flat.ground_truth(i), native.ground_truth(i)
        np.testing.assert_array_equal(a.fixations, b.fixations)
        np.testing.assert_array_equal(a.observers, b.observers)


def test_point_layouts_give_identical_ground_truth(opened):
    """NUS points and SALICON gaze .mat points: the same fixations, observers, maps and densities."""
    sets, stems = opened
    for a, b in zip(aligned(sets["nus"], stems), aligned(sets["salicon"], stems)):
        np.testing.assert_array_equal(a.fixations, b.fixations)
        np.testing.assert_array_equal(a.observers, b.observers)
        np.testing.assert_array_equal(a.fixation_map, b.fixation_map)
        np.testing.assert_array_equal(a.density, b.density)
        np.testing.assert_array_equal(a.image, b.image)
        assert b.meta["fixations_from"] == "points"


def test_map_layouts_recover_the_fixated_pixels(opened):
    """JPEG (threshold: half the maximum), .mat binary maps and PNG maps give the fixated pixels exactly."""
    sets, stems = opened
    ref = aligned(sets["nus"], stems)
    for key in ("mit1003", "mit1003-computed", "cat2000", "own"):
        for a, b in zip(ref, aligned(sets[key], stems)):
            np.testing.assert_array_equal(b.fixation_map, a.fixation_map, err_msg=key)
            np.testing.assert_array_equal(b.fixations, np.argwhere(a.fixation_map), err_msg=key)
            assert b.observers is None and b.meta["fixations_from"] == "map"
    # Without a density file the density is computed from the fixated pixels as NUS does.
    for a, b in zip(ref, aligned(sets["mit1003-computed"], stems)):
        np.testing.assert_array_equal(b.density, a.density)
    # With one, it is the file over its maximum and y_original the file's 8-bit values.
    for a, b in zip(ref, aligned(sets["mit1003"], stems)):
        stored = np.asarray(Image.open(b.meta["density_from"]).convert("L"))
        np.testing.assert_array_equal(b.y_original, stored)
        np.testing.assert_array_equal(b.density, stored / stored.max())
        assert np.abs(b.density - a.density).max() < 0.05  # JPEG of round(255 * density)


def _predictions(shape, n):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    center = np.exp(-0.5 * (((yy - h / 2) / (0.25 * h)) ** 2 + ((xx - w / 2) / (0.25 * w)) ** 2))
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        noise = rng.random((h // 20, w // 20))
        smooth = np.asarray(Image.fromarray(noise.astype(np.float32)).resize((w, h), Image.BILINEAR), float)
        out.append(center if k % 2 == 0 else 0.5 * center + smooth)
    return out


def _scores(records):
    from salbench.protocols import get_protocol

    preds = _predictions(records[0].shape, len(records))
    return get_protocol("mit").evaluate(preds, records, seed=0).scores


def test_same_data_in_two_layouts_scores_identically(opened):
    """The `mit` protocol on the same images and fixations read from different layouts: identical scores."""
    sets, stems = opened
    pairs = [("nus", "salicon"), ("nus", "mit1003-computed"), ("mit1003", "cat2000"), ("nus", "own")]
    cache = {}
    for a, b in pairs:
        for key in (a, b):
            if key not in cache:
                cache[key] = _scores([r.replace(image=None) for r in aligned(sets[key], stems)])
        for metric, values in cache[a].items():
            np.testing.assert_array_equal(cache[b][metric], values, err_msg=f"{a} vs {b}: {metric}")
    assert np.isfinite(cache["nus"]["nss"]).all()


def test_splits_from_the_template(layouts):
    from salbench.data import dataset_splits

    root, _ = layouts
    assert dataset_splits("folder", root / "salicon", layout="salicon") == ["val"]
    assert dataset_splits("folder", root / "mit1003", layout="mit1003") == ["all"]
    with pytest.raises(ValueError, match=r"only split is 'all'.*--split all"):
        get_dataset("folder", "val", data_dir=root / "mit1003", layout="mit1003")
    with pytest.raises(FileNotFoundError, match=r"no image matches 'images/train/\{name\}\.jpg'.*\['val'\]"):
        get_dataset("folder", "train", data_dir=root / "salicon", layout="salicon")


def test_content_hash_of_a_folder(layouts, tmp_path, monkeypatch):
    """Changes with a ground-truth file, not with an untouched re-open; digests are cached."""
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    root, names = layouts
    work = tmp_path / "cat"
    shutil.copytree(root / "cat2000", work)
    h1 = get_dataset("folder", "all", data_dir=work, layout="cat2000").identity()["content_hash"]
    assert list((tmp_path / "cache" / "digests").glob("folder-*.json"))
    h2 = get_dataset("folder", "all", data_dir=work, layout="cat2000").identity()["content_hash"]
    assert h1 == h2
    mat = next((work / "FIXATIONLOCS").rglob("*.mat"))
    m = scipy.io.loadmat(mat)["fixLocs"]
    m[0, 0] = 1 - m[0, 0]
    scipy.io.savemat(mat, {"fixLocs": m})
    h3 = get_dataset("folder", "all", data_dir=work, layout="cat2000").identity()["content_hash"]
    assert h3 != h1
    other = get_dataset("folder", "all", data_dir=work, layout="cat2000", density="none").identity()["content_hash"]
    assert other != h3  # options are part of the identity
