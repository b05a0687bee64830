"""Decoding one map file: the reading rule (MATLAB's im2double); the colour rule; clear errors.

An 8-bit sample ``k`` reads as ``k / 255``, a 16-bit one as ``k / 65535`` (what
``im2double`` returns); float TIFFs, other integer TIFFs and ``.npy`` read as the
numbers they store. Reference values are the arrays written, divided here, through
encoders independent of the decoder where Pillow would otherwise check itself:
16-bit PNGs and TIFFs are built byte by byte below (zlib + struct), 8-bit PNGs are
lossless.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from salbench.predictions import decode_map, read_map


def png_bytes(a: np.ndarray, colour_type: int, palette: bytes | None = None) -> bytes:
    """A PNG written without Pillow: filter 0 rows, one IDAT. uint16 -> 16-bit samples."""
    a = np.asarray(a)
    depth = 16 if a.dtype == np.uint16 else 8
    h, w = a.shape[:2]

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = a.astype(">u2" if depth == 16 else "u1").reshape(h, -1).view(np.uint8).reshape(h, -1)
    raw = b"".join(b"\0" + r.tobytes() for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0))
            + (chunk(b"PLTE", palette) if palette else b"") + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def tiff_bytes(a: np.ndarray, order: str = "<") -> bytes:
    """A one-strip uncompressed TIFF written without Pillow (any int/uint/float dtype; ``order`` "<" or ">")."""
    a = np.ascontiguousarray(a)
    h, w = a.shape
    data = a.astype(a.dtype.newbyteorder(order)).tobytes()
    fmt = {"u": 1, "i": 2, "f": 3}[a.dtype.kind]
    entries = [(256, 4, w), (257, 4, h), (258, 3, a.dtype.itemsize * 8), (259, 3, 1), (262, 3, 1), (273, 4, 0),
               (277, 3, 1), (278, 4, h), (279, 4, len(data)), (339, 3, fmt)]
    data_off = 8 + 2 + 12 * len(entries) + 4
    out = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    out += struct.pack(order + "H", len(entries))
    for tag, typ, val in entries:
        val = data_off if tag == 273 else val
        out += struct.pack(order + "HHI", tag, typ, 1) + (
            struct.pack(order + "HH", val, 0) if typ == 3 else struct.pack(order + "I", val))
    return out + struct.pack(order + "I", 0) + data


def pil_bytes(arr_or_img, fmt: str, **kw) -> bytes:
    im = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img)
    b = io.BytesIO()
    im.save(b, format=fmt, **kw)
    return b.getvalue()


RNG = np.random.default_rng(0)
U8 = RNG.integers(0, 256, (17, 23), dtype=np.uint8)
U16 = RNG.integers(0, 65536, (17, 23), dtype=np.uint16)
F32 = (RNG.random((17, 23)) * 3e-4).astype(np.float32)


# --- every format: im2double for 8/16-bit samples, the stored numbers otherwise ------------------

@pytest.mark.parametrize("data, name, stored, scale", [
    (pil_bytes(U8, "PNG"), "m.png", U8, 255.0),
    (png_bytes(U8, 0), "m.png", U8, 255.0),
    (png_bytes(U16, 0), "m.png", U16, 65535.0),       # 16-bit grey: k / 65535, not (k / 257) / 255
    (pil_bytes(U16, "PNG"), "m.png", U16, 65535.0),
    (tiff_bytes(U16), "m.tif", U16, 65535.0),
    (tiff_bytes(U16, ">"), "m.tif", U16, 65535.0),    # big-endian: Pillow 'I;16B', still 16-bit samples
    (tiff_bytes(F32), "m.tiff", F32, 1.0),            # float TIFF: Pillow mode F, the floats
    (pil_bytes(F32, "TIFF"), "m.tif", F32, 1.0),
    (tiff_bytes(U8), "m.tif", U8, 255.0),
    (tiff_bytes(np.array([[0, 2**31 + 5], [2**32 - 1, 7]], np.uint32)), "m.tif",
     np.array([[0, 2**31 + 5], [2**32 - 1, 7]], np.uint32), 1.0),   # Pillow's int32 reinterpreted as uint32
    (tiff_bytes(np.array([[-3, 5]], np.int16)), "m.tif", np.array([[-3, 5]]), 1.0),
], ids=["png8-pil", "png8-raw", "png16-raw", "png16-pil", "tiff16", "tiff16-be", "tiff-f32-raw", "tiff-f32-pil",
        "tiff8", "tiff-u32", "tiff-i16"])
def test_values(data, name, stored, scale):
    out = decode_map(data, name)
    assert out.dtype == np.float64 and out.shape == stored.shape
    np.testing.assert_array_equal(out, stored.astype(np.float64) / scale)


def test_png16_full_range_is_divided_by_65535():
    a = np.array([[0, 1, 256, 65535]], np.uint16)
    np.testing.assert_array_equal(decode_map(png_bytes(a, 0), "x.png"), [[0, 1 / 65535, 256 / 65535, 1]])


def test_8bit_reading_survives_the_coursework_uint8_cast():
    """trunc(read * 255) gives back every stored level: the coursework script's (p * 255).astype(uint8)."""
    a = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = decode_map(png_bytes(a, 0), "all.png")
    assert out.min() == 0 and out.max() == 1
    np.testing.assert_array_equal(np.trunc(out * 255).astype(np.int64), a.astype(np.int64))


