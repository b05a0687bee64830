"""``salbench eval --maps metric-specific`` end to end (issue 16): CLI, results entry, ``salbench check``.

The theory check: ``gold`` predicts the synthetic set's true fixation density, so each metric's
own map of it (Kuemmerer et al., ECCV 2018) must score at least as well as the raw density on
every metric, within the 95% CI of the paired per-image difference. ``center_bias`` predicts the
same density for every image, so its sAUC map ``log p - log p_b`` is constant: sAUC exactly 0.5.
"""

import json

import numpy as np
import pytest

from salbench.check import check_result
from salbench.cli import main
from salbench.metrics.registry import get_metric
from salbench.results import load_result

SMALL = ["--option", "preset=small"]


def _eval(res, model, maps, protocol="mit", extra=()):
    args = ["eval", "--model", model, *SMALL, "--protocol", protocol, "--results-dir", str(res), "--maps", maps,
            "--format", "json", *extra]
    assert main(args) == 0
    stem = f"synthetic__val__{model}{'-metric-specific' if maps == 'metric-specific' else ''}__{protocol}.json"
    return res / stem


@pytest.fixture(scope="module")
def gold(tmp_path_factory):
    """``gold`` on the small synthetic val split (32 images, 480x640) under ``mit``: raw and metric-specific."""
    res = tmp_path_factory.mktemp("gold")
    return _eval(res, "gold", "raw"), _eval(res, "gold", "metric-specific")


def test_refused_for_a_model_without_a_density(tmp_path, capsys):
    code = main(["eval", "--model", "shallow_mse", *SMALL, "--maps", "metric-specific", "--results-dir",
                 str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("salbench: error: --maps metric-specific derives each metric's map from a predicted "
                             "fixation density; model shallow_mse predicts saliency maps")
    assert not list(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.slow
def test_gold_metric_specific_maps_score_at_least_the_raw_density(gold):
    raw, ms = (load_result(p) for p in gold)
    assert "maps" not in raw and "map_derivation" not in raw  # the default entry is what it always was
    assert ms["maps"] == "metric-specific" and ms["map_derivation"]["parameters"]["sim_samples"] == 100
    assert ms["image_names"] == raw["image_names"] and set(ms["metrics"]) == set(raw["metrics"])
    for metric in raw["metrics"]:
        a = np.array(ms["metrics"][metric]["per_image"], dtype=float)
        b = np.array(raw["metrics"][metric]["per_image"], dtype=float)
        ok = np.isfinite(a) & np.isfinite(b)
        assert ok.sum() >= 30, metric
        sign = 1.0 if get_metric(metric).higher_is_better else -1.0
        gain = sign * (a[ok] - b[ok])  # > 0: the metric-specific map is better
        half = 1.96 * gain.std(ddof=1) / np.sqrt(gain.size)
        assert gain.mean() + half >= 0.0, (metric, gain.mean(), half)


@pytest.mark.slow
def test_check_recomputes_a_metric_specific_entry_and_applies_its_parameters(gold, tmp_path):
    _, path = gold
    result = load_result(path)
    report = check_result(result)
    assert report.status == "ok", report.message
    # a parameter written is one applied: another value recorded recomputes other scores
    edited = json.loads(path.read_text())
    edited["map_derivation"]["parameters"]["equalize_auc"] = False
    moved = tmp_path / path.name
    moved.write_text(json.dumps(edited))
    (tmp_path / result["predictions"]["file"]).write_bytes((path.parent / result["predictions"]["file"]).read_bytes())
    report = check_result(load_result(moved))
    assert report.status == "drift", (report.message, report.errors)
    assert {d.metric for d in report.drifts} >= {"auc_borji", "map_derivation"}
    assert "auc_judd" not in {d.metric for d in report.drifts}  # equalisation keeps AUC-Judd's ranking


@pytest.mark.parametrize("protocol", ["mit", "coursework"])
def test_center_bias_scores_sauc_one_half_exactly(tmp_path, protocol):
    path = _eval(tmp_path, "center_bias", "metric-specific", protocol, extra=["--option", "n_images=8"])
    values = load_result(path)["metrics"]["auc_shuffled"]["per_image"]
    assert len(values) == 8 and all(v == 0.5 for v in values)


def test_a_density_file_scores_as_the_model_it_came_from(tmp_path, capsys):
    """``--predictions F.npz --density --maps metric-specific``: the model's float32 log-densities in a
    file score exactly as ``--model`` does (the same stored values), and ``check`` recomputes it."""
    from salbench.data import get_dataset
    from salbench.models import create_model

    opts = ["--option", "n_images=6"]
    ds = get_dataset("synthetic", "val", preset="small", n_images=6)
    ld = create_model("gold", output_size=[60, 80]).predict_log_density([ds[i] for i in range(len(ds))])
    path = tmp_path / "logp.npz"
    np.savez(path, names=np.array(ds.names[::-1]), predictions=np.asarray(ld, dtype=np.float32)[::-1])
    res = tmp_path / "res"
    model_entry = _eval(res, "gold", "metric-specific", "coursework",
                        extra=[*opts, "--model-option", "output_size=[60,80]"])
    args = ["eval", "--predictions", str(path), *SMALL, *opts, "--protocol", "coursework", "--results-dir", str(res),
            "--name", "logp", "--maps", "metric-specific"]
    assert main(args) == 2
    assert "give a .npy/.npz file of natural-log densities with --density" in capsys.readouterr().err
    assert main([*args, "--density", "--format", "json"]) == 0
    file_entry = load_result(res / "synthetic__val__logp-metric-specific__coursework.json")
    a, b = load_result(model_entry), file_entry
    assert b["maps"] == "metric-specific" and a["image_names"] == b["image_names"]
    for metric in a["metrics"]:
        assert a["metrics"][metric]["per_image"] == b["metrics"][metric]["per_image"], metric
    assert check_result(file_entry).status == "ok"
    # not a log-density (densities, not their logs): one error line naming the image and the sum
    np.savez(path, names=np.array(ds.names), predictions=np.exp(np.asarray(ld, dtype=np.float32)))
    assert main([*args, "--density"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("salbench: error:")]
    assert len(err) == 1 and "synthetic_val_00000.png" in err[0] and "not a log-density" in err[0]


def test_a_stretched_density_is_counted_as_a_raw_map_is(tmp_path):
    """A 48x48 density scored on 480x640 images is stretched by the metric-specific maps too: counted
    (``n_aspect_mismatch``) exactly as the raw maps of the same model are, and rechecked."""
    opts = ["--option", "n_images=6", "--model-option", "output_size=[48,48]"]
    raw = load_result(_eval(tmp_path, "gold", "raw", extra=opts))
    specific = load_result(_eval(tmp_path, "gold", "metric-specific", extra=opts))
    assert raw["n_aspect_mismatch"] == specific["n_aspect_mismatch"] == 6
    assert check_result(specific).status == "ok"
