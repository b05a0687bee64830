"""Scoring an evaluation's chunks on a Dask cluster (``salbench eval --executor dask[:ADDRESS]``).

The client (``salbench eval``) plans the evaluation as always: it opens the dataset,
prepares the model's weights, sets up the protocol's scorer (building the ground-truth
caches where it runs) and writes the results entry. Only the chunks go to the cluster,
each one a task :func:`score_chunk` that returns the chunk's per-image scores
(:meth:`~salbench.protocols.Scorer.score_rows`) and what the entry records of its maps.
The client takes them in chunk order, so the entry, its predictions file included, is
byte for byte the one a local run writes.

What crosses the wire
---------------------
- To a worker, per task: a :class:`ChunkJob` (a few hundred bytes: dataset name, split,
  folder and options; protocol, parameters, metric set and seed; where the maps come
  from) and the chunk's dataset indices. Never model weights: the worker builds the model
  from its name, options and checkpoint *path* and checks the checkpoint's SHA-256; never
  a folder of maps: the worker reads it by path. Only maps the caller holds in memory
  (``model_predictions``) travel with their chunk.
- Back, per task: the chunk's score rows, and the maps as the entry stores them
  (float16 where lossless: ~0.6 MB per 480x640 map) or, for a folder, each file's SHA-256.

The cross-image state of a scorer (fixation points, the draw tables, sAUC's other maps,
coursework's targets) is rebuilt on every worker, once per run, deterministically: the
tables are functions of ``(seed, n)`` (:mod:`salbench.protocols._draws`) and the
ground truth comes from the on-disk cache keyed by the dataset's content hash
(:mod:`salbench.protocols._gt_cache`): a hit where workers share the client's
filesystem, rebuilt from the data where they do not. A worker checks the dataset's
content hash, the evaluated names and the protocol's parameters against the job
before scoring anything.

A worker that dies has its task run again elsewhere (the scheduler's ``allowed-failures``);
nothing is written until every chunk is back, and a run that fails or is interrupted
(Ctrl-C) cancels its tasks and leaves the previous entry as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

#: Per worker process: the set-up state of the runs it scores chunks of (the newest few).
_STATES: "OrderedDict[str, _JobState]" = OrderedDict()
_STATES_LOCK = threading.Lock()
_KEEP_STATES = 2


def names_digest(names: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def _json_normal(obj):
    return json.loads(json.dumps(obj, sort_keys=True, default=list))


@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs to score any chunk of one evaluation (small: it travels with every task).

    Attributes
    ----------
    token : str
        Identifies the run (a worker keeps its set-up state under it).
    dataset : dict
        ``name``, ``split``, ``data_dir`` (absolute), ``options``, ``content_hash``, ``n_files``.
    indices : tuple of int or None
        The evaluated dataset indices, in result order (None: the whole split).
    names_sha256 : str
        Digest of the evaluated image names, in that order.
    protocol, params, metrics, seed
        The protocol, its complete parameters, the chosen metrics and the seed.
    source : dict
        Where the maps come from: ``{"kind": "model", "name", "options", "checkpoint",
        "sha256", "batch_size"}``, ``{"kind": "array" | "folder", "path", "allow_missing",
        "allow_extra"}`` or ``{"kind": "given"}`` (maps sent with each chunk).
    """

    token: str
    dataset: dict
    indices: tuple | None
    names_sha256: str
    protocol: str
    params: dict
    metrics: tuple
    seed: int | None
    source: dict = field(default_factory=dict)


def job_for(plan, scorer, source: dict) -> ChunkJob:
    """The :class:`ChunkJob` of an evaluation plan whose (set-up) scorer is ``scorer``."""
    choice, ds = plan.choice, plan.dataset
    data_dir = None if choice.data_dir is None else str(Path(choice.data_dir).resolve())
    indices = [int(i) for i in scorer.gt.indices]
    whole = indices == list(range(len(ds)))
    return ChunkJob(
        token=uuid.uuid4().hex, indices=None if whole else tuple(indices), names_sha256=names_digest(scorer.gt.names),
        dataset={"name": choice.name, "split": plan.split, "data_dir": data_dir, "options": dict(choice.options),
                 "content_hash": ds.identity().get("content_hash"), "n_files": len(ds)},
        protocol=plan.protocol.name, params=plan.protocol.params, metrics=tuple(plan.protocol.metrics),
        seed=plan.seed, source=dict(source))


