"""Crash-safe results entries: streamed predictions + JSON committed as one unit.

Faults are real or injected at the OS boundary: an ``OSError(ENOSPC)`` from the file
write itself, two processes and two threads committing the same entry, a subprocess
SIGKILLed in the middle of writing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from salbench.io import FileError, file_sha256
from salbench.io.map_store import HashingSink, MapStreamWriter, open_stored_predictions
from salbench.results import (
    RESULT_SCHEMA, ResultsFileError, ResultWriter, build_result, folder_digest, load_predictions_npz,
    load_result, load_results, quantise_map, result_paths, result_stem, save_predictions, scan_results,
)

REPO = Path(__file__).resolve().parents[1]
STEM = result_stem("m", "synthetic", "val", "mit")


def _maps(seed: int, n: int = 4, shape=(6, 8)):
    rng = np.random.default_rng(seed)
    return [quantise_map(rng.random(shape), f"map {i}") for i in range(n)]


def _record(names, seed: int = 0):
    rng = np.random.default_rng(seed)
    return build_result(model={"name": "m", "checkpoint": None},
                        dataset={"name": "synthetic", "split": "val", "n_files": len(names)},
                        protocol="mit", params={"name": "mit"}, seed=0, names=names,
                        scores={"cc": rng.random(len(names)), "kld": rng.random(len(names))})


def write_entry(root: Path, seed: int, n: int = 4, stem: str = STEM) -> Path:
    names = [f"im{i}.png" for i in range(n)]
    with ResultWriter(root, stem) as w:
        for name, m in zip(names, _maps(seed, n)):
            w.add_prediction(name, m)
        return w.commit(_record(names, seed))


def assert_consistent(root: Path, stem: str = STEM) -> dict:
    """The entry's JSON names an existing predictions file whose bytes hash as recorded."""
    r = load_result(root / f"{stem}.json")
    pred = root / r["predictions"]["file"]
    assert pred.is_file()
    assert file_sha256(pred) == r["predictions"]["sha256"]
    assert r["predictions"]["file"] == f"{r['predictions']['sha256'][:16]}.predictions.npz"  # content alone
    with open_stored_predictions(pred) as sp:
        assert sorted(sp.names) == sorted(r["image_names"])
    return r


def predictions_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".npz"))


# -- the format -------------------------------------------------------------------------------------
def test_round_trip_exact_values_per_image_dtype(tmp_path):
    rng = np.random.default_rng(0)
    maps = [np.full((3, 4), 0.25), rng.random((5, 2)).astype(np.float32), rng.random((2, 2)),
            np.arange(6, dtype=np.uint8).reshape(2, 3)]
    names = ["a.png", "b.png", "c.png", "d.png"]
    with ResultWriter(tmp_path, STEM) as w:
        stored = [w.add_prediction(n, m) for n, m in zip(names, maps)]
        path = w.commit(_record(names))
    r = assert_consistent(tmp_path)
    assert r["schema"] == RESULT_SCHEMA and r["predictions"]["kind"] == "stored"
    assert r["predictions"]["dtypes"] == {"float16": 2, "float32": 1, "float64": 1}
    assert r["predictions"]["dtype"] == "mixed" and r["predictions"]["shape"] is None
    with open_stored_predictions(tmp_path / r["predictions"]["file"]) as sp:
        for i, m in enumerate(maps):
            assert sp.load(i).dtype == np.float64
            assert np.array_equal(sp.load(i), np.asarray(m, dtype=np.float64))  # exact, whatever was stored
            assert np.array_equal(stored[i], sp.load(i))
    assert path == tmp_path / f"{STEM}.json"
    back, got_names = load_predictions_npz(tmp_path / r["predictions"]["file"])
    assert got_names == names and [b.shape for b in back] == [m.shape for m in maps]


def test_digest_is_of_the_bytes_written_and_np_load_reads_it(tmp_path):
    path = tmp_path / "x.npz"
    with open(path, "wb") as fh:
        w = MapStreamWriter(fh)
        w.add("a", np.ones((2, 2)))
        info = w.finish()
    data = path.read_bytes()
    assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["size"] == len(data)
    with np.load(path) as z:  # still an ordinary .npz
        assert np.array_equal(z["000000"], np.ones((2, 2)))


