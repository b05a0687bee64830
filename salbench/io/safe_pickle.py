"""A restricted unpickler for user-supplied pickles.

``pickle.load`` executes whatever callables a file names, so a crafted
``val.pkl`` could run arbitrary code. The coursework pickles only ever hold
lists, dicts, strings, numbers and numpy arrays; this loader admits exactly the
globals needed to rebuild those and refuses everything else *before* calling it.

The admitted callables are themselves guarded, because numpy trusts its own
pickles: an array's state is checked before numpy sees it (a numeric dtype, data
of exactly the declared size: a wrong-sized object array makes numpy crash), no
array or ``bytearray`` is allocated from a size in the file alone (``bytearray(10**11)``
would be 100 GB), and any array must fit in :func:`salbench.io.array_limits.max_array_bytes`.
A file larger than twice that limit is refused before it is read.

Arrays are rebuilt as :class:`_CheckedArray`, whose ``__setstate__`` checks the state
first (the C unpickler offers no other hook; the pure-Python one is 4-12 times slower),
and are turned back into plain ``ndarray`` views after loading, in the same walk that
checks the result is plain data.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from salbench.io.array_limits import ArrayTooLarge, check_bytes, format_bytes, max_array_bytes

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
        # Protocol 0-2 pickles of an empty ``bytes`` (an empty array's data) call ``bytes()``.
        ("builtins", "bytes"),
        ("builtins", "complex"),
        ("collections", "OrderedDict"),
    }
)

_PLAIN_SCALARS = (str, bytes, bool, int, float, complex, type(None), np.generic)


class _NdarrayType:
    """Stands for ``numpy.ndarray`` in a pickle: what ``_reconstruct`` is told to build.

    Calling ``numpy.ndarray(shape)`` from a pickle would allocate any size the file
    names; numpy's own pickles never call it, so this stand-in refuses to be called.
    """

    def __call__(self, *args, **kwargs):
        raise UnsafePickleError("refusing to call numpy.ndarray: numpy pickles rebuild arrays through _reconstruct")


_NDARRAY = _NdarrayType()


def _guarded_dtype(*args, **kwargs) -> np.dtype:
    dtype = np.dtype(*args, **kwargs)
    if dtype.hasobject:
        raise UnsafePickleError(f"refusing dtype {dtype}: arrays of Python objects are not allowed in a salbench pickle")
    return dtype


class _CheckedArray(np.ndarray):
    """An array being unpickled: its state is checked before ``ndarray.__setstate__`` runs."""

    def __setstate__(self, state):
        _check_array_state(state)
        super().__setstate__(state)


def _guarded_reconstruct(real):
    def _reconstruct(subtype, shape, dtype_code):
        if subtype is not _NDARRAY and subtype is not np.ndarray:
            raise UnsafePickleError(f"refusing to rebuild an array of type {subtype!r}")
        if shape == (0,) and dtype_code == b"b":  # what numpy writes: the real shape comes with the state
            return real(_CheckedArray, shape, dtype_code)
        dims = np.atleast_1d(np.asarray(shape))
        if dims.dtype.kind not in "iu" or (dims < 0).any():
            raise UnsafePickleError(f"refusing an array of shape {shape!r}")
        count = 1
        for v in dims.tolist():
            count *= int(v)
        try:
            itemsize = np.dtype(dtype_code.decode("latin1") if isinstance(dtype_code, bytes) else dtype_code).itemsize
        except (TypeError, ValueError):
            raise UnsafePickleError(f"refusing an array of dtype code {dtype_code!r}") from None
        check_bytes(count * itemsize, lambda: f"an array of shape {tuple(dims.tolist())} in the pickle")
        return real(_CheckedArray, shape, dtype_code)

    return _reconstruct


def _guarded_bytes(kind):
    # bytearray(b"..."), bytearray("...", "latin-1"), bytes() as pickled; never bytes(n) or
    # bytearray(n), which allocate n bytes named by the file alone.
    def build(*args):
        if args and (not isinstance(args[0], (bytes, bytearray, str)) or len(args) > 2):
            raise UnsafePickleError(f"refusing {kind.__name__}(...) of anything but bytes or a string")
        return kind(*args)

    return build


def _guard(module: str, name: str, obj: Any) -> Any:
    if (module, name) == ("numpy", "ndarray"):
        return _NDARRAY
    if (module, name) == ("numpy", "dtype"):
        return _guarded_dtype
    if name == "_reconstruct":
        return _guarded_reconstruct(obj)
    if (module, name) in (("builtins", "bytearray"), ("builtins", "bytes")):
        return _guarded_bytes(obj)
    return obj


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names something other than plain containers, numbers, strings or arrays."""


