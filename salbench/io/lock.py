"""Advisory locks (``fcntl.flock``) for writers that share a results directory.

``flock`` locks belong to an open file description: the OS drops them when the
process holding them exits, even on SIGKILL, so a lock never outlives a crash.
Two opens of the same file conflict even within one process, which makes these
locks work between threads as well as between processes. Where ``fcntl`` does
not exist (Windows), the locks are no-ops and concurrent writers are not
serialised (documented in docs/leaderboards.md).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` itself (no lock file is left behind).

    Blocks until every other holder has released it. Writers commit an entry
    (rename its predictions, replace its JSON, remove orphans) under this lock,
    which takes milliseconds; evaluations themselves run unlocked.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def lock_open_file(fd: int) -> None:
    """Lock an open file (a writer's temporary file) exclusively, so others can tell it is alive."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def is_abandoned(path: str | os.PathLike) -> bool:
    """Whether no live writer holds ``path`` (a temporary file whose writer died or finished).

    A writer holds its temporary file locked from creation to rename; if the lock
    can be taken, nobody is writing it. Without ``fcntl`` nothing counts as abandoned.
    """
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(Path(path), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        return True
    finally:
        os.close(fd)
