"""Results schema and leaderboard rendering from fixture results files."""

import json

import numpy as np
import pytest

from salbench.leaderboard.tables import (
    leaderboard_table, leaderboards, protocol_comparison_table, published_rows_from_cards, report_table,
)
from salbench.results import (
    build_result, load_result, load_results, result_filename, results_to_dataframe, write_result,
)

PUBLISHED = {
    "shallow_mse": [
        {"label": "Pan et al. [2016]", "scores": {"cc": 0.58, "auc_shuffled": 0.67, "auc_borji": 0.83}, "tables": [2, 3]},
        {"label": "Benchmark replicated results", "scores": {"cc": 0.65, "auc_shuffled": 0.55, "auc_borji": 0.71}, "tables": [2, 3]},
    ],
    "shallow_kl": [
        {"label": "Pan et al. [2016]", "scores": {"cc": 0.58, "auc_shuffled": 0.67, "auc_borji": 0.83}, "tables": [2, 3]},
        {"label": "Our improved replication", "scores": {"cc": 0.76, "auc_shuffled": 0.60, "auc_borji": 0.74}, "tables": [3]},
    ],
}


def _result(model, protocol, scores, dataset="synthetic", sha="ab" * 32):
    names = [f"img{i}.jpg" for i in range(len(next(iter(scores.values()))))]
    return build_result(
        model={"name": model, "checkpoint": {"path": "x", "sha256": sha} if sha else None},
        dataset={"name": dataset, "split": "val", "n_files": len(names), "content_hash": "c0ffee"},
        protocol=protocol, params={"splits": 100}, seed=0, names=names, scores=scores,
        predictions={"file": "p.npz", "sha256": "d" * 64, "shape": [len(names), 48, 48]},
    )


@pytest.fixture()
def results_dir(tmp_path):
    fixtures = [
        _result("shallow_mse", "coursework", {"cc": [0.6, 0.7], "auc_shuffled": [0.5, 0.6], "auc_borji": [0.7, 0.74]}),
        _result("shallow_kl", "coursework", {"cc": [0.8, 0.7], "auc_shuffled": [0.6, 0.6], "auc_borji": [0.75, 0.73]}),
        _result("uniform", "mit", {"cc": [0.0, 0.0], "kld": [2.0, 2.2]}, sha=None),
        _result("gold", "mit", {"cc": [0.9, 0.95], "kld": [0.1, 0.2]}, sha=None),
        _result("center_bias", "mit", {"cc": [0.4, 0.5], "kld": [1.0, float("nan")]}, sha=None),
        _result("shallow_kl", "mit", {"cc": [0.5, 0.5], "auc_borji": [0.8, 0.8], "auc_shuffled": [0.6, 0.62]}),
    ]
    for r in fixtures:
        write_result(tmp_path / result_filename(r["model"]["name"], "synthetic", "val", r["protocol"]["name"]), r)
    return tmp_path


def test_results_file_schema(results_dir):
    r = load_result(results_dir / "synthetic__val__center_bias__mit.json")
    assert r["schema"] == "salbench.result/2"
    assert r["n_images"] == 2 and r["image_names"] == ["img0.jpg", "img1.jpg"]
    assert r["metrics"]["kld"]["per_image"] == [1.0, None]  # NaN kept out of strict JSON
    assert r["metrics"]["kld"]["mean"] == 1.0
    assert r["metrics"]["kld"]["higher_is_better"] is False
    assert r["metrics"]["cc"]["ci95"][0] <= r["metrics"]["cc"]["mean"] <= r["metrics"]["cc"]["ci95"][1]
    json.loads((results_dir / "synthetic__val__center_bias__mit.json").read_text())  # strict JSON