# ----------------------------------------------------------------------------- the client side
class DaskChunks:
    """The executor :func:`salbench.scoring.score_stream` hands the chunks to: a Dask cluster.

    :meth:`run_chunks` submits the chunks in order, at most ``window`` in flight (memory
    stays bounded: each holds one chunk's maps), and yields each chunk's rows in chunk
    order after ``record(chunk, returned)`` has recorded its maps in the entry.

    Parameters
    ----------
    client : distributed.Client
    make_job : callable
        ``make_job(scorer) -> ChunkJob`` (called once the scorer is set up).
    record : callable
        ``record(chunk, returned)``: store the chunk's maps (``returned["stored"]``) or
        hashes (``returned["sha256"]``) in the entry; called in chunk order.
    given : callable, optional
        ``given(chunk) -> list of maps`` sent with the chunk (maps held in memory); called
        in chunk order, before the chunk is submitted.
    """

    def __init__(self, client, make_job: Callable, record: Callable, *, given: Callable | None = None,
                 window: int | None = None):
        self.client, self.make_job, self.record, self.given = client, make_job, record, given
        self.window = window
        self.predict_s = 0.0
        self.seconds: dict[str, float] = {}  # summed over the chunks: state, maps, prepare, wait, score
        self.workers: dict[str, dict] = {}  # worker -> its set-up info (host, pid, ground truth cached)

    def _window(self) -> int:
        if self.window:
            return int(self.window)
        n = len(self.client.scheduler_info().get("workers", {})) or 1
        return 2 * n

    def run_chunks(self, scorer, chunks):
        """Yield the rows of every chunk (``Scorer.score_rows``), in chunk order; cancel the rest on exit."""
        from salbench.evaluate.executor import cluster_error

        job = self.make_job(scorer)
        pending: deque = deque()
        window = self._window()
        next_chunk = 0
        try:
            while next_chunk < len(chunks) or pending:
                while next_chunk < len(chunks) and len(pending) < window:
                    chunk = [int(i) for i in chunks[next_chunk]]
                    maps = self.given(chunk) if self.given is not None else None
                    key = f"salbench-chunk-{job.token}-{next_chunk}"
                    pending.append((chunk, self.client.submit(score_chunk, job, chunk, maps, key=key, pure=False)))
                    next_chunk += 1
                chunk, future = pending.popleft()
                try:
                    returned = future.result()
                except Exception as exc:
                    err = cluster_error(exc)
                    if err is not None:
                        raise err from None
                    raise
                self.predict_s += returned["predict_s"]
                for k, v in returned["seconds"].items():
                    self.seconds[k] = self.seconds.get(k, 0.0) + v
                self.workers.setdefault(returned["info"]["worker"], returned["info"])
                self.record(chunk, returned)
                yield returned["rows"]
                del returned
        finally:
            for _, future in pending:
                future.cancel()
            pending.clear()
            try:
                self.client.run(forget_job, job.token)
            except Exception:  # noqa: BLE001 - best effort: a worker that left holds nothing
                pass


def stored_recorder(writer, names, *, save_maps=None) -> Callable:
    """``record`` of :class:`DaskChunks` for maps stored in the entry (a model's maps, an array file's)."""
    from salbench.predictions import map_filename, save_map

    save = None if save_maps is None else Path(save_maps)

    def record(chunk, returned):
        for i, m in zip(chunk, returned["stored"]):
            q = writer.add_prediction(names[i], m)  # exactly the values the worker scored
            if save is not None:
                save_map(save / map_filename(names[i]), q)

    return record


def given_maps(writer, names, produce: Callable, *, quantise: bool, save_maps=None) -> Callable:
    """``given`` of :class:`DaskChunks` for maps held here: stored in the entry, then sent to be scored."""
    from salbench.io.map_store import storage_dtype
    from salbench.predictions import map_filename, save_map
    from salbench.results import quantise_map

    save = None if save_maps is None else Path(save_maps)

    def given(chunk):
        out = []
        for i, m in zip(chunk, produce(chunk)):
            if quantise:
                m = quantise_map(m, f"prediction for {names[i]}")
            q = writer.add_prediction(names[i], m)
            if save is not None:
                save_map(save / map_filename(names[i]), q)
            out.append(q.astype(storage_dtype(q)))  # exact: the narrowest dtype that holds every value
        return out

    return given


