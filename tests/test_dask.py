"""``--executor dask``: chunks (eval) and entries (check) scored on a real ``LocalCluster`` of 2 worker processes.

Every run here is compared with the same run in this process: the results entry (every value, the
predictions file byte for byte) must be identical. Then the failures: a worker killed while it
scores a chunk (the chunk is retried elsewhere, the entry is still identical), every worker that
tries a chunk dying (a one-line error, nothing written), Ctrl-C (nothing written, the tasks
cancelled), and workers that do not share the client's ground-truth cache (rebuilt, same numbers).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from salbench.cli import main  # noqa: E402
from salbench.evaluate import EvaluationRequest, evaluate  # noqa: E402
from salbench.evaluate.executor import ClusterError, local_cluster, parse_executor  # noqa: E402
from salbench.scoring import ScoringInterrupted  # noqa: E402

SMALL = {"preset": "small", "n_images": 12}  # 3 chunks of 4
VOLATILE = ("created", "wall_time_s")  # the only keys a run's entry may differ in


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 single-threaded worker processes; a task may lose one worker and is retried once."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with local_cluster(n_workers=2) as cluster, distributed.Client(cluster) as c:
            yield c


def _quiet(msg):
    pass


def _run(request_kwargs, results_dir, executor="local"):
    request = EvaluationRequest(results_dir=results_dir, executor=executor, dataset_options=SMALL, chunk_size=4,
                                **request_kwargs)
    return evaluate(request, progress=False, log=_quiet)


def _same_entry(local_dir: Path, dask_dir: Path):
    """The two results directories hold the same entries: equal records (but time stamps), same predictions bytes."""
    entries = sorted(p.name for p in local_dir.glob("*.json") if "__" in p.name)
    assert entries and entries == sorted(p.name for p in dask_dir.glob("*.json") if "__" in p.name)
    for name in entries:
        a, b = (json.loads((d / name).read_text()) for d in (local_dir, dask_dir))
        for key in set(a) | set(b):
            if key not in VOLATILE:
                assert a.get(key) == b.get(key), (name, key)
    for npz in sorted(local_dir.glob("*.npz")):
        assert (dask_dir / npz.name).read_bytes() == npz.read_bytes()


@pytest.fixture(scope="module")
def maps_folder(tmp_path_factory):
    """A folder of 8-bit PNG maps for the small synthetic val split (a blurred density plus noise)."""
    from salbench.data import get_dataset
    from salbench.predictions import map_filename, save_map

    folder = tmp_path_factory.mktemp("maps")
    rng = np.random.default_rng(5)
    for rec in get_dataset("synthetic", "val", **SMALL):
        m = rec.density + 0.2 * rng.random(rec.density.shape) * rec.density.max()
        save_map(folder / map_filename(rec.name), m / m.max())
    return folder


@pytest.fixture(scope="module")
def array_file(tmp_path_factory):
    from salbench.data import get_dataset

    ds = get_dataset("synthetic", "val", **SMALL)
    rng = np.random.default_rng(6)
    path = tmp_path_factory.mktemp("arrays") / "preds.npz"
    np.savez(path, names=np.array(ds.names), predictions=rng.random((len(ds), 40, 50)))
    return path


def _given():
    from salbench.data import get_dataset

    n = len(get_dataset("synthetic", "val", **SMALL))
    return np.random.default_rng(7).random((n, 48, 48)).astype(np.float32)


CASES = {
    # a model run on the workers (its checkpoint by path), every mit metric (EMD included)
    "model-mit": lambda d: dict(model="center_bias", protocol="mit"),
    # maps held in memory, sent with their chunks, a chosen metric set
    "given-mit-subset": lambda d: dict(model="shallow_kl", model_predictions=_given(), protocol="mit",
                                       metrics="nss,auc_shuffled,info_gain"),
    # a folder read by path on the workers; salicon's sequential draws replayed per worker
    "folder-salicon": lambda d: dict(predictions=d["folder"], protocol="salicon"),
    # an array file read by path; coursework's cached targets and its per-image quantisation counts
    "array-coursework": lambda d: dict(predictions=d["array"], protocol="coursework"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_eval_on_dask_is_bit_identical_to_local(case, client, maps_folder, array_file, tmp_path):
    kwargs = CASES[case]({"folder": maps_folder, "array": array_file})
    local, _ = _run(kwargs, tmp_path / "local")
    remote, path = _run(kwargs, tmp_path / "dask", executor=client)
    _same_entry(tmp_path / "local", tmp_path / "dask")
    assert remote["protocol"]["metrics"] == local["protocol"]["metrics"] == list(remote["metrics"])
    if case == "given-mit-subset":
        assert remote["protocol"]["metrics"] == ["nss", "auc_shuffled", "info_gain"]


def test_check_on_dask_reports_what_a_local_check_reports(client, tmp_path, capsys):
    kwargs = CASES["model-mit"](None)
    _run(kwargs, tmp_path, executor=client)
    _run({**kwargs, "protocol": "coursework"}, tmp_path)
    entry = tmp_path / "synthetic__val__center_bias__mit.json"
    data = json.loads(entry.read_text())
    data["metrics"]["nss"]["per_image"][3] += 0.5
    entry.write_text(json.dumps(data))
    (tmp_path / "synthetic__val__broken__mit.json").write_text("{")
    outputs = []
    for executor in ("local", f"dask:{client.scheduler.address}"):
        code = main(["check", str(tmp_path), "--executor", executor])
        out = capsys.readouterr()
        shown = [ln for ln in out.out.splitlines() if not ln.startswith("salbench: running on the Dask cluster")]
        outputs.append((code, shown, out.err.splitlines()))
    assert outputs[0] == outputs[1]
    code, out, err = outputs[0]
    assert code == 1 and out[-1].startswith("1 ok, 1 drifted, 1 errors, 0 skipped, 0 model not verified")
    assert any("synthetic__val__center_bias__mit.json: DRIFT: nss (image synthetic_val_00003.png)" in ln for ln in err)


@pytest.fixture()
def runs(monkeypatch):
    """The :class:`DaskChunks` of every run (their ``workers``: each worker's set-up, ground truth cached or not)."""
    import salbench.evaluate.cluster as cluster

    seen, real = [], cluster.DaskChunks.run_chunks

    def spy(self, scorer, chunks):
        seen.append(self)
        yield from real(self, scorer, chunks)

    monkeypatch.setattr(cluster.DaskChunks, "run_chunks", spy)
    return seen


def test_workers_read_a_shared_cache_and_rebuild_a_private_one(client, tmp_path, runs):
    """Workers sharing the client's SALBENCH_CACHE read the ground truth the client built; workers on another
    filesystem (their own SALBENCH_CACHE) rebuild it there; the numbers are the same."""
    kwargs = dict(model="center_bias", protocol="coursework")
    _run(kwargs, tmp_path / "local")
    _run(kwargs, tmp_path / "shared", executor=client)
    _same_entry(tmp_path / "local", tmp_path / "shared")
    assert runs[-1].workers and all(w["cache_hit"] is True for w in runs[-1].workers.values())
    own = tmp_path / "worker-caches"

    def private_cache(base=str(own)):
        previous = os.environ.get("SALBENCH_CACHE")
        os.environ["SALBENCH_CACHE"] = os.path.join(base, str(os.getpid()))
        return previous

    previous = client.run(private_cache)
    try:
        _run(kwargs, tmp_path / "dask", executor=client)
    finally:
        client.run(lambda old=next(iter(previous.values())): os.environ.__setitem__("SALBENCH_CACHE", old))
    _same_entry(tmp_path / "local", tmp_path / "dask")
    assert runs[-1].workers and all(w["cache_hit"] is False for w in runs[-1].workers.values())
    built = [p for p in own.glob("*/ground_truth/*") if (p / "manifest.json").is_file()]
    # each worker that scored a chunk built coursework's ground truth in its own cache
    assert built and {p.name.split("-")[0] for p in built} == {"coursework"}


class _KillOnChunk(distributed.WorkerPlugin):
    """Kill the worker process that starts chunk ``chunk`` of a run: once (a marker file), or every time."""

    def __init__(self, chunk: int, marker: str, always: bool = False):
        self.suffix, self.marker, self.always = f"-{chunk}", marker, always

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or not str(key).startswith("salbench-chunk-") or not str(key).endswith(self.suffix):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
        except FileExistsError:
            if not self.always:
                return
        os.kill(os.getpid(), signal.SIGKILL)


def _wait_for_workers(client, n=2, timeout=60):
    client.wait_for_workers(n, timeout=timeout)


def test_a_worker_killed_mid_run_has_its_chunk_retried(client, tmp_path):
    kwargs = dict(model="center_bias", protocol="mit", metrics="cc,nss,auc_borji")
    _run(kwargs, tmp_path / "local")
    marker = tmp_path / "killed"
    client.register_plugin(_KillOnChunk(1, str(marker)), name="kill-once")
    try:
        _run(kwargs, tmp_path / "dask", executor=client)
    finally:
        client.unregister_worker_plugin("kill-once")
    assert marker.exists()  # a worker did die when it started chunk 1
    _same_entry(tmp_path / "local", tmp_path / "dask")
    _wait_for_workers(client)


def test_interrupt_cancels_the_tasks_and_writes_nothing(client, tmp_path, monkeypatch):
    import salbench.evaluate.cluster as cluster

    kwargs = dict(model="center_bias", protocol="mit", metrics="cc")
    before, _ = _run(kwargs, tmp_path)
    entry = tmp_path / "synthetic__val__center_bias__mit.json"
    old = entry.read_bytes()
    real = cluster.stored_recorder

    def interrupted_after_two_chunks(writer, names, **kw):
        record, seen = real(writer, names, **kw), []

        def rec(chunk, got):
            seen.append(chunk)
            if len(seen) == 2:
                raise KeyboardInterrupt
            record(chunk, got)
        return rec

    monkeypatch.setattr(cluster, "stored_recorder", interrupted_after_two_chunks)
    with pytest.raises(ScoringInterrupted, match="interrupted after scoring 4 of 12 images"):
        _run({**kwargs, "metrics": "cc,nss"}, tmp_path, executor=client)
    assert entry.read_bytes() == old and len(list(tmp_path.glob("*.npz"))) == 1  # the old entry, untouched
    deadline = time.monotonic() + 10
    while client.processing() and any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(client.processing().values())  # the queued chunks were cancelled


def test_a_chunk_whose_workers_all_die_fails_in_one_line_and_writes_nothing(client, tmp_path, capsys):
    marker = tmp_path / "killed"
    client.register_plugin(_KillOnChunk(1, str(marker), always=True), name="kill-always")
    try:
        code = main(["eval", "--model", "center_bias", "--option", "preset=small", "--option", "n_images=12",
                     "--metrics", "cc", "--chunk-size", "4", "--results-dir", str(tmp_path / "res"),
                     "--executor", f"dask:{client.scheduler.address}"])
    finally:
        client.unregister_worker_plugin("kill-always")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("salbench: error: the Dask workers running a task all died")
    assert not list((tmp_path / "res").glob("*__mit.json")) and not list((tmp_path / "res").glob("*.npz"))
    _wait_for_workers(client)


def test_executor_spellings():
    assert parse_executor("local").kind == "local"
    assert parse_executor("dask") == parse_executor(" dask ")
    assert parse_executor("dask:tcp://10.0.0.1:8786").address == "tcp://10.0.0.1:8786"
    with pytest.raises(ValueError, match="Did you mean 'dask'"):
        parse_executor("daks")
    with pytest.raises(ValueError, match="give the scheduler's address after 'dask:'"):
        parse_executor("dask:")
    with pytest.raises(ValueError, match="--executor"):
        EvaluationRequest(model="uniform", executor="threads")
    with pytest.raises(ClusterError, match="no such scheduler file"):
        from salbench.evaluate.executor import open_executor

        with open_executor("dask:/nonexistent/scheduler.json"):
            pass
