"""A restricted unpickler for user-supplied pickles.

``pickle.load`` executes whatever callables a file names, so a crafted
``val.pkl`` could run arbitrary code. The coursework pickles only ever hold
lists, dicts, strings, numbers and numpy arrays; this loader admits exactly the
globals needed to rebuild those and refuses everything else *before* calling it.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

# (module, name) pairs a pickle of plain containers and numpy arrays may name.
# numpy moved ``numpy.core`` to ``numpy._core`` in 2.0; files written by either
# name the module they were written with, so both spellings are admitted.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        # Protocol-2 pickles written by Python 3 encode ``bytes`` through this.
        ("_codecs", "encode"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("collections", "OrderedDict"),
    }
)

_PLAIN_SCALARS = (str, bytes, bool, int, float, complex, type(None), np.generic)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names something other than plain containers, numbers, strings or arrays."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to load {module}.{name}: only lists, dicts, strings, numbers "
            "and numpy arrays are allowed in a salbench pickle"
        )


def _check_plain(obj: Any, where: str = "<root>") -> None:
    """Raise UnsafePickleError unless ``obj`` is built of plain data only."""
    stack = [(obj, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item.ravel()))
        elif isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, (str, int, bytes)):
                    raise UnsafePickleError(f"{path}: dict key of type {type(k).__name__} is not allowed")
                stack.append((v, f"{path}[{k!r}]"))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
        elif not isinstance(item, _PLAIN_SCALARS):
            raise UnsafePickleError(f"{path}: objects of type {type(item).__name__} are not allowed")


def safe_loads_pickle(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` admitting only plain containers, numbers, strings and arrays.

    Parameters
    ----------
    data : bytes
        The pickle stream.
    source : str
        Name used in error messages (usually the file path).

    Returns
    -------
    object
        The unpickled list / dict / array structure.

    Raises
    ------
    UnsafePickleError
        If the stream names any other global (nothing from it is executed) or
        rebuilds to a non-plain object.
    ValueError
        If the stream is truncated or not a pickle at all.
    """
    last_error: Exception | None = None
    # Python-2 pickles (numpy arrays with str payloads) need latin1 decoding.
    for encoding in ("ASCII", "latin1"):
        try:
            obj = _RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
        except UnsafePickleError as exc:
            raise UnsafePickleError(f"{source}: {exc}") from None
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError,
                AttributeError, KeyError, OverflowError, MemoryError) as exc:
            raise ValueError(f"{source}: not a readable pickle (truncated or corrupt): {exc}") from None
        _check_plain(obj, source)
        return obj
    raise ValueError(f"{source}: cannot decode pickle strings: {last_error}")


def safe_load_pickle(path: str | os.PathLike) -> Any:
    """Read ``path`` with :func:`safe_loads_pickle`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return safe_loads_pickle(path.read_bytes(), source=str(path))
