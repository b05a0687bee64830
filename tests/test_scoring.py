"""Streaming evaluation: chunk-size / worker / order invariance, interruption, errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from salbench.protocols import get_protocol, list_protocols
from salbench.protocols.view import GroundTruthView
from salbench.scoring import ScoringInterrupted, score_stream
from tests.test_protocols_fixtures import ListDataset, make_predictions, make_records

N = 15


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))


def _data(protocol):
    # coursework needs one ground-truth size; the others get two sizes (per-size shuffle maps)
    shapes = None if protocol == "coursework" else [(30, 40) if i % 4 else (24, 36) for i in range(N)]
    recs = make_records(N, seed=1, empty=(5,), shapes=shapes)
    return recs, make_predictions(N, seed=1)


def _same(a, b, metrics):
    for k in metrics:
        np.testing.assert_array_equal(a.scores[k], b.scores[k], err_msg=k)


@pytest.mark.parametrize("protocol", list_protocols())
def test_chunking_and_workers_do_not_change_any_number(protocol):
    recs, preds = _data(protocol)
    p = get_protocol(protocol)
    ref = p.evaluate(preds, recs, seed=4)
    assert ref.excluded == [recs[5].name]
    for chunk in (1, 7, N):
        for workers in (0, 1, 2, 4, None):  # None: one per available core
            got = score_stream(p, ListDataset(recs), lambda i: preds[i], seed=4, chunk_size=chunk,
                               workers=workers, progress=False)
            _same(ref, got, p.metrics)
            assert got.names == ref.names and got.excluded == ref.excluded


def test_workers_default_to_the_available_cores_and_blas_is_restored():
    import os

    from threadpoolctl import threadpool_info

    from salbench._parallel import available_cores

    assert available_cores() == len(os.sched_getaffinity(0))
    before = [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
    recs, preds = _data("mit")
    seen = []

    def get(i):  # while the workers run, BLAS runs one thread (they are the parallelism)
        seen.extend(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")
        return preds[i]

    got = score_stream("mit", ListDataset(recs), get, seed=0, progress=False)
    assert got.timings["workers"] == available_cores()
    assert seen and set(seen) == {1}
    assert [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"] == before


@pytest.mark.parametrize("protocol", list_protocols())
def test_chunks_in_any_order_merge_to_the_same_numbers(protocol):
    """Chunks added backwards (salicon then replays its sequential stream) give the in-order numbers."""
    recs, preds = _data(protocol)
    p = get_protocol(protocol)
    ref = p.evaluate(preds, recs, seed=9)
    sc = p.scorer(GroundTruthView.from_records(recs), seed=9)
    for c0 in reversed(range(0, N, 4)):
        idx = list(range(c0, min(c0 + 4, N)))
        sc.add(idx, [preds[i] for i in idx], [recs[i] for i in idx])
    _same(ref, sc.result(), p.metrics)


def test_indices_subset_and_result_order():
    recs, preds = _data("mit")
    p = get_protocol("mit")
    idx = [9, 2, 4, 11, 0, 7]
    got = score_stream(p, ListDataset(recs), lambda i: preds[i], seed=2, indices=idx, chunk_size=4, progress=False)
    ref = p.evaluate([preds[i] for i in idx], [recs[i] for i in idx], seed=2)
    assert got.names == [recs[i].name for i in idx]
    _same(ref, got, p.metrics)


def test_scorer_refuses_double_and_missing_images():
    recs, preds = _data("exact")
    sc = get_protocol("exact").scorer(recs, seed=0)
    sc.add([0, 1], preds[:2], recs[:2])
    with pytest.raises(ValueError, match="scored twice"):
        sc.add([1], preds[1:2], recs[1:2])
    with pytest.raises(ValueError, match=f"{N - 2} of {N} images were not scored"):
        sc.result()
    with pytest.raises(ValueError, match="not among the evaluated"):
        sc.add([N + 3], preds[:1])


def test_bad_arguments_fail_before_reading_data():
    ds = ListDataset(make_records(3))
    for kw, msg in (({"chunk_size": 0}, "chunk_size"), ({"workers": -1}, "workers")):
        with pytest.raises(ValueError, match=msg):
            score_stream("mit", ds, lambda i: None, progress=False, **kw)
    assert sum(ds.calls.values()) == 0
    with pytest.raises(ValueError, match="unknown protocol"):
        score_stream("mti", ds, lambda i: None, progress=False)


def test_prediction_error_names_the_image():
    recs, preds = _data("mit")

    def get(i):
        if i == 6:
            raise OSError("cannot read map")
        return preds[i]

    with pytest.raises(OSError, match="cannot read map") as info:
        score_stream("mit", ListDataset(recs), get, chunk_size=4, workers=2, progress=False)
    assert any(recs[6].name in note for note in info.value.__notes__)


@pytest.mark.parametrize("workers", [0, 2])
def test_ctrl_c_stops_workers_and_says_how_far(workers):
    recs, preds = _data("mit")
    before = {t.name for t in threading.enumerate()}

    def get(i):
        if i == 9:
            raise KeyboardInterrupt
        return preds[i]

    with pytest.raises(ScoringInterrupted, match=f"of {N} images under mit; nothing was written") as info:
        score_stream("mit", ListDataset(recs), get, chunk_size=4, workers=workers, progress=False)
    assert info.value.done == 8 and isinstance(info.value, KeyboardInterrupt)
    left = [t.name for t in threading.enumerate() if t.name not in before and t.name.startswith("salbench-score")]
    assert left == []


def test_stream_timings_and_progress(capsys, monkeypatch):
    import salbench.io.progress

    monkeypatch.setattr(salbench.io.progress, "stderr_is_terminal", lambda: True)  # a bar (lines: test_progress)
    recs, preds = _data("coursework")
    r = score_stream("coursework", ListDataset(recs), lambda i: preds[i], chunk_size=4, progress=True)
    assert r.timings["images_per_s"] > 0 and r.timings["ground_truth_s"] >= 0
    assert "coursework: scoring" in capsys.readouterr().err