def test_memory_is_one_map_at_a_time(tmp_path):
    """The writer holds no maps: its state after N maps is names only."""
    with ResultWriter(tmp_path, STEM) as w:
        for i in range(50):
            w.add_prediction(f"im{i}", np.full((64, 64), i / 50.0))
        held = [v for v in vars(w._maps).values() if isinstance(v, np.ndarray)]
        assert not held
        w.commit(_record([f"im{i}" for i in range(50)]))


def test_writer_refuses_bad_maps_and_stays_usable(tmp_path):
    with ResultWriter(tmp_path, STEM) as w:
        w.add_prediction("a", np.ones((2, 2)))
        with pytest.raises(ValueError, match="duplicate image name 'a'"):
            w.add_prediction("a", np.ones((2, 2)))
        with pytest.raises(ValueError, match="b contains NaN"):
            w.add_prediction("b", np.full((2, 2), np.nan))
        with pytest.raises(ValueError, match="shape"):
            w.add_prediction("b", np.ones(4))
        w.add_prediction("b", np.zeros((2, 2)))
        w.commit(_record(["a", "b"]))
    assert_consistent(tmp_path)


def test_commit_refuses_other_names_and_tolerances(tmp_path):
    with pytest.raises(ValueError, match="image_names differ"):
        with ResultWriter(tmp_path, STEM) as w:
            w.add_prediction("a", np.ones((2, 2)))
            w.commit(_record(["a", "b"]))
    with pytest.raises(ValueError, match="own tolerances"):
        with ResultWriter(tmp_path, STEM) as w:
            w.add_prediction("a", np.ones((2, 2)))
            w.commit({**_record(["a"]), "tolerances": {"cc": 1.0}})
    assert os.listdir(tmp_path) == []  # nothing left behind


def test_replacing_an_entry_removes_the_old_predictions(tmp_path):
    first = write_entry(tmp_path, seed=1)
    old = assert_consistent(tmp_path)["predictions"]["file"]
    write_entry(tmp_path, seed=2)
    new = assert_consistent(tmp_path)["predictions"]["file"]
    assert old != new and predictions_files(tmp_path) == [new]
    write_entry(tmp_path, seed=2)  # identical bytes: same name, still there
    assert predictions_files(tmp_path) == [new] and first.is_file()
    assert sorted(os.listdir(tmp_path)) == sorted([f"{STEM}.json", new])


def test_leaving_without_commit_keeps_the_old_entry(tmp_path):
    write_entry(tmp_path, seed=1)
    before = (tmp_path / f"{STEM}.json").read_bytes(), predictions_files(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with ResultWriter(tmp_path, STEM) as w:
            w.add_prediction("im0.png", np.ones((3, 3)))
            raise KeyboardInterrupt
    assert ((tmp_path / f"{STEM}.json").read_bytes(), predictions_files(tmp_path)) == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_folder_record(tmp_path):
    folder = tmp_path / "maps"
    folder.mkdir()
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3)]
    names = ["a.jpg", "b.jpg", "c.jpg"]
    with ResultWriter(tmp_path / "res", STEM, folder=folder) as w:
        with pytest.raises(ValueError, match="add_map_file"):
            w.add_prediction("a.jpg", np.ones((2, 2)))
        for n, s in zip(names, shas):
            w.add_map_file(n, s)
        path = w.commit(_record(names))
    r = load_result(path)
    assert r["predictions"] == {"kind": "folder", "path": "../maps", "n": 3, "map_sha256": shas,
                                "sha256": folder_digest(names, shas)}
    assert predictions_files(tmp_path / "res") == []


# -- predictions files shared between entries ---------------------------------------------------
OTHER = result_stem("m", "synthetic", "val", "coursework")


def test_entries_with_identical_predictions_share_one_file(tmp_path):
    write_entry(tmp_path, seed=1)
    write_entry(tmp_path, seed=1, stem=OTHER)
    a, b = assert_consistent(tmp_path), assert_consistent(tmp_path, OTHER)
    assert a["predictions"] == b["predictions"]
    assert predictions_files(tmp_path) == [a["predictions"]["file"]]  # one file on disk
    assert sorted(os.listdir(tmp_path)) == sorted([f"{STEM}.json", f"{OTHER}.json", a["predictions"]["file"]])


