"""Results schema and leaderboard rendering from fixture results files."""

import json

import numpy as np
import pytest

from salbench.leaderboard.results import (
    build_result, load_result, load_results, result_filename, results_to_dataframe, write_result,
)
from salbench.leaderboard.tables import leaderboard_table, protocol_comparison_table, report_table

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
    assert r["schema"] == "salbench.result/1"
    assert r["n_images"] == 2 and r["image_names"] == ["img0.jpg", "img1.jpg"]
    assert r["metrics"]["kld"]["per_image"] == [1.0, None]  # NaN kept out of strict JSON
    assert r["metrics"]["kld"]["mean"] == 1.0
    assert r["metrics"]["kld"]["higher_is_better"] is False
    assert r["metrics"]["cc"]["ci95"][0] <= r["metrics"]["cc"]["mean"] <= r["metrics"]["cc"]["ci95"][1]
    json.loads((results_dir / "synthetic__val__center_bias__mit.json").read_text())  # strict JSON


def test_invalid_results_file_is_rejected(tmp_path):
    (tmp_path / "bad.json").write_text('{"schema": "salbench.result/1", "model": {}}')
    with pytest.raises(ValueError, match="missing"):
        load_result(tmp_path / "bad.json")
    r = _result("uniform", "mit", {"cc": [0.1, 0.2]})
    r["metrics"]["cc"]["per_image"].append(0.3)
    with pytest.raises(ValueError, match="3 per-image values for 2 images"):
        write_result(tmp_path / "x.json", r)
    assert not (tmp_path / "x.json").exists()


def test_table_2_has_published_then_measured_rows(results_dir):
    text = report_table(2, load_results(results_dir), PUBLISHED)
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert "Pan et al. [2016]" in lines[2] and "0.58" in lines[2] and "0.83" in lines[2]
    assert "Benchmark replicated results" in lines[3]
    measured = [line for line in lines if "salbench shallow_mse" in line]
    assert len(measured) == 1
    assert "synthetic/val, coursework, ckpt abababab" in measured[0]
    assert "| 0.65 |" in measured[0].replace("  ", " ")  # mean CC of 0.6 and 0.7
    assert "shallow_kl" not in text and "Our improved" not in text


def test_table_3_adds_the_kl_rows_and_filters(results_dir):
    text = report_table(3, load_results(results_dir), PUBLISHED, protocol="coursework")
    assert text.count("Pan et al. [2016]") == 1  # shared row not repeated
    assert "Our improved replication" in text
    assert "salbench shallow_kl (synthetic/val, coursework" in text
    assert ", mit," not in text


@pytest.mark.parametrize("fmt, marker", [("latex", "\\toprule"), ("csv", "Model,Source,CC"), ("github", "|--")])
def test_table_formats(results_dir, fmt, marker):
    assert marker in report_table(2, load_results(results_dir), PUBLISHED, fmt=fmt)


def test_leaderboard_sorts_best_first_with_arrows(results_dir):
    results = load_results(results_dir)
    text = leaderboard_table(results, dataset="synthetic", protocol="mit", sort_by="cc", fmt="csv")
    rows = [line.split(",") for line in text.strip().splitlines()]
    assert rows[0][5:] == ["CC ↑", "KLD ↓", "AUC-Borji", "sAUC"] or rows[0][5].startswith("CC")
    assert [r[1] for r in rows[1:]] == ["gold", "shallow_kl", "center_bias", "uniform"]
    by_kld = leaderboard_table(results, dataset="synthetic", protocol="mit", sort_by="kld", fmt="csv")
    assert [line.split(",")[1] for line in by_kld.strip().splitlines()[1:4]] == ["gold", "center_bias", "uniform"]
    with pytest.raises(ValueError, match="no results"):
        leaderboard_table(results, dataset="osie")


def test_protocol_comparison(results_dir):
    text = protocol_comparison_table(load_results(results_dir), model="shallow_kl", dataset="synthetic", fmt="csv")
    lines = text.strip().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["coursework", "mit"]


def test_dataframe(results_dir):
    df = results_to_dataframe(load_results(results_dir))
    assert set(df["model"]) == {"shallow_mse", "shallow_kl", "uniform", "gold", "center_bias"}
    assert np.isclose(df[(df.model == "gold") & (df.metric == "cc")]["mean"].item(), 0.925)