# ----------------------------------------------------------------------------- the worker side
class _JobState:
    """One run's set-up state on a worker: the dataset, the scorer and the source of the maps."""

    def __init__(self, job: ChunkJob):
        from salbench.data import get_dataset
        from salbench.protocols import get_protocol
        from salbench.protocols.view import GroundTruthView

        t0 = time.perf_counter()
        info = job.dataset
        where = f"worker {socket.gethostname()}:{os.getpid()}"
        ds = get_dataset(info["name"], info["split"], data_dir=info["data_dir"], **(info["options"] or {}))
        label = f"dataset {info['name']}/{info['split']}" + (f" at {info['data_dir']}" if info["data_dir"] else "")
        if len(ds) != info["n_files"] or ds.identity().get("content_hash") != info["content_hash"]:
            raise ValueError(f"{where}: {label} differs from the client's ({len(ds)} images, content hash "
                             f"{ds.identity().get('content_hash')} != {info['content_hash']}); the workers must "
                             "see the same data (docs/dask.md)")
        gt = GroundTruthView.from_dataset(ds, job.indices)
        if names_digest(gt.names) != job.names_sha256:
            raise ValueError(f"{where}: the evaluated images of {label} differ from the client's")
        proto = get_protocol(job.protocol, metrics=job.metrics, **{k: v for k, v in job.params.items() if k != "name"})
        if _json_normal(proto.params) != _json_normal(job.params):
            raise ValueError(f"{where}: protocol {job.protocol} applies other parameters than the client's "
                             "(another salbench version on the worker?)")
        self.scorer = proto.scorer(gt, seed=job.seed)
        self.scorer.setup(workers=1)
        self.dataset, self.job = ds, job
        self.source = _open_source(job.source, ds, job.indices, where)
        self.lock = threading.Lock()
        self.info = {"worker": where, "ground_truth_s": time.perf_counter() - t0,
                     "points_cached": gt.timings.get("points_cached"),
                     "cache_hit": getattr(self.scorer, "cache_hit", None)}

    def maps(self, chunk, given):
        """``(maps to score, {"stored": ...} or {"sha256": ...}, seconds predicting)`` of a chunk."""
        from salbench.io.map_store import as_storable_map, storage_dtype
        from salbench.results import quantise_map

        kind = self.job.source["kind"]
        names = self.dataset.names
        t0 = time.perf_counter()
        if kind == "given":
            return [np.asarray(m, dtype=np.float64) for m in given], {}, 0.0
        if kind == "folder":
            read = [self.source.read(i) for i in chunk]  # one read of each file: the hash is of the bytes decoded
            return [m for m, _ in read], {"sha256": [sha for _, sha in read]}, 0.0
        if kind == "model":
            raw = self.source(chunk)
            predict_s = time.perf_counter() - t0
            raw = [quantise_map(m, f"prediction for {names[i]}") for i, m in zip(chunk, raw)]
        else:  # an array file: its maps are stored exactly
            raw, predict_s = [self.source.load(i) for i in chunk], 0.0
        scored = [as_storable_map(m, names[i]) for i, m in zip(chunk, raw)]
        return scored, {"stored": [m.astype(storage_dtype(m)) for m in scored]}, predict_s


def _open_source(source: dict, dataset, indices, where: str):
    """The worker's source of maps: a model (weights checked by SHA-256), a matched folder or array file."""
    kind = source.get("kind")
    if kind == "given":
        return None
    if kind == "model":
        from salbench.evaluate.feeds import ModelMaps
        from salbench.io.digest import file_sha256
        from salbench.models import create_model
        from salbench.models._weights import resolve_checkpoint

        checkpoint = source.get("checkpoint")
        if checkpoint is not None:
            if not Path(checkpoint).exists():
                raise FileNotFoundError(f"{where}: checkpoint {checkpoint} not found: the workers must see the "
                                        "client's files (docs/dask.md)")
            if file_sha256(resolve_checkpoint(checkpoint)) != source["sha256"]:
                raise ValueError(f"{where}: checkpoint {checkpoint} differs from the client's (sha256)")
        model = create_model(source["name"], checkpoint=checkpoint, **(source.get("options") or {}))
        return ModelMaps(model, dataset, int(source["batch_size"]))
    if kind in ("folder", "array"):
        from salbench.predictions import open_predictions

        path = Path(source["path"])
        if not path.exists():
            raise FileNotFoundError(f"{where}: predictions {path} not found: the workers must see the client's "
                                    "files (docs/dask.md)")
        match = open_predictions(path).match(list(dataset.names), allow_missing=source["allow_missing"],
                                             allow_extra=source["allow_extra"])
        want = list(range(len(dataset))) if indices is None else list(indices)
        if match.indices.tolist() != want:
            raise ValueError(f"{where}: predictions {path} match other images than on the client")
        return match
    raise ValueError(f"unknown source of maps {kind!r}")