def test_jpeg_grey_is_decoders_values_over_255():
    data = pil_bytes(U8, "JPEG", quality=90)
    out = decode_map(data, "m.jpg")
    ref = np.asarray(Image.open(io.BytesIO(data)), dtype=np.float64) / 255.0
    np.testing.assert_array_equal(out, ref)
    assert out.max() > 200 / 255 and np.abs(out - U8 / 255.0).mean() < 10 / 255  # [0, 1], lossy but close


def test_npy(tmp_path):
    # a .npy is an array, not an image: its numbers as stored, integer dtypes not divided
    for a in (F32, U16, U8, U8.astype(bool), RNG.random((5, 6))):
        p = tmp_path / "m.npy"
        np.save(p, a)
        np.testing.assert_array_equal(read_map(p), a.astype(np.float64))
    np.save(tmp_path / "c.npy", F32[..., None])                 # (H, W, 1) is a 2-D map
    assert read_map(tmp_path / "c.npy").shape == F32.shape


# --- colour rule ---------------------------------------------------------------------------

def test_grey_saved_as_rgb_rgba_la_palette_reads_as_the_grey():
    rgb = np.repeat(U8[..., None], 3, axis=2)
    for data in (pil_bytes(rgb, "PNG"), png_bytes(rgb, 2), pil_bytes(rgb, "TIFF"),
                 png_bytes(np.dstack([rgb, np.full(U8.shape, 255, np.uint8)]), 6),
                 png_bytes(np.dstack([U8, np.full(U8.shape, 255, np.uint8)]), 4)):
        np.testing.assert_array_equal(decode_map(data, "m.png"), U8 / 255.0)
    # grey JPEG saved as RGB: chroma is constant, the channels decode equal; value = any channel
    data = pil_bytes(rgb, "JPEG", quality=95)
    np.testing.assert_array_equal(decode_map(data, "m.jpg"), np.asarray(Image.open(io.BytesIO(data)))[..., 1] / 255.0)
    # palette: a pixel's value is its palette grey level, not its index
    levels = np.arange(256, dtype=np.uint8)[::-1].copy()        # index i -> grey 255 - i
    idx = U8
    data = png_bytes(idx, 3, palette=np.repeat(levels, 3).tobytes())
    np.testing.assert_array_equal(decode_map(data, "p.png"), (255 - idx.astype(float)) / 255.0)


def test_colour_map_refused_with_counts():
    rgb = np.repeat(U8[..., None], 3, axis=2)
    rgb[3, 4, 2] ^= 7
    with pytest.raises(ValueError, match=r"heat\.png: colour map .*1 pixels.*greyscale"):
        decode_map(png_bytes(rgb, 2), "heat.png")
    pal = np.zeros((256, 3), np.uint8)
    pal[:, 0] = np.arange(256)                                   # a red ramp palette: colour
    with pytest.raises(ValueError, match="colour map"):
        decode_map(png_bytes(np.full((4, 4), 9, np.uint8), 3, palette=pal.tobytes()), "p.png")


