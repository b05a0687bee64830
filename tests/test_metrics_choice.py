"""``--metrics``: a chosen subset computed, recorded (``protocol.metrics``), rechecked exactly, shown as computed.

The subset's values are compared with the same run computing every metric (the fused kernels
with want-flags must not change a single value); ``check`` must tell a requested subset from a
deleted metric block, read entries written before ``protocol.metrics`` existed as "every metric of
the protocol then", and not drift when a metric plugin is installed afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from salbench.cli import main
from salbench.evaluate import EvaluationRequest, evaluate
from salbench.results import ResultsFileError, build_result, load_result, validate_result
from tests.test_plugins import metric_plugin_path  # noqa: F401 - the installed example metric plugin (fixture)
from tests.check_helpers import edit_json as _edit, run_check as _check

SMALL = {"preset": "small", "n_images": 10}
ENTRY = "synthetic__val__given__{}.json"


def _maps(n=10, seed=3):
    return np.random.default_rng(seed).random((n, 48, 48)).astype(np.float32)


def _eval(results_dir, protocol="mit", metrics=None, model="given"):
    # maps a user brought (not a registered model's): check recomputes them, no model to re-run
    request = EvaluationRequest(model=model, model_predictions=_maps(), model_info={"source": "predictions"},
                                dataset_options=SMALL, protocol=protocol, metrics=metrics, results_dir=results_dir)
    return evaluate(request, progress=False, log=lambda m: None)


# -- the request and the command line -------------------------------------------------------------------
@pytest.mark.parametrize("metrics, message", [
    ("cc,,nss", "--metrics takes a comma-separated list of metric names"),
    ("", "--metrics takes a comma-separated list of metric names"),
    ([], "--metrics takes a comma-separated list"),
    ("cc,nss,cc", "--metrics names cc more than once"),
    (["cc", 3], "--metrics takes metric names"),
])
def test_metric_lists_are_checked_when_the_request_is_built(metrics, message):
    with pytest.raises(ValueError, match=message):
        EvaluationRequest(model="uniform", metrics=metrics)
    assert EvaluationRequest(model="uniform", metrics=" nss , cc").metrics == ("nss", "cc")
    assert EvaluationRequest(model="uniform", metrics=("cc",)).metrics == ("cc",)


@pytest.mark.parametrize("args, line", [
    (["--metrics", "cc,aucjudd"], "salbench: error: --metrics cc,aucjudd: unknown metric 'aucjudd'; available under protocol 'mit': cc, nss, "),
    (["--metrics", "cc,aucjudd"], "Did you mean 'auc_judd'?"),
    (["--protocol", "coursework", "--metrics", "nsss"],  # the list and the close match are the protocol's
     "salbench: error: --metrics nsss: unknown metric 'nsss'; available under protocol 'coursework': cc, auc_borji, "
     "auc_shuffled."),
    (["--protocol", "coursework", "--metrics", "cc,nss"],
     "salbench: error: --metrics cc,nss: metric 'nss' is not available under protocol 'coursework' (it is declared "
     "for mit, exact); available: cc, auc_borji, auc_shuffled"),
    (["--protocol", "exact", "--metrics", "auc_borji"],
     "metric 'auc_borji' is not available under protocol 'exact' (it is declared for mit, coursework)"),
])
def test_a_metric_the_protocol_cannot_supply_is_one_line_before_any_data(args, line, capsys, tmp_path, monkeypatch):
    from salbench.data import synthetic

    monkeypatch.setattr(synthetic.SyntheticDataset, "__init__", lambda *a, **k: pytest.fail("data was opened"))
    code = main(["eval", "--model", "uniform", *args, "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and line in err[0]


# -- what is computed and recorded ----------------------------------------------------------------------
@pytest.mark.parametrize("protocol, chosen", [
    ("mit", "emd,nss,auc_shuffled,cc"),  # any order on the command line: registry order in the entry
    ("mit", "auc_borji"),
    ("coursework", "auc_shuffled,cc"),
    ("salicon", "auc_salicon"),  # the sequential stream of draws, alone
    ("exact", "kld,auc_shuffled_exact"),
])
def test_a_subset_computes_exactly_the_full_runs_values(protocol, chosen, tmp_path):
    full, _ = _eval(tmp_path / "full", protocol)
    part, path = _eval(tmp_path / "part", protocol, chosen)
    names = chosen.split(",")
    in_order = [m for m in full["protocol"]["metrics"] if m in names]
    assert part["protocol"]["metrics"] == in_order == list(part["metrics"])
    assert full["protocol"]["metrics"] == list(full["metrics"])  # a full run records its set too
    for m in names:
        assert part["metrics"][m] == full["metrics"][m], m  # every per-image value, mean and CI
    assert load_result(path)["protocol"]["metrics"] == in_order


def test_results_schema_records_and_validates_the_metric_set(tmp_path):
    record = build_result(model={"name": "m", "checkpoint": None}, dataset={"name": "d", "split": "val"},
                          protocol="mit", params={"name": "mit"}, seed=0, names=["a", "b"],
                          scores={"cc": [0.1, 0.2], "nss": [1.0, np.nan]})
    assert record["protocol"]["metrics"] == ["cc", "nss"]
    with pytest.raises(ValueError, match=r"protocol metrics \['cc'\] differ from the scored metrics"):
        build_result(model={"name": "m"}, dataset={"name": "d", "split": "val"}, protocol="mit", params={},
                     seed=0, names=["a"], scores={"cc": [0.1], "nss": [1.0]}, metrics=["cc"])
    for bad, message in (([], "non-empty list"), ("cc", "non-empty list"), (["cc", 3], "non-empty list"),
                         (["cc", "cc"], "names 'cc' twice")):
        broken = {**record, "protocol": {**record["protocol"], "metrics": bad}}
        with pytest.raises(ResultsFileError, match=message):
            validate_result(broken)
    legacy = {**record, "protocol": {"name": "mit", "params": {"name": "mit"}}}
    validate_result(legacy)  # entries written before the field existed stay valid


# -- salbench check --------------------------------------------------------------------------------------
@pytest.fixture()
def board(tmp_path):
    root = tmp_path / "board"
    _eval(root, "mit", "cc,nss,auc_borji")
    return root


def test_check_recomputes_the_recorded_subset_and_finds_a_deleted_block(board, capsys):
    entry = board / ENTRY.format("mit")
    code, out, err = _check(board, capsys, "--strict")
    assert code == 0 and f"{ENTRY.format('mit')}: ok" in out, err
    _edit(entry, lambda d: d["metrics"].pop("nss"))
    code, _, err = _check(board, capsys)
    assert code == 1 and "DRIFT: nss: computed by protocol mit but missing from the results file" in err
    assert main(["check", str(board), "--update"]) == 0
    again = load_result(entry)
    assert again["protocol"]["metrics"] == ["cc", "nss", "auc_borji"] and set(again["metrics"]) == {"cc", "nss",
                                                                                                  "auc_borji"}
    capsys.readouterr()


def test_a_subset_entry_without_its_metric_set_reads_as_every_metric(board, capsys):
    """Why the field exists: without it, a subset is indistinguishable from deleted blocks."""
    _edit(board / ENTRY.format("mit"), lambda d: d["protocol"].pop("metrics"))
    code, _, err = _check(board, capsys)
    assert code == 1
    for m in ("auc_judd", "auc_shuffled", "kld", "sim", "info_gain", "emd"):
        assert f"DRIFT: {m}: computed by protocol mit but missing from the results file" in err


def test_entries_written_before_the_field_are_every_metric_of_their_protocol(tmp_path, capsys):
    for protocol in ("mit", "coursework"):
        _eval(tmp_path, protocol)
        path = tmp_path / ENTRY.format(protocol)
        _edit(path, lambda d: d["protocol"].pop("metrics"))
    code, out, err = _check(tmp_path, capsys, "--strict")
    assert code == 0 and out.count(": ok") == 2, err
    _edit(tmp_path / ENTRY.format("coursework"), lambda d: d["metrics"].pop("auc_borji"))
    code, _, err = _check(tmp_path, capsys)
    assert code == 1 and "DRIFT: auc_borji: computed by protocol coursework but missing" in err
    assert main(["check", str(tmp_path), "--update"]) == 0  # --update writes the set explicitly
    capsys.readouterr()
    assert load_result(tmp_path / ENTRY.format("coursework"))["protocol"]["metrics"] == ["cc", "auc_borji",
                                                                                          "auc_shuffled"]


@pytest.mark.parametrize("recorded, message", [
    (["cc", "fix_percentile"], "the entry computed metric 'fix_percentile', which is not in the metric registry here "
                               "(is its plugin installed?)"),
    (["cc", "auc_exact"], "protocol mit cannot be rebuilt from the recorded parameters and metrics: metric 'auc_exact' is not "
                          "available under protocol 'mit'"),
])
def test_a_recorded_metric_that_cannot_be_computed_here_is_an_error(board, capsys, recorded, message):
    _edit(board / ENTRY.format("mit"), lambda d: d["protocol"].__setitem__("metrics", recorded))
    code, _, err = _check(board, capsys)
    assert code == 1 and f"{ENTRY.format('mit')}: ERROR: {message}" in err


_PLUGIN_CHECK = r"""
import json, sys
from salbench.cli import main
from salbench.metrics import METRICS
assert "fix_percentile" in METRICS
sys.exit(main(["check", sys.argv[1], "--strict"]))
"""


@pytest.mark.slow
def test_installing_a_metric_plugin_does_not_make_committed_entries_drift(metric_plugin_path, tmp_path,  # noqa: F811
                                                                          capsys):
    """Entries computed without the plugin (with and without ``protocol.metrics``) stay ok once it is installed;
    an entry computed with it says, where it is not installed, that its plugin is missing."""
    root = tmp_path / "board"
    _eval(root, "mit")
    _eval(root, "exact")
    _edit(root / ENTRY.format("exact"), lambda d: d["protocol"].pop("metrics"))  # as every committed entry
    env = dict(os.environ, PYTHONPATH=str(metric_plugin_path))
    proc = subprocess.run([sys.executable, "-c", _PLUGIN_CHECK, str(root)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": ok") == 2 and "DRIFT" not in proc.stderr
    # computed with the plugin: the entry records it; without the plugin, check names what is missing
    with_plugin = tmp_path / "with-plugin"
    code = ("import sys; from salbench.cli import main; sys.exit(main(['eval', '--model', 'center_bias', '--option', "
            "'preset=small', '--option', 'n_images=10', '--protocol', 'exact', '--metrics', 'cc,fix_percentile', "
            f"'--results-dir', {str(with_plugin)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    entry = next(with_plugin.glob("*__exact.json"))
    assert json.loads(entry.read_text())["protocol"]["metrics"] == ["cc", "fix_percentile"]
    code_, _, err = _check(with_plugin, capsys)
    assert code_ == 1 and (f"{entry.name}: ERROR: the entry computed metric 'fix_percentile', which is not in the "
                           "metric registry here (is its plugin installed?)") in err


# -- tables and the site ----------------------------------------------------------------------------------
def test_tables_and_site_show_what_was_computed(tmp_path):
    from salbench.leaderboard.site import render_site
    from salbench.leaderboard.tables import leaderboard_table
    from salbench.results import load_results

    root = tmp_path / "board"
    _eval(root, "mit", model="given-all")
    _eval(root, "mit", "cc,nss", model="given-two")
    rows = [ln.split(",") for ln in leaderboard_table(load_results(root), dataset="synthetic", fmt="csv",
                                                      verify=False, alpha=None).strip().splitlines()]
    header, body = rows[0], {r[1]: r for r in rows[1:]}
    two = dict(zip(header, body["given-two"]))
    full = dict(zip(header, body["given-all"]))
    assert two["CC ↑"] == full["CC ↑"] != "-" and two["NSS ↑"] == full["NSS ↑"]
    for label in ("AUC-Judd ↑", "KLD ↓", "EMD ↓"):
        assert full[label] not in ("-", "", "0.000") and two[label] == "-"
    site = render_site(root, tmp_path / "site")
    page = next(v for k, v in site.items() if k.endswith(".html") and b"given-two" in v).decode()
    row = page[page.index("given-two"):]
    row = row[:row.index("</tr>")]
    assert row.count('<span class="v">-</span>') == 7  # the 7 metrics it did not compute, never 0
