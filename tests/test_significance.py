"""Significance marks of leaderboard tables: rows indistinguishable from the best, per metric."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from salbench.results import build_result, load_results
from salbench.leaderboard.significance import (
    BEST, DIFFERENT, INDISTINGUISHABLE, NOT_COMPARED, leaderboard_significance, mark_column, mark_table,
    table_significance,
)
from salbench.leaderboard.tables import Row, leaderboard_table, leaderboards
from salbench.stats import holm

REPO = Path(__file__).resolve().parents[1]
N = 20
X = np.linspace(0.3, 0.9, N)
NAMES = [f"img{i:02d}.png" for i in range(N)]


def _entry(model, cc, *, names=NAMES, params=None, kld=None, path=None):
    scores = {"cc": cc} if kld is None else {"cc": cc, "kld": kld}
    r = build_result(model={"name": model, "checkpoint": None},
                     dataset={"name": "toy", "split": "val", "n_files": len(names), "content_hash": "c" * 64,
                              "params": {}, "options": {}},
                     protocol="mit", params=params or {"splits": 100}, seed=0, names=names, scores=scores)
    r["_path"] = path or f"/x/toy__val__{model}__mit.json"
    return r


def _row(label, *entries):
    return Row(list(entries), label)


# Differences from the best row, chosen so that the answer is known:
NEAR = 0.001 * np.array([1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8, 9, -9, 10, -10]) + 1e-4
MODERATE = np.random.default_rng(23).normal(0.05, 0.1, N)  # raw Wilcoxon p 0.036: significant alone, not after Holm
FAR = np.full(N, 0.1) + 0.001 * np.arange(N)  # every difference positive: exact p = 2 / 2**20


@pytest.fixture()
def toy_rows():
    return [
        _row("best", _entry("best", X)),
        _row("near", _entry("near", X - NEAR)),
        _row("moderate", _entry("moderate", X - MODERATE)),
        _row("far (2 seeds)", _entry("far", X - FAR + 0.05, path="/x/s0.json"),
             _entry("far", X - FAR - 0.05, path="/x/s1.json")),
        _row("other images", _entry("other", X + 0.5, names=[f"z{i}.png" for i in range(N)])),
    ]


def test_a_row_scored_on_other_images_is_not_marked_and_says_why(toy_rows):
    column = mark_column(toy_rows, "cc", True, alpha=0.05)
    # "other images" has the best mean but pairs with no row: the others are marked among themselves
    assert [m.mark for m in column.rows] == [BEST, INDISTINGUISHABLE, INDISTINGUISHABLE, DIFFERENT, NOT_COMPARED]
    assert column.rows[4].reason == ("no other row was scored on its images under its settings "
                                     "(mit, image set 2 (20 images))")
    notes = mark_table(toy_rows, ["cc"], {"cc": True}).notes()
    assert "Not marked: other images: no other row was scored on its images under its settings " \
           "(mit, image set 2 (20 images))." in notes


def test_marks_with_holm_over_the_comparisons_with_the_best(toy_rows):
    rows = toy_rows[:4]
    column = mark_column(rows, "cc", True, alpha=0.05)
    assert [m.mark for m in column.rows] == [BEST, INDISTINGUISHABLE, INDISTINGUISHABLE, DIFFERENT]
    raw = [stats.wilcoxon(d).pvalue for d in (NEAR, MODERATE, FAR)]  # best - row, per image
    assert raw[1] < 0.05 < 2 * raw[1]  # the construction: only Holm makes "moderate" indistinguishable
    assert raw[2] == pytest.approx(2 / 2**20) and raw[0] > 0.5
    assert [m.p_value for m in column.rows[1:]] == pytest.approx(raw)
    assert [m.p_adjusted for m in column.rows[1:]] == pytest.approx(list(holm(raw)))
    # the 2-seed row is tested on its per-image mean over seeds: X - FAR
    assert column.rows[3].mean_difference == pytest.approx(-FAR.mean())
    assert column.groups == [{"label": "all rows", "best": 0, "members": [0, 1, 2, 3]}]
    # without a correction "moderate" would differ: a larger alpha shows the same p-values decide it
    loose = mark_column(rows, "cc", True, alpha=0.08)
    assert [m.mark for m in loose.rows] == [BEST, INDISTINGUISHABLE, DIFFERENT, DIFFERENT]


def test_lower_is_better_metrics_pick_the_lowest_mean():
    rows = [_row("a", _entry("a", X, kld=X + 0.2)), _row("b", _entry("b", X, kld=X)),
            _row("c", _entry("c", X, kld=X + NEAR))]
    column = mark_column(rows, "kld", False)
    assert [m.mark for m in column.rows] == [DIFFERENT, BEST, INDISTINGUISHABLE]


def test_rows_under_other_protocol_parameters_form_their_own_group():
    rows = [_row("a", _entry("a", X)), _row("b", _entry("b", X - FAR)),
            _row("a*", _entry("a", X + 0.3, params={"splits": 50})),
            _row("b*", _entry("b", X + 0.3 - NEAR, params={"splits": 50})),
            _row("alone", _entry("c", X, params={"splits": 7}))]
    column = mark_column(rows, "cc", True)
    assert [m.mark for m in column.rows] == [BEST, DIFFERENT, BEST, INDISTINGUISHABLE, NOT_COMPARED]
    assert [g["members"] for g in column.groups] == [[0, 1], [2, 3], [4]]
    assert [g["label"] for g in column.groups] == ["mit", "mit (splits=50)", "mit (splits=7)"]  # 100 is mit's default
    notes = mark_table(rows, ["cc"], {"cc": True}).notes()
    assert any("each group with its own best: mit (rows 1, 2); mit (splits=50) (rows 3, 4); mit (splits=7) (row 5)" in n
               for n in notes)


def test_seed_entries_that_are_not_paired_leave_the_row_unmarked():
    bad = _row("bad seeds", _entry("m", X - 0.01, path="/x/a.json"),
               _entry("m", X - 0.01, names=NAMES[::-1][:-1] + ["new.png"], path="/x/b.json"))
    column = mark_column([_row("best", _entry("best", X)), bad, _row("c", _entry("c", X - FAR))], "cc", True)
    assert [m.mark for m in column.rows] == [BEST, NOT_COMPARED, DIFFERENT]
    assert column.rows[1].reason.startswith("its seed entries are not paired (image names: 19 shared")


def test_identical_rows_are_indistinguishable_with_p_one():
    rows = [_row("a", _entry("a", X)), _row("a again", _entry("a2", X))]
    column = mark_column(rows, "cc", True)
    assert [m.mark for m in column.rows] == [BEST, INDISTINGUISHABLE]
    assert column.rows[1].p_value == 1.0 and column.rows[1].mean_difference == 0.0


def test_alpha_must_be_a_level():
    with pytest.raises(ValueError, match="alpha"):
        mark_column([], "cc", True, alpha=0)


# -- committed leaderboards ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def committed():
    return load_results(REPO / "leaderboards")


def _per_image(path, metric):
    rec = json.loads(Path(path).read_text())
    return np.array([np.nan if x is None else x for x in rec["metrics"][metric]["per_image"]])


def test_committed_osie_mit_marks_match_scipy_and_holm(committed):
    data = table_significance(committed, dataset="nus", split="val", protocol="mit")
    json.dumps(data, allow_nan=False)  # plain, strict JSON for the site
    labels = [r["label"] for r in data["rows"]]
    cc = data["metrics"]["cc"]
    assert cc["higher_is_better"] is True and len(cc["groups"]) == 2
    group = next(g for g in cc["groups"] if g["label"] == "mit")  # the rows under mit's defaults
    assert len(group["members"]) == 8  # 5 models, 3 of them also with metric-specific maps
    best = group["best"]
    assert labels[best] == "shallow_kl [target=distribution, preset=distribution, metric-specific maps]"
    assert data["rows"][best]["n_seeds"] == 3
    osie = REPO / "leaderboards" / "osie"
    best_values = np.mean([_per_image(osie / f, "cc") for f in data["rows"][best]["entries"]], axis=0)
    others = [i for i in group["members"] if i != best]
    raw = []
    for i in others:
        values = np.mean([_per_image(osie / f, "cc") for f in data["rows"][i]["entries"]], axis=0)
        raw.append(stats.wilcoxon(values - best_values).pvalue)
        assert cc["rows"][i]["p_value"] == pytest.approx(raw[-1], rel=1e-12)
    assert [cc["rows"][i]["p_adjusted"] for i in others] == pytest.approx(list(holm(raw)), rel=1e-12)
    assert [cc["rows"][i]["mark"] for i in others] == [DIFFERENT] * 7
    assert cc["rows"][best]["mark"] == BEST


def test_every_committed_table_gets_marks_and_a_footer(committed):
    everything = leaderboard_significance(committed)
    assert {(t["dataset"], t["protocol"]) for t in everything} >= {("nus", "mit"), ("synthetic", "coursework")}
    text = " ".join(leaderboards(committed, dataset="nus", protocol="mit").split())  # notes wrap at 120 columns
    assert "★" in text and "Holm-corrected" in text and "alpha = 0.05" in text
    assert "Rows of several training seeds are tested on their per-image values averaged over the seeds." in text
    # the two ground truths form two groups, each with its own best (other changed parameters may be named too)
    assert re.search(r"mit \([^()]*ground_truth=dataset\) \(rows 2, 7\)", text), text[-400:]
    latex = leaderboard_table(committed, dataset="nus", protocol="mit", fmt="latex")
    assert "$\\star$" in latex and "★" not in latex and "\n% $\\star$ best row" in latex
    for plain in (leaderboard_table(committed, dataset="nus", protocol="mit", fmt="csv"),
                  leaderboard_table(committed, dataset="nus", protocol="mit", alpha=None)):
        assert "★" not in plain and "Holm" not in plain


def test_synthetic_mit_has_a_row_indistinguishable_from_the_best(committed):
    raw = [r for r in committed if r.get("maps", "raw") == "raw"]  # gold's metric-specific row is best by far
    data = table_significance(raw, dataset="synthetic", protocol="mit")
    marks = {data["rows"][i]["label"]: r["mark"] for i, r in enumerate(data["metrics"]["auc_shuffled"]["rows"])}
    assert marks["gold"] == BEST and marks["shallow_kl [target=softmax, preset=full]"] == INDISTINGUISHABLE


def test_the_leaderboard_command_takes_alpha_and_no_marks(capsys):
    from salbench.cli import main

    assert main(["leaderboard", "--results", str(REPO / "leaderboards"), "--dataset", "synthetic",
                 "--protocol", "mit", "--alpha", "0.01"]) == 0
    assert "alpha = 0.01" in capsys.readouterr().out
    assert main(["leaderboard", "--results", str(REPO / "leaderboards"), "--dataset", "synthetic",
                 "--protocol", "mit", "--no-marks"]) == 0
    assert "★" not in capsys.readouterr().out
