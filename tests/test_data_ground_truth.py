"""Issue 19, ground truth: points outside the image are dropped and counted; a recorded size that
differs from the image's is an error (or, asked for, a rescale); every dataset option is checked."""

from __future__ import annotations

import json
import resource
import time
import warnings

import numpy as np
import pytest
import scipy.io
from PIL import Image

from salbench.data import get_dataset
from salbench.data.base import DroppedFixationsWarning
from salbench.data.registry import describe
from salbench.protocols.view import GroundTruthView


# -- fixtures written here ------------------------------------------------------------------

def write_nus(root, entries, shapes):
    """NUS layout: stimuli/<name> of ``shapes[name]`` and fixations.mat with 1-based fix_x, fix_y."""
    (root / "stimuli").mkdir(parents=True)
    for name, shape in shapes.items():
        Image.fromarray(np.full(tuple(shape) + (3,), 90, np.uint8)).save(root / "stimuli" / name)
    arr = np.zeros((len(entries),), dtype=[("img", "O"), ("subjects", "O")])
    for k, (img, subjects) in enumerate(entries):
        subj = np.zeros((len(subjects),), dtype=[("fix_x", "O"), ("fix_y", "O"), ("fix_duration", "O")])
        for j, (x, y) in enumerate(subjects):
            subj[j] = (np.asarray(x, float), np.asarray(y, float), np.full(np.size(x), 200.0))
        arr[k] = (img, subj)
    scipy.io.savemat(root / "fixations.mat", {"fixations": arr})
    return root


