"""``salbench compare``: paired differences between two leaderboard rows.

The committed OSIE entries are the reference data: their per-image values are read
with ``json`` and handed to scipy directly, and ``compare`` must give the same numbers.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from salbench.cli import main
from salbench.data import get_dataset
from salbench.leaderboard.compare import (
    COMPARE_SCHEMA, NotComparable, compare_rows, first_difference, format_report, load_entry,
)
from salbench.results import ResultWriter, build_result, quantise_map, result_stem
from salbench.protocols import get_protocol

REPO = Path(__file__).resolve().parents[1]
OSIE = REPO / "leaderboards" / "osie"
DIST = [OSIE / f"nus__val__shallow_kl-distribution-s{s}__mit.json" for s in range(3)]
SOFT = [OSIE / f"nus__val__shallow_kl-softmax-s{s}__mit.json" for s in range(3)]
CB = OSIE / "nus__val__center_bias__mit.json"


def _raw(path):
    """Per-image values straight from the JSON text (None -> NaN), by metric."""
    rec = json.loads(Path(path).read_text())
    return rec["image_names"], {m: np.array([np.nan if x is None else x for x in b["per_image"]], dtype=float)
                                for m, b in rec["metrics"].items()}


def _scipy_reference(a, b, seed=0, n_resamples=9999):
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    d = a - b
    ci = stats.bootstrap((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True, vectorized=True,
                         method="BCa", n_resamples=n_resamples, rng=np.random.default_rng(seed)).confidence_interval
    return d.mean(), (ci.low, ci.high), stats.wilcoxon(d).pvalue, int(keep.sum())


# -- against scipy on the committed entries ------------------------------------------------------
def test_single_entries_match_scipy_on_the_committed_values():
    report = compare_rows([load_entry(DIST[0])], [load_entry(CB)])
    names_a, a = _raw(DIST[0])
    names_b, b = _raw(CB)
    assert names_a == names_b
    assert list(report["metrics"]) == ["cc", "nss", "auc_judd", "auc_borji", "auc_shuffled", "kld", "sim",
                                       "info_gain", "emd"]  # registry order
    for metric, r in report["metrics"].items():
        diff, ci, p, n = _scipy_reference(a[metric], b[metric])
        assert r["mean_difference"] == pytest.approx(diff, rel=1e-12, abs=1e-15)
        assert r["ci95"] == pytest.approx(list(ci), rel=1e-12)
        assert r["p_value"] == pytest.approx(p, rel=1e-12)
        assert r["n"] == n == 200 and r["n_excluded"] == 0
        assert r["mean_a"] == pytest.approx(np.mean(a[metric])) and r["mean_b"] == pytest.approx(np.mean(b[metric]))
    assert report["metrics"]["kld"]["higher_is_better"] is False
    assert report["metrics"]["kld"]["better"] == "A"  # lower KLD for shallow_kl: A is better although A - B < 0
    assert report["metrics"]["cc"]["better"] == "A" and report["metrics"]["cc"]["mean_difference"] > 0


def test_seed_averaged_rows_average_per_image_values_before_the_difference():
    report = compare_rows([load_entry(p) for p in DIST], [load_entry(p) for p in SOFT], metrics=["cc", "kld"])
    assert report["seed_averaging"] and report["a"]["training_seeds"] == [0, 1, 2]
    for metric in ("cc", "kld"):
        a = np.mean([_raw(p)[1][metric] for p in DIST], axis=0)
        b = np.mean([_raw(p)[1][metric] for p in SOFT], axis=0)
        diff, ci, p, n = _scipy_reference(a, b)
        r = report["metrics"][metric]
        assert (r["mean_difference"], r["p_value"], r["n"]) == (pytest.approx(diff), pytest.approx(p), n)
        assert r["ci95"] == pytest.approx(list(ci))


def test_the_bootstrap_is_deterministic_for_a_seed_and_records_it():
    a, b = [load_entry(DIST[0])], [load_entry(CB)]
    one = compare_rows(a, b, metrics=["auc_borji"], seed=7, n_resamples=2000)
    two = compare_rows(a, b, metrics=["auc_borji"], seed=7, n_resamples=2000)
    other = compare_rows(a, b, metrics=["auc_borji"], seed=8, n_resamples=2000)
    assert one == two
    assert one["metrics"]["auc_borji"]["ci95"] != other["metrics"]["auc_borji"]["ci95"]
    assert one["bootstrap"] == {"method": "BCa", "paired": True, "statistic": "mean of A - B", "n_resamples": 2000,
                                "seed": 7, "confidence_level": 0.95}


# -- entries made here ---------------------------------------------------------------------------
OPTIONS = {"preset": "small", "n_images": 10}


def _maps(records, seed, noise=0.5):
    rng = np.random.default_rng(seed)
    maps = [r.y48 + noise * rng.random((48, 48)) for r in records]
    return [(m / m.max()).astype(np.float32) for m in maps]


def _write(root, model, maps, records, *, protocol="coursework", seed=0, overrides=None, dataset_extra=None):
    ds = get_dataset("synthetic", "val", **OPTIONS)
    proto = get_protocol(protocol, **(overrides or {}))
    with ResultWriter(root, result_stem(model, "synthetic", "val", protocol)) as w:
        preds = [w.add_prediction(r.name, quantise_map(m)) for r, m in zip(records, maps)]
        scored = proto.evaluate(preds, records, seed=seed)
        result = build_result(model={"name": model, "checkpoint": None},
                              dataset={**ds.identity(), "options": OPTIONS, "data_dir": None, **(dataset_extra or {})},
                              protocol=proto.name, params=proto.params, seed=seed, names=list(scored.names),
                              scores=scored.scores)
        return w.commit(result)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Entries on 10 synthetic images: two models with the very same predictions, one with others."""
    root = tmp_path_factory.mktemp("compare")
    ds = get_dataset("synthetic", "val", **OPTIONS)
    records = [ds[i] for i in range(len(ds))]
    same = _maps(records, 0)
    return {
        "root": root,
        "a": _write(root, "twin_a", same, records),
        "b": _write(root, "twin_b", same, records),
        "other": _write(root, "other", _maps(records, 1, noise=5.0), records),
        "seed1": _write(root, "seed1", same, records, seed=1),
        "mit": _write(root, "mit_model", same, records, protocol="mit"),
    }


