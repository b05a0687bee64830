"""How much memory one array read from a user's file may take, checked before it is allocated.

A ``.npy`` header declares its array's shape and dtype, and a ``.npz`` (zip) directory
declares each member's uncompressed size: both are read here *before* anything is
decompressed or allocated, so a 128-byte ``.npy`` claiming 80 GB is reported as truncated,
and a 4 MB ``.npz`` that would expand to 4.6 GB is refused with what was too big and the
limit, instead of running the machine out of memory first.

The limit (:func:`max_array_bytes`) is a quarter of the machine's physical memory, or
``$SALBENCH_MAX_ARRAY_BYTES`` (bytes, or with a ``K``/``M``/``G``/``T`` suffix, powers of
1024) when set. It bounds one array as it will sit in memory (for predictions: after the
conversion to float64), not a file's size on disk.
"""

from __future__ import annotations

import functools
import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV = "SALBENCH_MAX_ARRAY_BYTES"
#: Share of physical memory one array may take by default.
MEMORY_SHARE = 0.25
#: Used when the physical memory cannot be read (not Linux/macOS).
FALLBACK_BYTES = 4 << 30
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class ArrayTooLarge(ValueError):
    """An array a file declares would take more memory than :func:`max_array_bytes` allows."""


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` header declares: ``shape``, ``dtype``, ``fortran_order``; ``offset`` of the data."""

    shape: tuple
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def count(self) -> int:
        """Number of elements (exact Python int: no overflow for absurd shapes)."""
        n = 1
        for v in self.shape:
            n *= int(v)
        return n

    @property
    def nbytes(self) -> int:
        """Bytes of the data the header declares."""
        return self.count * self.dtype.itemsize


def format_bytes(n: int | float) -> str:
    """``1536`` -> ``"1.5 KiB"``: sizes in messages, in powers of 1024."""
    n = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover - loop always returns


def parse_bytes(text: str) -> int:
    """``"8G"`` -> ``8 * 1024**3``; plain integers are bytes. ValueError naming the text otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"{ENV}={text!r}: expected a number of bytes, e.g. 8G or 8589934592")
    value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value < 1:
        raise ValueError(f"{ENV}={text!r}: the limit must be at least 1 byte")
    return value


@functools.lru_cache(maxsize=1)
def physical_memory() -> int | None:
    """Bytes of physical memory, or None when the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def max_array_bytes() -> int:
    """The most bytes one array read from a user's file may take (module docstring)."""
    env = os.environ.get(ENV, "").strip()
    if env:
        return parse_bytes(env)
    total = physical_memory()
    return int(total * MEMORY_SHARE) if total else FALLBACK_BYTES


def limit_hint() -> str:
    return f"limit {format_bytes(max_array_bytes())}: {ENV} overrides it"


def check_bytes(nbytes: int, what, *, limit: int | None = None) -> None:
    """Raise :class:`ArrayTooLarge` naming ``what`` when ``nbytes`` exceeds the limit.

    ``what`` may be a callable returning the text, to build the message only when it is needed.
    """
    limit = max_array_bytes() if limit is None else limit
    if nbytes > limit:
        what = what() if callable(what) else what
        raise ArrayTooLarge(f"{what} would take {format_bytes(nbytes)} of memory, more than the "
                            f"{format_bytes(limit)} one array may take ({ENV} overrides the limit)")


def read_npy_header(fh) -> NpyHeader:
    """The header of a ``.npy`` stream positioned at its start (reads only the header).

    Raises
    ------
    ValueError
        Not a ``.npy`` stream, an unknown format version, or an object dtype (never read here).
    """
    fmt = np.lib.format
    start = fh.tell()
    version = fmt.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    elif version == (3, 0) and hasattr(fmt, "_read_array_header"):
        shape, fortran, dtype = fmt._read_array_header(fh, version)
    else:
        raise ValueError(f".npy format version {version} is not supported")
    if dtype.hasobject:
        raise ValueError(f"the array holds Python objects ({dtype}); only numeric arrays are read")
    return NpyHeader(tuple(int(v) for v in shape), dtype, bool(fortran), int(fh.tell() - start))


def check_npy_data(header: NpyHeader, available: int, source: str, *, limit: int | None = None) -> None:
    """The declared array must fit in the bytes that follow its header, and in the memory limit.

    ``available`` is the number of bytes after the header (file or member size minus
    ``header.offset``). A header declaring more than that is a truncated or corrupt file
    (said first: nothing would be allocated for it); one declaring fewer means trailing
    bytes, also corrupt.
    """
    declared = header.nbytes
    if declared > available:
        raise ValueError(f"{source}: header declares {header.shape} {header.dtype} ({format_bytes(declared)}) but "
                         f"only {format_bytes(available)} of data follow it: the file is truncated or corrupt")
    if declared < available:
        raise ValueError(f"{source}: header declares {header.shape} {header.dtype} ({format_bytes(declared)}) but "
                         f"{format_bytes(available)} of data follow it: the file is corrupt")
    check_bytes(declared, f"{source}: {header.shape} {header.dtype}", limit=limit)


def check_npy_bytes(data: bytes, source: str, *, limit: int | None = None) -> NpyHeader:
    """Header of an in-memory ``.npy`` file, checked against its length and the limit."""
    try:
        header = read_npy_header(io.BytesIO(data))
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{source}: not a readable .npy array (truncated or corrupt?): {exc}") from None
    check_npy_data(header, len(data) - header.offset, source, limit=limit)
    return header


def check_npy_file(path: str | os.PathLike, source: str | None = None, *, limit: int | None = None) -> NpyHeader:
    """Header of a ``.npy`` file, checked against the file's size and the limit (reads the header only)."""
    path = Path(path)
    source = source or str(path)
    try:
        with open(path, "rb") as fh:
            header = read_npy_header(fh)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise
    except (ValueError, EOFError) as exc:
        raise ValueError(f"{source}: not a readable .npy array (truncated or corrupt?): {exc}") from None
    check_npy_data(header, size - header.offset, source, limit=limit)
    return header


def check_npz_member(zf: zipfile.ZipFile, member: str, source: str, *, limit: int | None = None) -> NpyHeader:
    """Header of one ``.npy`` member of an open zip, checked before decompressing its data.

    The zip directory's uncompressed size (``file_size``) is checked first, then the
    member's own ``.npy`` header (only its first block is decompressed) against that size
    and the limit.
    """
    where = f"{source}: member {member}"
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise ValueError(f"{source}: no member {member}") from None
    check_bytes(info.file_size, f"{where} (zip directory: {format_bytes(info.file_size)} uncompressed from "
                                f"{format_bytes(info.compress_size)})", limit=limit)
    try:
        with zf.open(info) as fh:
            header = read_npy_header(fh)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise ValueError(f"{where}: not a readable .npy array: {exc}") from None
    check_npy_data(header, info.file_size - header.offset, where, limit=limit)
    return header


def check_npz(path: str | os.PathLike, members=None, *, limit: int | None = None) -> dict[str, NpyHeader]:
    """Headers of the ``.npy`` members of an ``.npz`` (all, or ``members`` by key), each checked.

    Keys are the array names (``np.load(path).files``: the member name without ``.npy``).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(".npy")]
            wanted = names if members is None else [f"{m}.npy" for m in members]
            return {n[:-4]: check_npz_member(zf, n, str(path), limit=limit) for n in wanted}
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: not a readable .npz (zip) file: {exc}") from None
