"""Write saliency maps as 8-bit (or 16-bit) greyscale PNGs named after the stimuli.

What the MIT and SALICON benchmarks take: one greyscale PNG per stimulus, named
like the stimulus. Their evaluation code reads a map, normalises it and scores
it; nothing there fixes how a float map becomes 0..255. salbench quantises by
scale, not by range (docs/predictions.md):

    q = floor(255 * m / max(m) + 0.5)          (MATLAB's uint8 rounding)

because every metric of every protocol is invariant to scaling a map by a
positive factor (CC, NSS and the AUCs standardise or rank it; KLD, SIM, IG and
EMD divide by its sum), but KLD, SIM and IG are *not* invariant to shifting it:
min-max quantisation (``(m - min) / (max - min)``) would change those scores by
far more than rounding does. So the saved map scores as the model's map up to
8-bit rounding alone. Exceptions, forced by a format with no negative numbers:
a map with negative values is first shifted by ``-min(m)`` (offset-sensitive
metrics then see the shifted map); a map of zeros stays zeros. A positive
constant map becomes all 255 (constant either way: every protocol scores it as
the uniform map).

:func:`saved_values` returns exactly the values a saved map reads back as, so
"reading the folder back scores the same as the results file up to the 8-bit
quantisation" can be tested exactly: score ``saved_values(m)`` and compare.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from salbench.io import atomic_path
from salbench.predictions.matching import image_keys

__all__ = ["map_filename", "saved_values", "save_map", "save_maps"]


def map_filename(name: str, suffix: str = ".png") -> str:
    """Relative file name of the map of image ``name``: ``"x.jpg"`` -> ``"x.png"``, ``"a/x.jpg"`` -> ``"a/x.png"``.

    Raises
    ------
    ValueError
        ``name`` is empty, absolute or climbs out of the folder (``..``).
    """
    name = str(name)
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or ".." in parts or "" in parts:
        raise ValueError(f"image name {name!r} cannot be a file name under the maps folder")
    return (image_keys(name)[1] or name) + suffix


def _check_bits(bits: int) -> int:
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    return (1 << bits) - 1


def saved_values(m, bits: int = 8) -> np.ndarray:
    """The exact values a map reads back as after :func:`save_map` (float64 in [0, 1]).

    Parameters
    ----------
    m : array_like
        A finite 2-D map.
    bits : {8, 16}
        PNG sample depth.

    Returns
    -------
    ndarray
        ``floor(top * s / max(s) + 0.5) / top`` with ``s = m - min(m)`` if ``min(m) < 0``
        else ``m``; zeros when ``max(s) == 0``. ``top = 255`` (8-bit) or 65535. The
        division is how :func:`salbench.predictions.decode_map` reads integer samples
        (MATLAB's ``im2double``).
    """
    top = _check_bits(bits)
    s = np.asarray(m, dtype=np.float64)
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"expected a non-empty 2-D map, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("map contains NaN or infinity")
    return _levels(s, top) / top


def _levels(s: np.ndarray, top: int) -> np.ndarray:
    """The integer sample values written for map ``s`` (0..top)."""
    lo = s.min()
    if lo < 0:
        s = s - lo
    hi = s.max()
    if hi == 0:
        return np.zeros(s.shape)
    # Divide first: top / hi overflows for a subnormal maximum, s / hi <= 1 never does.
    return np.clip(np.floor(s / hi * top + 0.5), 0, top)


def save_map(path: str | os.PathLike, m, bits: int = 8, compress_level: int = 6) -> Path:
    """Write one map as a greyscale PNG (atomically) with :func:`saved_values`; return the path."""
    from PIL import Image

    top = _check_bits(bits)
    s = np.asarray(m, dtype=np.float64)
    saved_values(s, bits)  # validates
    arr = _levels(s, top).astype(np.uint8 if bits == 8 else np.uint16)
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG", compress_level=compress_level)
    return path


def save_maps(directory: str | os.PathLike, names: Sequence[str], maps: Iterable, *, bits: int = 8,
              compress_level: int = 6) -> list[Path]:
    """Write one greyscale PNG per stimulus, ``<directory>/<name without extension>.png``.

    Every file is written atomically (a reader sees the old map or the new one).
    Names are checked before anything is written: a name that is not a relative
    path, or two names giving the same file (``x.jpg`` and ``x.png``, or names
    equal but for letter case, which collide on macOS/Windows), raise ValueError.

    Parameters
    ----------
    directory : path
        Created if needed; existing maps of the same names are replaced.
    names : sequence of str
        Image names (``dataset.names`` or ``Record.name``), one per map.
    maps : iterable of 2-D arrays
        In the order of ``names``; may be a generator (maps are written as they come).
    bits : {8, 16}
        PNG depth (8 is what the MIT/SALICON benchmarks take).
    compress_level : int
        zlib level 0-9 (lossless either way; 1 writes ~3x faster, files ~20% larger).

    Returns
    -------
    list of Path
        The files written, in the order of ``names``.
    """
    _check_bits(bits)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} exists and is not a directory; --save-maps takes a folder")
    files = [map_filename(n) for n in names]
    seen: dict[str, str] = {}
    for n, f in zip(names, files):
        other = seen.setdefault(f.lower(), n)
        if other != n:
            raise ValueError(f"images {other!r} and {n!r} would both be saved as {f!r}")
    if hasattr(maps, "__len__") and len(maps) != len(files):
        raise ValueError(f"{len(maps)} maps for {len(files)} image names")
    out = []
    it = iter(maps)
    for n, f in zip(names, files):
        try:
            m = next(it)
        except StopIteration:
            raise ValueError(f"{len(out)} maps for {len(files)} image names") from None
        try:
            out.append(save_map(directory / f, m, bits=bits, compress_level=compress_level))
        except ValueError as exc:
            raise ValueError(f"map of {n!r}: {exc}") from None
    if next(it, None) is not None:
        raise ValueError(f"more maps than the {len(files)} image names")
    return out
