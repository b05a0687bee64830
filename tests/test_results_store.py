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

from salbench.io import FileError
from salbench.io.map_store import HashingSink, MapStreamWriter, open_stored_predictions
from salbench.leaderboard.results import (
    RESULT_SCHEMA, ResultsFileError, ResultWriter, build_result, file_sha256, folder_digest, load_predictions_npz,
    load_result, load_results, quantize_map, result_paths, result_stem, save_predictions, scan_results,
)

REPO = Path(__file__).resolve().parents[1]
STEM = result_stem("m", "synthetic", "val", "mit")


def _maps(seed: int, n: int = 4, shape=(6, 8)):
    rng = np.random.default_rng(seed)
    return [quantize_map(rng.random(shape), f"map {i}") for i in range(n)]


def _record(names, seed: int = 0):
    rng = np.random.default_rng(seed)
    return build_result(model={"name": "m", "checkpoint": None},
                        dataset={"name": "synthetic", "split": "val", "n_files": len(names)},
                        protocol="mit", params={"name": "mit"}, seed=0, names=names,
                        scores={"cc": rng.random(len(names)), "kld": rng.random(len(names))})


def write_entry(root: Path, seed: int, n: int = 4) -> Path:
    names = [f"im{i}.png" for i in range(n)]
    with ResultWriter(root, STEM) as w:
        for name, m in zip(names, _maps(seed, n)):
            w.add_prediction(name, m)
        return w.commit(_record(names, seed))


def assert_consistent(root: Path) -> dict:
    """The entry's JSON names an existing predictions file whose bytes hash as recorded."""
    r = load_result(root / f"{STEM}.json")
    pred = root / r["predictions"]["file"]
    assert pred.is_file()
    assert file_sha256(pred) == r["predictions"]["sha256"]
    assert r["predictions"]["file"] == f"{STEM}.predictions.{r['predictions']['sha256'][:16]}.npz"
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
    else:  # "slow": announce, then write forever until killed
        with ResultWriter(root, STEM) as w:
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
