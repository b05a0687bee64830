"""Matching predictions to a dataset: folders by file stem, array files by names or order.

Also: errors name the first few and count each problem, listing never decodes,
fingerprints, thread-safe loading.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import salbench.predictions as P
from salbench.results import save_predictions
from salbench.predictions import aggregate_fingerprint, array_fingerprint, open_predictions

RNG = np.random.default_rng(1)
NAMES = [f"COCO_val2014_{i:012d}.jpg" for i in range(8)]


def grey_png(path, arr):
    Image.fromarray(arr).save(path)
    return arr


@pytest.fixture()
def folder(tmp_path):
    """One 8-bit PNG per image of NAMES, named by stem; returns (dir, {name: values})."""
    d = tmp_path / "maps"
    d.mkdir()
    vals = {}
    for n in NAMES:
        vals[n] = grey_png(d / (n[:-4] + ".png"), RNG.integers(0, 256, (12, 16), dtype=np.uint8))
    return d, vals


def test_stem_match_and_exact_values(folder):
    d, vals = folder
    m = open_predictions(d).match(NAMES)
    assert m.indices.tolist() == list(range(8)) and m.n_skipped == 0 and m.n_extra == 0
    for k, n in enumerate(NAMES):
        assert m.entry(k) == n[:-4] + ".png"
        np.testing.assert_array_equal(m.load(k), vals[n] / 255.0)  # im2double: k / 255


def test_mixed_formats_and_full_name_keys(tmp_path):
    a = RNG.integers(0, 256, (6, 7), dtype=np.uint8)
    b = RNG.integers(0, 65536, (6, 7), dtype=np.uint16)
    c = RNG.random((6, 7)).astype(np.float32)
    e = RNG.random((6, 7))
    grey_png(tmp_path / "a.png", a)
    grey_png(tmp_path / "b.PNG", b)                  # 16-bit; extension in any case
    Image.fromarray(c).save(tmp_path / "c.tiff")
    np.save(tmp_path / "e.jpg.npy", e)               # <image name>.npy: the image's full name is a key too
    grey_png(tmp_path / "f.JPEG", a)
    m = open_predictions(tmp_path).match(["a.jpg", "b.jpg", "c.jpg", "e.jpg", "f.png"])
    for k, ref in enumerate((a / 255.0, b / 65535.0, c.astype(np.float64), e)):   # floats as stored
        np.testing.assert_array_equal(m.load(k), ref)
    jpeg = m.load(4)
    assert jpeg.shape == (6, 7) and 0.5 < jpeg.max() <= 1 and jpeg.min() >= 0   # 8-bit JPEG, [0, 1]


def test_missing_and_extra_one_error_with_first_few_and_counts(folder):
    d, _ = folder
    for n in NAMES[:7]:
        (d / (n[:-4] + ".png")).unlink()
    for i in range(3):
        grey_png(d / f"other_{i}.png", np.zeros((2, 2), np.uint8))
    (d / "README.txt").write_text("x")
    with pytest.raises(ValueError) as err:
        open_predictions(d).match(NAMES)
    msg = str(err.value)
    assert str(d) in msg and "(8 images, 4 maps)" in msg
    assert "7 of 8 image(s) have no map" in msg and "'COCO_val2014_000000000000.jpg'" in msg
    assert "(2 more)" in msg and "'COCO_val2014_000000000006.jpg'" not in msg  # first five only
    assert "3 map(s) match no image" in msg and "'other_0.png'" in msg
    assert "--allow-missing" in msg and "--allow-extra" in msg and ".txt: 1" in msg
    assert len(msg.splitlines()) == 1


def test_allow_missing_scores_intersection(folder):
    d, vals = folder
    (d / (NAMES[2][:-4] + ".png")).unlink()
    (d / (NAMES[5][:-4] + ".png")).unlink()
    with pytest.raises(ValueError, match="2 of 8 image"):
        open_predictions(d).match(NAMES)
    m = open_predictions(d).match(NAMES, allow_missing=True)
    assert m.indices.tolist() == [0, 1, 3, 4, 6, 7] and m.n_skipped == 2 and len(m) == 6
    assert m.missing == (NAMES[2], NAMES[5]) and 2 not in m and 3 in m
    with pytest.raises(KeyError, match="no prediction"):
        m.load(2)
    np.testing.assert_array_equal(m.load(3), vals[NAMES[3]] / 255.0)
    assert m.describe()["n_skipped"] == 2


def test_extra_maps_error_unless_allowed(folder):
    d, _ = folder
    with pytest.raises(ValueError, match=r"2 map\(s\) match no image"):
        open_predictions(d).match(NAMES[:6])
    with pytest.raises(ValueError):
        open_predictions(d).match(NAMES[:6], allow_missing=True)   # missing != extra
    m = open_predictions(d).match(NAMES[:6], allow_extra=True)
    assert len(m) == 6 and m.n_extra == 2 and m.n_skipped == 0


def test_same_stem_two_formats_is_an_error_even_when_allowed(folder):
    d, _ = folder
    grey_png(d / (NAMES[1][:-4] + ".tif"), np.zeros((2, 2), np.uint8))
    grey_png(d / (NAMES[3] + ".png"), np.zeros((2, 2), np.uint8))     # name.jpg.png: also image 3's map
    with pytest.raises(ValueError) as err:
        open_predictions(d).match(NAMES, allow_missing=True, allow_extra=True)
    msg = str(err.value)
    assert "2 image(s) with more than one map" in msg
    assert re.search(r"COCO_val2014_000000000001\.jpg' has 2 maps \('COCO_val2014_000000000001\.png', "
                     r"'COCO_val2014_000000000001\.tif'\)", msg)


def test_ambiguous_stem_and_exact_name_wins(tmp_path):
    grey_png(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"'a\.png' matches 'a\.jpg', 'a\.bmp'"):
        open_predictions(tmp_path).match(["a.jpg", "a.bmp"], allow_missing=True)
    (tmp_path / "a.png").unlink()
    grey_png(tmp_path / "a.jpg.png", np.zeros((2, 2), np.uint8))
    grey_png(tmp_path / "a.bmp.png", np.ones((2, 2), np.uint8))
    m = open_predictions(tmp_path).match(["a.jpg", "a.bmp"])
    assert m.entry(0) == "a.jpg.png" and m.load(1).max() == 1 / 255
    # an image named like another's stem: the exact name wins
    grey_png(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    m = open_predictions(tmp_path).match(["a", "a.jpg.x"], allow_extra=True)
    assert m.entry(0) == "a.png"


def test_case_sensitive_with_hint(folder):
    d, _ = folder
    p = d / (NAMES[0][:-4] + ".png")
    p.rename(d / p.name.lower())
    with pytest.raises(ValueError, match="differ from an image name only in letter case"):
        open_predictions(d).match(NAMES)


def test_subfolders_follow_image_names(tmp_path):
    (tmp_path / "Action").mkdir()
    (tmp_path / "Art").mkdir()
    (tmp_path / "unrelated").mkdir()
    grey_png(tmp_path / "unrelated" / "zzz.png", np.zeros((2, 2), np.uint8))   # not listed: no image there
    grey_png(tmp_path / "Action" / "001.png", np.full((2, 2), 1, np.uint8))
    grey_png(tmp_path / "Art" / "001.png", np.full((2, 2), 2, np.uint8))
    m = open_predictions(tmp_path).match(["Action/001.jpg", "Art/001.jpg"])
    assert [m.load(k)[0, 0] for k in range(2)] == [1 / 255, 2 / 255] and m.entry(1) == "Art/001.png"
    with pytest.raises(ValueError, match="Subfolder 'Nope' .* does not exist"):
        open_predictions(tmp_path).match(["Nope/001.jpg"])
    with pytest.raises(ValueError, match="not a relative path"):
        open_predictions(tmp_path).match(["../x.jpg"])


def test_empty_folder_points_at_subfolders_and_dirs_named_like_maps(tmp_path):
    (tmp_path / "model_a").mkdir()
    with pytest.raises(ValueError, match=r"No map files .* it has subfolders 'model_a'"):
        open_predictions(tmp_path).match(["x.jpg"])
    (tmp_path / "x.png").mkdir()
    with pytest.raises(ValueError, match=r"'x\.png' is a directory, not a map"):
        open_predictions(tmp_path).match(["x.jpg"])


def test_hidden_and_temporary_files_ignored(folder):
    d, _ = folder
    (d / ".COCO_val2014_000000000000.png.abc.tmp.png").write_bytes(b"partial")
    (d / ".DS_Store").write_bytes(b"x")
    assert len(open_predictions(d).match(NAMES)) == 8


def test_listing_does_not_decode_or_read(folder, monkeypatch):
    d, _ = folder
    (d / (NAMES[4][:-4] + ".png")).write_bytes(b"corrupt")  # only loading it may fail

    def boom(*a, **k):
        raise AssertionError("decoded during matching")

    monkeypatch.setattr(P.folder, "decode_map", boom)
    monkeypatch.setattr(Image, "open", boom)
    monkeypatch.setattr(type(d), "read_bytes", boom)
    monkeypatch.setattr("builtins.open", boom)
    m = open_predictions(d).match(NAMES)
    assert len(m) == 8
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"COCO_val2014_000000000004\.png: not a readable image"):
        m.load(4)


def test_open_errors(tmp_path, folder):
    d, _ = folder
    with pytest.raises(FileNotFoundError, match="predictions not found: .*nothere .*directory of maps"):
        open_predictions(tmp_path / "nothere")
    with pytest.raises(ValueError, match="is a single image; predictions are a directory"):
        open_predictions(next(d.iterdir()))
    (tmp_path / "p.csv").write_text("1,2")
    with pytest.raises(ValueError, match="unknown predictions format '.csv'"):
        open_predictions(tmp_path / "p.csv")
    with pytest.raises(ValueError, match="is a directory"):
        P.load_predictions(d)
    with pytest.raises(ValueError, match="is a directory"):
        P.ArraySource(d)


def test_8bit_folder_scores_like_the_floats_under_coursework(tmp_path):
    """8-bit PNGs read as k / 255, so the coursework (p * 255).astype(uint8) gets k back: no wrap-around.

    The reference is the float maps k / 255 passed directly; the raw 0..255 reading
    (the old rule) wraps and scores differently, which this test would catch.
    """
    import warnings

    from scipy.ndimage import gaussian_filter

    from salbench.data import get_dataset
    from salbench.protocols import get_protocol
    from salbench.protocols.coursework import QuantisationWrapWarning

    ds = get_dataset("synthetic", "val", preset="small")
    idx = range(4)
    records = [ds[i] for i in idx]
    names = [ds.names[i] for i in idx]
    levels = []
    for r, n in zip(records, names):
        # a plausible map at the coursework's 48x64 scale: the density plus blurred noise, 0..255 with 255 reached
        d = r.density[::10, ::10] / r.density.max() + 0.3 * gaussian_filter(RNG.random((48, 64)), 2)
        k = np.round(255 * d / d.max()).astype(np.uint8)
        Image.fromarray(k).save(tmp_path / (n.rsplit(".", 1)[0] + ".png"))
        levels.append(k)
    m = open_predictions(tmp_path).match(names)
    proto = get_protocol("coursework")
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuantisationWrapWarning)   # [0, 1] maps never wrap
        from_folder = proto.evaluate([m.load(k) for k in m.indices], records, seed=0)
        direct = proto.evaluate([k / 255.0 for k in levels], records, seed=0)
    assert from_folder.scores.keys() == direct.scores.keys() and direct.scores
    for metric, v in direct.scores.items():
        np.testing.assert_array_equal(from_folder.scores[metric], v, err_msg=metric)
    assert np.nanmean(direct.scores["cc"]) > 0.1                  # a map that actually predicts the density
    with pytest.warns(QuantisationWrapWarning):                    # the raw reading: values wrap mod 256
        raw = proto.evaluate([k.astype(np.float64) for k in levels], records, seed=0)
    assert not np.array_equal(raw.scores["cc"], direct.scores["cc"])


# --- array files ---------------------------------------------------------------------------

def test_npz_written_by_salbench_matches_by_names(tmp_path):
    maps = RNG.random((4, 5, 6)).astype(np.float32)
    save_predictions(tmp_path / "p.npz", maps, NAMES[:4])
    # salbench's first format too: names + one stacked array
    np.savez_compressed(tmp_path / "old.npz", names=np.array(NAMES[:4]), predictions=maps)
    for f in ("p.npz", "old.npz"):
        src = open_predictions(tmp_path / f)
        assert src.describe()["match"] == "names" and src.names == NAMES[:4]
        order = [2, 0, 3, 1]                           # the dataset lists the images in another order
        m = src.match([NAMES[i] for i in order])
        for k, i in enumerate(order):
            np.testing.assert_array_equal(m.load(k), maps[i].astype(np.float64))
        m = src.match(NAMES[:3], allow_extra=True)
        assert m.n_extra == 1 and m.extra == (NAMES[3],)
        with pytest.raises(ValueError, match=r"1 map\(s\) match no image .*'COCO_val2014_000000000003\.jpg'"):
            src.match(NAMES[:3])
        src.close()


def test_ragged_npz(tmp_path):
    maps = [RNG.random((4, 5)), RNG.random((6, 3))]
    save_predictions(tmp_path / "r.npz", maps, ["a", "b.jpg"])
    np.savez(tmp_path / "old.npz", names=np.array(["a", "b.jpg"]), prediction_00000=maps[0], prediction_00001=maps[1])
    for f in ("r.npz", "old.npz"):
        m = open_predictions(tmp_path / f).match(["b.jpg", "a.jpg"])   # a stored name may be the stem
        assert np.array_equal(m.load(0), maps[1]) and np.array_equal(m.load(1), maps[0])
        with pytest.raises(ValueError, match="names the file carries are matched"):
            open_predictions(tmp_path / f).match(["b.jpg", "c.jpg"])


def test_npy_matched_by_order_counts_must_agree(tmp_path):
    maps = RNG.random((3, 4, 5))
    np.save(tmp_path / "p.npy", maps)
    src = open_predictions(tmp_path / "p.npy")
    assert src.describe() == {"kind": "array", "path": str(tmp_path / "p.npy"), "format": "npy", "n_maps": 3,
                              "match": "order"}
    m = src.match(["x", "y", "z"])
    np.testing.assert_array_equal(m.load(1), maps[1])
    with pytest.raises(ValueError, match="holds 3 predictions but the dataset has 4 images; .* by order"):
        src.match(["w", "x", "y", "z"])
    with pytest.raises(ValueError, match="allow_missing/allow_extra need a file that carries names"):
        src.match(["w", "x", "y", "z"], allow_missing=True)
    np.save(tmp_path / "flat.npy", RNG.random((2, 2304)))
    assert open_predictions(tmp_path / "flat.npy").match(["a", "b"]).load(0).shape == (48, 48)


def test_npz_open_reads_only_the_header(tmp_path, monkeypatch):
    np.savez_compressed(tmp_path / "p.npz", predictions=RNG.random((3, 4, 5)), names=np.array(["a", "b", "c"]))
    seen = []
    orig = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, k: seen.append(k) or orig(self, k))
    src = open_predictions(tmp_path / "p.npz")
    src.match(["a", "b", "c"])
    assert seen == ["names"]
    src.match(["a", "b", "c"]).load(2)
    assert seen == ["names", "predictions"]


def test_pickle_dict_with_names_and_unsafe_pickle(tmp_path):
    (tmp_path / "p.pkl").write_bytes(pickle.dumps({"names": ["b.jpg", "a.jpg"], "predictions": [np.ones((2, 3)),
                                                                                                 np.zeros((2, 3))]}))
    m = open_predictions(tmp_path / "p.pkl").match(["a.jpg", "b.jpg"])
    assert m.load(0).sum() == 0 and m.load(1).sum() == 6
    (tmp_path / "evil.pkl").write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(ValueError, match="cannot read predictions file .*evil.pkl.*refusing to load os.system"):
        open_predictions(tmp_path / "evil.pkl")


def test_array_nan_names_the_entry(tmp_path):
    a = RNG.random((2, 3, 3))
    a[1, 0, 0] = np.nan
    np.savez(tmp_path / "p.npz", predictions=a, names=np.array(["a.jpg", "b.jpg"]))
    m = open_predictions(tmp_path / "p.npz").match(["a.jpg", "b.jpg"])
    with pytest.raises(ValueError, match=r"p\.npz: prediction b\.jpg contains NaN"):
        m.load(1)


# --- fingerprints ----------------------------------------------------------------------------

def test_folder_fingerprint_is_file_sha256_and_stable(folder):
    d, _ = folder
    m = open_predictions(d).match(NAMES)
    f = d / (NAMES[3][:-4] + ".png")
    assert m.fingerprint(3) == hashlib.sha256(f.read_bytes()).hexdigest()
    arr, sha = m.read(3)
    assert sha == m.fingerprint(3) and np.array_equal(arr, m.load(3))
    agg = m.aggregate_fingerprint()
    again = open_predictions(d).match(list(reversed(NAMES)))
    assert again.aggregate_fingerprint() != agg                     # in scoring (dataset) order
    assert again.aggregate_fingerprint() == aggregate_fingerprint(reversed(m.fingerprints()))
    expected = hashlib.sha256("".join(f"{n}\t{s}\n" for n, s in m.fingerprints()).encode()).hexdigest()
    assert agg == expected
    grey_png(f, np.zeros((12, 16), np.uint8))
    assert m.fingerprint(3) != sha and m.aggregate_fingerprint() != agg


def test_aggregate_depends_on_pairing():
    assert aggregate_fingerprint([("a", "1"), ("b", "2")]) != aggregate_fingerprint([("a", "2"), ("b", "1")])
    assert aggregate_fingerprint([("a", "1")]) == hashlib.sha256(b"a\t1\n").hexdigest()


def test_array_fingerprint_hashes_the_scored_values(tmp_path):
    a = RNG.random((3, 4)).astype(np.float16)
    expected = hashlib.sha256(b"<f8 (3, 4)\n" + a.astype("<f8").tobytes()).hexdigest()
    assert array_fingerprint(a) == expected == array_fingerprint(a.astype(">f4"))
    assert array_fingerprint(a.astype(np.float64) + 1e-9) != expected
    np.save(tmp_path / "p.npy", a[None].astype(np.float32))
    np.savez(tmp_path / "p.npz", predictions=a[None], names=np.array(["x"]))
    save_predictions(tmp_path / "q.npz", a[None], ["x"])
    fps = {open_predictions(tmp_path / f).match(["x"]).fingerprint(0) for f in ("p.npy", "p.npz", "q.npz")}
    assert fps == {expected}


# --- thread safety ----------------------------------------------------------------------------

def test_concurrent_loads_match_serial(tmp_path):
    names = [f"im{i:03d}.jpg" for i in range(24)]
    for i, n in enumerate(names):
        a = RNG.integers(0, 256, (60, 80), dtype=np.uint8)
        if i % 4 == 0:
            Image.fromarray(a).save(tmp_path / f"im{i:03d}.png")
        elif i % 4 == 1:
            Image.fromarray(a.astype(np.uint16) * 200).save(tmp_path / f"im{i:03d}.png")
        elif i % 4 == 2:
            Image.fromarray(a).save(tmp_path / f"im{i:03d}.jpg", quality=80)
        else:
            Image.fromarray(a.astype(np.float32) / 7).save(tmp_path / f"im{i:03d}.tif")
    np.savez_compressed(tmp_path.parent / "stack.npz", predictions=RNG.random((24, 30, 40)), names=np.array(names))
    for m in (open_predictions(tmp_path).match(names),
              open_predictions(tmp_path.parent / "stack.npz").match(names)):
        serial = [m.read(k) for k in range(24)]
        with ThreadPoolExecutor(8) as pool:
            for _ in range(3):
                par = list(pool.map(m.read, list(range(24)) * 2))
                for k, (arr, sha) in enumerate(par):
                    assert sha == serial[k % 24][1] and np.array_equal(arr, serial[k % 24][0])
