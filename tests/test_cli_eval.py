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
                 "--split", "val", "--protocol", "coursework", "--seed", "0", "--results-dir", str(d / "results"),
                 *extra])


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
    assert "sAUC" in text and "95% CI" in text and "4 images" in text


@pytest.mark.parametrize("preds, message", [
    ("three.npy", "3 predictions but"),
    ("bad.npy", "not square maps"),
    ("evil.pkl", "cannot read predictions"),
    ("junk.npy", "cannot read predictions"),
    ("missing.npy", "no such file or folder"),
])
def test_eval_errors(pkl_dir, preds, message, capsys):
    assert _eval(pkl_dir, preds) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--workers", "-2"], "salbench: error: --workers must be an integer >= 0, got -2"),
    (["--chunk-size", "0"], "salbench: error: --chunk-size must be a positive integer, got 0"),
    (["--seed", "-1"], "salbench: error: --seed must be an integer in [0, 2**32), got -1"),
    (["--save-maps", "out"], "salbench: error: --save-maps writes a model's maps: use it with --model"),
])
def test_eval_argument_errors_are_one_line_before_any_data(pkl_dir, args, message, capsys, monkeypatch):
    import salbench.evaluate.run as run

    monkeypatch.setattr(run, "plan_evaluation", lambda *a, **k: pytest.fail("data was read"))
    assert _eval(pkl_dir, "preds.npy", *args) == 2
    assert capsys.readouterr().err.strip() == message


def test_eval_model_flags_with_predictions_and_nothing_to_evaluate(capsys):
    assert main(["eval", "--model", "uniform", "--allow-extra"]) == 2
    assert capsys.readouterr().err.strip() == "salbench: error: --allow-extra applies to --predictions"
    assert main(["eval"]) == 2
    assert capsys.readouterr().err.strip() == ("salbench: error: nothing to evaluate: give --model NAME or "
                                               "--predictions PATH")


# --- eval --model: end to end on the small synthetic preset -------------------------------

SMALL = ["--option", "preset=small"]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SALBENCH_DATA", raising=False)
    return tmp_path


