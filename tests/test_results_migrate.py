"""The one migration path for old results files: ``salbench check --update`` on a ``salbench.result/1`` file.

The old file is written here the way salbench wrote schema /1 (``np.savez_compressed``
predictions named after the entry, protocol parameters with the conventions of the
time, no counts), with the values that version computed: ``mit`` scored the dataset's
own density then (``ground_truth`` did not exist), so its scores come from
``get_protocol("mit", ground_truth="dataset")``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from salbench.cli import main
from salbench.data import get_dataset
from salbench.io import file_sha256
from salbench.io.map_store import FORMAT as PREDICTIONS_FORMAT
from salbench.protocols import get_protocol
from salbench.results import RESULT_SCHEMA, ResultsFileError, load_predictions_npz, load_result, load_results
from salbench.results.migrate import LEGACY_PROTOCOL_DEFAULTS, LEGACY_PROTOCOL_KEYS, migrate_protocol_params
from salbench.results.schema import metrics_block

OPTIONS = {"preset": "small", "n_images": 4}
STEM = "synthetic__val__center_bias__mit"


def _old_params(name: str, **legacy) -> dict:
    """A /1 record's parameters: today's minus the parameters added since, plus the conventions of the time."""
    params = get_protocol(name).params
    for key in LEGACY_PROTOCOL_DEFAULTS.get(name, {}):
        params.pop(key)
    return {**params, **LEGACY_PROTOCOL_KEYS[name], **legacy}


def write_old_entry(root, **legacy):
    """A ``salbench.result/1`` entry under ``root``; returns its per-image scores as that version computed them."""
    ds = get_dataset("synthetic", "val", **OPTIONS)
    records = [ds[i] for i in range(len(ds))]
    rng = np.random.default_rng(0)
    maps = np.stack([r.y48 + 0.3 * rng.random((48, 48)) for r in records]).astype(np.float16)
    scores = get_protocol("mit", ground_truth="dataset").evaluate(list(maps.astype(np.float32)), records, seed=3).scores
    block = metrics_block(scores)
    for b in block.values():  # schema /1 had no per-metric n and no direction
        del b["n"], b["higher_is_better"]
    del block["emd"]  # a metric added since: the migrated entry gains it
    npz = root / f"{STEM}.predictions.npz"
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, names=np.asarray(ds.names), predictions=maps)
    old = {
        "schema": "salbench.result/1", "salbench_version": "0.0.9", "created": "2026-01-01T00:00:00Z",
        # noisy maps, not center_bias's: recorded as a user's maps (check would re-run a model and refuse)
        "model": {"name": "center_bias", "checkpoint": None, "source": "predictions"},
        "dataset": {**ds.identity(), "options": OPTIONS, "data_dir": None},
        "protocol": {"name": "mit", "params": _old_params("mit", **legacy)}, "seed": 3,
        "n_images": len(ds), "image_names": list(ds.names), "metrics": block, "wall_time_s": {},
        "predictions": {"file": npz.name, "sha256": file_sha256(npz), "shape": list(maps.shape), "dtype": "float16"},
    }
    (root / f"{STEM}.json").write_text(json.dumps(old))
    return scores


def test_an_old_file_is_refused_everywhere_but_check_with_the_command_to_migrate_it(tmp_path):
    write_old_entry(tmp_path)
    with pytest.raises(ResultsFileError, match=r"salbench.result/1 is not read any more; `salbench check --update"):
        load_results(tmp_path)


def test_check_reports_an_old_file_as_drift_and_update_migrates_it(tmp_path, capsys):
    scores = write_old_entry(tmp_path)
    path = tmp_path / f"{STEM}.json"
    before = path.read_bytes()
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "ERROR" not in out.err
    assert f"{STEM}.json: DRIFT: schema: a salbench.result/1 file; --update rewrites it as {RESULT_SCHEMA}" in out.err
    assert "emd: computed by protocol mit but missing from the results file" in out.err
    assert path.read_bytes() == before  # nothing written without --update

    assert main(["check", str(tmp_path), "--update"]) == 0
    assert f"{STEM}.json: updated" in capsys.readouterr().out
    new = load_result(path)
    assert new["schema"] == RESULT_SCHEMA and new["migrated"]["from"] == "salbench.result/1"
    # the conventions of the time are dropped, the parameter added since takes the value /1 computed with
    assert new["protocol"]["params"] == get_protocol("mit", ground_truth="dataset").params
    assert new["n_skipped"] == 0 and new["n_excluded"] == 0 and new["seed"] == 3
    for metric, values in scores.items():  # every value as the old version computed it, emd added
        got = np.array([np.nan if v is None else v for v in new["metrics"][metric]["per_image"]])
        np.testing.assert_array_equal(got, values)
        assert new["metrics"][metric]["n"] == int(np.isfinite(values).sum())
    # the predictions are re-stored in today's format, the old file is gone
    pred = new["predictions"]
    assert pred["format"] == PREDICTIONS_FORMAT and pred["file"] != f"{STEM}.predictions.npz"
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [pred["file"]]
    maps, names = load_predictions_npz(tmp_path / pred["file"])
    assert names == new["image_names"] and maps.dtype == np.float32
    assert main(["check", str(tmp_path), "--strict"]) == 0
    assert f"{STEM}.json: ok" in capsys.readouterr().out


def test_a_convention_recorded_with_another_value_is_an_error_and_never_rewritten(tmp_path, capsys):
    write_old_entry(tmp_path, resize="bilinear")
    path = tmp_path / f"{STEM}.json"
    before = path.read_bytes()
    assert main(["check", str(tmp_path), "--update"]) == 1
    err = capsys.readouterr().err
    assert (f"{STEM}.json: ERROR: {path}: cannot migrate: protocol 'mit': recorded resize='bilinear' is not a "
            "convention this salbench implements ('matlab_bicubic')") in err
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", sorted(LEGACY_PROTOCOL_KEYS))
def test_old_parameters_of_every_protocol_migrate_to_todays(name):
    """Old keys are conventions now (never parameters); dropping them and adding the parameters the
    old version applied gives today's complete parameter set."""
    current = get_protocol(name).params
    assert not set(LEGACY_PROTOCOL_KEYS[name]) & set(current)
    expected = {**current, **LEGACY_PROTOCOL_DEFAULTS.get(name, {})}
    assert migrate_protocol_params(name, _old_params(name)) == expected
    with pytest.raises(ValueError, match="is not a convention this salbench implements"):
        key = next(iter(LEGACY_PROTOCOL_KEYS[name]))
        migrate_protocol_params(name, _old_params(name, **{key: "something else"}))