def test_two_entries_made_from_the_same_predictions_differ_by_zero_with_p_one(made):
    report = compare_rows([load_entry(made["a"])], [load_entry(made["b"])])
    assert set(report["metrics"]) == {"cc", "auc_borji", "auc_shuffled"}
    for r in report["metrics"].values():
        assert r["mean_difference"] == 0.0 and r["p_value"] == 1.0 and r["ci95"] == [0.0, 0.0]
        assert r["n_zero_differences"] == r["n"] == 10 and r["better"] == "neither"
        assert r["wilcoxon_statistic"] is None
    different = compare_rows([load_entry(made["a"])], [load_entry(made["other"])])["metrics"]["cc"]
    assert different["mean_difference"] > 0 and different["p_value"] == pytest.approx(2 / 2**10)  # exact: all > 0


def _edited(made, tmp_path, fn, name="edited"):
    rec = json.loads(Path(made["b"]).read_text())
    fn(rec)
    out = tmp_path / f"synthetic__val__{name}__coursework.json"
    out.write_text(json.dumps(rec))
    pred = Path(made["b"]).parent / rec["predictions"]["file"]
    shutil.copyfile(pred, tmp_path / pred.name)
    return out


def _set(path, value):
    def fn(rec):
        node = rec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return fn


@pytest.mark.parametrize("edit, message", [
    (_set(["dataset", "content_hash"], "0" * 64), "dataset content hash: "),
    (_set(["dataset", "split"], "train"), "split: val vs train"),
    (_set(["dataset", "params", "seed"], 5), "dataset parameter seed: 0 vs 5"),
    (_set(["dataset", "options", "n_images"], 99), "dataset option n_images: 10 vs 99"),
    (_set(["protocol", "name"], "salicon"), "protocol: coursework vs salicon"),
    (_set(["protocol", "params", "n_other"], 3), "protocol parameter n_other: "),
    (_set(["seed"], 4), "evaluation seed: 0 vs 4"),
    (_set(["dataset", "content_hash"], None), "no dataset content hash recorded"),
])
def test_each_kind_of_mismatch_is_refused_naming_it(made, tmp_path, capsys, edit, message):
    edited = _edited(made, tmp_path, edit)
    assert message in first_difference(load_entry(made["a"]), load_entry(edited))
    code = main(["compare", str(made["a"]), str(edited)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("salbench: error: A and B are not paired") and message in err
    assert len(err.strip().splitlines()) == 1


def test_real_mismatches_from_the_pipeline_are_refused(made):
    with pytest.raises(NotComparable, match="protocol: coursework vs mit"):
        compare_rows([load_entry(made["a"])], [load_entry(made["mit"])])
    with pytest.raises(NotComparable, match="evaluation seed: 0 vs 1"):
        compare_rows([load_entry(made["a"])], [load_entry(made["seed1"])])


def test_different_image_names_are_refused(made, tmp_path):
    def rename(rec):
        rec["image_names"][3] = "not-in-a.png"
    edited = _edited(made, tmp_path, rename)
    with pytest.raises(NotComparable, match=r"image names: 9 shared of 10 and 10 \(e\.g\. .* only in the first\)"):
        compare_rows([load_entry(made["a"])], [load_entry(edited)])


def test_images_in_another_order_are_paired_by_name(made, tmp_path):
    def reverse(rec):
        rec["image_names"] = rec["image_names"][::-1]
        for block in rec["metrics"].values():
            block["per_image"] = block["per_image"][::-1]
    edited = _edited(made, tmp_path, reverse)
    r = compare_rows([load_entry(made["a"])], [load_entry(edited)])["metrics"]["cc"]
    assert r["mean_difference"] == 0.0 and r["p_value"] == 1.0


def test_nan_images_are_excluded_and_counted(made, tmp_path):
    def undefined(rec):
        rec["metrics"]["cc"]["per_image"][2] = None
        rec["metrics"]["cc"]["per_image"][5] = None
    edited = _edited(made, tmp_path, undefined)
    r = compare_rows([load_entry(made["other"])], [load_entry(edited)])["metrics"]
    assert (r["cc"]["n"], r["cc"]["n_excluded"]) == (8, 2)
    assert (r["auc_borji"]["n"], r["auc_borji"]["n_excluded"]) == (10, 0)
    _, a = _raw(made["other"])
    _, b = _raw(edited)
    diff, ci, p, n = _scipy_reference(a["cc"], b["cc"])
    assert (r["cc"]["mean_difference"], r["cc"]["p_value"]) == (pytest.approx(diff), pytest.approx(p))


def test_rows_must_be_one_models_distinct_paired_entries(made):
    a, b, other = (load_entry(made[k]) for k in ("a", "b", "other"))
    with pytest.raises(NotComparable, match="row A mixes models other, twin_a"):
        compare_rows([a, other], [b])
    with pytest.raises(NotComparable, match="names .* twice"):
        compare_rows([a, a], [b])
    with pytest.raises(NotComparable, match="metric 'kld' is not measured by"):
        compare_rows([a], [b], metrics=["kld"])


# -- the command ---------------------------------------------------------------------------------
def test_cli_json_is_stable_and_follows_the_schema(made, capsys):
    args = ["compare", str(made["a"]), str(made["other"]), "--format", "json", "--resamples", "500", "--seed", "3"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first  # no timestamps: the same inputs give the same bytes
    doc = json.loads(first)
    assert first == json.dumps(doc, sort_keys=True, indent=2) + "\n"
    assert doc["schema"] == COMPARE_SCHEMA and doc["bootstrap"]["n_resamples"] == 500 and doc["bootstrap"]["seed"] == 3
    assert set(doc) == {"schema", "salbench_version", "scipy_version", "a", "b", "dataset", "protocol",
                        "evaluation_seed", "n_images", "seed_averaging", "bootstrap", "wilcoxon", "metrics"}
    assert set(doc["metrics"]["cc"]) == {"higher_is_better", "better", "mean_a", "mean_b", "mean_difference", "ci95",
                                         "p_value", "wilcoxon_statistic", "n", "n_excluded", "n_zero_differences"}
    assert doc["seed_averaging"] is None and doc["a"]["entries"] == [str(made["a"])]
    assert doc["wilcoxon"]["zero_method"] == "wilcox"


def test_cli_table_globs_and_against(made, capsys):
    root = made["root"]
    code = main(["compare", str(root / "synthetic__val__twin_?__coursework.json"), "--against", str(made["other"]),
                 "--metrics", "cc,auc_borji"])
    out = capsys.readouterr().out
    # twin_a and twin_b are different models: a row is one model's entries
    assert code == 2
    code = main(["compare", str(made["a"]), "--against", str(root / "synthetic__val__oth*__coursework.json"),
                 "--metrics", "cc,auc_borji"])
    out = capsys.readouterr().out
    assert code == 0 and "CC ↑" in out and "AUC-Borji ↑" in out and "sAUC" not in out
    assert "Wilcoxon p" in out and "paired BCa bootstrap (9999 resamples, seed 0)" in out


@pytest.mark.parametrize("args, message", [
    (["ONLY.json"], "give two entries"),
    (["a.json", "b.json", "c.json"], "give two entries"),
    (["nothing-*.json", "b.json"], "no results file matches nothing-*.json"),
    (["missing.json", "b.json"], "missing.json"),
    (["A", "B", "--resamples", "0"], "--resamples must be at least 1"),
    (["A", "B", "--metrics", ","], "--metrics names no metric"),
])
def test_cli_bad_input_is_one_line(made, capsys, args, message):
    args = [str(made["a"]) if a == "A" else str(made["b"]) if a == "B" else a for a in args]
    assert main(["compare", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("salbench: error:") and message in err and len(err.strip().splitlines()) == 1


def test_text_report_names_both_rows_and_the_settings():
    text = format_report(compare_rows([load_entry(p) for p in DIST], [load_entry(CB)], metrics=["kld"],
                                      n_resamples=500))
    assert "A: shallow_kl [target=distribution, preset=distribution]  (3 entries, training seeds 0, 1, 2)" in text
    assert "B: center_bias" in text and "KLD ↓" in text and "Seed-averaged" in text