def test_equal_maps_written_at_other_times_are_byte_identical(tmp_path, monkeypatch):
    """Sharing needs bytes that depend on the maps alone: no time stamps in the zip headers."""
    write_entry(tmp_path / "a", seed=1)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 400 * 86400)  # zipfile stamps members with time.time()
    write_entry(tmp_path / "b", seed=1)
    assert predictions_files(tmp_path / "a") == predictions_files(tmp_path / "b")
    (name,) = predictions_files(tmp_path / "a")
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_second_writer_reuses_the_file_it_finds(tmp_path):
    write_entry(tmp_path, seed=1)
    shared = tmp_path / assert_consistent(tmp_path)["predictions"]["file"]
    inode = shared.stat().st_ino
    write_entry(tmp_path, seed=1, stem=OTHER)
    assert shared.stat().st_ino == inode  # reused, not replaced by a second copy


def test_rewriting_one_entry_keeps_the_shared_file_until_no_entry_names_it(tmp_path):
    write_entry(tmp_path, seed=1)
    write_entry(tmp_path, seed=1, stem=OTHER)
    shared = assert_consistent(tmp_path)["predictions"]["file"]
    write_entry(tmp_path, seed=2)  # new predictions for STEM: OTHER still names the shared file
    new = assert_consistent(tmp_path)["predictions"]["file"]
    assert assert_consistent(tmp_path, OTHER)["predictions"]["file"] == shared
    assert predictions_files(tmp_path) == sorted([shared, new])
    write_entry(tmp_path, seed=3, stem=OTHER)  # now nothing names it
    newer = assert_consistent(tmp_path, OTHER)["predictions"]["file"]
    assert predictions_files(tmp_path) == sorted([new, newer])
    write_entry(tmp_path, seed=2, stem=OTHER)  # back to STEM's predictions: shared again
    assert predictions_files(tmp_path) == [new]
    assert_consistent(tmp_path)


def test_a_file_named_by_any_json_is_never_removed(tmp_path):
    """References come from every JSON of the directory, even a broken one or one of another writer."""
    write_entry(tmp_path, seed=1)
    kept = assert_consistent(tmp_path)["predictions"]["file"]
    truncated = (tmp_path / f"{STEM}.json").read_bytes()
    (tmp_path / "synthetic__val__broken__mit.json").write_bytes(truncated[: truncated.index(b'"sha256"')])
    write_entry(tmp_path, seed=2)
    assert kept in predictions_files(tmp_path)
    (tmp_path / "synthetic__val__broken__mit.json").unlink()
    write_entry(tmp_path, seed=3)
    assert kept not in predictions_files(tmp_path) and len(predictions_files(tmp_path)) == 1


def test_a_damaged_file_under_the_name_is_replaced_by_the_right_bytes(tmp_path):
    write_entry(tmp_path, seed=1)
    path = tmp_path / assert_consistent(tmp_path)["predictions"]["file"]
    good = path.read_bytes()
    path.write_bytes(good[:100])  # truncated: its bytes no longer hash to its name
    write_entry(tmp_path, seed=1, stem=OTHER)
    assert path.read_bytes() == good
    assert_consistent(tmp_path) and assert_consistent(tmp_path, OTHER)


