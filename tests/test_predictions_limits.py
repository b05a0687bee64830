"""Prediction files are sized from their headers before anything is allocated (issue 19)."""

import pickle
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from salbench.io.array_limits import ArrayTooLarge, check_npz, format_bytes, max_array_bytes, parse_bytes
from salbench.predictions import load_predictions, open_predictions, read_map


def _lying_npy(path, shape=(10_000, 1_000_000), dtype="<f8", payload=48):
    """A small .npy whose header claims ``shape`` (80 GB by default)."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), dtype))
    header["shape"] = shape
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * payload)
    return path


def _peak_mb(func):
    tracemalloc.start()
    try:
        func()
    except ValueError as exc:
        err = exc
    else:
        err = None
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak, err


def test_npy_claiming_80_gb_is_called_truncated_everywhere(tmp_path):
    path = _lying_npy(tmp_path / "m.npy")
    assert path.stat().st_size == 176
    for read in (read_map, load_predictions, open_predictions):
        peak, err = _peak_mb(lambda: read(path))
        assert isinstance(err, ValueError) and not isinstance(err, ArrayTooLarge), read
        assert "header declares (10000, 1000000) float64 (74.5 GiB)" in str(err) and "truncated" in str(err)
        assert peak < 5, f"{read.__name__} allocated {peak:.0f} MB before refusing"


def _stacked_zeros_npz(path, n=200):
    np.savez_compressed(path, predictions=np.zeros((n, 100, 100)), names=np.array([f"{i}.jpg" for i in range(n)]))
    return path


def test_npz_expanding_over_the_limit_is_refused_before_decompressing(tmp_path, monkeypatch):
    path = _stacked_zeros_npz(tmp_path / "p.npz")
    assert path.stat().st_size < 100_000  # 15.3 MiB of float64 zeros compress ~1000:1
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "4M")
    for read in (load_predictions, open_predictions):
        peak, err = _peak_mb(lambda: read(path))
        assert isinstance(err, ArrayTooLarge), read
        msg = str(err)
        assert "p.npz" in msg and "predictions.npy" in msg and "15.3 MiB" in msg and "4.0 MiB" in msg, msg
        assert "SALBENCH_MAX_ARRAY_BYTES" in msg
        assert peak < 3, f"{read.__name__} allocated {peak:.1f} MB before refusing"
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "64M")
    src = open_predictions(path)
    m = src.match([f"{i}.jpg" for i in range(200)])
    assert m.load(m.indices[0]).shape == (100, 100)


def test_npz_whose_member_header_disagrees_with_the_zip_directory(tmp_path):
    path = tmp_path / "p.npz"
    import zipfile

    good = tmp_path / "one.npy"
    np.save(good, np.zeros((4, 5)))
    lying = _lying_npy(tmp_path / "lie.npy", shape=(50, 480, 640), payload=160)
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(lying, "predictions.npy")
    with pytest.raises(ValueError, match=r"p\.npz: member predictions\.npy: header declares \(50, 480, 640\).*truncated"):
        check_npz(path)
    with pytest.raises(ValueError, match=r"predictions\.npy: header declares \(50, 480, 640\).*truncated"):
        open_predictions(path)


def test_pickle_referencing_one_array_many_times_is_refused_before_stacking(tmp_path, monkeypatch):
    a = np.zeros((100, 100), dtype=np.float32)
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps([a] * 2000))  # 40 KB on disk, 160 MB as a float64 stack
    assert path.stat().st_size < 100_000
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "16M")
    for read in (load_predictions, open_predictions):
        peak, err = _peak_mb(lambda: read(path))
        assert isinstance(err, ArrayTooLarge) and "2000 maps of 100x100 as float64" in str(err), (read, err)
        assert peak < 8, f"{read.__name__} allocated {peak:.1f} MB before refusing"


def _png_claiming(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_png_larger_than_the_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(_png_claiming(4000, 3000))
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "8M")
    with pytest.raises(ArrayTooLarge, match=r"big\.png: 3000x4000 map as float64 would take 91\.6 MiB.*8\.0 MiB"):
        read_map(path)


def test_limit_defaults_to_a_quarter_of_memory_and_is_overridable(monkeypatch):
    import os

    monkeypatch.delenv("SALBENCH_MAX_ARRAY_BYTES", raising=False)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert max_array_bytes() == int(total * 0.25)
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "1.5G")
    assert max_array_bytes() == int(1.5 * 2**30)
    assert parse_bytes("2048") == 2048 and parse_bytes("8 MiB") == 8 << 20
    with pytest.raises(ValueError, match="SALBENCH_MAX_ARRAY_BYTES='lots'"):
        parse_bytes("lots")
    assert format_bytes(80 * 2**30) == "80.0 GiB" and format_bytes(12) == "12 bytes"
