"""``salbench check`` verifies who produced an entry's maps: the model as recorded, re-run on a sample.

Issue 19: an entry relabelled as another model (or a model that does not exist, a changed
checkpoint SHA-256, changed model options) used to pass "ok", ``check --update`` kept the wrong
name and the leaderboard showed it as verified. Each test writes real entries with
``salbench.evaluate`` on the small synthetic preset, changes one thing and asserts what
``check`` prints and its exit status.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from salbench.check import RerunPolicy, check_result, verification_status
from salbench.check.model import sample
from salbench.evaluate import EvaluationRequest, evaluate
from salbench.results import load_result
from tests.check_helpers import edit_json as _edit, run_check as _check

OPTIONS = {"preset": "small", "n_images": 6}


def _evaluate(root, model, protocol="coursework", **kw):
    request = EvaluationRequest(model=model, dataset="synthetic", dataset_options=OPTIONS, protocol=protocol,
                                results_dir=root, workers=0, **kw)
    return evaluate(request, progress=False, log=lambda m: None)[1]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for model in ("uniform", "center_bias", "gold"):
        _evaluate(root, model, model_options={"output_size": [30, 40]} if model == "gold" else {})
    return root


@pytest.fixture()
def board(template, tmp_path):
    root = tmp_path / "lb"
    shutil.copytree(template, root)
    return root


def _entry(root, model):
    return root / f"synthetic__val__{model}__coursework.json"


def test_baselines_are_re_run_and_reproduce_their_maps(board, capsys):
    code, out, err = _check(board, capsys, "--strict")
    assert code == 0, err
    for model in ("uniform", "center_bias", "gold"):
        assert (f"{_entry(board, model).name}: ok (model {model} re-run on all 6 images reproduced the stored "
                "maps exactly)") in out
    assert "3 ok, 0 drifted, 0 errors, 0 skipped, 0 model not verified; verification: 3 model re-run" in out


@pytest.mark.parametrize("model, change, message", [
    ("center_bias", {"name": "uniform"}, "model uniform cannot be created with the recorded options {} and checkpoint"),
    ("center_bias", {"name": "no_such_model"}, "model 'no_such_model' is not a registered model (built-in or plugin)"),
    ("uniform", {"name": "center_bias"}, "model center_bias re-run on synthetic_val_00000.png gives other maps"),
    ("uniform", {"name": "gold"}, "model gold re-run on synthetic_val_00000.png gives a 480x640 map, the stored map "
                                  "is 48x48"),
    ("gold", {"options": {"output_size": [48, 64]}}, "model gold re-run on synthetic_val_00000.png gives a 48x64 "
                                                     "map, the stored map is 30x40"),
    ("gold", {"options": {"output_size": [30, 40], "sharpness": 2}}, "model gold cannot be created with the "
                                                                     "recorded options"),
])
def test_a_relabelled_entry_is_an_error_and_update_never_rewrites_it(board, capsys, model, change, message):
    path = _entry(board, model)
    _edit(path, lambda d: d["model"].update(change))
    before = path.read_bytes()
    code, out, err = _check(board, capsys)
    assert code == 1 and f"{path.name}: ERROR: {message}" in err
    assert f"{path.name}: ok" not in out
    code, out, err = _check(board, capsys, "--update")
    assert code == 1 and path.read_bytes() == before  # the wrong name is never kept by --update
    if change.get("name") == "no_such_model":  # known without recomputing: the leaderboard marks it too
        assert "is not a registered model" in verification_status(load_result(path)).summary


def test_a_changed_checkpoint_hash_is_an_error(board, capsys):
    path = _entry(board, "center_bias")
    _edit(path, lambda d: d["model"]["checkpoint"].update(sha256="0" * 64))
    code, _, err = _check(board, capsys)
    assert code == 1
    assert "has sha256" in err and "the entry records 0000000000000000...: these are not the weights" in err


def test_a_consistently_forged_entry_is_caught_by_the_re_run(board, capsys):
    """Other maps, scored honestly and stored with their own hash, labelled as a model: only a re-run sees it."""
    rng = np.random.default_rng(5)
    maps = rng.random((6, 48, 48)).astype(np.float32)
    _evaluate(board, "center_bias", model_predictions=maps, model_info={"checkpoint": None}, tag="forged")
    forged = board / "synthetic__val__center_bias-forged__coursework.json"
    assert verification_status(load_result(forged)).ok  # the record is consistent in itself
    code, _, err = _check(board, capsys)
    assert code == 1 and f"{forged.name}: ERROR: model center_bias re-run on" in err


def test_an_unavailable_checkpoint_is_model_not_verified_never_ok(board, capsys, tmp_path):
    path = _entry(board, "center_bias")
    fit = board / load_result(path)["model"]["checkpoint"]["path"]
    kept = tmp_path / "kept"
    kept.mkdir()
    shutil.move(fit, kept / fit.name)
    code, out, err = _check(board, capsys, "--strict")
    assert code == 0, err  # recomputed: "model not verified" is printed, never a failure
    line = next(x for x in out.splitlines() if x.startswith(path.name))
    assert line.startswith(f"{path.name}: recomputed, model not verified: checkpoint ")
    assert "is not available here (give its folder with --checkpoints DIR)" in line and ": ok" not in line
    assert "2 ok, 0 drifted, 0 errors, 0 skipped, 1 model not verified" in out
    code, out, err = _check(board, capsys, "--checkpoints", str(kept))  # found by its hash
    assert code == 0 and f"{path.name}: ok (model center_bias re-run" in out
    shutil.copyfile(kept / fit.name, fit)
    fit.write_text(fit.read_text().replace("0.", "0.1", 1))  # other weights at the recorded path
    code, _, err = _check(board, capsys)
    assert code == 1 and "(the recorded path) has sha256" in err
    code, _, err = _check(board, capsys, "--checkpoints", str(kept))  # the file with the recorded hash wins
    assert code == 0, err


def test_predictions_without_a_model_say_so(tmp_path, capsys):
    from salbench.data import get_dataset
    from salbench.predictions import save_maps

    ds = get_dataset("synthetic", "val", **OPTIONS)
    folder = tmp_path / "mymaps"  # the entry is named after the folder
    save_maps(folder, ds.names, [np.random.default_rng(i).random((48, 48)) for i in range(len(ds))])
    root = tmp_path / "res"
    evaluate(EvaluationRequest(predictions=folder, dataset="synthetic", dataset_options=OPTIONS, protocol="exact",
                               results_dir=root, workers=0), progress=False, log=lambda m: None)
    code, out, err = _check(root, capsys, "--strict")
    assert code == 0, err
    assert "synthetic__val__mymaps__exact.json: ok (predictions, no model)" in out


def test_the_re_run_sample_is_seeded_and_reported(board, capsys, tmp_path):
    names = load_result(_entry(board, "gold"))["image_names"]
    picked = sample(names, RerunPolicy(n=3, seed=7))
    assert picked == sample(names, RerunPolicy(n=3, seed=7)) and len(set(picked)) == 3
    assert sample(names, RerunPolicy(n=None)) == list(range(6)) == sample(names, RerunPolicy(n=60))
    report = tmp_path / "report.json"
    code, out, err = _check(board, capsys, "--rerun", "3", "--rerun-seed", "7", "--json", str(report))
    assert code == 0, err
    assert "re-run on 3 of 6 images (sample seed 7)" in out and "models re-run on 3 images, sample seed 7" in out
    data = json.loads(report.read_text())
    gold = data["entries"][_entry(board, "gold").name]
    assert gold["model"]["images"] == [names[j] for j in picked] and gold["model"]["seed"] == 7
    assert gold["verification"] == "model re-run" and data["rerun"] == {"images": 3, "seed": 7}
    code, out, _ = _check(board, capsys, "--rerun", "0")
    assert code == 0 and "recomputed, model not verified: not re-run (--rerun 0)" in out


@pytest.mark.parametrize("args, message", [
    (["--rerun", "some"], "--rerun must be 'all' or an integer >= 0, not 'some'"),
    (["--rerun", "-1"], "--rerun must be 'all' or an integer >= 0, not '-1'"),
    (["--rerun-seed", "-3"], "--rerun-seed must be an integer >= 0, not -3"),
    (["--checkpoints", "/no/such/dir"], "--checkpoints /no/such/dir: not a directory"),
])
def test_bad_rerun_arguments_are_one_line(board, capsys, args, message):
    code, _, err = _check(board, capsys, *args)
    assert code == 2 and err.strip() == f"salbench: error: {message}"


def test_check_result_reports_the_model_outcome(board):
    path = _entry(board, "uniform")
    report = check_result(load_result(path), rerun_policy=RerunPolicy(n=2, seed=1))
    assert report.status == "ok" and report.verification == "model re-run"
    assert report.model.outcome == "re-run" and len(report.model.images) == 2 and report.model.seed == 1


@pytest.mark.slow
def test_a_network_checkpoint_is_found_by_hash_and_its_re_run_is_exact(tmp_path, capsys):
    """The shallow network from its safetensors weights: re-run bit for bit; other weights at its path are an error."""
    from salbench.models import create_model
    from salbench.training import save_checkpoint

    def weights(folder, seed):  # a seeded untrained network is weights like any other
        net = create_model("shallow_kl", seed=seed).net
        return save_checkpoint(folder, "best", net, None, {"epoch": 0}, {"model": "shallow_kl"})

    root = tmp_path / "lb"
    ck = weights(tmp_path / "ck", seed=3)
    _evaluate(root, "shallow_kl", checkpoint=ck)
    entry = next(root.glob("synthetic__val__shallow_kl*__coursework.json"))
    code, out, err = _check(root, capsys, "--strict")
    assert code == 0, err
    assert f"{entry.name}: ok (model shallow_kl re-run on all 6 images reproduced the stored maps exactly)" in out
    shutil.move(ck, tmp_path / "kept")
    weights(tmp_path / "ck", seed=4)  # other weights where the entry says its weights are
    code, out, err = _check(root, capsys)
    assert code == 1 and f"{entry.name}: ERROR: checkpoint " in err and "(the recorded path) has sha256" in err
    code, out, err = _check(root, capsys, "--checkpoints", str(tmp_path / "kept"))  # the recorded hash wins
    assert code == 0 and f"{entry.name}: ok (model shallow_kl re-run" in out, err
