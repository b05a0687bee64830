"""``salbench.evaluate``: dataset choice, scoring given predictions, what the results record holds."""

from __future__ import annotations

import numpy as np
import pytest

from salbench.evaluate import choose_dataset, evaluate_model

SMALL = {"preset": "small"}


def test_choose_dataset_order(tmp_path, monkeypatch):
    monkeypatch.delenv("SALBENCH_DATA", raising=False)
    assert choose_dataset("nus", None).name == "nus"
    assert choose_dataset(None, None).name == "synthetic"
    monkeypatch.setenv("SALBENCH_DATA", str(tmp_path / "absent"))
    assert choose_dataset(None, None).name == "synthetic"  # a configured path that does not exist
    monkeypatch.setenv("SALBENCH_DATA", str(tmp_path))
    choice = choose_dataset(None, None)
    assert (choice.name, choice.data_dir) == ("salicon", str(tmp_path)) and "configured SALICON" in choice.reason


def test_given_predictions_are_scored_as_float16_and_never_train(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    from salbench.data import get_dataset
    from salbench.protocols import get_protocol

    recs = list(get_dataset("synthetic", "val", **SMALL))
    rng = np.random.default_rng(3)
    preds = rng.random((len(recs), 48, 48)).astype(np.float32)
    info = {"trained": {"where": "elsewhere"}, "checkpoint": {"path": "not kept", "sha256": "ab" * 32}}
    result, path = evaluate_model("shallow_kl", dataset="synthetic", dataset_options=SMALL, protocol="coursework",
                                  predictions=preds, model_info=info, results_dir=tmp_path / "r", log=lambda m: None)
    assert not (tmp_path / "cache" / "runs").exists()  # no implicit training when predictions are given
    assert result["model"]["trained"] == {"where": "elsewhere"} and result["model"]["checkpoint"]["sha256"] == "ab" * 32
    # Independent recomputation: the float16-rounded maps through the protocol directly.
    again = get_protocol("coursework").evaluate(list(preds.astype(np.float16).astype(np.float32)), recs, seed=0)
    np.testing.assert_array_equal(np.array(result["metrics"]["cc"]["per_image"], dtype=float), again.scores["cc"])
    assert path.name == "synthetic__val__shallow_kl__coursework.json"


def test_wrong_number_of_predictions(tmp_path):
    with pytest.raises(ValueError, match="predictions for"):
        evaluate_model("uniform", dataset="synthetic", dataset_options=SMALL, predictions=np.zeros((2, 48, 48)),
                       results_dir=tmp_path, log=lambda m: None)