def _gaze(fixations_per_observer):
    g = np.zeros((len(fixations_per_observer),), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")])
    for j, fix in enumerate(fixations_per_observer):
        fix = np.asarray(fix, float).reshape(-1, 2)
        g[j] = (fix, np.arange(len(fix), dtype=float), fix)
    return g


def write_salicon_mat(root, image_shape, recorded, fixations):
    stem = "COCO_val2014_000000000001"
    (root / "images" / "val").mkdir(parents=True)
    (root / "fixations" / "val").mkdir(parents=True)
    Image.fromarray(np.full(tuple(image_shape) + (3,), 70, np.uint8)).save(root / "images" / "val" / f"{stem}.jpg")
    scipy.io.savemat(root / "fixations" / "val" / f"{stem}.mat",
                     {"image": stem, "resolution": np.array(recorded), "gaze": _gaze(fixations)})
    return root


def write_salicon_json(root, image_shape, recorded, pairs):
    name = "COCO_train2014_000000000009.jpg"
    (root / "images" / "train").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.fromarray(np.full(tuple(image_shape) + (3,), 70, np.uint8)).save(root / "images" / "train" / name)
    data = {"images": [{"id": 9, "file_name": name, "height": recorded[0], "width": recorded[1]}],
            "annotations": [{"image_id": 9, "worker_id": 1, "fixations": pairs}]}
    (root / "annotations" / "fixations_train2014_examples.json").write_text(json.dumps(data))
    return root


# -- dropping, never clipping ---------------------------------------------------------------

def test_negative_and_past_the_edge_points_are_dropped_and_counted(tmp_path):
    # 1-based: x = -3 (negative), x = 41 (past the last of 40 columns), y = 31 (past 30 rows), x = 0.4 (-> col -1)
    xs, ys = [1.0, -3.0, 41.0, 20.0, 0.4, 40.0], [1.0, 5.0, 10.0, 31.0, 7.0, 30.0]
    root = write_nus(tmp_path, [("a.png", [(xs, ys)]), ("b.png", [([5.0], [5.0])])], {"a.png": (30, 40), "b.png": (30, 40)})
    ds = get_dataset("nus", "all", data_dir=root)
    assert ds.fixation_points(0).tolist() == [[0, 0], [29, 39]]
    rec = ds.ground_truth(0)
    assert rec.meta["n_dropped"] == 4 and rec.meta["n_recorded"] == 6
    assert int(rec.fixation_map.sum()) == 2 and rec.fixation_map[:, 0].sum() == 1  # nothing piled on the border
    assert [ds.dropped_fixations(i) for i in range(2)] == [4, 0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        total = ds.dropped_fixations_total()
        again = ds.dropped_fixations_total()
    assert total == again == {"n_dropped": 4, "n_recorded": 7, "n_images": 1, "worst": [["a.png", 4, 6]]}
    msgs = [str(w.message) for w in caught if issubclass(w.category, DroppedFixationsWarning)]
    assert len(msgs) == 1, "warned once per dataset"
    assert "nus/all: 4 of 7 fixations lie outside their image and were dropped (not clipped)" in msgs[0]
    assert "a.png: 4 of 6" in msgs[0] and "recorded_size" in msgs[0]  # 4 of 6 lost: the resize hint


def test_dropped_counts_need_no_image_decoding(tmp_path, monkeypatch):
    from salbench.data import nus as nus_mod

    root = write_nus(tmp_path, [("a.png", [([50.0, 2.0], [2.0, 2.0])])], {"a.png": (30, 40)})
    ds = get_dataset("nus", "all", data_dir=root)
    monkeypatch.setattr(nus_mod, "load_image", lambda *a, **k: pytest.fail("image decoded"))
    assert ds.dropped_fixations(0) == 1 and ds.dropped_fixations_total(warn=False)["n_dropped"] == 1


def test_synthetic_and_pickles_drop_nothing_without_generating(monkeypatch):
    from salbench.data import synthetic as syn

    ds = get_dataset("synthetic", "val", preset="small")
    monkeypatch.setattr(syn, "scene_fixations", lambda *a, **k: pytest.fail("generated a scene"))
    out = ds.dropped_fixations_total()
    assert out["n_dropped"] == 0 and out["n_images"] == 0 and out["n_recorded"] > 32 * 15


def test_the_resized_stimuli_case_is_no_longer_silent(tmp_path):
    """Stimuli halved after the recording: before, ~half the points piled onto the last row/column."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(1, 80, 200), rng.uniform(1, 60, 200)  # recorded on 60x80
    root = write_nus(tmp_path, [("a.png", [(x, y)])], {"a.png": (30, 40)})
    ds = get_dataset("nus", "all", data_dir=root)
    pts = ds.fixation_points(0)
    assert (pts[:, 1] == 39).mean() < 0.05  # nothing piles onto the last column
    with pytest.warns(DroppedFixationsWarning, match=r"probably resized.*recorded_size=HxW"):
        assert ds.dropped_fixations_total()["n_dropped"] > 100
    with pytest.raises(ValueError, match=r"stimuli/a\.png: the image is 30x40 but its fixations were recorded at 60x80"):
        get_dataset("nus", "all", data_dir=root, recorded_size="60x80").fixation_points(0)
    fixed = get_dataset("nus", "all", data_dir=root, recorded_size="60x80", fixation_scale="rescale")
    got = fixed.fixation_points(0)
    expect = np.stack([np.floor((y - 1) * 0.5 + 0.5), np.floor((x - 1) * 0.5 + 0.5)], 1)  # all positive: half up
    keep = (expect[:, 0] < 30) & (expect[:, 1] < 40)
    np.testing.assert_array_equal(got, expect[keep].astype(np.int64))
    assert fixed.dropped_fixations_total(warn=False)["n_dropped"] == (~keep).sum() <= 2


def test_nus_options_that_change_ground_truth_change_the_hash(tmp_path):
    root = write_nus(tmp_path, [("a.png", [([5.0], [5.0])])], {"a.png": (30, 40)})
    plain = get_dataset("nus", "all", data_dir=root)
    half = get_dataset("nus", "all", data_dir=root, resolution="15x20")
    recorded = get_dataset("nus", "all", data_dir=root, recorded_size="30x40")
    hashes = {d.identity()["content_hash"] for d in (plain, half, recorded)}
    assert len(hashes) == 3
    # the ground-truth cache is keyed by the content hash: each resolution gets its own entry
    a = GroundTruthView.from_dataset(plain, range(1))
    a.load()
    b = GroundTruthView.from_dataset(half, range(1))
    b.load()
    assert a.shape(0) == (30, 40) and b.shape(0) == (15, 20)


def test_osie_default_hash_is_unchanged(osie_dir):
    """The committed OSIE leaderboard entries record this hash; default options must keep it."""
    ds = get_dataset("nus", "val", data_dir=osie_dir)
    assert ds.identity()["content_hash"].startswith("dd3186c44c7a")
    assert ds.dropped_fixations_total(warn=False) == {"n_dropped": 0, "n_recorded": ds.dropped_fixations_total(
        warn=False)["n_recorded"], "n_images": 0, "worst": []}


def test_salicon_mat_resolution_mismatch_is_an_error_or_a_rescale(tmp_path):
    root = write_salicon_mat(tmp_path, (48, 64), (96, 128), [[[1, 1], [128, 96], [64, 48]]])
    ds = get_dataset("salicon", "val", data_dir=root)
    with pytest.raises(ValueError, match=r"COCO_val2014_000000000001\.jpg: the image is 48x64 but its fixations were "
                                         r"recorded at 96x128.*fixation_scale=rescale"):
        ds.fixation_points(0)
    with pytest.raises(ValueError, match="recorded at 96x128"):
        ds.stats(0)
    scaled = get_dataset("salicon", "val", data_dir=root, fixation_scale="rescale")
    # (v - 1) * 0.5, halves away from zero: x 128 -> 63.5 -> 64 (outside 64 columns: dropped), 64 -> 31.5 -> 32
    assert scaled.fixation_points(0).tolist() == [[0, 0], [24, 32]]
    assert scaled.dropped_fixations(0) == 1
    assert scaled.identity()["content_hash"] != get_dataset("salicon", "val", data_dir=root).identity()["content_hash"]


def test_salicon_json_size_mismatch_is_an_error(tmp_path):
    root = write_salicon_json(tmp_path, (48, 64), (480, 640), [[1, 1], [470, 630]])
    with pytest.raises(ValueError, match=r"the image is 48x64 but its fixations were recorded at 480x640.*\.json"):
        get_dataset("salicon", "train", data_dir=root).ground_truth(0)
    pts = get_dataset("salicon", "train", data_dir=root, fixation_scale="rescale").fixation_points(0)
    assert pts.tolist() == [[0, 0], [47, 63]]  # 469 * 0.1 = 46.9 -> 47, 629 * 0.1 = 62.9 -> 63


def test_folder_mat_resolution_and_recorded_size(tmp_path):
    (tmp_path / "stim").mkdir()
    Image.fromarray(np.full((30, 40, 3), 50, np.uint8)).save(tmp_path / "stim" / "a.png")
    (tmp_path / "fix").mkdir()
    scipy.io.savemat(tmp_path / "fix" / "a.mat", {"resolution": np.array([60, 80]), "gaze": _gaze([[[3, 3], [80, 60]]])})
    open_ = lambda **kw: get_dataset("folder", "all", data_dir=tmp_path, images="stim/{name}.png",  # noqa: E731
                                     fixations="fix/{name}.mat", **kw)
    with pytest.raises(ValueError, match=r"stim/a\.png: the image is 30x40 but its fixations were recorded at 60x80 "
                                         r"\(.*a\.mat: its 'resolution'\)"):
        open_().fixation_points(0)
    # (3 - 1) * 0.5 = 1; (80 - 1) * 0.5 = 39.5 -> 40 and (60 - 1) * 0.5 = 29.5 -> 30: past the edge, dropped
    assert open_(fixation_scale="rescale").fixation_points(0).tolist() == [[1, 1]]
    # a plain point list does not say its size: recorded_size does
    scipy.io.savemat(tmp_path / "fix" / "a.mat", {"points": np.array([[3.0, 3.0], [80.0, 60.0]])})
    assert open_().fixation_points(0).tolist() == [[2, 2]]
    with pytest.raises(ValueError, match=r"recorded at 60x80 \(.*a\.mat: --option recorded_size\)"):
        open_(recorded_size="60x80").fixation_points(0)
    assert open_(recorded_size=[60, 80], fixation_scale="rescale").fixation_points(0).tolist() == [[1, 1]]


def test_folder_density_npy_claiming_80_gb_is_truncated(tmp_path):
    (tmp_path / "stim").mkdir()
    Image.fromarray(np.full((30, 40, 3), 50, np.uint8)).save(tmp_path / "stim" / "a.png")
    (tmp_path / "fix").mkdir()
    scipy.io.savemat(tmp_path / "fix" / "a.mat", {"points": np.array([[3.0, 3.0]])})
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (100_000, 100_000)
    with open(tmp_path / "d.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 48)
    ds = get_dataset("folder", "all", data_dir=tmp_path, images="stim/{name}.png", fixations="fix/{name}.mat",
                     density="d.npy")
    rec = ds.ground_truth(0)
    with pytest.raises(ValueError, match=r"d\.npy: header declares \(100000, 100000\) float64 \(74\.5 GiB\).*truncated"):
        rec.density


# -- options: type and range, one line, before allocating --------------------------------------

@pytest.mark.parametrize("options, message", [
    ({"n_images": 999_999_999_999}, r"synthetic/val: option n_images=999,999,999,999 is too large: at most 1,000,000"),
    ({"n_images": 0}, r"option n_images=0 is too small: the least is 1"),
    ({"n_images": 2.5}, r"option n_images=2\.5 must be an integer"),
    ({"n_images": "many"}, r"option n_images='many' must be an integer"),
    ({"workers": -2}, r"synthetic/val: option workers=-2 is too small: the least is 0"),
    ({"workers": 10_000}, r"option workers=10,000 is too large: at most 64 threads"),
    ({"workers": True}, r"option workers=True must be an integer"),
    ({"seed": -1}, r"option seed=-1 is too small"),
    ({"seed": 2**70}, r"option seed=.* is too large"),
    ({"preset": ["small"]}, r"unknown synthetic preset"),
    ({"nworkers": 2}, r"dataset 'synthetic' has no option 'nworkers'; its options: preset, seed, n_images, workers"),
])
def test_synthetic_options_are_checked_at_once(options, message):
    t0 = time.perf_counter()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=message):
        get_dataset("synthetic", "val", **options)
    assert time.perf_counter() - t0 < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 100_000  # KiB: nothing sized by the option


def test_synthetic_bounds_are_inclusive():
    ds = get_dataset("synthetic", "train", n_images="3", workers=0, seed=2**63 - 1)
    assert len(ds) == 6 and ds.workers == 0 and ds.seed == 2**63 - 1


@pytest.mark.parametrize("options, message", [
    ({"resolution": "100000x100000"}, r"nus/all: option resolution=100000x100000 is too large: at most 16,384 pixels"),
    ({"resolution": "10000x10000"}, r"option resolution=10000x10000 is too large: .*50,000,000 per image"),
    ({"resolution": "0x640"}, r"must be at least 1x1"),
    ({"resolution": "big"}, r"option resolution='big' must look like 480x640"),
    ({"resolution": [480, -1]}, r"option resolution\[1\]=-1 is too small"),
    ({"recorded_size": 5}, r"option recorded_size=5 must look like 480x640"),
    ({"fixation_scale": "stretch"}, r"nus/all: option fixation_scale='stretch' must be one of error, rescale"),
    ({"resoltion": "480x640"}, r"has no option 'resoltion'.*Did you mean 'resolution'"),
])
def test_nus_options_are_checked(tmp_path, options, message):
    root = write_nus(tmp_path, [("a.png", [([5.0], [5.0])])], {"a.png": (30, 40)})
    with pytest.raises(ValueError, match=message):
        get_dataset("nus", "all", data_dir=root, **options)


@pytest.mark.parametrize("options, message", [
    ({"threshold": "nan"}, r"folder/all: option threshold='nan' must be a finite number"),
    ({"threshold": [1]}, r"option threshold=\[1\] must be a finite number"),
    ({"point_order": "yx"}, r"option point_order='yx' must be one of xy, rowcol"),
    ({"mat_field": ""}, r"option mat_field='' must be a non-empty name"),
    ({"fixation_scale": 1}, r"option fixation_scale=1 must be one of error, rescale"),
    ({"recorded_size": "1x99999"}, r"option recorded_size=1x99999 is too large"),
])
def test_folder_options_are_checked(tmp_path, options, message):
    (tmp_path / "stim").mkdir()
    Image.fromarray(np.full((30, 40, 3), 50, np.uint8)).save(tmp_path / "stim" / "a.png")
    with pytest.raises(ValueError, match=message):
        get_dataset("folder", "all", data_dir=tmp_path, images="stim/{name}.png", fixations="fix/{name}.mat", **options)


def test_salicon_options_are_checked(tmp_path):
    root = write_salicon_mat(tmp_path, (48, 64), (48, 64), [[[1, 1]]])
    for options, message in (({"fixations": "gaze"}, r"salicon/val: option fixations='gaze' must be one of fixations, "
                                                      r"location"),
                             ({"json_order": 3}, r"option json_order=3 must be one of auto, rowcol, xy"),
                             ({"fixation_scale": None}, r"option fixation_scale=None must be one of error, rescale")):
        with pytest.raises(ValueError, match=message):
            get_dataset("salicon", "val", data_dir=root, **options)


def test_describe_reports_dropped_fixations(tmp_path):
    root = write_nus(tmp_path, [("a.png", [([1.0, 99.0], [1.0, 1.0])])], {"a.png": (30, 40)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DroppedFixationsWarning)  # the count is in the summary: no warning
        info = describe("nus", root)
    assert info["splits"]["all"]["dropped_fixations"] == 1 and info["splits"]["all"]["total_fixations"] == 1
    with pytest.raises(ValueError, match="max_images must be a non-negative integer"):
        describe("nus", root, max_images=-1)


def test_training_array_cache_is_rekeyed_only_where_points_can_fall_outside(tmp_path):
    """y48 stacks cached before held clipped points: file datasets get a new key, synthetic keeps its own."""
    from salbench.data.base import hash_json

    def old_tag(ds):
        return hash_json(ds.identity())[:16]

    syn = get_dataset("synthetic", "val", preset="small")
    assert old_tag(syn) in syn._array_cache_path("y48").name
    root = write_nus(tmp_path, [("a.png", [([5.0], [5.0])])], {"a.png": (30, 40)})
    nus = get_dataset("nus", "all", data_dir=root)
    assert old_tag(nus) not in nus._array_cache_path("y48").name
