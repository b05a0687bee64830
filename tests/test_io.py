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


# -- files named in every error ---------------------------------------------------------------------
def test_writing_over_a_directory_names_it(tmp_path):
    import errno

    from salbench.io import FileError

    d = tmp_path / "out"
    d.mkdir()
    with pytest.raises(FileError, match=f"file {d} is a directory; give a file name") as info:
        atomic_write_json(d, {"a": 1})
    assert info.value.errno == errno.EISDIR
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not list(d.iterdir())


def test_a_file_in_place_of_a_directory_is_named(tmp_path):
    import errno

    from salbench.io import FileError, ensure_directory

    f = tmp_path / "results"
    f.write_text("x")
    with pytest.raises(FileError, match=f"{f} is a file, not a directory") as info:
        atomic_write_json(f / "r.json", {"a": 1})
    assert info.value.errno == errno.ENOTDIR
    with pytest.raises(FileError, match=f"results directory {f} is a file, not a directory"):
        ensure_directory(f, "results directory")


def test_disk_full_in_an_atomic_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    import errno

    import salbench.io.atomic as atomic
    from salbench.io import FileError

    target = tmp_path / "r.json"
    atomic_write_json(target, {"a": 1})

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(target), "write_bytes", full)
    with pytest.raises(FileError) as info:
        atomic.atomic_write_json(target, {"a": 2})
    assert str(info.value) == (f"cannot write file {target}: disk full (no space left on device); "
                               "the previous file is unchanged")
    monkeypatch.undo()
    assert target.read_text().strip() == '{\n  "a": 1\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_describe_os_error():
    import errno

    from salbench.io import FileError, describe_os_error

    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/x/p.npz")) == \
        "/x/p.npz: disk full (no space left on device)"
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device")) == "disk full (no space left on device)"
    assert describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/r", None, "/s")) == \
        "/r -> /s: Permission denied"
    assert describe_os_error(FileNotFoundError("predictions file p.npz not found")) == "predictions file p.npz not found"
    assert describe_os_error(FileError("entry x: could not write", errno=errno.ENOSPC)) == \
        "disk full: entry x: could not write"
    e = FileError("m", errno=5, filename="f")
    assert pickle.loads(pickle.dumps(e)).filename == "f" and str(pickle.loads(pickle.dumps(e))) == "m"


# -- the CLI: one line, exit 2, traceback only with SALBENCH_DEBUG=1 ---------------------------------
def _raise_from_check(monkeypatch, exc):
    import salbench.cli.check as check

    def run(args):
        raise exc

    monkeypatch.setattr(check, "run", run)


@pytest.mark.parametrize("exc, line", [
    (OSError(28, "No space left on device", "/data/results/x.json"),
     "salbench: error: /data/results/x.json: disk full (no space left on device)"),
    (IsADirectoryError(21, "Is a directory", "out"), "salbench: error: out: Is a directory"),
    (ValueError("--batch-size must be a positive integer, not 0"),
     "salbench: error: --batch-size must be a positive integer, not 0"),
    (ValueError("first line\nsecond line\nthird"),
     "salbench: error: first line (+2 more lines; SALBENCH_DEBUG=1 shows the traceback)"),
    (MemoryError(), "salbench: error: out of memory (MemoryError); try a smaller split or batch"),
    (RuntimeError("boom"), "salbench: internal error: RuntimeError: boom (set SALBENCH_DEBUG=1 for the traceback)"),
    (KeyError("x"), "salbench: internal error: KeyError: 'x' (set SALBENCH_DEBUG=1 for the traceback)"),
])
def test_cli_failures_are_one_line_exit_2(monkeypatch, capsys, exc, line):
    from salbench.cli import main

    monkeypatch.delenv("SALBENCH_DEBUG", raising=False)
    _raise_from_check(monkeypatch, exc)
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err == line + "\n"


def test_salbench_debug_shows_the_traceback(monkeypatch, capsys):
    from salbench.cli import main

    monkeypatch.setenv("SALBENCH_DEBUG", "1")
    _raise_from_check(monkeypatch, RuntimeError("boom"))
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and 'raise exc' in err
    assert err.rstrip().endswith("salbench: internal error: RuntimeError: boom (set SALBENCH_DEBUG=1 for the traceback)")


def test_interrupt_exits_130(monkeypatch, capsys):
    from salbench.cli import main

    _raise_from_check(monkeypatch, KeyboardInterrupt())
    assert main(["check"]) == 130
    assert capsys.readouterr().err == "salbench: interrupted\n"
