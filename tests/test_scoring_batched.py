"""``score_stream(..., batched=True)``: a chunk's maps from one call (a model predicting a batch).

The same loop scores per-image sources and batched ones; a batched source must give
the same numbers for any chunk size and worker count, be called once per chunk in
chunk order (so what it stores is in dataset order), and fail with one clear line.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from salbench.protocols import get_protocol, list_protocols
from salbench.scoring import ScoringInterrupted, score_stream
from tests.test_protocols_fixtures import ListDataset, make_predictions, make_records

N = 15


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))


def _data(protocol):
    shapes = None if protocol == "coursework" else [(30, 40) if i % 4 else (24, 36) for i in range(N)]
    return make_records(N, seed=2, empty=(3,), shapes=shapes), make_predictions(N, seed=2)


class Recorder:
    """A batched source over ``preds`` that records each call's indices and thread."""

    def __init__(self, preds):
        self.preds, self.calls, self.threads = preds, [], set()

    def __call__(self, indices):
        self.calls.append(list(indices))
        self.threads.add(threading.current_thread().name)
        return [self.preds[i] for i in indices]


@pytest.mark.parametrize("protocol", list_protocols())
def test_batched_equals_per_image_for_any_chunk_and_workers(protocol):
    recs, preds = _data(protocol)
    p = get_protocol(protocol)
    ref = p.evaluate(preds, recs, seed=5)
    for chunk, workers in ((1, 0), (4, 3), (7, 1), (N, 2)):
        source = Recorder(preds)
        got = score_stream(p, ListDataset(recs), source, seed=5, chunk_size=chunk, workers=workers,
                           progress=False, batched=True)
        for k in p.metrics:
            np.testing.assert_array_equal(got.scores[k], ref.scores[k], err_msg=f"{k} chunk={chunk} w={workers}")
        assert got.names == ref.names and got.excluded == ref.excluded
        # once per chunk, in order: a source that stores maps as they come stores them in dataset order
        assert source.calls == [list(range(c, min(c + chunk, N))) for c in range(0, N, chunk)]
        assert len(source.threads) == 1


def test_batched_with_indices_follows_their_order():
    recs, preds = _data("mit")
    source = Recorder(preds)
    got = score_stream("mit", ListDataset(recs), source, seed=0, chunk_size=2, workers=2, progress=False,
                       indices=[9, 2, 4], batched=True)
    assert source.calls == [[9, 2], [4]] and got.names == [recs[i].name for i in (9, 2, 4)]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_failing_source_names_the_chunk(workers):
    recs, preds = _data("mit")

    def source(indices):
        if 6 in indices:
            raise ValueError("the model exploded")
        return [preds[i] for i in indices]

    with pytest.raises(ValueError, match="the model exploded") as info:
        score_stream("mit", ListDataset(recs), source, chunk_size=3, workers=workers, progress=False, batched=True)
    assert info.value.__notes__ == [f"while predicting 3 images from {recs[6].name!r}"]


def test_a_source_returning_too_few_maps_is_refused():
    recs, preds = _data("mit")
    with pytest.raises(ValueError, match="returned 2 maps for a chunk of 3 images"):
        score_stream("mit", ListDataset(recs), lambda idx: [preds[i] for i in idx][:2], chunk_size=3, workers=1,
                     progress=False, batched=True)


def test_ctrl_c_in_a_batched_source_stops_everything():
    recs, preds = _data("mit")

    def source(indices):
        if indices[0] >= 6:
            raise KeyboardInterrupt
        return [preds[i] for i in indices]

    with pytest.raises(ScoringInterrupted, match="interrupted after scoring") as info:
        score_stream("mit", ListDataset(recs), source, chunk_size=3, workers=2, progress=False, batched=True)
    assert info.value.done <= 6
    assert not [t for t in threading.enumerate() if t.name.startswith(("salbench-score", "salbench-predict"))]