def test_a_name_collision_is_refused_and_nothing_changes(tmp_path, monkeypatch):
    """Two contents with one 16-hex prefix: the file another entry names is never replaced."""
    import salbench.io.entry as entry

    write_entry(tmp_path, seed=1)
    name = assert_consistent(tmp_path)["predictions"]["file"]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = entry.file_sha256
    monkeypatch.setattr(entry, "file_sha256", lambda p: real(p)[:16] + "0" * 48)  # same prefix, other bytes
    with pytest.raises(FileError, match=f"{name} already holds other content.*previous entry is unchanged"):
        write_entry(tmp_path, seed=1)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_legacy_companion_names_are_read_and_removed_once_unnamed(tmp_path):
    """``STEM.predictions.<16 hex>.npz`` (and ``STEM.predictions.npz``) of earlier versions."""
    write_entry(tmp_path, seed=1)
    write_entry(tmp_path, seed=1, stem=OTHER)
    r = assert_consistent(tmp_path)
    sha = r["predictions"]["sha256"]
    for stem in (STEM, OTHER):  # what the previous layout wrote: one copy per entry
        legacy = f"{stem}.predictions.{sha[:16]}.npz"
        (tmp_path / legacy).write_bytes((tmp_path / r["predictions"]["file"]).read_bytes())
        d = json.loads((tmp_path / f"{stem}.json").read_text())
        d["predictions"]["file"] = legacy
        (tmp_path / f"{stem}.json").write_text(json.dumps(d))
    (tmp_path / r["predictions"]["file"]).unlink()
    for stem in (STEM, OTHER):
        back = load_result(tmp_path / f"{stem}.json")
        assert file_sha256(tmp_path / back["predictions"]["file"]) == sha
        maps, names = load_predictions_npz(tmp_path / back["predictions"]["file"])
        assert names == back["image_names"] and np.array_equal(maps, np.stack(_maps(1)))
    write_entry(tmp_path, seed=1)  # rewritten in the new layout: its legacy copy goes, OTHER's stays
    assert predictions_files(tmp_path) == sorted([f"{OTHER}.predictions.{sha[:16]}.npz", r["predictions"]["file"]])
    assert_consistent(tmp_path)
    assert load_result(tmp_path / f"{OTHER}.json")["predictions"]["file"] == f"{OTHER}.predictions.{sha[:16]}.npz"


def test_concurrent_threads_write_identical_predictions_into_different_entries(tmp_path):
    stems = [result_stem(f"m{t}", "synthetic", "val", "mit") for t in range(4)]
    errors = []

    def worker(stem):
        try:
            for k in range(5):
                write_entry(tmp_path, seed=k, stem=stem)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in stems]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    files = {assert_consistent(tmp_path, s)["predictions"]["file"] for s in stems}
    assert len(files) == 1 and predictions_files(tmp_path) == sorted(files)


# -- identical maps inside one file -------------------------------------------------------------
def _center_map():
    y, x = np.mgrid[0:48, 0:48]
    return quantise_map(np.exp(-((y - 24.0) ** 2 + (x - 20.0) ** 2) / 150.0))


def _archive(path: Path, names, maps) -> dict:
    with open(path, "wb") as fh:
        w = MapStreamWriter(fh)
        for n, m in zip(names, maps):
            w.add(n, m)
        return w.finish()


def test_identical_maps_are_stored_once_and_read_back_exactly(tmp_path):
    import zipfile

    rng = np.random.default_rng(0)
    a, b, c = _center_map(), quantise_map(rng.random((48, 48))), rng.random((5, 7))  # c needs float64
    maps = [a, b, a.astype(np.float64), c, np.zeros((2, 8)), np.zeros((4, 4)), c.copy(), b, np.zeros((4, 4))]
    names = [f"im{i}.png" for i in range(len(maps))]
    info = _archive(tmp_path / "p.npz", names, maps)
    assert info["n"] == 9 and info["n_stored"] == 5  # a, b, c, zeros 2x8, zeros 4x4 (same bytes, other shape)
    assert info["sha256"] == file_sha256(tmp_path / "p.npz")
    with zipfile.ZipFile(tmp_path / "p.npz") as z:
        index = json.loads(z.read("index.json"))
        assert sorted(z.namelist()) == ["000000.npy", "000001.npy", "000003.npy", "000004.npy", "000005.npy",
                                        "index.json"]
    assert index["same"] == [None, None, 0, None, None, None, 3, 1, 5]
    with open_stored_predictions(tmp_path / "p.npz") as sp:
        assert sp.names == names
        for i, m in enumerate(maps):
            got = sp.load(i)
            assert got.dtype == np.float64 and got.shape == m.shape and np.array_equal(got, m)
    back, got_names = load_predictions_npz(tmp_path / "p.npz")
    assert got_names == names and all(np.array_equal(x, m) for x, m in zip(back, maps))


def test_a_file_of_500_identical_maps_costs_about_one_map(tmp_path):
    cb = _center_map()
    names = [f"synthetic_{i:05d}.png" for i in range(500)]
    one = _archive(tmp_path / "one.npz", names[:1], [cb])["size"]
    many = _archive(tmp_path / "many.npz", names, [cb] * 500)["size"]
    # the names themselves (~1.3 KB deflated) are what 499 more images cost
    assert many < one + 1600, (one, many)
    distinct = _archive(tmp_path / "distinct.npz", names, [cb + i / 1024 for i in range(500)])["size"]
    assert distinct > 100 * one  # without repeats, one member per map as before
    with open_stored_predictions(tmp_path / "many.npz") as sp:
        assert all(np.array_equal(sp.load(i), cb) for i in (0, 1, 250, 499))