def test_transparency_refused():
    rgba = np.dstack([np.repeat(U8[..., None], 3, axis=2), np.full(U8.shape, 255, np.uint8)])
    rgba[0, 0, 3] = 10
    with pytest.raises(ValueError, match=r"a\.png: has transparency \(1 pixels"):
        decode_map(png_bytes(rgba, 6), "a.png")


@pytest.mark.parametrize("colour_type, channels", [(2, 3), (4, 2), (6, 4)])
def test_16bit_colour_png_refused_not_truncated(colour_type, channels):
    a = RNG.integers(0, 65536, (4, 5, channels), dtype=np.uint16)
    with pytest.raises(ValueError, match="16-bit .*PNG.*8 bits"):
        decode_map(png_bytes(a, colour_type), "c.png")


def test_low_bit_depth_expanded_as_documented():
    b = io.BytesIO()
    Image.fromarray(np.array([[True, False]])).save(b, format="PNG")
    np.testing.assert_array_equal(decode_map(b.getvalue(), "b.png"), [[1, 0]])   # im2double of a logical map
    # a 4-bit grey PNG (written here byte by byte): Pillow expands v to 17 * v, which reads as v / 15
    raw = b"\0" + bytes([0x0F, 0x70])                        # one row of 4 pixels: 0, 15, 7, 0
    ihdr = struct.pack(">IIBBBBB", 4, 1, 4, 0, 0, 0, 0)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    np.testing.assert_array_equal(decode_map(data, "g4.png"), [[0, 1, 7 / 15, 0]])


def test_cmyk_refused():
    data = pil_bytes(Image.new("CMYK", (4, 4)), "JPEG")
    with pytest.raises(ValueError, match="unsupported image mode 'CMYK'"):
        decode_map(data, "k.jpg")


# --- errors name the file ------------------------------------------------------------------

def test_truncated_and_garbage_name_the_file(tmp_path):
    data = pil_bytes(RNG.integers(0, 256, (64, 64), dtype=np.uint8), "PNG")
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.png: cannot decode image"):
        read_map(tmp_path / "cut.png")
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"junk\.jpg: not a readable image"):
        read_map(tmp_path / "junk.jpg")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ValueError, match=r"d\.png: is a directory"):
        read_map(tmp_path / "d.png")


def test_float64_tiff_refused_with_advice():
    with pytest.raises(ValueError, match="float32 TIFF or .npy"):
        decode_map(tiff_bytes(RNG.random((3, 4))), "f.tif")


def test_multipage_tiff_refused():
    b = io.BytesIO()
    Image.fromarray(U8).save(b, format="TIFF", save_all=True, append_images=[Image.fromarray(U8)])
    with pytest.raises(ValueError, match="2 frames"):
        decode_map(b.getvalue(), "s.tif")


def test_npy_errors(tmp_path):
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match=r"nan\.npy: map contains NaN"):
        read_map(tmp_path / "nan.npy")
    np.save(tmp_path / "rgb.npy", RNG.random((4, 5, 3)))
    with pytest.raises(ValueError, match=r"rgb\.npy: map has shape \(4, 5, 3\)"):
        read_map(tmp_path / "rgb.npy")
    np.save(tmp_path / "obj.npy", np.array([[None]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy: not a readable"):
        read_map(tmp_path / "obj.npy")   # never unpickled
    (tmp_path / "cut.npy").write_bytes((tmp_path / "nan.npy").read_bytes()[:-4])
    with pytest.raises(ValueError, match=r"cut\.npy: header declares \(1, 2\) float64 \(16 bytes\) but only 12 bytes.*truncated"):
        read_map(tmp_path / "cut.npy")
    with pytest.raises(ValueError, match=r"f\.tif: map contains NaN"):
        decode_map(tiff_bytes(np.array([[np.inf, 1]], np.float32)), "f.tif")
