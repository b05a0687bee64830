"""Safe file input/output shared by every subpackage.

- :mod:`~salbench.io.atomic`: atomic writes (old file or new file, never half of one);
- :mod:`~salbench.io.entry`: a JSON record and the content-addressed file it names, committed as one unit;
- :mod:`~salbench.io.map_store`: predictions files written and read one map at a time;
- :mod:`~salbench.io.lock`: ``flock`` locks between writers;
- :mod:`~salbench.io.digest`: :func:`file_sha256`, a file's SHA-256 read in chunks;
- :mod:`~salbench.io.errors`: :class:`FileError` and one-line descriptions of ``OSError``;
- :mod:`~salbench.io.safe_pickle`: a restricted unpickler for user-supplied pickles.
"""

from salbench.io.atomic import (
    atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text, check_writable_file, ensure_directory,
    is_temporary,
)
from salbench.io.digest import file_sha256
from salbench.io.errors import FileError, describe_os_error
from salbench.io.safe_pickle import UnsafePickleError, safe_load_pickle

__all__ = [
    "FileError",
    "UnsafePickleError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_writable_file",
    "describe_os_error",
    "ensure_directory",
    "file_sha256",
    "is_temporary",
    "safe_load_pickle",
]