def test_array_source_reads_a_deduplicated_file(tmp_path):
    from salbench.predictions import open_predictions

    cb, other = _center_map(), quantise_map(np.random.default_rng(1).random((48, 48)))
    names = ["a.png", "b.png", "c.png"]
    _archive(tmp_path / "p.npz", names, [cb, other, cb])
    m = open_predictions(tmp_path / "p.npz").match(["c.png", "a.png", "b.png"])
    assert [np.array_equal(m.load(k), x) for k, x in zip(m.indices.tolist(), [cb, cb, other])] == [True] * 3


def _rewrite_index(path: Path, edit) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w") as dst:
        index = json.loads(src.read("index.json"))
        edit(index)
        for name in src.namelist():
            if name != "index.json":
                dst.writestr(name, src.read(name))
        dst.writestr("index.json", json.dumps(index))
    path.write_bytes(buf.getvalue())


def _format_2(index):  # what salbench wrote before deduplication: no "same", one member per map
    index["format"] = "salbench.predictions/2"
    del index["same"]


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(same=[None, None, 3, 0]), "map 2 is map 3, not an earlier stored map"),
    (lambda d: d.update(same=[None, None, 0, 2]), "map 3 is map 2, not an earlier stored map"),  # a chain
    (lambda d: d.update(same=[None, None, True, 0]), "map 2 is map True, not an earlier stored map"),
    (lambda d: d.update(same=[None, None]), "one entry per map"),
    (lambda d: d.update(same={"000002.npy": "000000.npy"}), "one entry per map"),
    (lambda d: d.update(same=[None, None, 1, 0]), "map 2 is map 1, of another dtype or shape"),
    (lambda d: d.update(same=[None, None, None, 0]), "members do not match"),
    (lambda d: d.update(format="salbench.predictions/2"), "has no deduplicated members"),
    (_format_2, "members do not match"),
])
def test_a_broken_same_list_is_refused(tmp_path, edit, match):
    path = tmp_path / "p.npz"
    _archive(path, ["a", "b", "c", "d"], [np.ones((3, 3)), np.zeros((2, 2)), np.ones((3, 3)), np.ones((3, 3))])
    with open_stored_predictions(path) as sp:
        assert sp.format == "salbench.predictions/3" and [sp.load(i).shape for i in range(4)] == [(3, 3), (2, 2),
                                                                                                   (3, 3), (3, 3)]
    _rewrite_index(path, edit)
    with pytest.raises(ValueError, match=match):
        open_stored_predictions(path)


def test_format_2_files_are_still_read(tmp_path):
    path = tmp_path / "p.npz"
    maps = _maps(5)
    _archive(path, ["a", "b", "c", "d"], maps)
    _rewrite_index(path, _format_2)
    with open_stored_predictions(path) as sp:
        assert sp.format == "salbench.predictions/2"
        assert all(np.array_equal(sp.load(i), m) for i, m in enumerate(maps))


# -- faults -----------------------------------------------------------------------------------------
def _fail_writes_after(monkeypatch, limit: int):
    """Make the predictions stream fail with ENOSPC once ``limit`` bytes have been written."""
    real = HashingSink.write

    def write(self, data):
        if self.size + len(memoryview(data).cast("B")) > limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(HashingSink, "write", write)


def test_disk_full_while_writing_predictions_keeps_the_old_entry(tmp_path, monkeypatch):
    write_entry(tmp_path, seed=1)
    before = (tmp_path / f"{STEM}.json").read_bytes(), predictions_files(tmp_path)
    _fail_writes_after(monkeypatch, 300)
    with pytest.raises(FileError) as info:
        write_entry(tmp_path, seed=2, n=20)
    exc = info.value
    assert exc.errno == errno.ENOSPC
    assert str(exc) == (f"results entry {tmp_path / (STEM + '.json')}: could not write the predictions "
                        "(disk full (no space left on device)); the previous entry is unchanged")
    assert ((tmp_path / f"{STEM}.json").read_bytes(), predictions_files(tmp_path)) == before
    assert sorted(os.listdir(tmp_path)) == sorted([f"{STEM}.json", *before[1]])  # no temporary file left
    assert_consistent(tmp_path)


