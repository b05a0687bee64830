"""A new user's bad inputs and faults end in one specific line (issue 19, "Memory and messages").

Each test here failed before its fix: a full disk under ``--output`` said "nothing was
written" though the results entry was committed, a model that takes no checkpoint ended
in "internal error: TypeError", a plugin's wrong output showed ``()`` instead of its
shape, ``--digits -3`` ended in a format-string error.
"""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from salbench.cli import main

SMALL = ["--option", "preset=small"]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SALBENCH_DATA", raising=False)
    return tmp_path


def _one_line(capsys) -> tuple[str, str]:
    """``(stdout, the error line)``: one error line, last; before it only progress lines, no traceback."""
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err and all(line.startswith("salbench: ") and "error" not in line for line in err[:-1]), captured.err
    return captured.out, err[-1]


# -- 1. --output on a full disk -------------------------------------------------------------------
def _disk_full_for(monkeypatch, suffix: str):
    """The rename that commits a file ending in ``suffix`` fails with ENOSPC (the results entry's does not)."""
    import salbench.io.atomic as atomic

    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_output_on_a_full_disk_says_what_was_and_was_not_written(cache, capsys, monkeypatch, fmt):
    res, out = cache / "res", cache / "summary.out"
    _disk_full_for(monkeypatch, "summary.out")
    code = main(["eval", "--model", "uniform", *SMALL, "--results-dir", str(res), "--output", str(out),
                 "--format", fmt])
    stdout, err = _one_line(capsys)
    entry = res / "synthetic__val__uniform__mit.json"
    assert code == 2 and entry.is_file() and not out.exists()
    shown = "JSON summary" if fmt == "json" else "table"
    assert err == (f"salbench: error: --output {out} was not written (disk full (no space left on device)); "
                   f"the results entry {entry} was written and the {shown} is printed above")
    if fmt == "json":
        assert json.loads(stdout)["model"]["name"] == "uniform"
    else:
        assert "CC ↑" in stdout and f"results: {entry}" in stdout


def test_output_on_a_full_disk_keeps_the_previous_file(cache, capsys, monkeypatch):
    out = cache / "summary.out"
    out.write_text("old")
    _disk_full_for(monkeypatch, "summary.out")
    assert main(["eval", "--model", "uniform", *SMALL, "--results-dir", str(cache / "res"),
                 "--output", str(out)]) == 2
    _, err = _one_line(capsys)
    assert "was not written (disk full (no space left on device)); the previous file is unchanged; " in err
    assert out.read_text() == "old"


# -- 2. a specific line where a generic one was -----------------------------------------------------
@pytest.mark.parametrize("args, line", [
    (["--model", "uniform", "--checkpoint", "X"],
     "model 'uniform' takes no checkpoint (it has no weights to load): drop --checkpoint; "
     "its options (--model-option): output_size"),
    (["--model", "uniform", "--model-option", "foo=1"],
     "model 'uniform' has no option 'foo'; its options (--model-option): output_size"),
    (["--model", "shallow_kl", "--model-option", "foo=1", "--no-train"],
     "model 'shallow_kl' has no option 'foo'; its options (--model-option): seed, device, batch_size"),
    (["--model", "uniform", "--model-option", "output_size=3"],
     "output_size must be two positive integers (at most 100,000,000 pixels), got 3"),
    (["--model", "uniform", "--model-option", "output_size=[100000,100000]"],
     "output_size must be two positive integers (at most 100,000,000 pixels), got [100000, 100000]"),
])
def test_model_options_a_model_does_not_take_are_named(cache, capsys, args, line):
    assert main(["eval", *args, *SMALL, "--results-dir", str(cache / "res")]) == 2
    _, err = _one_line(capsys)
    assert err == f"salbench: error: {line}"
    assert not (cache / "res").exists()


class _Returns:
    """A model whose ``predict`` returns ``make(n)`` for a batch of ``n`` records."""

    output_size = (48, 48)

    def __init__(self, make):
        self.make = make

    def predict(self, records):
        return self.make(len(records))