def _check_array_state(state) -> None:
    """Refuse an ndarray state that numpy would mishandle: object dtype, data not of the declared size."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise UnsafePickleError(f"refusing an array state of type {type(state).__name__}")
    shape, dtype, _fortran, raw = state[-4:]
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError(f"refusing an array of dtype {dtype!r}: only numeric arrays are allowed")
    if not (isinstance(shape, tuple) and all(isinstance(v, (int, np.integer)) and v >= 0 for v in shape)):
        raise UnsafePickleError(f"refusing an array of shape {shape!r}")
    count = 1
    for v in shape:
        count *= int(v)
    check_bytes(count * dtype.itemsize, lambda: f"an array of shape {shape} {dtype} in the pickle")
    if not isinstance(raw, (bytes, bytearray, str)) or len(raw) != count * dtype.itemsize:
        size = len(raw) if isinstance(raw, (bytes, bytearray, str)) else type(raw).__name__
        raise ValueError(f"array data do not match the declared shape {shape} {dtype} ({size}): "
                         "truncated or corrupt")


class _RestrictedUnpickler(pickle.Unpickler):
    """The C unpickler, with allowed (and guarded) globals only."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        if module == "__builtin__":  # Python 2's name, written by protocols 0-2
            module = "builtins"
        if (module, name) in _ALLOWED_GLOBALS:
            return _guard(module, name, super().find_class(module, name))
        raise UnsafePickleError(
            f"refusing to load {module}.{name}: only lists, dicts, strings, numbers "
            "and numpy arrays are allowed in a salbench pickle"
        )


#: Deepest container nesting accepted (plain data is a few levels deep).
MAX_DEPTH = 5000


def _plain(obj: Any, where: str = "<root>") -> Any:
    """``obj`` with its arrays as plain ``ndarray``; UnsafePickleError unless it is plain data only.

    Lists and dicts are fixed in place, tuples rebuilt. Each container is visited once
    (a pickle can reference one list a million times for a few bytes each).
    """
    done: dict[int, Any] = {}

    def fix(item, path, depth):
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:  # refused while loading; kept as a second line of defence
                raise UnsafePickleError(f"{path}: arrays of Python objects are not allowed")
            return item if type(item) is np.ndarray else item.view(np.ndarray)
        if isinstance(item, _PLAIN_SCALARS):
            return item
        hit = done.get(id(item))
        if hit is not None:
            return hit
        if depth > MAX_DEPTH:
            raise UnsafePickleError(f"{path}: containers nested more than {MAX_DEPTH} deep")
        if isinstance(item, dict):
            done[id(item)] = item
            for k, v in item.items():
                if not isinstance(k, (str, int, bytes)):
                    raise UnsafePickleError(f"{path}: dict key of type {type(k).__name__} is not allowed")
                if not isinstance(v, (str, int, float)):
                    item[k] = fix(v, f"{path}[{k!r}]", depth + 1)
            return item
        if isinstance(item, list):
            done[id(item)] = item
            for i, v in enumerate(item):
                if not isinstance(v, (str, int, float)):
                    item[i] = fix(v, f"{path}[{i}]", depth + 1)
            return item
        if isinstance(item, tuple):
            out = tuple(fix(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
            done[id(item)] = out
            return out
        raise UnsafePickleError(f"{path}: objects of type {type(item).__name__} are not allowed")

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, MAX_DEPTH + 500))
    try:
        return fix(obj, where, 0)
    finally:
        sys.setrecursionlimit(limit)


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
    ArrayTooLarge
        An array in it would exceed :func:`~salbench.io.array_limits.max_array_bytes`.
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
        except ArrayTooLarge as exc:
            raise ArrayTooLarge(f"{source}: {exc}") from None
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError,
                AttributeError, KeyError, OverflowError, MemoryError) as exc:
            raise ValueError(f"{source}: not a readable pickle (truncated or corrupt): {exc}") from None
        return _plain(obj, source)
    raise ValueError(f"{source}: cannot decode pickle strings: {last_error}")


def safe_load_pickle(path: str | os.PathLike) -> Any:
    """Read ``path`` with :func:`safe_loads_pickle`.

    A pickle is read whole (it cannot be read in parts) and takes about twice its size in
    memory (its bytes, then the objects), so a file larger than twice
    :func:`~salbench.io.array_limits.max_array_bytes` (by default half the physical memory) is
    refused before it is read.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message names it).
    ArrayTooLarge
        The file, or an array in it, is over the limit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    limit = 2 * max_array_bytes()
    if size > limit:
        raise ArrayTooLarge(f"{path}: a pickle is read whole, and this one is {format_bytes(size)}, more than the "
                            f"{format_bytes(limit)} a pickle may be (twice the one-array limit; "
                            "SALBENCH_MAX_ARRAY_BYTES overrides it); save the arrays as .npy (memory-mapped) or a "
                            "folder of maps instead")
    return safe_loads_pickle(path.read_bytes(), source=str(path))