def test_disk_full_on_a_first_entry_says_nothing_was_written(tmp_path, monkeypatch):
    _fail_writes_after(monkeypatch, 100)
    with pytest.raises(FileError, match="no entry was written"):
        write_entry(tmp_path, seed=2, n=20)
    assert os.listdir(tmp_path) == []


def test_disk_full_while_writing_the_json_keeps_the_old_entry(tmp_path, monkeypatch):
    write_entry(tmp_path, seed=1)
    before = (tmp_path / f"{STEM}.json").read_bytes(), predictions_files(tmp_path)
    import salbench.io.atomic as atomic

    real_replace = os.replace

    def replace(src, dst):  # the JSON's temporary file is complete, its rename hits ENOSPC
        if str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(FileError, match="disk full.*the previous entry is unchanged") as info:
        write_entry(tmp_path, seed=2)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    # the new predictions file was renamed into place, then removed again: the old JSON never named it
    assert ((tmp_path / f"{STEM}.json").read_bytes(), predictions_files(tmp_path)) == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
    assert_consistent(tmp_path)


def test_concurrent_threads_commit_whole_entries(tmp_path):
    errors = []

    def worker(seed):
        try:
            for k in range(4):
                write_entry(tmp_path, seed=seed * 100 + k)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    r = assert_consistent(tmp_path)
    assert predictions_files(tmp_path) == [r["predictions"]["file"]]


_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_results_store import write_entry, ResultWriter, STEM, _record
    from pathlib import Path
    root, mode, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if mode == "loop":
        for k in range(6):
            write_entry(root, seed=seed * 100 + k, n=8)
    elif mode == "shared":  # the same predictions as the other process, into another entry
        for k in range(6):
            write_entry(root, seed=k, n=8, stem=f"{{STEM}}-{{seed}}")
    else:  # "slow": announce, then write forever until killed
        with ResultWriter(root, STEM if mode == "slow" else mode) as w:
            for i in range(10**6):
                w.add_prediction(f"im{{i}}.png", np.full((32, 32), (i % 7) / 7.0))
                if i == 3:
                    print("writing", flush=True)
                time.sleep(0.01)
""")


def _writer(tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(tests=str(REPO / "tests")))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_concurrent_processes_never_mix_entries(tmp_path):
    root = tmp_path / "res"
    root.mkdir()
    procs = [_writer(tmp_path, str(root), "loop", str(s)) for s in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    r = assert_consistent(root)
    assert predictions_files(root) == [r["predictions"]["file"]]
    assert sorted(os.listdir(root)) == sorted([f"{STEM}.json", r["predictions"]["file"]])


def test_sigkill_during_write_leaves_the_old_entry_and_no_entry_from_temp_files(tmp_path):
    root = tmp_path / "res"
    write_entry(root, seed=1)
    before = (root / f"{STEM}.json").read_bytes()
    proc = _writer(tmp_path, str(root), "slow", "2")
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    temps = [p for p in os.listdir(root) if p.startswith(f".{STEM}.predictions.")]
    assert len(temps) == 1 and temps[0].endswith(".tmp.npz")
    # a crash during the JSON's write leaves a temporary JSON; simulate one with valid content
    (root / f".{STEM}.json.abc123.tmp.json").write_bytes(before.replace(b'"m"', b'"other"'))
    assert (root / f"{STEM}.json").read_bytes() == before
    assert [p.name for p in result_paths(root)] == [f"{STEM}.json"]
    assert [r["model"]["name"] for r in load_results(root)] == ["m"]
    assert_consistent(root)
    write_entry(root, seed=3)  # the next commit removes what the dead writer left
    assert not [p for p in os.listdir(root) if p.startswith(".")]
    assert_consistent(root)


def test_processes_writing_identical_predictions_into_different_entries_share_one_file(tmp_path):
    root = tmp_path / "res"
    root.mkdir()
    procs = [_writer(tmp_path, str(root), "shared", str(s)) for s in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    a, b = assert_consistent(root, f"{STEM}-1"), assert_consistent(root, f"{STEM}-2")
    assert a["predictions"] == b["predictions"]
    assert predictions_files(root) == [a["predictions"]["file"]]
    assert not [p for p in os.listdir(root) if p.startswith(".")]


def test_sigkill_while_rewriting_an_entry_that_shares_its_file(tmp_path):
    """The killed writer's entry and the entry sharing its file both stay whole."""
    root = tmp_path / "res"
    other = result_stem("other", "synthetic", "val", "mit")
    write_entry(root, seed=1)
    write_entry(root, seed=1, stem=other)
    shared = assert_consistent(root)["predictions"]["file"]
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    proc = _writer(tmp_path, str(root), "slow", "2")
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert {p.name: p.read_bytes() for p in root.iterdir() if not p.name.startswith(".")} == before
    write_entry(root, seed=3)  # the killed writer's entry is rewritten: the shared file stays for `other`
    assert assert_consistent(root, other)["predictions"]["file"] == shared
    assert len(predictions_files(root)) == 2 and not [p for p in os.listdir(root) if p.startswith(".")]


