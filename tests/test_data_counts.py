"""What the data side counts is recorded and rechecked (issue 19).

``salbench eval`` records the fixations dropped for lying outside their image
(``ground_truth``) and the predictions stretched to their image's aspect ratio
(``n_aspect_mismatch``), warns once for each (one ``salbench: warning: ...`` line), and
``salbench check`` recomputes and compares both, without warning again.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from salbench.cli import main
from salbench.data import get_dataset
from salbench.evaluate import EvaluationRequest, evaluate
from salbench.predictions import save_maps
from salbench.predictions.aspect import aspect_mismatch
from salbench.protocols import get_protocol
from salbench.protocols.base import AspectMismatchWarning
from salbench.results import load_result
from tests.test_data_ground_truth import write_nus

SMALL = {"preset": "small", "n_images": 4}


@pytest.fixture()
def nus(tmp_path):
    """Two 30x40 images; image a.png has 4 of its 6 fixations outside it (negative, past the edges)."""
    xs, ys = [1.0, -3.0, 41.0, 20.0, 0.4, 40.0], [1.0, 5.0, 10.0, 31.0, 7.0, 30.0]
    return write_nus(tmp_path / "nus", [("a.png", [(xs, ys)]), ("b.png", [([5.0, 9.0], [5.0, 3.0])])],
                     {"a.png": (30, 40), "b.png": (30, 40)})


def test_eval_records_dropped_fixations_warns_once_and_check_compares(nus, tmp_path, capsys):
    res = tmp_path / "res"
    args = ["eval", "--model", "uniform", "--model-option", "output_size=[30, 40]", "--dataset", "nus", "--split", "all",
            "--data-dir", str(nus), "--protocol", "exact", "--results-dir", str(res)]
    assert main(args) == 0
    err = capsys.readouterr().err
    warned = [ln for ln in err.splitlines() if ln.startswith("salbench: warning: ")]
    assert warned == ["salbench: warning: nus/all: 4 of 8 fixations lie outside their image and were dropped (not "
                      "clipped), on 1 image(s) (most: a.png: 4 of 6); an image losing that many was probably resized "
                      "after its fixations were recorded: give --option recorded_size=HxW (the recording size) with "
                      "--option fixation_scale=rescale, or use the original images"]
    path = res / "nus__all__uniform__exact.json"
    entry = load_result(path)
    assert entry["ground_truth"] == {"dropped_fixations": 4, "recorded_fixations": 8,
                                     "images_with_dropped_fixations": 1}
    assert entry["n_aspect_mismatch"] == 0
    code = main(["check", str(res), "--strict"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "salbench: warning" not in out.err  # check recomputes the counts without warning again
    data = json.loads(path.read_text())
    data["ground_truth"]["dropped_fixations"] = 0
    path.write_text(json.dumps(data))
    assert main(["check", str(res)]) == 1
    assert ("nus__all__uniform__exact.json: DRIFT: ground_truth.dropped_fixations: recorded 0, recomputed 4"
            in capsys.readouterr().err)
    assert main(["check", str(res), "--update"]) == 0
    assert load_result(path)["ground_truth"]["dropped_fixations"] == 4


@pytest.mark.parametrize("shape, protocol, stretched", [
    ((100, 37), "coursework", 4),  # any protocol counts a map of another aspect ratio...
    ((48, 48), "coursework", 0),   # ...except the coursework's own 48x48 maps, which it is defined on
    ((48, 48), "mit", 4),          # under MIT's protocol a square map is stretched onto 480x640
    ((60, 80), "mit", 0),
    ((37, 49), "exact", 0),        # rounds from one scale of 480x640
    ((1, 1), "salicon", 4),
])
def test_stretched_predictions_are_counted_warned_once_and_recorded(tmp_path, shape, protocol, stretched):
    ds = get_dataset("synthetic", "val", **SMALL)
    folder = tmp_path / "maps"
    rng = np.random.default_rng(0)
    save_maps(folder, ds.names, [rng.random(shape) for _ in ds.names])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record, path = evaluate(EvaluationRequest(predictions=folder, dataset="synthetic", dataset_options=SMALL,
                                                  protocol=protocol, results_dir=tmp_path / "res", workers=2),
                                progress=False, log=lambda m: None)
    msgs = [str(w.message) for w in caught if issubclass(w.category, AspectMismatchWarning)]
    assert record["n_aspect_mismatch"] == stretched and load_result(path)["n_aspect_mismatch"] == stretched
    if stretched:
        h, w = shape
        assert msgs == [f"{stretched} of 4 predictions have another aspect ratio than their image and were stretched "
                        f"to its size (resized anyway, as MIT's code does; e.g. synthetic_val_00000.png: {h}x{w} for "
                        "480x640); see docs/predictions.md"]
    else:
        assert msgs == []
    assert main(["check", str(tmp_path / "res"), "--strict"]) == 0
    data = json.loads(path.read_text())
    data["n_aspect_mismatch"] = (stretched + 1) % 5
    path.write_text(json.dumps(data))
    assert main(["check", str(tmp_path / "res")]) == 1


def test_the_scorer_counts_exactly_the_maps_the_aspect_rule_flags():
    """Mixed shapes in one run: the count is the rule applied image by image (one warning, with the total)."""
    ds = get_dataset("synthetic", "val", preset="small", n_images=8)
    records = [ds[i] for i in range(len(ds))]
    shapes = [(48, 48), (480, 640), (100, 37), (60, 80), (1, 1), (37, 49), (240, 330), (48, 64)]
    maps = [np.random.default_rng(k).random(s) for k, s in enumerate(shapes)]
    expected = [r.name for r, s in zip(records, shapes) if aspect_mismatch(s, r.shape)]
    assert len(expected) == 4  # 48x48, 100x37, 1x1, 240x330
    for protocol in ("mit", "exact", "salicon"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = get_protocol(protocol).evaluate(maps, records, seed=0)
        assert result.aspect_mismatch == expected and result.n_aspect_mismatch == 4, protocol
        assert sum(issubclass(w.category, AspectMismatchWarning) for w in caught) == 1
    result = get_protocol("coursework").evaluate(maps, records, seed=0)
    assert result.aspect_mismatch == [r.name for r, s in zip(records, shapes) if s != (48, 48)
                                      and aspect_mismatch(s, r.shape)]


def test_the_cli_prints_salbench_warnings_as_one_line(tmp_path, capsys, monkeypatch):
    from salbench.cli import _warning_printer

    shown = []
    show = _warning_printer(lambda *a: shown.append(a))
    show(AspectMismatchWarning("2 of 3 predictions ...\nsecond line"), AspectMismatchWarning, "f.py", 3)
    assert capsys.readouterr().err == "salbench: warning: 2 of 3 predictions ... (+1 more lines; SALBENCH_DEBUG=1 " \
                                      "shows the traceback)\n"
    show(DeprecationWarning("not ours"), DeprecationWarning, "f.py", 3)
    assert len(shown) == 1 and capsys.readouterr().err == ""  # other libraries' warnings: as Python shows them
