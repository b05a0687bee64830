"""File errors that name their file, and one-line descriptions of any ``OSError``.

salbench reports every failure as one line naming the file or option at fault
(``salbench: error: ...``). An ``OSError`` raised deep inside numpy, zipfile or
the OS often names no path or a temporary one; the io layer re-raises the ones it
can attribute as :class:`FileError`, whose message is already that line, and
:func:`describe_os_error` turns any other ``OSError`` into one.
"""

from __future__ import annotations

import errno as _errno
import os

# Write failures the user must act on (free space, permissions, a read-only disk),
# as opposed to programming errors: the io layer reports these naming the file.
DISK_FULL = frozenset({_errno.ENOSPC, getattr(_errno, "EDQUOT", _errno.ENOSPC), _errno.EFBIG})
WRITE_ERRNOS = DISK_FULL | {_errno.EROFS, _errno.EACCES, _errno.EPERM, _errno.EIO}


class FileError(OSError):
    """An ``OSError`` whose message is a complete one-line description naming the file.

    ``errno`` and ``filename`` are kept (``exc.errno == errno.ENOSPC`` still
    identifies a full disk); ``str(exc)`` is the message alone, without the
    ``[Errno N]`` prefix.
    """

    def __init__(self, message: str, *, errno: int | None = None, filename: str | os.PathLike | None = None):
        super().__init__(errno, message, None if filename is None else os.fspath(filename))
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # pickles (multiprocessing) with its keyword arguments
        return (_rebuild, (self.message, self.errno, self.filename))


def _rebuild(message, errno, filename):
    return FileError(message, errno=errno, filename=filename)


def reason(exc: OSError) -> str:
    """The cause of ``exc`` in words: ``disk full (no space left on device)`` for ENOSPC."""
    if exc.errno in DISK_FULL:
        return "disk full (no space left on device)"
    return (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")


def describe_os_error(exc: OSError) -> str:
    """One line for ``exc``, naming its file(s) when it carries them.

    >>> describe_os_error(OSError(28, "No space left on device", "/tmp/r.json"))
    '/tmp/r.json: disk full (no space left on device)'
    >>> describe_os_error(FileNotFoundError("predictions file not found: p.npz"))
    'predictions file not found: p.npz'
    """
    if isinstance(exc, FileError) or exc.strerror is None:
        text = str(exc) or type(exc).__name__
        return text if exc.errno not in DISK_FULL or "disk full" in text else f"disk full: {text}"
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    where = " -> ".join(os.fsdecode(n) if isinstance(n, bytes) else str(n) for n in names)
    return f"{where}: {reason(exc)}" if where else reason(exc)


def write_error(exc: OSError, path: str | os.PathLike, what: str = "", after: str = "") -> FileError:
    """A :class:`FileError` for a failed write of ``path`` (``what`` says what it was).

    ``after`` is appended as a sentence, e.g. "the previous file is unchanged".
    """
    head = f"cannot write {what + ' ' if what else ''}{os.fspath(path)}: {reason(exc)}"
    return FileError(head + (f"; {after}" if after else ""), errno=exc.errno, filename=path)