def test_results_dir_that_is_a_file_is_named(tmp_path):
    f = tmp_path / "results"
    f.write_text("not a directory")
    with pytest.raises(FileError, match=f"results directory {f} is a file, not a directory") as info:
        ResultWriter(f, STEM)
    assert info.value.errno == errno.ENOTDIR
    with pytest.raises(FileError, match=f"{f} is a file, not a directory"):
        ResultWriter(f / "sub", STEM)


# -- reading results files ---------------------------------------------------------------------------
@pytest.fixture()
def board(tmp_path):
    write_entry(tmp_path, seed=1)
    (tmp_path / "synthetic__train__m.fit.json").write_text('{"sigma": 1}')  # not a results file
    return tmp_path


@pytest.mark.parametrize("content, match", [
    (b"", "empty results file"),
    (b"   \n", "empty results file"),
    (b'{"schema": "salbench.result/2", "model": {"na', "not valid JSON"),
    (b"[1, 2", "not valid JSON"),
    (b'{"a": NaN}', "not valid JSON"),
    (b'{"a": 1, "a": 2}', "duplicate key"),
    (b"[]", "must hold a JSON object"),
])
def test_unreadable_entries_are_errors_not_skips(board, content, match):
    bad = board / "synthetic__val__x__mit.json"
    bad.write_bytes(content)
    with pytest.raises(ResultsFileError, match=match) as info:
        load_results(board)
    assert str(bad) in str(info.value)
    scanned = {e.path.name: e for e in scan_results(board)}
    assert scanned[bad.name].result is None and match.split()[0] in scanned[bad.name].error
    assert scanned[f"{STEM}.json"].result is not None


def test_truncated_entry_is_an_error(board):
    good = (board / f"{STEM}.json").read_bytes()
    (board / "synthetic__val__y__mit.json").write_bytes(good[: len(good) // 2])
    with pytest.raises(ResultsFileError, match="not valid JSON, truncated or corrupt"):
        load_results(board)


def test_a_file_claiming_the_schema_under_another_name_is_checked(board):
    good = json.loads((board / f"{STEM}.json").read_text())
    good["metrics"] = []
    (board / "mine.json").write_text(json.dumps(good))
    with pytest.raises(ResultsFileError, match="mine.json: metrics must be a non-empty object"):
        load_results(board)


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(metrics={}), "metrics must be a non-empty object"),
    (lambda d: d.update(metrics=[]), "metrics must be a non-empty object"),
    (lambda d: d["metrics"]["cc"]["per_image"].pop(), "3 per-image values for 4 images"),
    (lambda d: d["metrics"]["cc"]["per_image"].__setitem__(0, "x"), "finite numbers or null"),
    (lambda d: d["metrics"]["cc"].pop("higher_is_better"), "missing higher_is_better"),
    (lambda d: d["image_names"].__setitem__(1, d["image_names"][0]), "duplicate image names"),
    (lambda d: d.update(n_images=3), "4 image names for n_images=3"),
    (lambda d: d.pop("n_excluded"), "missing n_excluded"),
    (lambda d: d["predictions"].update(file="../../etc/passwd"), "file name beside the results file"),
    (lambda d: d.update(schema="salbench.result/9"), "unsupported schema"),
])
def test_broken_records_claiming_the_schema_are_errors(board, edit, match):
    path = board / f"{STEM}.json"
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d))
    with pytest.raises(ResultsFileError, match=match):
        load_result(path)


