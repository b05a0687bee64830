"""What a check found reaches the tables and the site, and nothing else does (issue 19).

``salbench check --record`` writes ``verification.json`` (entry path, its SHA-256, salbench
version -> word); the tables' ``Verified`` column and the site show that word, only for the
entry's exact bytes. ``check --strict`` fails on a record that claims more than it finds and on
a stale ``site/``. An entry on the built-in dataset is recomputed whatever ``data_dir`` says.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil

import numpy as np
import pytest

from salbench.check import entry_verification
from salbench.evaluate import EvaluationRequest, evaluate
from salbench.leaderboard.site import build_site, render_site
from salbench.leaderboard.tables import leaderboard_table
from salbench.results import load_result, load_results
from salbench.results.schema import metrics_block
from tests.test_check import ENTRY, make_entry
from tests.check_helpers import run_check as _check

OPTIONS = {"preset": "small", "n_images": 6}
UNIFORM = "synthetic__val__uniform__coursework.json"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    make_entry(root)  # a user's maps: "predictions, no model"
    evaluate(EvaluationRequest(model="uniform", dataset="synthetic", dataset_options={"preset": "small",
                                                                                     "n_images": 4},
                               protocol="coursework", results_dir=root, workers=0), progress=False, log=lambda m: None)
    return root


@pytest.fixture()
def board(template, tmp_path):
    root = tmp_path / "lb"
    shutil.copytree(template, root)
    return root


def _verified_column(root):
    table = leaderboard_table(load_results(root), dataset="synthetic", protocol="coursework", fmt="csv")
    rows = list(csv.reader(io.StringIO(table)))
    col = rows[0].index("Verified")
    return {r[1]: r[col] for r in rows[1:]}


def _site_words(root, tmp_path):
    page = next(v for k, v in render_site(root, tmp_path / "site").items() if k.startswith("board-synthetic")).decode()
    return re.findall(r'<td class="verification[^"]*"[^>]*>([^<]*)</td>', page)


def test_nothing_is_shown_as_recomputed_before_a_check_recorded_it(board, capsys, tmp_path):
    assert set(_verified_column(board).values()) == {"audited only"}
    assert set(_site_words(board, tmp_path)) == {"audited only"}
    code, out, _ = _check(board, capsys, "--record")
    assert code == 0 and f"wrote {board / 'verification.json'} (2 entries)" in out
    record = json.loads((board / "verification.json").read_text())
    assert record["schema"] == "salbench.verification/1" and sorted(record["entries"]) == sorted([ENTRY, UNIFORM])
    line = record["entries"][UNIFORM]
    assert line["word"] == "model re-run" and line["sha256"] == load_result(board / UNIFORM)["_sha256"]
    assert record["entries"][ENTRY]["word"] == "recomputed"
    assert _verified_column(board) == {"uniform": "model re-run", "maps-mine": "recomputed"}
    assert sorted(_site_words(board, tmp_path)) == ["model re-run", "recomputed"]
    assert "predictions, no model" in entry_verification(load_result(board / ENTRY)).detail
    first = (board / "verification.json").read_bytes()
    assert _check(board, capsys, "--record")[0] == 0 and (board / "verification.json").read_bytes() == first


def test_a_changed_entry_loses_its_line(board, capsys):
    assert _check(board, capsys, "--record")[0] == 0
    path = board / UNIFORM
    path.write_text(json.dumps(json.loads(path.read_text()), indent=1))  # same record, other bytes
    found = entry_verification(load_result(path))
    assert found.word == "audited only" and "has no current line for it" in found.detail
    assert _verified_column(board)["uniform"] == "audited only"
    code, out, err = _check(board, capsys)
    assert code == 0 and f"note: verification.json has a line for an older version of it: {UNIFORM}" in out
    code, _, err = _check(board, capsys, "--strict")
    assert code == 1 and f"verification.json has a line for an older version of it: {UNIFORM}" in err


def test_a_record_that_claims_more_than_the_check_finds_fails_strict(board, capsys):
    assert _check(board, capsys, "--record")[0] == 0
    rec_path = board / "verification.json"
    record = json.loads(rec_path.read_text())
    record["entries"][ENTRY]["word"] = "model re-run"  # a user's maps cannot have been re-run
    record["entries"]["gone.json"] = dict(record["entries"][ENTRY])
    rec_path.write_text(json.dumps(record))
    code, _, err = _check(board, capsys, "--strict")
    assert code == 1
    assert f"verification.json says 'model re-run' for {ENTRY}, this check found 'recomputed'" in err
    assert "verification.json has a line for gone.json, which is not a results file here" in err


def test_an_entry_that_drifts_is_recorded_as_not_verified(board, capsys):
    path = board / UNIFORM
    data = json.loads(path.read_text())
    data["metrics"]["cc"]["per_image"][0] = 0.5
    data["metrics"] = {**data["metrics"], "cc": metrics_block({"cc": [np.nan if v is None else v for v in
                                                                      data["metrics"]["cc"]["per_image"]]})["cc"]}
    path.write_text(json.dumps(data))
    assert _check(board, capsys, "--record")[0] == 1
    assert _verified_column(board)["uniform"].startswith("not verified (cc (mean) was ")


def test_an_inflated_entry_on_the_built_in_dataset_cannot_hide_behind_a_bogus_data_dir(board, capsys):
    """Before: "skipped" (exit 0) and the leaderboard said "Verified ok". The built-in set needs no directory."""
    path = board / UNIFORM
    data = json.loads(path.read_text())
    inflated = {m: [None if v is None else v + 0.05 for v in b["per_image"]] for m, b in data["metrics"].items()}
    data["metrics"] = metrics_block({m: [np.nan if v is None else v for v in vals] for m, vals in inflated.items()})
    data["dataset"]["data_dir"] = "/nonexistent/synthetic"
    path.write_text(json.dumps(data))
    code, out, err = _check(board, capsys)
    assert code == 1 and f"{UNIFORM}: skipped" not in out and " 0 skipped" in out
    assert (f"{UNIFORM}: DRIFT: dataset.data_dir: recorded '/nonexistent/synthetic', but dataset synthetic reads "
            "no directory (recomputed without it; --update sets it to null)") in err
    assert f"{UNIFORM}: DRIFT: cc (mean) was" in err
    assert _check(board, capsys, "--record")[0] == 1
    assert _verified_column(board)["uniform"].startswith("not verified")


def test_update_sets_a_bogus_data_dir_to_null(board, capsys):
    path = board / UNIFORM
    _data = json.loads(path.read_text())
    _data["dataset"]["data_dir"] = "elsewhere"
    path.write_text(json.dumps(_data))
    assert _check(board, capsys, "--update")[0] == 0
    assert load_result(path)["dataset"]["data_dir"] is None
    assert _check(board, capsys, "--strict")[0] == 0


def test_strict_notices_a_stale_site(board, capsys, tmp_path):
    assert _check(board, capsys, "--record")[0] == 0
    build_site(board, board / "site")
    code, out, err = _check(board, capsys, "--strict")
    assert code == 0, err
    shutil.copyfile(board / UNIFORM, board / "synthetic__val__uniform-copy__coursework.json")
    assert _check(board, capsys, "--record")[0] == 0  # the record is current again; the site is not
    code, out, err = _check(board, capsys, "--strict")
    assert code == 1
    assert re.search(r"site: .*board-synthetic-val-coursework\.html: out of date with the results files \(--strict\)",
                     err)
    assert "rebuild it with" in err
    build_site(board, board / "site")
    assert _check(board, capsys, "--strict")[0] == 0
