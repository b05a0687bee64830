"""Safe file input/output shared by every subpackage."""

from salbench.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_path
from salbench.io.safe_pickle import UnsafePickleError, safe_load_pickle

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "safe_load_pickle",
    "UnsafePickleError",
]
