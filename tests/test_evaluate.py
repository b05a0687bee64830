"""``salbench.evaluate``: the request, dataset choice, scoring given predictions, what the results record holds."""

from __future__ import annotations

import numpy as np
import pytest

from salbench.evaluate import EvaluationRequest, choose_dataset, evaluate

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


@pytest.mark.parametrize("kwargs, message", [
    ({}, "nothing to evaluate: give --model NAME or --predictions PATH"),
    ({"model": "uniform", "predictions": "maps"}, "give either --model or --predictions, not both"),
    ({"model": "uniform", "seed": -1}, r"--seed must be an integer in \[0, 2\*\*32\), got -1"),
    ({"model": "uniform", "seed": 2**32}, r"--seed must be an integer in \[0, 2\*\*32\)"),
    ({"model": "uniform", "seed": True}, r"--seed must be an integer"),
    ({"model": "uniform", "chunk_size": 0}, "--chunk-size must be a positive integer, got 0"),
    ({"model": "uniform", "batch_size": 2.5}, "--batch-size must be a positive integer, got 2.5"),
    ({"model": "uniform", "workers": -2}, "--workers must be an integer >= 0, got -2"),
    ({"model": "uniform", "fit_limit": 0}, "fit_limit must be a positive integer"),
    ({"model": "uniform", "name": "x"}, "--name applies to --predictions"),
    ({"model": "uniform", "allow_missing": True}, "--allow-missing applies to --predictions"),
    ({"model": "uniform", "model_info": {"a": 1}}, "model_info describes model_predictions: give both"),
    ({"predictions": "maps", "save_maps": "out"}, "--save-maps writes a model's maps: use it with --model"),
    ({"predictions": "maps", "tag": "s0"}, "tag applies to a model, not to --predictions"),
])
def test_request_is_checked_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EvaluationRequest(**kwargs)


def test_request_paths_are_checked_before_any_data(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--results-dir .*file is a file, not a directory"):
        evaluate(EvaluationRequest(model="uniform", results_dir=tmp_path / "file"), log=lambda m: None)
    with pytest.raises(FileNotFoundError, match="--predictions .*absent: no such file or folder"):
        evaluate(EvaluationRequest(predictions=tmp_path / "absent"), log=lambda m: None)


def test_request_defaults():
    r = EvaluationRequest(model="uniform", dataset_options=None)
    assert (r.chunk, r.workers, r.batch_size, r.seed, r.split) == (32, None, 32, 0, "val")  # None: one worker per available core
    assert r.dataset_options == {} and EvaluationRequest(predictions="maps").chunk == 64
    assert EvaluationRequest(model="uniform", chunk_size=np.int64(5)).chunk == 5


def test_given_predictions_are_scored_as_float16_and_never_train(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    from salbench.data import get_dataset
    from salbench.protocols import get_protocol

    recs = list(get_dataset("synthetic", "val", **SMALL))
    rng = np.random.default_rng(3)
    preds = rng.random((len(recs), 48, 48)).astype(np.float32)
    info = {"trained": {"where": "elsewhere"}, "checkpoint": {"path": "not kept", "sha256": "ab" * 32}}
    request = EvaluationRequest(model="shallow_kl", dataset="synthetic", dataset_options=SMALL, protocol="coursework",
                                model_predictions=preds, model_info=info, results_dir=tmp_path / "r")
    result, path = evaluate(request, log=lambda m: None)
    assert not (tmp_path / "cache" / "runs").exists()  # no implicit training when predictions are given
    assert result["model"]["trained"] == {"where": "elsewhere"} and result["model"]["checkpoint"]["sha256"] == "ab" * 32
    # Independent recomputation: the float16-rounded maps through the protocol directly.
    again = get_protocol("coursework").evaluate(list(preds.astype(np.float16).astype(np.float32)), recs, seed=0)
    np.testing.assert_array_equal(np.array(result["metrics"]["cc"]["per_image"], dtype=float), again.scores["cc"])
    assert path.name == "synthetic__val__shallow_kl__coursework.json"


def test_wrong_number_of_predictions(tmp_path):
    with pytest.raises(ValueError, match="2 predictions for 32 images"):
        evaluate(EvaluationRequest(model="uniform", dataset="synthetic", dataset_options=SMALL,
                                   model_predictions=np.zeros((2, 48, 48)), results_dir=tmp_path), log=lambda m: None)
    assert not list(tmp_path.iterdir())


def test_a_model_scores_and_stores_the_same_for_any_chunk_workers_and_batch(tmp_path, monkeypatch):
    """One streaming loop: chunking, threads and batch size change no number and no stored byte."""
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    from salbench.results import load_predictions_npz

    records, files = [], set()
    for i, (chunk, workers, batch) in enumerate(((32, 2, 32), (5, 0, 3), (7, 3, 1))):
        request = EvaluationRequest(model="center_bias", dataset="synthetic", dataset_options=SMALL, protocol="mit",
                                    chunk_size=chunk, workers=workers, batch_size=batch, results_dir=tmp_path / f"r{i}")
        result, path = evaluate(request, progress=False, log=lambda m: None)
        records.append(result)
        files.add(result["predictions"]["sha256"])
        maps, names = load_predictions_npz(path.parent / result["predictions"]["file"])
        assert names == result["image_names"]  # stored in dataset order
    assert len(files) == 1
    for r in records[1:]:
        assert r["image_names"] == records[0]["image_names"]
        for metric, block in r["metrics"].items():
            assert block["per_image"] == records[0]["metrics"][metric]["per_image"], metric
