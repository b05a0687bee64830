"""Ground-truth cache shared by processes (Dask workers on one filesystem): concurrent builders of one key.

Each builder writes its own temporary directory; publishing is serialised by the cache directory's
lock, an intact entry a peer published first is kept (its open readers are never pulled from under
them), and a stale or corrupt one is replaced.
"""

from __future__ import annotations

import multiprocessing
import os

import pytest

from salbench.protocols import _gt_cache

KEY = {"what": "race test", "content_hash": "abc"}
BLOBS = [b"first image", b"second", b"third image's blob"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "ground_truth"


def _writer():
    w = _gt_cache.GTCacheWriter("race", KEY, len(BLOBS), ["s"])
    for i, blob in enumerate(BLOBS):
        w.put("s", i, blob)
    return w


def test_a_peer_that_publishes_first_keeps_its_entry_and_readers(cache):
    a, b = _writer(), _writer()  # both found no entry and built one
    path = a.commit()
    reader = _gt_cache.GTCache.open("race", KEY)
    inode = (path / "manifest.json").stat().st_ino
    assert b.commit() == path
    assert (path / "manifest.json").stat().st_ino == inode  # not replaced under its reader
    assert [reader.read("s", i) for i in range(3)] == BLOBS
    reader.close()
    assert [p.name for p in cache.iterdir()] == [path.name]  # b's temporary directory is gone


def test_a_corrupt_entry_is_replaced(cache):
    path = _writer().commit()
    (path / "s.bin").write_bytes(b"x" * sum(map(len, BLOBS)))  # same size, other bytes: fails the crc
    assert _gt_cache.GTCache.open("race", KEY) is None
    _writer().commit()
    fresh = _gt_cache.GTCache.open("race", KEY)
    assert fresh is not None and [fresh.read("s", i) for i in range(3)] == BLOBS
    fresh.close()


def _build_and_read(root, barrier, out):
    os.environ["SALBENCH_CACHE"] = root
    w = _writer()
    barrier.wait()  # every process commits at once
    w.commit()
    c = _gt_cache.GTCache.open("race", KEY)
    out.put(None if c is None else [c.read("s", i) for i in range(3)])


def test_processes_building_one_key_at_once_all_read_one_intact_entry(cache):
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs Numba's threads
    n = 4
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_build_and_read, args=(str(cache.parent), barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert got == [BLOBS] * n  # every builder reads the published entry right after its commit
    assert len([p for p in cache.iterdir()]) == 1  # one entry, no temporary directory left