@pytest.mark.parametrize("make, returned", [
    (lambda n: None, "returned None"),
    (lambda n: np.ones((48, 48), np.float32), "returned a float32 array of shape (48, 48)"),
    (lambda n: np.ones((n - 1, 48, 48)), "returned a float64 array of shape (3, 48, 48)"),
    (lambda n: np.ones((n, 48, 48, 3)), "returned a float64 array of shape (4, 48, 48, 3)"),
    (lambda n: [np.ones(48)] * n, "returned a list of 4 whose item 0 is a float64 array of shape (48,)"),
    (lambda n: [np.ones((48, 48))] * (n - 1) + [None], "returned a list of 4 whose item 3 is None"),
    (lambda n: [np.ones((0, 48))] * n, "returned a list of 4 whose item 0 is a float64 array of shape (0, 48)"),
    (lambda n: {"maps": 1}, "returned a dict"),
    (lambda n: np.array(["a"] * n * 4).reshape(n, 2, 2), "returned a <U1 array of shape (4, 2, 2)"),
])
def test_a_model_returning_the_wrong_maps_is_named_with_both_shapes(cache, capsys, monkeypatch, make, returned):
    from salbench.models import default_registry

    monkeypatch.setitem(default_registry()._factories, "badout", lambda **kw: _Returns(make))
    args = ["eval", "--model", "badout", *SMALL, "--option", "n_images=4", "--batch-size", "4",
            "--results-dir", str(cache / "res")]
    assert main(args) == 2
    _, err = _one_line(capsys)
    assert err == (f"salbench: error: model 'badout': predict {returned} for a batch of 4 images; expected 4 "
                   "2-D maps (an array of shape (4, 48, 48) or a list of 4 2-D arrays)")
    assert not list((cache / "res").glob("*.json"))


# -- the sweep: a dozen bad invocations of each subcommand, none an "internal error" ----------------
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
ENTRY = str(REPO / "leaderboards" / "synthetic" / "synthetic__val__uniform__mit.json")
OTHER = str(REPO / "leaderboards" / "synthetic" / "synthetic__val__center_bias__mit.json")
FIT = str(REPO / "leaderboards" / "synthetic" / "synthetic__train__center_bias.fit.json")


@pytest.fixture()
def bad_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SALBENCH_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "junk.json").write_text("not json")
    (tmp_path / "num.jsonl").write_text("5\n")
    (tmp_path / "list.jsonl").write_text('{"kind": "train", "loss": 1, "step": 1}\n[1, 2]\n')
    np.save(tmp_path / "cplx.npy", np.zeros((3, 4, 4), dtype=complex))
    return tmp_path


# Fixed here (each was an "internal error" or a generic line before): the exact line.
@pytest.mark.parametrize("argv, line", [
    (["leaderboard", "--digits", "-3"], "--digits must be an integer from 0 to 12, not -3"),
    (["leaderboard", "--table", "3", "--digits", "99"], "--digits must be an integer from 0 to 12, not 99"),
    (["compare", ENTRY, OTHER, "--seed", "-1"], "--seed must be an integer >= 0, not -1"),
    (["plot", "loss", "--log", "num.jsonl"],
     "num.jsonl:1: a int, not a JSON object (a training log entry is an object with kind, loss and step)"),
    (["plot", "loss", "--log", "list.jsonl"],
     "list.jsonl:2: a list, not a JSON object (a training log entry is an object with kind, loss and step)"),
    (["eval", "--model", "center_bias", *SMALL, "--model-option", "mean=5"],
     "center_bias needs 2 finite means and 2 positive stds, got 5, (0.1962, 0.2141)"),
    (["data", "info", "--dataset", "salicon-pkl", "--data-dir", "empty"], "dataset 'salicon-pkl': no split found in empty"),
    (["train", "shallow_kl", "--dataset", "synthetic", "--out", "a_file"], "--out a_file is a file, not a run directory"),
])
def test_bad_invocations_fixed_here_say_what_is_wrong(bad_files, capsys, argv, line):
    assert main(argv) == 2
    _, err = _one_line(capsys)
    assert err == f"salbench: error: {line}"


