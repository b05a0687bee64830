"""Where an evaluation's chunks (and a check's entries) run: this process, or a Dask cluster.

``--executor local`` (the default) scores in this process's threads. ``--executor dask``
starts a ``distributed.LocalCluster`` for the run (one single-threaded worker process
per core) and ``--executor dask:ADDRESS`` connects to a running scheduler
(``tcp://host:8786``, or the JSON file ``dask scheduler --scheduler-file`` wrote). The
Python API also takes a ``distributed.Client`` the caller holds. See ``docs/dask.md``.

``dask.distributed`` is an optional dependency (``pip install 'salbench[dask]'``): it is
imported only when a Dask executor is asked for.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

LOCAL = "local"
DASK = "dask"
INSTALL_HINT = "pip install 'salbench[dask]'"


class ClusterError(RuntimeError):
    """The Dask cluster could not be reached, or lost the work (every worker that ran a task died)."""


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed ``--executor``: ``kind`` ``"local"`` or ``"dask"``; ``address`` of a running scheduler (or None)."""

    kind: str
    address: str | None = None

    @property
    def label(self) -> str:
        if self.kind == LOCAL:
            return LOCAL
        return f"dask ({self.address})" if self.address else "dask (a LocalCluster started for this run)"


def is_client(obj) -> bool:
    """Whether ``obj`` is a ``distributed.Client`` (without importing distributed when it is not loaded)."""
    import sys

    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(obj, distributed.Client)


def parse_executor(spec, flag: str = "--executor") -> ExecutorSpec:
    """``"local"``, ``"dask"`` or ``"dask:ADDRESS"`` as an :class:`ExecutorSpec`.

    Raises
    ------
    ValueError
        Another spelling (with the close match).
    ImportError
        A Dask executor without ``dask.distributed`` installed (the message says how to install it).
    """
    if not isinstance(spec, str):
        raise ValueError(f"{flag} must be local, dask or dask:ADDRESS, got {spec!r}")
    text = spec.strip()
    kind, _, address = text.partition(":")
    kind = kind.strip().lower()
    if kind == LOCAL and not address:
        return ExecutorSpec(LOCAL)
    if kind != DASK:
        close = difflib.get_close_matches(kind, (LOCAL, DASK), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{flag} {spec!r}: expected local, dask or dask:ADDRESS.{hint}")
    address = address.strip() or None
    if ":" in text and address is None:
        raise ValueError(f"{flag} {spec!r}: give the scheduler's address after 'dask:' (e.g. dask:tcp://host:8786)")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ImportError(f"{flag} dask needs dask.distributed, which is not installed: {INSTALL_HINT}") from None
    return ExecutorSpec(DASK, address)


def _connect(address: str):
    """A client of the scheduler at ``address`` (an address, or a scheduler file)."""
    from distributed import Client

    try:
        if address.endswith(".json") or Path(address).is_file():
            if not Path(address).is_file():
                raise ClusterError(f"--executor dask:{address}: no such scheduler file")
            return Client(scheduler_file=address, timeout="20s")
        return Client(address, timeout="20s")
    except ClusterError:
        raise
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"--executor dask:{address}: cannot reach the Dask scheduler ({exc})") from None


def local_cluster(n_workers: int | None = None, **kwargs):
    """A ``LocalCluster`` of single-threaded worker processes (default: one per core, at most 8).

    Each worker runs one chunk at a time; Numba's threads in a worker are limited so that
    the workers together use the cores once (``NUMBA_NUM_THREADS`` = cores / workers).
    """
    from distributed import LocalCluster

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = n_workers or max(1, min(cores, 8))
    env = {"NUMBA_NUM_THREADS": str(max(1, cores // n)), "OMP_NUM_THREADS": "1"}
    options = dict(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                   env=env, silence_logs=40)  # logging.ERROR: a worker restart is our business, not a warning
    options.update(kwargs)
    return LocalCluster(**options)


@contextlib.contextmanager
def open_executor(executor, *, log: Callable[[str], None] = print) -> Iterator[Any]:
    """The ``distributed.Client`` an executor names (None for ``local``), closed afterwards if opened here.

    ``executor``: a spec string (:func:`parse_executor`) or a ``Client`` (kept open).
    """
    if is_client(executor):
        yield executor
        return
    spec = executor if isinstance(executor, ExecutorSpec) else parse_executor(executor)
    if spec.kind == LOCAL:
        yield None
        return
    from distributed import Client

    if spec.address:
        client = _connect(spec.address)
        try:
            log(f"salbench: running on the Dask cluster at {spec.address} "
                f"({len(client.scheduler_info().get('workers', {}))} workers)")
            yield client
        finally:
            client.close()
        return
    with local_cluster() as cluster, Client(cluster) as client:
        log(f"salbench: running on a Dask LocalCluster of {len(cluster.workers)} worker processes")
        yield client


def cluster_error(exc: BaseException) -> ClusterError | None:
    """A :class:`ClusterError` for Dask's own failures (a task whose workers all died), else None."""
    try:
        from distributed.scheduler import KilledWorker
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, KilledWorker):
        return ClusterError(f"the Dask workers running a task all died ({exc}); nothing was written")
    try:
        from distributed.client import FutureCancelledError
    except ImportError:  # pragma: no cover
        FutureCancelledError = ()  # noqa: N806
    if FutureCancelledError and isinstance(exc, FutureCancelledError):
        return ClusterError(f"the Dask cluster cancelled a task ({exc}); nothing was written")
    return None
