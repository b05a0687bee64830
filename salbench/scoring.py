"""Streaming evaluation: score a dataset chunk by chunk in bounded memory.

:func:`score_stream` runs a protocol's :class:`~salbench.protocols.Scorer` over a
dataset. Worker threads decode the predictions and prepare each image (ground-truth
record where the protocol needs one, resize, per-image ground truth) while the main
thread scores the previous chunk with the protocol's parallel kernels; at most two
chunks are in memory at a time, and what outlives a chunk is its per-image scores
plus the cross-image data the protocol keeps (fixation points, draw tables). The
numbers do not depend on ``chunk_size`` or ``workers``: every per-image draw is fixed
from ``(seed, n, image)`` before the first chunk.

    from salbench.scoring import score_stream
    result = score_stream(get_protocol("mit"), dataset, lambda i: maps[i], seed=0)

With ``maps="metric-specific"`` the predictions are log-densities and every metric scores
its own map of each (:class:`~salbench.protocols.base.Scorer`); the shuffled metrics' leave-
one-out baseline needs every density first, so the predictions are read twice: a first pass
adds each image's density to one running sum per image size (in image order), the second
scores. Memory stays flat; ``get_prediction`` must return the same map both times.

Ctrl-C stops the workers and raises :class:`ScoringInterrupted` (a KeyboardInterrupt
saying how far it got; nothing is written).
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from salbench._parallel import available_cores, one_blas_thread

__all__ = ["ScoringInterrupted", "score_stream"]


class ScoringInterrupted(KeyboardInterrupt):
    """Scoring was interrupted (Ctrl-C); the workers are stopped and nothing was written."""

    def __init__(self, done: int, total: int, protocol: str):
        self.done, self.total, self.protocol = done, total, protocol
        super().__init__(f"interrupted after scoring {done} of {total} images under {protocol}; nothing was written")

    def __str__(self) -> str:
        return self.args[0]


def _bar(progress, total, desc, done):
    if not progress:
        return None
    from salbench.io.progress import progress_bar  # a bar on a terminal, a line every ~10 s in a log

    return progress_bar(total, desc, done)


def score_stream(protocol, dataset, get_prediction: Callable, *, seed=0, chunk_size: int = 64,
                 workers: int | None = None, progress: bool = True, indices=None, batched: bool = False,
                 executor=None, maps: str = "raw", map_derivation=None):
    """Score ``get_prediction(i)`` for the dataset's images under ``protocol``, chunk by chunk.

    Parameters
    ----------
    protocol : Protocol or str
        A protocol object (``get_protocol(name, **overrides)``) or a protocol name.
    dataset : SaliencyDataset, GroundTruthView or list of Record
        The evaluated images' ground truth. A dataset is read through
        ``ground_truth(i)`` / ``fixation_points(i)`` (no image decoding), and its
        model-independent ground truth is cached on disk, keyed by its content hash.
    get_prediction : callable
        ``get_prediction(i)`` -> 2-D saliency map of dataset index ``i``; called from
        worker threads (it must be thread-safe; file reads and decoders are).
    seed : int or None
        Seed of the protocol's random draws.
    chunk_size : int
        Images scored per call of the protocol's kernels (memory: about two chunks of
        full-resolution float64 maps, ~5 MB per 480x640 image under ``mit``).
    workers : int, optional
        Threads that decode predictions and prepare and score images (0: everything in
        the calling thread; default: the cores this process may use). Does not change
        any number. BLAS runs one thread per worker meanwhile.
    progress : bool
        Report progress on stderr (ground truth, then scoring, with images/s): bars on a
        terminal, a line every ~10 s elsewhere (:func:`salbench.io.progress.progress_bar`).
    indices : sequence of int, optional
        Dataset indices to evaluate (default: all), in result order.
    batched : bool
        ``get_prediction(chunk)`` takes the list of a chunk's dataset indices and
        returns their maps (a model predicting a batch): called once per chunk,
        chunks in order, from one thread that runs ahead of the workers (the next
        chunk is predicted while this one is scored).
    executor : object, optional
        Scores the chunks elsewhere (a Dask cluster: :class:`salbench.evaluate.cluster.DaskChunks`):
        ``executor.run_chunks(scorer, chunks)`` yields each chunk's rows
        (:meth:`~salbench.protocols.Scorer.score_rows`) in chunk order, after the scorer
        is set up here; ``get_prediction`` is not called (may be None). Numbers do not change.
    maps : {"raw", "metric-specific"}
        ``"metric-specific"``: the predictions are log-densities, scored with metric-specific
        maps (two passes when a shuffled metric is scored; see the module notes).
    map_derivation : MapDerivation or mapping, optional
        The maps' parameters (:class:`~salbench.protocols.metric_maps.MapDerivation`).

    Returns
    -------
    ProtocolResult
        Per-image scores in the order of ``indices``; ``timings`` gains
        ``ground_truth_s``, ``wait_s`` (main thread waiting for decoding), ``score_s``,
        ``total_s`` and ``images_per_s`` (and ``baseline_s``, the first pass of metric-specific
        maps); ``map_derivation`` says how metric-specific maps were derived.

    Raises
    ------
    ScoringInterrupted
        On Ctrl-C (after stopping the workers).
    ValueError
        Bad arguments (checked before any data is read), or a prediction/record error
        (the exception carries a note naming the image).
    """
    from salbench.protocols import Protocol, get_protocol
    from salbench.protocols.view import GroundTruthView

    if isinstance(protocol, str):
        protocol = get_protocol(protocol)
    if not isinstance(protocol, Protocol):
        raise ValueError(f"protocol must be a Protocol or a protocol name, got {type(protocol).__name__}")
    if workers is None:
        workers = available_cores()
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
    if executor is None and not callable(get_prediction):
        raise ValueError("get_prediction must be callable: get_prediction(index) -> 2-D map")

    if indices is not None and isinstance(dataset, (GroundTruthView, list, tuple)):
        raise ValueError("indices= applies to a dataset; a GroundTruthView or record list is evaluated whole")

    t0 = time.perf_counter()
    if isinstance(dataset, GroundTruthView):
        gt = dataset
    elif isinstance(dataset, (list, tuple)):
        gt = GroundTruthView.from_records(dataset)
    else:
        gt = GroundTruthView.from_dataset(dataset, indices)
    scorer = protocol.scorer(gt, seed=seed, maps=maps, map_derivation=map_derivation)
    n = gt.n

    bar = _bar(progress, n, f"{protocol.name}: ground truth", f"{protocol.name}: ground truth for")
    try:
        scorer.setup(workers=max(1, int(workers)), progress=bar)
    except KeyboardInterrupt:
        raise ScoringInterrupted(0, n, protocol.name) from None
    finally:
        if bar is not None:
            bar.close()

    order = [int(i) for i in gt.indices]
    chunks = [order[c:c + chunk_size] for c in range(0, n, chunk_size)]
    if executor is not None:
        return _score_elsewhere(executor, scorer, chunks, protocol.name, progress, t0, chunk_size)

    def prepare(index, prediction=None):
        pos = gt.position(index)
        try:
            record = gt.record(pos) if scorer.needs_record else None
            return scorer.prepare(index, get_prediction(index) if prediction is None else prediction, record)
        except Exception as exc:
            exc.add_note(f"while preparing image {gt.names[pos]!r} (dataset index {index})")
            raise

    def predict(chunk):  # batched: the chunk's maps, in its order
        try:
            maps = list(get_prediction(list(chunk)))
        except Exception as exc:
            exc.add_note(f"while predicting {len(chunk)} images from {gt.names[gt.position(chunk[0])]!r}")
            raise
        if len(maps) != len(chunk):
            raise ValueError(f"get_prediction returned {len(maps)} maps for a chunk of {len(chunk)} images")
        return maps

    def densities(index, prediction=None):  # first pass of metric-specific maps: the density at the ground truth
        try:
            return scorer.baseline_density(index, get_prediction(index) if prediction is None else prediction)
        except Exception as exc:
            exc.add_note(f"while reading the density of {gt.names[gt.position(index)]!r} (dataset index {index})")
            raise

    pool = ThreadPoolExecutor(max_workers=int(workers), thread_name_prefix="salbench-score") if workers else None
    baseline_s = 0.0
    if scorer.needs_baseline:
        t_base = time.perf_counter()
        bar = _bar(progress, n, f"{protocol.name}: sAUC baseline", f"{protocol.name}: sAUC baseline of")
        try:
            for chunk in chunks:
                given = predict(chunk) if batched else [None] * len(chunk)
                items = list(pool.map(densities, chunk, given)) if pool is not None else [
                    densities(i, m) for i, m in zip(chunk, given)]
                scorer.add_baseline(items)  # in image order: the running sum does not depend on chunking
                del items, given
                if bar is not None:
                    bar.update(len(chunk))
        except KeyboardInterrupt:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            raise ScoringInterrupted(0, n, protocol.name) from None
        except BaseException:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            if bar is not None:
                bar.close()
        baseline_s = time.perf_counter() - t_base

    bar = _bar(progress, n, f"{protocol.name}: scoring", f"{protocol.name}: scored")
    blas = one_blas_thread()  # the workers are the parallelism; restored in the finally below
    feeder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="salbench-predict") if batched and pool else None
    done = 0
    wait_s = 0.0
    t_score = time.perf_counter()
    try:
        pending: deque = deque()

        def submit(chunk):
            if pool is None:
                return chunk  # prepared in the calling thread when its turn comes
            if batched:
                maps = feeder.submit(predict, chunk)
                return [pool.submit(lambda i, j: prepare(i, maps.result()[j]), i, j) for j, i in enumerate(chunk)]
            return [pool.submit(prepare, i) for i in chunk]

        # Two chunks in memory at most: the workers prepare chunk c + 1 while chunk c is scored;
        # chunk c + 2 is submitted once chunk c is scored and released.
        for c in range(min(2, len(chunks))):
            pending.append(submit(chunks[c]))
        next_chunk = len(pending)
        while pending:
            futs = pending.popleft()
            tw = time.perf_counter()
            if pool is not None:
                items = [f.result() for f in futs]
            elif batched:
                items = [prepare(i, m) for i, m in zip(futs, predict(futs))]
            else:
                items = [prepare(i) for i in futs]
            wait_s += time.perf_counter() - tw
            if pool is not None:
                futs = [None] * len(futs)  # drop the futures' references to the items
            scorer.add_prepared(items)
            done += len(items)
            del items
            if next_chunk < len(chunks):
                pending.append(submit(chunks[next_chunk]))
                next_chunk += 1
            if bar is not None:
                bar.update(len(futs))
    except KeyboardInterrupt:
        for executor in (feeder, pool):  # queued predictions first: workers may wait on them
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        pool = feeder = None
        raise ScoringInterrupted(done, n, protocol.name) from None
    finally:
        for executor in (feeder, pool):  # queued predictions first: workers may wait on them
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        blas.restore_original_limits()
        if bar is not None:
            bar.close()
    result = scorer.result()
    total = time.perf_counter() - t0
    result.timings.update(wait_s=wait_s, stream_s=time.perf_counter() - t_score, total_s=total,
                          images_per_s=n / total if total > 0 else float("inf"), chunk_size=int(chunk_size),
                          workers=int(workers), baseline_s=baseline_s)
    return result


def _score_elsewhere(executor, scorer, chunks, name: str, progress: bool, t0: float, chunk_size: int):
    """The chunk loop of :func:`score_stream` when an executor scores the chunks: rows come back in order."""
    n = scorer.n
    bar = _bar(progress, n, f"{name}: scoring", f"{name}: scored")
    done = 0
    t_score = time.perf_counter()
    rows_of = executor.run_chunks(scorer, chunks)
    try:
        for rows in rows_of:
            scorer.import_rows(rows)
            done += len(rows["positions"])
            if bar is not None:
                bar.update(len(rows["positions"]))
    except KeyboardInterrupt:
        raise ScoringInterrupted(done, n, name) from None
    finally:
        rows_of.close()  # cancels the chunks still queued
        if bar is not None:
            bar.close()
    result = scorer.result()
    total = time.perf_counter() - t0
    result.timings.update(wait_s=0.0, stream_s=time.perf_counter() - t_score, total_s=total,
                          images_per_s=n / total if total > 0 else float("inf"), chunk_size=int(chunk_size),
                          executor=type(executor).__name__)
    return result
