"""Prediction files declared as densities: .npy / .npz of log-densities, checked on load."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from salbench.predictions.density import load_log_densities, open_log_densities


def _lds(n=3, shape=(6, 8), seed=0):
    x = np.random.default_rng(seed).normal(size=(n, *shape))
    return x - logsumexp(x, axis=(1, 2), keepdims=True)


def test_npz_with_names_matches_and_loads_checked(tmp_path):
    lds = _lds()
    path = tmp_path / "d.npz"
    np.savez(path, predictions=lds.astype(np.float32), names=np.array(["b.png", "a.png", "c.png"]))
    m = open_log_densities(path, ["a.png", "b.png", "c.png"])
    got = m.load(0)  # image a.png is the file's second map
    assert got.dtype == np.float64 and logsumexp(got) == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(got, lds[1], atol=1e-5)  # float32 storage
    a, fp = m.read(2)
    np.testing.assert_allclose(a, lds[2], atol=1e-5)
    assert len(fp) == 64
    assert m.describe()["values"] == "log-density" and list(m.indices) == [0, 1, 2]


def test_npy_in_order_and_flat_rows(tmp_path):
    lds = _lds(2, (48, 48))
    np.save(tmp_path / "d.npy", lds.reshape(2, -1))  # (N, 2304) rows are 48x48 maps
    np.testing.assert_allclose(load_log_densities(tmp_path / "d.npy"), lds, atol=1e-14)
    m = open_log_densities(tmp_path / "d.npy", ["x", "y"])
    np.testing.assert_allclose(m.load(1), lds[1], atol=1e-14)


def test_a_map_that_is_not_a_density_is_one_line_naming_image_and_sum(tmp_path):
    lds = _lds()
    lds[1] += np.log(1.01)  # sums to 1.01
    np.savez(tmp_path / "d.npz", predictions=lds, names=np.array(["a", "b", "c"]))
    m = open_log_densities(tmp_path / "d.npz", ["a", "b", "c"])
    m.load(0)
    with pytest.raises(ValueError) as e:
        m.load(1)
    msg = str(e.value)
    assert "image 'b'" in msg and "sums to 1.01" in msg and "tolerance 0.0001" in msg and "\n" not in msg
    assert open_log_densities(tmp_path / "d.npz", ["a", "b", "c"], tol=0.02).load(1).shape == (6, 8)
    with pytest.raises(ValueError, match=r"map #1: not a log-density"):
        load_log_densities(tmp_path / "d.npz")


def test_saliency_maps_and_infinities_are_refused(tmp_path):
    sal = np.random.default_rng(1).random((2, 6, 8))  # a saliency map in [0, 1]: exp sums to ~80
    np.save(tmp_path / "s.npy", sal)
    with pytest.raises(ValueError, match="not a log-density: its exponential sums to"):
        open_log_densities(tmp_path / "s.npy", ["a", "b"]).load(0)
    lds = _lds(1)
    lds[0, 0, 0] = -np.inf
    np.save(tmp_path / "i.npy", lds)
    with pytest.raises(ValueError, match="NaN or infinity"):
        open_log_densities(tmp_path / "i.npy", ["a"]).load(0)


@pytest.mark.parametrize("name, exc, match", [
    ("d.pkl", ValueError, r"must be a \.npy or \.npz file of log-densities"),
    ("missing.npy", FileNotFoundError, "not found"),
    ("", ValueError, "is a directory"),
])
def test_bad_paths(tmp_path, name, exc, match):
    if name == "d.pkl":
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(exc, match=match):
        open_log_densities(tmp_path / name, ["a"])


def test_name_mismatch_is_the_array_readers_error(tmp_path):
    np.savez(tmp_path / "d.npz", predictions=_lds(2), names=np.array(["a", "b"]))
    with pytest.raises(ValueError, match="missing"):
        open_log_densities(tmp_path / "d.npz", ["a", "zz"])
