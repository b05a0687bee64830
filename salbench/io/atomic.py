"""Atomic writes: a reader sees the old file or the new one, never half of one.

Every function here names the file it could not write: a target that is a
directory, a parent that is a file, a full disk (``ENOSPC``) or a read-only one
end as a :class:`~salbench.io.errors.FileError` saying which path and that the
previous file (if any) is unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from salbench.io.errors import WRITE_ERRNOS, FileError, write_error

#: Temporary files are named ``.NAME.<random>.tmp<suffix>``; readers skip them (:func:`is_temporary`).
TMP_MARK = ".tmp"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of salbench's temporary files (``.NAME.*.tmp*``), never an entry."""
    return name.startswith(".") and TMP_MARK in name


def ensure_directory(path: str | os.PathLike, what: str = "directory") -> Path:
    """Create ``path`` (and its parents) unless it exists; refuse a file in the way.

    Raises
    ------
    FileError
        ``path`` or one of its parents is a file (``errno.ENOTDIR``), or it cannot
        be created (permissions, read-only or full disk); the message names it.
    """
    path = Path(path)
    if path.is_dir():
        return path
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            hint = "" if p == path else f" (needed for {what} {path})"
            raise FileError(f"{what} {p} is a file, not a directory{hint}" if p == path
                            else f"{p} is a file, not a directory{hint}", errno=errno.ENOTDIR, filename=p)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, path, what) from exc
    return path


def check_writable_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Refuse a target that is an existing directory, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise FileError(f"{what} {path} is a directory; give a file name", errno=errno.EISDIR, filename=path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, what: str = "file") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The temporary file lives in the same directory so that the final
    ``os.replace`` is atomic on POSIX. On any exception the temporary file is
    removed and ``path`` is left untouched; write failures (full disk,
    read-only disk, permissions) are re-raised as a :class:`FileError` naming
    ``path``. ``what`` names the file in those messages ("results file").

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with atomic_path(os.path.join(d, "a.npy")) as tmp:
    ...     np.save(tmp, np.zeros(3))
    >>> os.listdir(d)
    ['a.npy']
    """
    path = check_writable_file(path, what)
    ensure_directory(path.parent, f"directory of {what}")
    existed = path.exists()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_MARK + path.suffix, dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path, what) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            # mkstemp creates 0600; give the file the permissions a plain open() would (0666 & ~umask).
            os.chmod(tmp_path, 0o666 & ~_umask())
            os.replace(tmp_path, path)
        except FileError:
            raise
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            after = "the previous file is unchanged" if existed else "nothing was written"
            raise write_error(exc, path, what, after) from exc
        fsync_directory(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def fsync_directory(directory: str | os.PathLike) -> None:
    """Flush a directory's entries (a rename is durable only then); a no-op where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, what: str = "file") -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path, what=what) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, what: str = "file") -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"), what=what)


def json_bytes(obj: Any, *, indent: int = 2) -> bytes:
    """The bytes :func:`atomic_write_json` writes: sorted keys, strict JSON (no NaN), trailing newline."""
    return (json.dumps(obj, indent=indent, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2, what: str = "file") -> Path:
    """Serialise ``obj`` as JSON (sorted keys, trailing newline) and write it atomically."""
    return atomic_write_bytes(path, json_bytes(obj, indent=indent), what=what)
