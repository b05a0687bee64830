"""Restricted unpickler and atomic writes."""

import os
import pickle

import numpy as np
import pytest

from salbench.io import UnsafePickleError, atomic_path, atomic_write_json, safe_load_pickle
from salbench.io.safe_pickle import safe_loads_pickle


class _Exploit:
    """Unpickling this with plain pickle would run a shell command."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/salbench-pwned",))


def _coursework_like():
    rng = np.random.default_rng(0)
    return [{"X": rng.random((3, 96, 96), dtype=np.float32), "y": rng.random((48, 48)),
             "y_original": rng.integers(0, 255, (48, 64), dtype=np.uint8), "file_name": "a.jpg"}]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_round_trips_every_protocol(protocol):
    data = _coursework_like()
    out = safe_loads_pickle(pickle.dumps(data, protocol=protocol))
    assert out[0]["file_name"] == "a.jpg"
    for key in ("X", "y", "y_original"):
        np.testing.assert_array_equal(out[0][key], data[0][key])
        assert out[0][key].dtype == data[0][key].dtype


def test_numpy_scalars_and_nested_containers():
    data = {"a": (np.float32(1.5), np.int64(3)), "b": [None, True, 2.0, "x", b"y"]}
    assert safe_loads_pickle(pickle.dumps(data)) == data


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = "/tmp/salbench-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "val.pkl"
    path.write_bytes(pickle.dumps([{"X": _Exploit()}]))
    with pytest.raises(UnsafePickleError, match=r"val\.pkl.*refusing to load .*system"):
        safe_load_pickle(path)
    assert not os.path.exists(marker)


def test_arbitrary_class_is_refused():
    from collections import Counter

    with pytest.raises(UnsafePickleError, match="Counter"):
        safe_loads_pickle(pickle.dumps(Counter("aab")))


def test_truncated_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "val.pkl"
    path.write_bytes(pickle.dumps(_coursework_like())[:-40])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        safe_load_pickle(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        safe_load_pickle(tmp_path / "nope.pkl")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_atomic_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_atomic_files_get_umask_permissions(tmp_path):
    import os
    import stat

    from salbench.io import atomic_write_text

    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644
