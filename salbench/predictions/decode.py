"""Decode one saliency-map file to float64: integer samples as ``im2double`` reads them, floats exactly.

Integer images read as MATLAB's ``im2double`` reads them (the MIT benchmark's code
does that to every map): an 8-bit PNG or JPEG sample ``k`` is ``k / 255``, a 16-bit
PNG or TIFF sample ``k / 65535``. A float TIFF, an int16/int32/uint32 TIFF and a ``.npy``
of any dtype (uint8 included) read as the numbers they store. Nothing else is rescaled:
the protocols normalise maps the way each defines. The ``[0, 1]``
reading matters for the coursework protocol, whose ``(p * 255).astype(uint8)`` gives
back exactly ``k`` (``trunc(k / 255 * 255) == k`` for every ``k``), where raw 0..255
values would wrap around.

Colour rule (docs/predictions.md): a saliency map is one channel. An RGB or RGBA
file (or a palette image) is accepted when its three colour channels are equal
at every pixel -- a grey map saved as colour, which is what ``cv2.imwrite`` of a
3-channel grey array or many viewers produce -- and read as that channel. A map
whose channels differ is refused: a colour-mapped heat map (jet, viridis) is not
monotone in saliency under any fixed grey conversion (luma of jet peaks in the
middle of its range), so converting it would score a different map without
saying so. An alpha channel is accepted only if every pixel is opaque.

Decoding is thread-safe: each call works on its own bytes and its own Pillow
image (Pillow releases the GIL while decompressing, so threads pay).
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np

from salbench.io.array_limits import ArrayTooLarge, check_bytes, check_npy_bytes

__all__ = ["IMAGE_SUFFIXES", "MAP_SUFFIXES", "decode_map", "read_map"]

# Extensions read as images (Pillow) and as arrays; compared in lower case.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MAP_SUFFIXES = IMAGE_SUFFIXES + (".npy",)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Integer images are read as MATLAB's im2double reads them (what the MIT benchmark's code
# does to a map): k / 255 for 8-bit samples, k / 65535 for 16-bit ones.
_UNIT_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_GREY_MODES = ("L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
_COLOUR_MODES = ("RGB", "RGBA", "LA", "RGBX")
_pil_ready = threading.Lock()


class _Refused(ValueError):
    """A readable file that the rules refuse (colour, alpha, frames): passed through as is."""


_pil_initialised = False


def _pil():
    """Import Pillow and register its plugins once (``Image.init`` is not safe to race)."""
    global _pil_initialised
    from PIL import Image

    if not _pil_initialised:
        with _pil_ready:
            if not _pil_initialised:
                Image.init()
                _pil_initialised = True
    return Image


def read_map(path: str | Path) -> np.ndarray:
    """Read one map file (PNG, JPEG, TIFF or ``.npy``) as float64; ValueError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, expected a map file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_map(data, str(path))


def decode_map(data: bytes, source: str) -> np.ndarray:
    """Decode the bytes of a map file to a 2-D float64 array (the module's reading rule).

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        The file name, for error messages; its extension selects ``.npy`` decoding.

    Returns
    -------
    ndarray
        ``(H, W)`` float64, finite: ``k / 255`` for 8-bit samples, ``k / 65535`` for 16-bit
        ones (MATLAB's ``im2double``); the stored numbers for float TIFFs, other integer
        TIFFs (int16, int32, uint32) and ``.npy``.

    Raises
    ------
    ValueError
        The file is truncated or not an image, is a colour map, has transparency,
        several frames or an unsupported sample format, or holds NaN/inf.
    """
    if source.lower().endswith(".npy"):
        arr = _decode_npy(data, source)
        out = np.asarray(arr, dtype=np.float64)
    else:
        arr = _decode_image(data, source)
        out = np.asarray(arr, dtype=np.float64)
        # keyed on the native-order dtype: a big-endian TIFF decodes to '>u2' (Pillow 'I;16B')
        scale = _UNIT_SCALE.get(np.asarray(arr).dtype.newbyteorder("="))
        if scale is not None:  # MATLAB's im2double: k / (2**bits - 1), so maps are in [0, 1]
            out /= scale
    if out.ndim != 2 or out.size == 0:
        raise ValueError(f"{source}: map has shape {arr.shape}; expected a non-empty 2-D map")
    if not np.isfinite(out).all():
        raise ValueError(f"{source}: map contains NaN or infinity")
    return out