def _state(job: ChunkJob) -> _JobState:
    with _STATES_LOCK:
        state = _STATES.get(job.token)
        if state is None:
            state = _STATES[job.token] = _Pending()
        _STATES.move_to_end(job.token)
        while len(_STATES) > _KEEP_STATES:
            _STATES.popitem(last=False)
    return state.get(job)


class _Pending:
    """A state being built: the first task of a run on this worker builds it, the others wait."""

    def __init__(self):
        self._lock = threading.Lock()
        self._state = None

    def get(self, job):
        with self._lock:
            if self._state is None:
                self._state = _JobState(job)
            return self._state


def score_chunk(job: ChunkJob, chunk: Sequence[int], given=None) -> dict:
    """Score one chunk on a worker: ``{"rows", "stored" | "sha256", "predict_s", "info"}``.

    The maps are produced here (the model predicts the chunk; a folder or array file is
    read by path; given maps arrive with the task), prepared and scored by the run's
    scorer, whose set-up state the worker keeps for the run's next chunks.
    """
    t0 = time.perf_counter()
    state = _state(job)
    names = state.dataset.names
    t1 = time.perf_counter()
    maps, payload, predict_s = state.maps(list(chunk), given)
    t2 = time.perf_counter()
    items = []
    for i, m in zip(chunk, maps):
        try:
            items.append(state.scorer.prepare(int(i), m))
        except Exception as exc:
            exc.add_note(f"while preparing image {names[int(i)]!r} (dataset index {int(i)}) on {state.info['worker']}")
            raise
    del maps
    t3 = time.perf_counter()
    with state.lock:  # one chunk at a time through the scorer's kernels and its sequential streams
        t4 = time.perf_counter()
        rows = state.scorer.score_rows(items)
    t5 = time.perf_counter()
    seconds = {"state": t1 - t0, "maps": t2 - t1, "prepare": t3 - t2, "wait": t4 - t3, "score": t5 - t4}
    return {"rows": rows, **payload, "predict_s": predict_s, "info": state.info, "seconds": seconds}


def forget_job(token: str) -> None:
    """Drop a finished run's state from this worker (run on every worker by the client)."""
    with _STATES_LOCK:
        _STATES.pop(token, None)


# ----------------------------------------------------------------------------- wiring (salbench.evaluate.run)
def model_source(plan, model_record: dict) -> dict:
    """The ``source`` of a job whose workers run the request's model (its checkpoint by path and SHA-256)."""
    request = plan.request
    source = {"kind": "model", "name": request.model, "options": dict(request.model_options),
              "batch_size": int(request.batch_size), "checkpoint": None, "sha256": None}
    ckpt = model_record.get("checkpoint")
    if ckpt:
        shown = Path(ckpt["path"])
        # prepare_model shows a checkpoint beside the results relative to them, any other one as given
        beside = plan.results_dir / shown
        path = shown if shown.is_absolute() else (beside if beside.exists() else shown)
        source.update(checkpoint=str(path.resolve()), sha256=ckpt["sha256"])
    return source


def chunk_executor(plan, source: dict, *, record: Callable | None = None, given: Callable | None = None):
    """The :class:`DaskChunks` of an evaluation on ``plan.client`` (None: a local run)."""
    client = getattr(plan, "client", None)
    if client is None:
        return None
    return DaskChunks(client, lambda scorer: job_for(plan, scorer, source), record or (lambda chunk, got: None),
                      given=given)
