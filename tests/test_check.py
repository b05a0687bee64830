"""``salbench check``: recompute entries from stored predictions, catch drift, update on purpose."""

import json
import shutil

import numpy as np
import pytest

from salbench.cli import main
from salbench.data import get_dataset
from salbench.leaderboard.check import check_result
from salbench.leaderboard.results import (
    build_result, load_predictions_npz, load_result, quantize_predictions, result_filename, save_predictions,
    write_result,
)
from salbench.protocols import get_protocol

OPTIONS = {"preset": "small", "n_images": 4}


def _predictions(records, seed=0):
    """Deterministic 48x48 maps in [0, 1]: the target plus noise (not the truth, not constant)."""
    rng = np.random.default_rng(seed)
    maps = np.stack([r.y48 + 0.3 * rng.random((48, 48)) for r in records])
    return (maps / maps.max(axis=(1, 2), keepdims=True)).astype(np.float32)


def make_entry(root, protocol="coursework", model="center_bias"):
    """A results entry on the small synthetic preset, built with the public results API."""
    ds = get_dataset("synthetic", "val", **OPTIONS)
    records = [ds[i] for i in range(len(ds))]
    preds = quantize_predictions(_predictions(records))
    proto = get_protocol(protocol)
    scored = proto.evaluate(list(preds), records, seed=3)
    stem = result_filename(model, "synthetic", "val", protocol)[:-5]
    info = save_predictions(root / f"{stem}.predictions.npz", preds, list(scored.names))
    result = build_result(
        model={"name": model, "checkpoint": None},
        dataset={**ds.identity(), "options": OPTIONS, "data_dir": None},
        protocol=proto.name, params=proto.params, seed=3, names=list(scored.names),
        scores=scored.scores, predictions=info,
    )
    return write_result(root / f"{stem}.json", result)


@pytest.fixture(scope="module")
def entry_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    make_entry(root)
    return root


@pytest.fixture()
def board(entry_template, tmp_path):
    root = tmp_path / "leaderboards"
    shutil.copytree(entry_template, root)
    return root


def _entry(root):
    return next(root.glob("*.json"))


def _edit(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_untouched_entry_passes(board, capsys):
    assert main(["check", str(board)]) == 0
    out = capsys.readouterr().out
    assert "synthetic__val__center_bias__coursework.json: ok" in out
    assert "1 ok, 0 drifted, 0 errors, 0 skipped" in out


def test_perturbed_mean_fails_naming_entry_metric_old_and_new(board, capsys):
    path = _entry(board)
    true_cc = load_result(path)["metrics"]["cc"]["mean"]
    _edit(path, lambda d: d["metrics"]["cc"].__setitem__("mean", true_cc + 0.01))
    assert main(["check", str(board)]) == 1
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "(mean)" in x)
    assert line.startswith("synthetic__val__center_bias__coursework.json: DRIFT: cc (mean)")
    assert f"was {true_cc + 0.01!r}, now {true_cc!r}" in line
    # within an explicit tolerance the same entry passes
    assert main(["check", str(board), "--tolerance", "0.02"]) == 0


def test_perturbed_image_value_names_the_image(board, capsys):
    path = _entry(board)
    _edit(path, lambda d: d["metrics"]["auc_borji"]["per_image"].__setitem__(2, 0.123))
    assert main(["check", str(board)]) == 1
    err = capsys.readouterr().err
    assert "auc_borji (image synthetic_val_00002.png) was 0.123, now " in err


def test_update_rewrites_the_entry_and_then_passes(board, capsys):
    path = _entry(board)
    before = load_result(path)
    _edit(path, lambda d: d["metrics"]["cc"].__setitem__("mean", 9.0))
    _edit(path, lambda d: d["metrics"]["cc"]["per_image"].__setitem__(0, 9.0))
    assert main(["check", str(board), "--update"]) == 0
    out = capsys.readouterr().out
    assert "synthetic__val__center_bias__coursework.json: updated" in out
    after = load_result(path)
    assert after["metrics"]["cc"]["mean"] == pytest.approx(before["metrics"]["cc"]["mean"], abs=1e-12)
    assert after["metrics"]["cc"]["per_image"] == pytest.approx(before["metrics"]["cc"]["per_image"], abs=1e-12)
    assert after["protocol"] == before["protocol"] and after["predictions"] == before["predictions"]
    assert "updated" in after
    assert not list(board.glob(".*"))  # atomic write left no temporary file
    assert main(["check", str(board)]) == 0


def test_unavailable_dataset_is_skipped_not_failed(board, capsys):
    _edit(_entry(board), lambda d: d["dataset"].update(name="nus", data_dir="../shared-absent/data/osie"))
    assert main(["check", str(board)]) == 0
    out = capsys.readouterr().out
    assert "synthetic__val__center_bias__coursework.json: skipped: dataset nus not available here" in out
    assert "0 ok, 0 drifted, 0 errors, 1 skipped" in out


def test_changed_predictions_or_dataset_are_errors(board, capsys):
    path = _entry(board)
    _edit(path, lambda d: d["dataset"].update(content_hash="0" * 64))
    assert main(["check", str(board), "--update"]) == 1  # --update never papers over an error
    assert "content changed" in capsys.readouterr().err
    assert load_result(path)["dataset"]["content_hash"] == "0" * 64
    npz = next(board.glob("*.npz"))
    preds, names = load_predictions_npz(npz)
    save_predictions(npz, preds * 0.5, names)
    assert main(["check", str(board)]) == 1
    assert "sha256 differs" in capsys.readouterr().err


def test_check_report_statuses(board):
    report = check_result(load_result(_entry(board)))
    assert report.status == "ok" and not report.drifts
    assert set(report.new_scores) == set(get_protocol("coursework").metrics)


def test_default_directory_is_cwd_leaderboards(board, monkeypatch, capsys):
    monkeypatch.chdir(board.parent)
    assert main(["check"]) == 0
    assert f"in {board}" in capsys.readouterr().out


def test_empty_directory_is_an_error(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert "no results files" in capsys.readouterr().err


def test_stored_predictions_are_exactly_what_was_scored(tmp_path):
    rng = np.random.default_rng(1)
    raw = rng.random((3, 6, 5)).astype(np.float32)
    info32 = save_predictions(tmp_path / "a.npz", raw, ["a", "b", "c"])
    assert info32["dtype"] == "float32"  # float16 would change the scored values
    back, names = load_predictions_npz(tmp_path / "a.npz")
    assert names == ["a", "b", "c"] and np.array_equal(back, raw)
    q = quantize_predictions(raw)
    assert np.abs(q - raw).max() < 1e-3 and not np.array_equal(q, raw)
    info16 = save_predictions(tmp_path / "b.npz", q, ["a", "b", "c"])
    assert info16["dtype"] == "float16" and info16["shape"] == [3, 6, 5]
    assert np.array_equal(load_predictions_npz(tmp_path / "b.npz")[0], q)
    ragged = [raw[0], raw[1, :4, :3]]
    save_predictions(tmp_path / "c.npz", ragged, ["a", "b"])
    back, _ = load_predictions_npz(tmp_path / "c.npz")
    assert [m.shape for m in back] == [(6, 5), (4, 3)] and np.array_equal(back[1], ragged[1])
    with pytest.raises(ValueError, match="2 predictions for 3 image names"):
        save_predictions(tmp_path / "d.npz", ragged, ["a", "b", "c"])
    with pytest.raises(ValueError, match="NaN"):
        save_predictions(tmp_path / "d.npz", raw * np.nan, ["a", "b", "c"])