def test_invalid_results_file_is_rejected(tmp_path):
    (tmp_path / "bad.json").write_text('{"schema": "salbench.result/2", "model": {}}')
    with pytest.raises(ValueError, match="missing"):
        load_result(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text('{"schema": "salbench.result/1", "model": {}}')
    with pytest.raises(ValueError, match=r"schema salbench.result/1 is not read any more; `salbench check --update"):
        load_result(tmp_path / "old.json")
    r = _result("uniform", "mit", {"cc": [0.1, 0.2]})
    r["metrics"]["cc"]["per_image"].append(0.3)
    with pytest.raises(ValueError, match="3 per-image values for 2 images"):
        write_result(tmp_path / "x.json", r)
    assert not (tmp_path / "x.json").exists()


def _csv(text):
    import csv
    import io

    return list(csv.reader(io.StringIO(text)))


def test_table_2_has_published_then_measured_rows(results_dir):
    rows = _csv(report_table(2, load_results(results_dir), PUBLISHED, fmt="csv"))
    assert rows[0] == ["Row", "Source", "Dataset", "Protocol", "Checkpoint", "CC", "AUC Shuffled", "AUC Borji"]
    assert rows[1][0] == "Pan et al. [2016]" and rows[1][1] == "published" and rows[1][5:] == ["0.58", "0.67", "0.83"]
    assert rows[2][0] == "Benchmark replicated results"
    measured = [r for r in rows if r[0] == "salbench shallow_mse"]
    assert len(measured) == 1
    m = measured[0]
    assert m[1] == "measured: synthetic__val__shallow_mse__coursework.json"
    assert m[2:5] == ["synthetic/val", "coursework", "ckpt abababab"]
    assert m[5:] == ["0.65", "0.55", "0.72"]  # means of (0.6, 0.7), (0.5, 0.6), (0.7, 0.74)
    text = "".join(",".join(r) for r in rows)
    assert "shallow_kl" not in text and "Our improved" not in text


def test_table_3_adds_the_kl_rows_and_filters(results_dir):
    text = report_table(3, load_results(results_dir), PUBLISHED, protocol="coursework")
    assert text.count("Pan et al. [2016]") == 1  # shared row not repeated
    assert "Our improved replication" in text
    rows = _csv(report_table(3, load_results(results_dir), PUBLISHED, protocol="coursework", fmt="csv"))[1:]
    assert [r[0] for r in rows if r[1] != "published"] == ["salbench shallow_mse", "salbench shallow_kl"]
    assert {r[3] for r in rows if r[1] != "published"} == {"coursework"}
    with_mit = _csv(report_table(3, load_results(results_dir), PUBLISHED, fmt="csv"))
    assert ["salbench shallow_kl", "measured: synthetic__val__shallow_kl__mit.json", "synthetic/val", "mit",
            "ckpt abababab", "0.50", "0.61", "0.80"] in with_mit
    with pytest.raises(ValueError, match="2 or 3"):
        report_table(4, [], PUBLISHED)


@pytest.mark.parametrize("fmt, marker", [("latex", "\\toprule"), ("csv", "Row,Source,Dataset"), ("github", "|--")])
def test_table_formats(results_dir, fmt, marker):
    assert marker in report_table(2, load_results(results_dir), PUBLISHED, fmt=fmt)


def test_published_rows_from_the_model_cards():
    """The cards reproduce the report's Tables II and III (values typed from the report)."""
    from salbench.models.cards import builtin_cards

    published = published_rows_from_cards(builtin_cards())
    report = {  # docs/REPORT.md, Tables II and III: CC, AUC Shuffled, AUC Borji
        "Pan et al. 2016": ("0.58", "0.67", "0.83"),
        "Benchmark replicated results": ("0.65", "0.55", "0.71"),
        "Our replication": ("0.67", "0.56", "0.72"),
        "Our improved replication": ("0.76", "0.60", "0.74"),
    }
    t2 = _csv(report_table(2, [], published, fmt="csv"))[1:]
    t3 = _csv(report_table(3, [], published, fmt="csv"))[1:]
    assert [r[0] for r in t2] == list(report)[:3]
    assert [r[0] for r in t3] == list(report)
    for row in t3:
        assert tuple(row[5:]) == report[row[0]] and row[1] == "published" and row[2] == "SALICON val"
    assert t3[0][3] == "the paper's own evaluation" and t3[1][3] == "coursework"


def test_leaderboard_sorts_best_first_with_arrows(results_dir):
    results = load_results(results_dir)
    text = leaderboard_table(results, dataset="synthetic", protocol="mit", sort_by="cc", fmt="csv")
    rows = _csv(text)
    assert rows[0][:5] == ["#", "Model", "Protocol", "Checkpoint", "N"]
    assert rows[0][5:] == ["CC ↑", "AUC-Borji ↑", "sAUC ↑", "KLD ↓", "Verified"]
    assert [r[1] for r in rows[1:]] == ["gold", "shallow_kl", "center_bias", "uniform"]
    by_kld = _csv(leaderboard_table(results, dataset="synthetic", protocol="mit", sort_by="kld", fmt="csv"))
    # lower is better; shallow_kl has no KLD (undefined goes last)
    assert [r[1] for r in by_kld[1:]] == ["gold", "center_bias", "uniform", "shallow_kl"]
    assert by_kld[2][8] == "1.000"  # center_bias: the NaN image is left out of the mean
    assert "KLD $\\downarrow$" in leaderboard_table(results, dataset="synthetic", protocol="mit", fmt="latex")
    with pytest.raises(ValueError, match="no results"):
        leaderboard_table(results, dataset="osie")
    with pytest.raises(ValueError, match="cannot sort by 'nss'"):
        leaderboard_table(results, dataset="synthetic", sort_by="nss")


def test_leaderboards_every_group(results_dir):
    results = load_results(results_dir)
    text = leaderboards(results)
    assert text.index("## synthetic/val, protocol coursework") < text.index("## synthetic/val, protocol mit")
    rows = _csv(leaderboards(results, fmt="csv"))
    assert rows[0][:7] == ["dataset", "split", "protocol", "rank", "model", "checkpoint", "n_images"]
    assert [(r[2], r[3], r[4]) for r in rows[1:3]] == [("coursework", "1", "shallow_kl"), ("coursework", "2", "shallow_mse")]
    assert len(rows) == 1 + 6
    with pytest.raises(ValueError, match="no results"):
        leaderboards(results, protocol="salicon")


@pytest.mark.parametrize("fmt", ["github", "latex", "csv", "plain"])
def test_cli_leaderboard_end_to_end(results_dir, fmt, capsys):
    from salbench.cli import main

    assert main(["leaderboard", "--results", str(results_dir), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "gold" in out and "center" in out and ("↑" in out or "uparrow" in out)
    for table, expected in ((2, "Benchmark replicated results"), (3, "Our improved replication")):
        assert main(["leaderboard", "--results", str(results_dir), "--table", str(table), "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert expected in out and "SALICON val" in out
        assert "salbench shallow\\_mse" in out if fmt == "latex" else "salbench shallow_mse" in out
        assert "ckpt abababab" in out and "synthetic/val" in out
    assert main(["leaderboard", "--results", str(results_dir), "--dataset", "nus"]) == 2
    assert "no results for dataset=nus" in capsys.readouterr().err


def test_protocol_comparison(results_dir):
    text = protocol_comparison_table(load_results(results_dir), model="shallow_kl", dataset="synthetic", fmt="csv")
    rows = _csv(text)
    assert rows[0] == ["Protocol", "Parameters", "Model", "Split", "CC ↑", "AUC-Borji ↑", "sAUC ↑"]
    assert rows[1] == ["coursework", "-", "shallow_kl", "val", "0.750", "0.740", "0.600"]
    assert rows[2] == ["mit", "-", "shallow_kl", "val", "0.500", "0.800", "0.610"]


def test_dataframe(results_dir):
    df = results_to_dataframe(load_results(results_dir))
    assert set(df["model"]) == {"shallow_mse", "shallow_kl", "uniform", "gold", "center_bias"}
    assert np.isclose(df[(df.model == "gold") & (df.metric == "cc")]["mean"].item(), 0.925)


def test_entries_differing_only_in_training_seed_form_one_row_with_spread(tmp_path):
    from salbench.leaderboard.tables import group_rows

    entries = []
    for seed, cc in ((0, [0.30, 0.32]), (1, [0.34, 0.36]), (2, [0.26, 0.28])):
        r = _result("shallow_kl", "mit", {"cc": cc, "kld": [1.0, 1.2]})
        r["model"]["training"] = {"seed": seed, "target": "distribution"}
        entries.append(r)
    other = _result("shallow_kl", "mit", {"cc": [0.1, 0.1], "kld": [2.0, 2.0]})
    other["model"]["training"] = {"seed": 0, "target": "softmax"}
    for i, r in enumerate(entries + [other]):
        write_result(tmp_path / f"synthetic__val__shallow_kl-{i}__mit.json", r)
    results = load_results(tmp_path)
    rows = group_rows(results)
    assert sorted((r.label, r.n_seeds) for r in rows) == [("shallow_kl [target=distribution]", 3),
                                                          ("shallow_kl [target=softmax]", 1)]
    dist = next(r for r in rows if r.n_seeds == 3)
    means = [0.31, 0.35, 0.27]  # per-seed means of the per-image values above
    assert dist.mean("cc") == pytest.approx(np.mean(means))
    assert dist.spread("cc") == pytest.approx(np.std(means, ddof=1))
    table = _csv(leaderboard_table(results, dataset="synthetic", protocol="mit", fmt="csv", verify=False))
    assert [r[1] for r in table[1:]] == ["shallow_kl [target=distribution]", "shallow_kl [target=softmax]"]
    assert table[1][3] == "3 seeds" and table[1][5] == f"{np.mean(means):.3f} ± {np.std(means, ddof=1):.3f}"


def test_leaderboard_marks_entries_it_cannot_verify(results_dir):
    results = load_results(results_dir)  # the fixtures name predictions files that do not exist
    rows = _csv(leaderboard_table(results, dataset="synthetic", protocol="mit", fmt="csv"))
    assert rows[0][-1] == "Verified"
    assert all(r[-1].startswith("not verified (") for r in rows[1:])