def test_hidden_and_non_result_json_are_ignored(board):
    (board / ".hidden").mkdir()
    (board / ".hidden" / "synthetic__val__z__mit.json").write_text("{")
    assert [p.name for p in result_paths(board)] == [f"{STEM}.json"]


def test_save_predictions_standalone(tmp_path):
    maps = _maps(3)
    info = save_predictions(tmp_path / "p.npz", maps, ["a", "b", "c", "d"])
    assert info["sha256"] == file_sha256(tmp_path / "p.npz") and info["dtype"] == "float16"
    assert info["shape"] == [4, 6, 8]
    back, names = load_predictions_npz(tmp_path / "p.npz")
    assert names == ["a", "b", "c", "d"] and np.array_equal(back, np.stack(maps))


def test_corrupt_predictions_files_are_named(tmp_path):
    path = tmp_path / "p.npz"
    save_predictions(path, _maps(3), ["a", "b", "c", "d"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"predictions file {path} is not readable"):
        open_stored_predictions(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="not readable"):
        open_stored_predictions(path)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        open_stored_predictions(tmp_path / "nope.npz")


def test_a_member_whose_header_lies_is_refused_before_allocating(tmp_path):
    """A crafted member claiming a huge shape is refused from its header, not by a MemoryError."""
    import io
    import zipfile

    path = tmp_path / "p.npz"
    save_predictions(path, _maps(3, n=1), ["a"])
    with zipfile.ZipFile(path) as z:
        index = json.loads(z.read("index.json"))
    index["shapes"] = [[100000, 100000]]
    buf = io.BytesIO()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f2", "fortran_order": False,
                                                  "shape": (100000, 100000)})
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("000000.npy", header.getvalue() + b"\0" * 64)
        z.writestr("index.json", json.dumps(index))
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="unsupported dtype or shape"):
        open_stored_predictions(path)
    index["shapes"] = [[6, 8]]
    with zipfile.ZipFile(buf := io.BytesIO(), "w") as z:
        z.writestr("000000.npy", header.getvalue() + b"\0" * 64)
        z.writestr("index.json", json.dumps(index))
    path.write_bytes(buf.getvalue())
    with open_stored_predictions(path) as sp, pytest.raises(ValueError, match="exceed|header says"):
        sp.load(0)


def test_maps_added_from_worker_threads_in_any_order(tmp_path):
    """score_stream calls get_prediction from worker threads: the writer takes maps in any order."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"im{i}.png" for i in range(40)]
    maps = {n: np.full((5, 7), i / 64.0) for i, n in enumerate(names)}
    with ResultWriter(tmp_path, STEM) as w:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: w.add_prediction(n, maps[n]), reversed(names)))
        w.commit(_record(names))
    r = assert_consistent(tmp_path)
    assert r["image_names"] == names  # the record keeps scoring order; the file is indexed by name
    with open_stored_predictions(tmp_path / r["predictions"]["file"]) as sp:
        assert sorted(sp.names) == sorted(names)
        for j, n in enumerate(sp.names):
            assert np.array_equal(sp.load(j), maps[n])


def test_a_legacy_stacked_predictions_member_is_held_to_the_array_limit(tmp_path, monkeypatch):
    """``predictions.npy`` of a schema-1 file is exempt from the per-map pixel limit, not from memory's (issue 19)."""
    from salbench.io.array_limits import ArrayTooLarge

    path = tmp_path / "legacy.npz"
    stack = np.zeros((40, 100, 100), dtype=np.float32)  # 1.5 MiB as stored, ~1.5 KiB compressed
    np.savez_compressed(path, predictions=stack, names=np.array([f"{i}.jpg" for i in range(40)]))
    with open_stored_predictions(path) as sp:  # under the default limit it reads as before
        assert sp.format == "salbench.predictions/1" and np.array_equal(sp.load(39), stack[39])
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "1M")
    with open_stored_predictions(path) as sp:
        with pytest.raises(ArrayTooLarge) as info:
            sp.load(0)
    msg = str(info.value)
    assert msg.startswith(f"predictions file {path}: member predictions.npy ((40, 100, 100) float32) would take "
                          "1.5 MiB of memory, more than the 1.0 MiB one array may take"), msg