def _decode_npy(data: bytes, source: str) -> np.ndarray:
    # The header's declared size against the bytes present and the memory limit (float64, as it
    # is scored), before numpy allocates what the header claims.
    header = check_npy_bytes(data, source)
    check_bytes(header.count * 8, f"{source}: {header.shape} map as float64")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{source}: not a readable .npy array (truncated or corrupt?): {exc}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise ValueError(f"{source}: .npy holds {getattr(arr, 'dtype', type(arr))}; expected a numeric 2-D map")
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
        arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:-1])  # (1,H,W) or (H,W,1)
    return arr


def _png_header(data: bytes) -> tuple[int, int] | None:
    """``(bit depth, colour type)`` from a PNG's IHDR, or None if ``data`` is not a PNG."""
    if data[:8] != _PNG_SIGNATURE or len(data) < 26 or data[12:16] != b"IHDR":
        return None
    return data[24], data[25]


def _decode_image(data: bytes, source: str) -> np.ndarray:
    head = _png_header(data)
    # Pillow decodes 16-bit colour / grey+alpha PNGs to 8 bits per channel: refuse
    # instead of silently dropping the low byte.
    if head is not None and head[0] == 16 and head[1] in (2, 4, 6):
        kind = {2: "RGB", 4: "grey+alpha", 6: "RGBA"}[head[1]]
        raise ValueError(f"{source}: 16-bit {kind} PNG; Pillow can only read it at 8 bits, which would change the "
                         "values. Save the map as a 16-bit greyscale PNG without alpha (or TIFF / .npy)")
    Image = _pil()
    from PIL import UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if getattr(im, "n_frames", 1) > 1:
                raise _Refused(f"{source}: has {im.n_frames} frames/pages; a map file holds one 2-D map")
            # the size from the header, before the pixels are decompressed (as float64, as it is scored)
            check_bytes(im.size[0] * im.size[1] * 8, f"{source}: {im.size[1]}x{im.size[0]} map as float64")
            im.load()
            return _pixels(im, source)
    except (_Refused, ArrayTooLarge):
        raise
    except UnidentifiedImageError:
        hint = (" (float64 TIFFs are not readable by Pillow: save float32 TIFF or .npy)"
                if source.lower().endswith((".tif", ".tiff")) else "")
        raise ValueError(f"{source}: not a readable image{hint}") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... on broken files
        raise ValueError(f"{source}: cannot decode image (truncated or corrupt?): {exc}") from None


def _pixels(im, source: str) -> np.ndarray:
    """The stored values of an opened, loaded Pillow image under the colour rule."""
    mode = im.mode
    if mode == "P" or mode == "PA":
        # A palette index is not a value: read the colour it stands for.
        im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
        mode = im.mode
    if mode == "1":
        return np.asarray(im.convert("L"))  # 0 / 255, as Pillow expands every low-bit-depth grey
    if mode in _GREY_MODES:
        arr = np.asarray(im)
        if mode == "I" and _tiff_unsigned32(im):
            arr = arr.view(np.uint32)  # Pillow reads uint32 TIFF samples into int32 bit for bit
        return arr
    if mode in _COLOUR_MODES:
        arr = np.asarray(im)
        colour, alpha = (arr[..., :1], arr[..., 1]) if mode == "LA" else (arr[..., :3], arr[..., 3] if mode == "RGBA"
                                                                            else None)
        if alpha is not None and not (alpha == 255).all():
            n = int((alpha != 255).sum())
            raise _Refused(f"{source}: has transparency ({n} pixels with alpha < 255); a saliency map has no "
                             "alpha: save it as a greyscale image")
        if colour.shape[-1] == 3:
            r, g, b = (colour[..., c].astype(np.int16) for c in range(3))
            diff = np.maximum(np.abs(r - g), np.abs(r - b))
            if diff.any():
                raise _Refused(
                    f"{source}: colour map ({mode}, channels differ at {int((diff > 0).sum())} pixels, by up to "
                    f"{int(diff.max())} levels). salbench reads greyscale maps; a colour-mapped heat map is not "
                    "monotone in saliency under any grey conversion. Save the model's raw map as greyscale "
                    "(8/16-bit PNG, float TIFF or .npy)")
        return colour[..., 0]
    raise _Refused(f"{source}: unsupported image mode {mode!r}; save the map as greyscale (8/16-bit PNG, "
                     "float32 TIFF or .npy)")


def _tiff_unsigned32(im) -> bool:
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return False

    def first(tag):
        v = tags.get(tag)
        return v[0] if isinstance(v, tuple) and v else v

    return first(258) == 32 and first(339) in (None, 1)
