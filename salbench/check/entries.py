"""Checking many entries: one after the other here, or one task per entry on a Dask cluster.

``salbench check --executor dask[:ADDRESS]`` sends each entry's record (its JSON as read,
a few hundred KB at most) to a worker, which recomputes it with :func:`check_result`
exactly as ``salbench check`` does here and sends back the report; rewriting drifted
entries (``--update``) stays with the client. The workers read the predictions, the
folders of maps and the datasets by the paths the entries record, so they must see
the results directory and the data where the client sees them (docs/dask.md); a worker
that cannot read an entry says so. Reports come back in the order of the entries.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from salbench.check.recompute import check_result
from salbench.check.report import CheckReport

_WORKER = threading.local()  # per worker thread: the open dataset and rebuilt protocols of its last entries


def check_entries(results: Iterable[Mapping[str, Any]], *, tolerance: float | None = None,
                  client=None, rerun_policy=None) -> Iterator[CheckReport]:
    """The report of each record, in order: checked here (one shared cache) or on ``client``'s cluster."""
    if client is None:
        cache: dict = {}  # the open dataset and rebuilt protocols, reused by consecutive entries
        for result in results:
            yield check_result(result, tolerance=tolerance, cache=cache, rerun_policy=rerun_policy)
        return
    from salbench.evaluate.executor import cluster_error

    results = list(results)
    run = uuid.uuid4().hex  # task keys unique to this run: a key still known to the scheduler is reused
    futures = [client.submit(check_on_worker, result, tolerance, rerun_policy, key=f"salbench-check-{run}-{k}", pure=False)
               for k, result in enumerate(results)]
    try:
        for result, future in zip(results, futures):
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - one entry's failure is that entry's error
                err = cluster_error(exc) or exc
                msg = f"cannot recompute: {type(err).__name__}: {err}"
                yield CheckReport(Path(result["_path"]).name, "error", msg, errors=[msg])
    finally:
        for future in futures:
            future.cancel()


def check_on_worker(result: Mapping[str, Any], tolerance: float | None, rerun_policy=None) -> CheckReport:
    """:func:`check_result` on a Dask worker, once the worker has read the same results file."""
    path = Path(result["_path"])
    where = f"worker {socket.gethostname()}:{os.getpid()}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        msg = (f"{where} cannot read {path} ({exc.strerror or exc}): the workers must see the results directory "
               "where the client does (docs/dask.md)")
        return CheckReport(path.name, "error", msg, errors=[msg])
    if hashlib.sha256(data).hexdigest() != result.get("_sha256"):
        msg = f"{where} reads another {path} than the client did (changed meanwhile, or another filesystem)"
        return CheckReport(path.name, "error", msg, errors=[msg])
    cache = getattr(_WORKER, "cache", None)
    if cache is None:
        cache = _WORKER.cache = {}
    return check_result(result, tolerance=tolerance, cache=cache, rerun_policy=rerun_policy)
