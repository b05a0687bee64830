"""The restricted unpickler's guards: no crash, no allocation sized by the file alone, a size limit."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from salbench.io import UnsafePickleError, safe_load_pickle
from salbench.io.array_limits import ArrayTooLarge
from salbench.io.safe_pickle import safe_loads_pickle

_reconstruct = np._core.multiarray._reconstruct


class _Call:
    """Pickles as ``func(*args)`` (then ``BUILD state`` when given): what a crafted file can say."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def test_wrong_sized_object_array_is_refused_without_crashing():
    """numpy's ndarray.__setstate__ segfaults on an object array whose list is shorter than its shape."""
    code = textwrap.dedent("""
        import pickle, numpy as np
        from salbench.io.safe_pickle import safe_loads_pickle
        class Evil:
            def __reduce__(self):
                return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                        (1, (10**5,), np.dtype("O"), False, [1, 2, 3]))
        try:
            safe_loads_pickle(pickle.dumps(Evil(), protocol=2))
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"the loader crashed (exit {run.returncode})"
    assert run.stdout.startswith("UnsafePickleError") and "object" in run.stdout


def test_bytearray_of_a_size_is_refused():
    with pytest.raises(UnsafePickleError, match="bytearray"):
        safe_loads_pickle(pickle.dumps(_Call(bytearray, (10**11,)), protocol=2))


def test_ndarray_called_directly_is_refused():
    with pytest.raises(UnsafePickleError, match="numpy.ndarray"):
        safe_loads_pickle(pickle.dumps(_Call(np.ndarray, ((10**12,),)), protocol=2))


def test_reconstruct_of_a_huge_shape_is_refused_before_allocating(monkeypatch):
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "1M")
    data = pickle.dumps(_Call(_reconstruct, (np.ndarray, (10**12,), b"b")), protocol=2)
    with pytest.raises(ArrayTooLarge, match=r"1\.0 MiB.*SALBENCH_MAX_ARRAY_BYTES"):
        safe_loads_pickle(data, source="p.pkl")


def test_array_state_over_the_limit_or_inconsistent(monkeypatch):
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "1M")
    big = _Call(_reconstruct, (np.ndarray, (0,), b"b"), (1, (1000, 1000), np.dtype("f8"), False, b""))
    with pytest.raises(ArrayTooLarge, match=r"\(1000, 1000\) float64.*7\.6 MiB"):
        safe_loads_pickle(pickle.dumps(big, protocol=2))
    short = _Call(_reconstruct, (np.ndarray, (0,), b"b"), (1, (10, 10), np.dtype("f8"), False, b"\0" * 8))
    with pytest.raises(ValueError, match="do not match the declared shape"):
        safe_loads_pickle(pickle.dumps(short, protocol=2))


def test_file_over_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "val.pkl"
    path.write_bytes(pickle.dumps([np.zeros(10_000)]))
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "4K")
    with pytest.raises(ArrayTooLarge, match=r"val\.pkl.*read whole.*78\.3 KiB, more than the 8\.0 KiB a pickle may be"):
        safe_load_pickle(path)
    monkeypatch.setenv("SALBENCH_MAX_ARRAY_BYTES", "1M")
    assert safe_load_pickle(path)[0].shape == (10_000,)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numeric_arrays_of_every_layout_still_load(protocol):
    data = {"f": np.asfortranarray(np.arange(12.0).reshape(3, 4)), "u8": np.arange(6, dtype=np.uint8),
            "rec": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]), "s": np.array(["ab", "c"]),
            "empty": np.zeros((0, 3)), "scalar": np.float32(2.5), "ba": bytearray(b"xy")}
    data.pop("ba")  # bytearray results are not plain data (refused after loading, as before)
    out = safe_loads_pickle(pickle.dumps(data, protocol=protocol))
    for k, v in data.items():
        np.testing.assert_array_equal(out[k], v)
        assert np.asarray(out[k]).dtype == np.asarray(v).dtype
    assert out["f"].flags.f_contiguous


def test_arrays_come_back_as_plain_ndarrays_even_inside_tuples():
    data = {"t": (np.arange(3), [np.ones(2)]), "l": [np.zeros((2, 2))]}
    out = safe_loads_pickle(pickle.dumps(data))
    assert type(out["t"]) is tuple and type(out["t"][0]) is np.ndarray and type(out["t"][1][0]) is np.ndarray
    assert type(out["l"][0]) is np.ndarray
    np.testing.assert_array_equal(out["t"][0], np.arange(3))


def test_one_list_referenced_a_million_times_is_walked_once():
    import time

    inner = list(range(1000))
    data = pickle.dumps([inner] * 1_000_000)  # 2 MB: a reference costs the file 2 bytes
    t0 = time.perf_counter()
    out = safe_loads_pickle(data)
    assert len(out) == 1_000_000 and out[0] is out[-1]
    assert time.perf_counter() - t0 < 10  # one walk of 1e6 references, not 1e9 items


def test_nesting_deeper_than_the_limit_is_refused():
    from salbench.io.safe_pickle import MAX_DEPTH

    n = MAX_DEPTH + 10  # pickle.dumps cannot write this deep: EMPTY_LIST n + 1 times, then APPEND n times
    data = b"\x80\x02" + pickle.EMPTY_LIST * (n + 1) + pickle.APPEND * n + pickle.STOP
    with pytest.raises(UnsafePickleError, match="nested more than"):
        safe_loads_pickle(data)
    ok = b"\x80\x02" + pickle.EMPTY_LIST * 101 + pickle.APPEND * 100 + pickle.STOP
    assert len(safe_loads_pickle(ok)) == 1