# Already one clear line: kept so (a regression here would be an "internal error" or a traceback).
@pytest.mark.parametrize("argv", [
    ["eval", "--model", "nosuch"],
    ["eval", "--model", "uniform", "--dataset", "nosuch"],
    ["eval", "--model", "uniform", *SMALL, "--split", "nosuch"],
    ["eval", "--model", "uniform", "--protocol", "nosuch"],
    ["eval", "--model", "uniform", *SMALL, "--protocol-option", "step=0"],
    ["eval", "--model", "uniform", "--option", "foo=1"],
    ["eval", "--predictions", "empty", *SMALL],
    ["eval", "--predictions", "junk.json", *SMALL],
    ["eval", "--predictions", "cplx.npy", *SMALL],
    ["eval", "--model", "uniform", *SMALL, "--results-dir", "a_file"],
    ["eval", "--model", "shallow_kl", "--checkpoint", "junk.json"],
    ["eval", "--model", "shallow_kl", "--checkpoint", "empty"],
    ["train", "nosuch", "--dataset", "synthetic"],
    ["train", "shallow_kl", "--dataset", "synthetic", "--epochs", "0"],
    ["train", "shallow_kl", "--dataset", "synthetic", "--lr-start", "nan"],
    ["train", "shallow_kl", "--dataset", "synthetic", *SMALL, "--resume", "--out", "empty/none"],
    ["check", "nosuch"], ["check", "a_file"], ["check", "empty"], ["check", "--tolerance", "nan", "empty"],
    ["leaderboard", "--results", "nosuch"], ["leaderboard", "--results", "empty"],
    ["leaderboard", "--results", str(REPO / "leaderboards"), "--sort", "nosuch"],
    ["leaderboard", "--results", str(REPO / "leaderboards"), "--dataset", "nosuch"],
    ["leaderboard", "--results", str(REPO / "leaderboards"), "--alpha", "2"],
    ["leaderboard", "--results", str(REPO / "leaderboards"), "--compare-protocols"],
    ["leaderboard", "--results", str(REPO / "leaderboards"), "--html", "a_file"],
    ["compare", "junk.json", ENTRY], ["compare", FIT, ENTRY], ["compare", ENTRY], ["compare", "nosuch.json", ENTRY],
    ["compare", ENTRY, OTHER, "--metrics", "nosuch"], ["compare", ENTRY, OTHER, "--resamples", "0"],
    ["data", "info", "--dataset", "nosuch"], ["data", "info", "--dataset", "nus", "--data-dir", "empty"],
    ["data", "info", "--dataset", "synthetic", "--preset", "nosuch"],
    ["data", "info", "--dataset", "synthetic", "--max-images", "-1"],
    ["data", "export", "--dataset", "synthetic", "--preset", "small", "--to", "pkl", "a_file"],
    ["models", "--card", "nosuch"],
    ["plot", "panels", "--result", "junk.json"], ["plot", "panels", "--result", ENTRY, "--metric", "nosuch"],
    ["plot", "panels", "--result", ENTRY, "--n", "0"], ["plot", "loss", "--log", "nosuch"],
    ["plot", "loss", "--log", "junk.json"], ["plot", "filters", "--checkpoint", "junk.json"],
    ["plot", "filters", "--checkpoint", "empty"],
])
def test_bad_invocations_are_one_clear_line(bad_files, capsys, argv):
    assert main(argv) == 2
    _, err = _one_line(capsys)
    assert err.startswith("salbench: error: ") and "internal error" not in err and "Traceback" not in err


# -- 4. the default name of --predictions maps/ -----------------------------------------------------
@pytest.mark.parametrize("folder, name", [
    ("deepgaze/maps", "deepgaze"),
    ("runs/DeepGaze IIE/predictions/val", "DeepGaze_IIE"),
    ("deepgaze", "deepgaze"),
    ("center_bias/saliency", "maps-center_bias"),  # a registered model's name: never its entry's file
])
def test_predictions_folder_default_name_reads_well(cache, capsys, folder, name):
    from salbench.data import get_dataset
    from salbench.predictions import save_maps
    from salbench.results import load_result

    names = get_dataset("synthetic", "val", preset="small", n_images=4).names
    maps = cache / folder
    save_maps(maps, names, [np.random.default_rng(i).random((12, 16)) for i in range(4)])
    res = cache / "res"
    base = ["eval", "--predictions", str(maps), *SMALL, "--option", "n_images=4", "--results-dir", str(res)]
    assert main(base) == 0
    assert f"(as {name})" in capsys.readouterr().out
    assert load_result(res / f"synthetic__val__{name}__mit.json")["model"]["name"] == name
    assert main([*base, "--name", "mine"]) == 0  # --name overrides
    assert load_result(res / "synthetic__val__mine__mit.json")["model"]["name"] == "mine"


# -- 6. salbench models says what eval does, and lists metric plugin failures -----------------------
def test_models_listing_says_center_bias_is_fitted_as_eval_fits_it(capsys):
    from salbench.evaluate import EvaluationRequest

    assert main(["models", "center_bias"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("center_bias"))
    limit = EvaluationRequest(model="center_bias").fit_limit
    assert f"eval fits it to the dataset's train split (first {limit} images)" in line, line
    assert "OSIE" not in line  # the unfitted default is not what eval scores


def test_models_lists_metric_plugin_failures(capsys, monkeypatch):
    import salbench.metrics

    err = "plugin bad-metric entry point 'pct = bad_metric:pct': ImportError: no module named scipy2"
    monkeypatch.setattr(salbench.metrics, "plugin_failures", lambda: {"pct": err})
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"1 metric plugin(s) failed to load or were refused (the other metrics work):\n  {err}" in out
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["failed_metrics"] == {"pct": err}