def test_eval_model_baseline_writes_results(cache, capsys):
    from salbench.results import load_predictions_npz, load_result
    from salbench.protocols import get_protocol
    from salbench.data import get_dataset

    res = cache / "res"
    assert main(["eval", "--model", "center_bias", *SMALL, "--results-dir", str(res)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert "dataset synthetic" in first and "built-in" in first
    assert "fitting center_bias" in out and "sAUC" in out
    path = res / "synthetic__val__center_bias__mit.json"
    result = load_result(path)
    assert result["protocol"]["name"] == "mit" and result["seed"] == 0
    assert result["dataset"]["name"] == "synthetic" and result["dataset"]["n_files"] == result["n_images"]
    assert result["model"]["checkpoint"]["sha256"]  # the fitted parameters file is hashed
    # Stored predictions rescore to the stored values (independently of the eval code path).
    preds, names = load_predictions_npz(res / result["predictions"]["file"])
    assert names == result["image_names"]
    recs = list(get_dataset("synthetic", "val", preset="small"))
    again = get_protocol("mit").evaluate(list(preds), recs, seed=0)
    for metric in ("cc", "nss", "auc_judd", "auc_borji", "auc_shuffled"):
        stored = np.array(result["metrics"][metric]["per_image"], dtype=float)
        np.testing.assert_allclose(again.scores[metric], stored, rtol=1e-12, atol=0)


def test_eval_model_trains_quick_checkpoint_once(cache, capsys):
    res = cache / "res"
    args = ["eval", "--model", "shallow_kl", *SMALL, "--results-dir", str(res), "--protocol", "coursework"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "training a quick checkpoint" in out
    assert main(args) == 0  # second run: the cached checkpoint, no training
    out = capsys.readouterr().out
    assert "using the cached quick checkpoint" in out and "training a quick" not in out
    result = json.loads((res / "synthetic__val__shallow_kl__coursework.json").read_text())
    assert result["model"]["checkpoint"]["sha256"] and result["model"]["output_size"] == [48, 48]


def test_eval_model_without_weights_elsewhere_names_the_command(cache, capsys, pkl_dir):
    code = main(["eval", "--model", "shallow_mse", "--dataset", "salicon-pkl", "--data-dir", str(pkl_dir),
                 "--results-dir", str(cache / "res")])
    assert code == 2
    err = capsys.readouterr().err
    assert "salbench train shallow_mse --dataset salicon-pkl" in err


def test_eval_model_no_train_flag(cache, capsys):
    assert main(["eval", "--model", "shallow_kl", *SMALL, "--no-train", "--results-dir", str(cache / "r")]) == 2
    assert "no trained weights" in capsys.readouterr().err


def test_eval_unknown_model_suggests(cache, capsys):
    assert main(["eval", "--model", "shallow_k", *SMALL]) == 2
    assert "shallow_kl" in capsys.readouterr().err


def test_eval_model_json_keeps_stdout_clean(cache, capsys):
    assert main(["eval", "--model", "uniform", *SMALL, "--format", "json", "--results-dir", str(cache / "r")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["name"] == "uniform" and set(doc["metrics"]) >= {"cc", "auc_borji", "auc_shuffled"}


@pytest.mark.parametrize("protocol", ["mit", "coursework"])
def test_save_maps_then_predictions_dir_scores_the_saved_maps(cache, capsys, protocol):
    """`eval --model X --save-maps D` then `eval --predictions D`: the folder scores exactly as the
    model's maps quantised by the documented 8-bit rule (saved_values), and the entry is checkable."""
    from salbench.data import get_dataset
    from salbench.results import load_predictions_npz, load_result
    from salbench.predictions import saved_values
    from salbench.protocols import get_protocol

    res, maps = cache / "res", cache / "maps"
    assert main(["eval", "--model", "center_bias", *SMALL, "--protocol", protocol, "--results-dir", str(res),
                 "--save-maps", str(maps)]) == 0
    model_entry = load_result(res / f"synthetic__val__center_bias__{protocol}.json")
    assert sorted(p.name for p in maps.iterdir()) == sorted(n.rsplit(".", 1)[0] + ".png"
                                                            for n in model_entry["image_names"])
    assert main(["eval", "--predictions", str(maps), *SMALL, "--protocol", protocol, "--results-dir", str(res),
                 "--name", "saved"]) == 0
    capsys.readouterr()
    folder_entry = load_result(res / f"synthetic__val__saved__{protocol}.json")
    assert folder_entry["predictions"]["kind"] == "folder" and len(folder_entry["predictions"]["map_sha256"]) == 32
    stored, names = load_predictions_npz(res / model_entry["predictions"]["file"])
    records = list(get_dataset("synthetic", "val", preset="small"))
    expected = get_protocol(protocol).evaluate([saved_values(m) for m in stored], records, seed=0)
    for metric, block in folder_entry["metrics"].items():
        got = np.array([np.nan if v is None else v for v in block["per_image"]])
        np.testing.assert_array_equal(got, expected.scores[metric])
    # the model's own entry differs from the folder's only by the 8-bit quantisation
    cc_model = model_entry["metrics"]["cc"]["mean"]
    assert abs(folder_entry["metrics"]["cc"]["mean"] - cc_model) < 0.01
    assert main(["check", str(res), "--strict"]) == 0


def test_interrupt_is_one_line_and_writes_nothing(cache, capsys, monkeypatch):
    from salbench.protocols.base import Scorer

    def boom(self, items):
        raise KeyboardInterrupt
    monkeypatch.setattr(Scorer, "add_prepared", boom)
    res = cache / "res"
    assert main(["eval", "--model", "uniform", *SMALL, "--results-dir", str(res)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("salbench: interrupted")
    assert not list(res.glob("*.json")) and not list(res.glob("*.npz"))
