"""``salbench eval`` and predictions files: formats, JSON keys, errors with exit code 2."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from salbench.cli import main
from salbench.predictions import load_predictions


@pytest.fixture(scope="module")
def pkl_dir(tmp_path_factory):
    """A tiny ``val.pkl`` in the coursework layout, plus predictions files."""
    d = tmp_path_factory.mktemp("cw")
    rng = np.random.default_rng(0)
    items = []
    for i in range(4):
        m = np.zeros((48, 64))
        m[rng.integers(0, 48, 5), rng.integers(0, 64, 5)] = 1
        g = gaussian_filter(m, 3)
        items.append({"X": rng.random((3, 96, 96)).astype(np.float32), "y": rng.random((48, 48)).astype(np.float32),
                      "y_original": np.round(255 * g / g.max()).astype(np.uint8),
                      "X_original": rng.integers(0, 256, (3, 48, 64)).astype(np.uint8), "file_name": f"im{i}.jpg"})
    (d / "val.pkl").write_bytes(pickle.dumps(items))
    (d / "preds.pkl").write_bytes(pickle.dumps([rng.random(2304) for _ in range(4)]))
    np.save(d / "preds.npy", rng.random((4, 48, 48)))
    np.savez(d / "preds.npz", predictions=rng.random((4, 48, 64)))
    np.save(d / "three.npy", rng.random((3, 48, 48)))
    np.save(d / "bad.npy", rng.random((4, 2303)))
    (d / "evil.pkl").write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    (d / "junk.npy").write_bytes(b"not numpy")
    return d


def _eval(d, preds, *extra):
    return main(["eval", "--predictions", str(d / preds), "--dataset", "salicon-pkl", "--data-dir", str(d),
                 "--split", "val", "--protocol", "coursework", "--seed", "0", *extra])


def test_load_formats(pkl_dir):
    assert load_predictions(pkl_dir / "preds.pkl").shape == (4, 48, 48)
    assert load_predictions(pkl_dir / "preds.npz").shape == (4, 48, 64)


@pytest.mark.parametrize("preds", ["preds.pkl", "preds.npy", "preds.npz"])
def test_eval_json(pkl_dir, preds, capsys, tmp_path):
    out = tmp_path / "r.json"
    assert _eval(pkl_dir, preds, "--format", "json", "--output", str(out)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads(out.read_text())
    assert doc["n_images"] == 4 and doc["seed"] == 0
    assert doc["protocol"]["name"] == "coursework" and doc["protocol"]["params"]["splits"] == 100
    for name in ("cc", "auc_borji", "auc_shuffled"):
        m = doc["metrics"][name]
        assert len(m["per_image"]) == 4 and m["ci95"][0] <= m["mean"] <= m["ci95"][1]


def test_eval_table(pkl_dir, capsys):
    assert _eval(pkl_dir, "preds.pkl") == 0
    text = capsys.readouterr().out
    assert "auc_shuffled" in text and "95% CI" in text and "4 images" in text


@pytest.mark.parametrize("preds, message", [
    ("three.npy", "3 predictions but"),
    ("bad.npy", "not a square map"),
    ("evil.pkl", "cannot read predictions"),
    ("junk.npy", "cannot read predictions"),
    ("missing.npy", "not found"),
])
def test_eval_errors(pkl_dir, preds, message, capsys):
    assert _eval(pkl_dir, preds) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
