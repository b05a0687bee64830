"""Ground-truth cache: hit, miss, invalidation (content, parameters, format), corruption, atomicity."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from salbench.protocols import _gt_cache, get_protocol
from salbench.protocols.view import GroundTruthView
from salbench.scoring import score_stream
from tests.test_protocols_fixtures import ListDataset, make_predictions, make_records

N = 12


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "ground_truth"


@pytest.fixture
def data():
    return make_records(N, seed=3, empty=(4,)), make_predictions(N, seed=3)


def _run(ds, preds, **overrides):
    """Score under coursework; returns (result, scorer's cache_hit, ground-truth reads of the dataset)."""
    before = ds.calls["ground_truth"]
    r = score_stream(get_protocol("coursework", **overrides), ds, lambda i: preds[i], seed=1, chunk_size=5,
                     progress=False)
    return r, r.timings["cache_hit"], ds.calls["ground_truth"] - before


def _entries(cache, kind="coursework"):
    return sorted(p for p in cache.glob(f"{kind}-*") if (p / "manifest.json").exists())


def test_second_run_reads_the_cache_not_the_dataset(data, cache):
    recs, preds = data
    ds = ListDataset(recs)
    r1, hit1, reads1 = _run(ds, preds)
    r2, hit2, reads2 = _run(ds, preds)
    assert (hit1, hit2) == (False, True)
    assert reads1 == N and reads2 == 0  # second run: no ground-truth record read at all
    for k in r1.scores:
        np.testing.assert_array_equal(r1.scores[k], r2.scores[k])
    # and the in-memory path (no cache) agrees
    ref = get_protocol("coursework").evaluate(preds, recs, seed=1)
    for k in r1.scores:
        np.testing.assert_array_equal(r1.scores[k], ref.scores[k])
    (entry,) = _entries(cache)
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["n"] == N and set(manifest["streams"]) == {"target", "fixbits"}
    assert manifest["key"]["cc_target_sigma"] == 19.0 and manifest["key"]["content_hash"].startswith(
        ds.identity()["content_hash"])


def test_content_change_and_parameter_change_build_new_entries(data, cache):
    recs, preds = data
    _run(ListDataset(recs), preds)
    _, hit, _ = _run(ListDataset(recs, tag="v2"), preds)  # new content hash
    assert not hit and len(_entries(cache)) == 2
    r_a, hit, _ = _run(ListDataset(recs), preds, cc_target_sigma=5.0)  # a ground-truth parameter
    assert not hit and len(_entries(cache)) == 3
    r_b, _, _ = _run(ListDataset(recs), preds)
    assert not np.array_equal(r_a.scores["cc"], r_b.scores["cc"], equal_nan=True)
    _, hit, _ = _run(ListDataset(recs), preds, splits=7)  # not a ground-truth parameter: same entry
    assert hit and len(_entries(cache)) == 3


def _damage(entry, how):
    data = entry / "target.bin"
    raw = bytearray(data.read_bytes())
    if how == "truncate":
        data.write_bytes(bytes(raw[: len(raw) // 2]))
    elif how == "flip":
        raw[len(raw) // 3] ^= 0x5A
        data.write_bytes(bytes(raw))
    elif how == "index":
        idx = np.load(entry / "target.idx.npy")
        idx[0, 1] += 1
        np.save(entry / "target.idx.npy", idx)
    elif how == "key":
        m = json.loads((entry / "manifest.json").read_text())
        m["key"]["content_hash"] = "0" * 64
        (entry / "manifest.json").write_text(json.dumps(m))
    elif how == "format":
        m = json.loads((entry / "manifest.json").read_text())
        m["format"] = -1
        (entry / "manifest.json").write_text(json.dumps(m))
    elif how == "manifest":
        (entry / "manifest.json").write_text('{"format": 1, "key"')


@pytest.mark.parametrize("how", ["truncate", "flip", "index", "key", "format", "manifest"])
def test_damaged_entries_are_detected_and_rebuilt(data, cache, how):
    recs, preds = data
    ds = ListDataset(recs)
    r1, _, _ = _run(ds, preds)
    (entry,) = _entries(cache)
    _damage(entry, how)
    r2, hit, reads = _run(ds, preds)
    assert not hit and reads == N  # rebuilt from the dataset, never used
    for k in r1.scores:
        np.testing.assert_array_equal(r1.scores[k], r2.scores[k])
    _, hit, _ = _run(ds, preds)
    assert hit  # the rebuilt entry is good


def test_corruption_after_opening_falls_back_to_the_record(data, cache):
    """A blob that changes under an open entry: that image is recomputed, the entry dropped."""
    recs, preds = data
    ds = ListDataset(recs)
    r1, _, _ = _run(ds, preds)
    (entry,) = _entries(cache)
    p = get_protocol("coursework")
    sc = p.scorer(GroundTruthView.from_dataset(ds), seed=1).setup()
    assert sc.cache_hit
    idx = np.load(entry / "target.idx.npy")
    with open(entry / "target.bin", "r+b") as fh:  # same size: only the read-time crc can tell
        fh.seek(int(idx[2, 0]) + 1)
        b = fh.read(1)
        fh.seek(int(idx[2, 0]) + 1)
        fh.write(bytes([b[0] ^ 0xFF]))
    sc.add(range(N), preds)
    r2 = sc.result()
    for k in r1.scores:
        np.testing.assert_array_equal(r1.scores[k], r2.scores[k])
    assert not (entry / "manifest.json").exists()


def test_interrupted_build_leaves_no_entry(data, cache):
    recs, preds = data
    ds = ListDataset(recs)

    def boom(i):
        if i == 7:
            raise RuntimeError("disk unplugged")
        return recs[i]

    ds._ground_truth = boom
    with pytest.raises(RuntimeError, match="disk unplugged"):
        _run(ds, preds)
    assert _entries(cache) == [] and not any(p.name.startswith(".") for p in cache.iterdir())


def test_points_cache(data, cache):
    recs, _ = data
    ds = ListDataset(recs)
    v1 = GroundTruthView.from_dataset(ds).load()
    calls = dict(ds.calls)
    v2 = GroundTruthView.from_dataset(ds).load()
    assert v1.timings["points_cached"] is False and v2.timings["points_cached"] is True
    assert dict(ds.calls) == calls  # nothing read from the dataset the second time
    for p in range(N):
        np.testing.assert_array_equal(v1.points(p), v2.points(p))
        assert v1.shape(p) == v2.shape(p) == recs[p].shape
    sub = GroundTruthView.from_dataset(ds, [3, 1]).load()  # a subset is its own entry
    assert sub.timings["points_cached"] is False and sub.names == [recs[3].name, recs[1].name]
    np.testing.assert_array_equal(sub.points(0), v1.points(3))
    assert len(_entries(cache, "points")) == 2


def test_reads_are_per_image_and_small(data, cache):
    """Per image the coursework store holds a zlib blob, far below the float64 map it replaces."""
    recs, preds = data
    _run(ListDataset(recs), preds)
    (entry,) = _entries(cache)
    idx = np.load(entry / "target.idx.npy")
    assert idx.shape == (N, 3) and idx[:, 1].max() < 30 * 40  # uint8 map compressed: < its raw bytes
    c = _gt_cache.GTCache.open("coursework", json.loads((entry / "manifest.json").read_text())["key"])
    assert c is not None and len(c.read("target", 3)) == idx[3, 1]
    c.close()
    assert os.path.getsize(entry / "target.bin") == idx[:, 1].sum()


def test_dense_map_only_fixations_are_kept_as_bits(cache):
    """Map-only ground truth with thousands of fixated pixels: packed bits across images, same scores."""
    from salbench.data.record import Record

    rng = np.random.default_rng(5)
    recs = []
    for i in range(6):
        fmap = rng.random((30, 40)) < (0.0 if i == 2 else 0.4)
        recs.append(Record(name=f"m{i}.png", image=None, fixations=np.zeros((0, 2), np.int64), observers=None,
                           fixation_map=fmap, density=fmap / 1.0, x96=None, y48=None))
    ds = ListDataset(recs)
    v1 = GroundTruthView.from_dataset(ds).load()
    v2 = GroundTruthView.from_dataset(ds).load()  # from the cache
    assert v1._is_bits.sum() == 5 and v2.timings["points_cached"]
    for p in range(6):
        for v in (v1, v2):
            np.testing.assert_array_equal(v.points(p), np.argwhere(recs[p].fixation_map))
            np.testing.assert_array_equal(v.fixation_mask(p), recs[p].fixation_map)
    preds = make_predictions(6, seed=5)
    for name in ("mit", "exact", "salicon"):
        p = get_protocol(name, **({"filter_anns": False} if name == "salicon" else {}))
        got = score_stream(p, ds, lambda i: preds[i], seed=2, chunk_size=4, progress=False)
        ref = p.evaluate(preds, recs, seed=2)
        for k in p.metrics:
            np.testing.assert_array_equal(got.scores[k], ref.scores[k], err_msg=f"{name} {k}")
        assert got.excluded == ["m2.png"]


def test_leftovers_of_killed_builds_are_swept_after_a_day(data, cache):
    recs, preds = data
    cache.mkdir(parents=True)
    old = cache / ".coursework-abc.tmp-1-deadbeef"
    fresh = cache / ".coursework-abd.tmp-2-deadbeef"
    for d in (old, fresh):
        d.mkdir()
        (d / "target.bin").write_bytes(b"partial")
    os.utime(old, (0, 0))
    _run(ListDataset(recs), preds)
    assert not old.exists() and fresh.exists()  # a build that may still be running is left alone
    assert len(_entries(cache)) == 1
