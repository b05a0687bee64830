"""``salbench check``: recompute entries, catch every tampering class, update on purpose.

Each tampering test edits one thing in a results file written through the public
API and asserts the one line ``check`` prints for it and its exit status.
"""

import json
import shutil

import numpy as np
import pytest

from salbench.cli import main
from salbench.data import get_dataset
from salbench.check import check_result, verification_status
from salbench import predictions as pred
from salbench.results import (
    ResultWriter, build_result, load_predictions_npz, load_result, quantise_map, quantise_predictions, result_stem,
    save_predictions,
)
from salbench.protocols import get_protocol
from tests.check_helpers import edit_json as _edit, run_check as _check

OPTIONS = {"preset": "small", "n_images": 4}
ENTRY = "synthetic__val__maps-mine__coursework.json"


def _predictions(records, seed=0):
    """Deterministic 48x48 maps in [0, 1]: the target plus noise (not the truth, not constant)."""
    rng = np.random.default_rng(seed)
    maps = np.stack([r.y48 + 0.3 * rng.random((48, 48)) for r in records])
    return (maps / maps.max(axis=(1, 2), keepdims=True)).astype(np.float32)


def make_entry(root, protocol="coursework", model="maps-mine", seed=3):
    """A results entry of a user's maps on the small synthetic preset, written with the public results API."""
    ds = get_dataset("synthetic", "val", **OPTIONS)
    records = [ds[i] for i in range(len(ds))]
    proto = get_protocol(protocol)
    with ResultWriter(root, result_stem(model, "synthetic", "val", protocol)) as w:
        preds = [w.add_prediction(r.name, quantise_map(p)) for r, p in zip(records, _predictions(records))]
        scored = proto.evaluate(preds, records, seed=seed)
        result = build_result(
            model={"name": model, "checkpoint": None, "source": "predictions"},
            dataset={**ds.identity(), "options": OPTIONS, "data_dir": None},
            protocol=proto.name, params=proto.params, seed=seed, names=list(scored.names), scores=scored.scores,
        )
        return w.commit(result)


@pytest.fixture(scope="module")
def entry_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    make_entry(root)
    return root


@pytest.fixture()
def board(entry_template, tmp_path):
    root = tmp_path / "leaderboards"
    shutil.copytree(entry_template, root)
    return root


def _entry(root):
    return root / ENTRY


def test_untouched_entry_passes(board, capsys):
    code, out, err = _check(board, capsys)
    assert code == 0, err
    assert f"{ENTRY}: ok" in out
    assert "1 ok, 0 drifted, 0 errors, 0 skipped" in out
    assert verification_status(load_result(_entry(board))).ok


# -- tampering classes ------------------------------------------------------------------------------
def test_perturbed_mean_fails_naming_entry_metric_old_and_new(board, capsys):
    path = _entry(board)
    true_cc = load_result(path)["metrics"]["cc"]["mean"]
    _edit(path, lambda d: d["metrics"]["cc"].__setitem__("mean", true_cc + 0.01))
    code, _, err = _check(board, capsys)
    assert code == 1
    line = next(x for x in err.splitlines() if "(mean)" in x)
    assert line == f"{ENTRY}: DRIFT: cc (mean) was {true_cc + 0.01!r}, now {true_cc!r} (tolerance 1e-06)"
    assert main(["check", str(board), "--tolerance", "0.02"]) == 0  # an explicit tolerance is the checker's
    status = verification_status(load_result(path))
    assert not status.ok and "cc (mean (from the per-image values))" in status.summary


def test_perturbed_image_value_names_the_image(board, capsys):
    _edit(_entry(board), lambda d: d["metrics"]["auc_borji"]["per_image"].__setitem__(2, 0.123))
    code, _, err = _check(board, capsys)
    assert code == 1
    assert f"{ENTRY}: DRIFT: auc_borji (image synthetic_val_00002.png) was 0.123, now " in err


def test_changed_ci_fails(board, capsys):
    _edit(_entry(board), lambda d: d["metrics"]["auc_shuffled"]["ci95"].__setitem__(1, 0.99))
    code, _, err = _check(board, capsys)
    assert code == 1 and "auc_shuffled (ci95 high) was 0.99, now " in err


def test_removed_metric_fails(board, capsys):
    _edit(_entry(board), lambda d: d["metrics"].pop("cc"))
    code, _, err = _check(board, capsys)
    assert code == 1
    assert f"{ENTRY}: DRIFT: cc: computed by protocol coursework but missing from the results file" in err


def test_added_metric_fails(board, capsys):
    _edit(_entry(board), lambda d: d["metrics"].__setitem__("nss", {**d["metrics"]["cc"]}))
    code, _, err = _check(board, capsys)
    assert code == 1
    assert f"{ENTRY}: DRIFT: nss: in the results file but not computed by protocol coursework" in err


def test_flipped_direction_fails(board, capsys):
    _edit(_entry(board), lambda d: d["metrics"]["cc"].__setitem__("higher_is_better", False))
    code, _, err = _check(board, capsys)
    assert code == 1
    assert f"{ENTRY}: DRIFT: cc: recorded higher_is_better=false, the metric registry says true" in err


def test_a_results_file_cannot_set_its_own_tolerances(board, capsys):
    path = _entry(board)
    mean = load_result(path)["metrics"]["cc"]["mean"]
    _edit(path, lambda d: (d["metrics"]["cc"].__setitem__("mean", mean + 0.5), d.update(tolerances={"cc": 1.0})))
    code, _, err = _check(board, capsys)
    assert code == 1
    assert f"{ENTRY}: ERROR: the results file sets its own tolerances; a results file cannot" in err
    assert not verification_status(load_result(path)).ok


def test_renamed_image_fails(board, capsys):
    _edit(_entry(board), lambda d: d["image_names"].__setitem__(1, "other.png"))
    code, _, err = _check(board, capsys)
    assert code == 1 and "are for other images than the results file" in err


@pytest.mark.parametrize("edit, line", [
    (lambda d: d["dataset"].update(n_files=5), "dataset.n_files=5 but the record scores 4 images and skips 0"),
    (lambda d: d.update(n_skipped=1), "dataset.n_files=4 but the record scores 4 images and skips 1"),
    (lambda d: d["dataset"]["options"].update(n_images=10**12),
     "dataset option n_images=1000000000000 exceeds the recorded n_files=4; refused before opening the dataset"),
    (lambda d: d["dataset"].update(n_files=10**9),
     "dataset.n_files=1000000000 is beyond check's bound (1000000); refused"),
])
def test_counts_and_unbounded_options_are_errors_before_any_work(board, capsys, edit, line, monkeypatch):
    import salbench.check.recompute as chk

    def no_dataset(*a, **k):  # proves the refusal comes before the dataset is opened
        raise AssertionError("the dataset was opened")

    monkeypatch.setattr(chk, "_open_dataset", no_dataset)
    _edit(_entry(board), edit)
    code, _, err = _check(board, capsys)
    assert code == 1 and f"{ENTRY}: ERROR: {line}" in err


def test_excluded_and_n_counts_fail(board, capsys):
    _edit(_entry(board), lambda d: (d.update(n_excluded=2), d["metrics"]["cc"].update(n=3)))
    code, _, err = _check(board, capsys)
    assert code == 1
    assert "n_excluded: recorded 2 images excluded, recomputed 0" in err
    assert "cc (n) was 3, now 4" in err


@pytest.mark.parametrize("edit, match", [
    (lambda p: p.update(resolution="bilinear"), "cannot be rebuilt from the recorded parameters"),
    (lambda p: p.pop("splits"), "applies other parameters than recorded (splits: recorded '<absent>', applied 100"),
    (lambda p: p.update(splits=10**9), "protocol parameter splits=1000000000 is beyond check's bound"),
    (lambda p: p.update(name="mit"), "protocol parameters name 'mit' but the protocol is 'coursework'"),
])
def test_protocol_parameters_must_rebuild_exactly(board, capsys, edit, match):
    _edit(_entry(board), lambda d: edit(d["protocol"]["params"]))
    code, _, err = _check(board, capsys)
    assert code == 1 and f"{ENTRY}: ERROR: " in err and match in err


def test_a_changed_parameter_value_is_recomputed_with_and_drifts(board, capsys):
    _edit(_entry(board), lambda d: d["protocol"]["params"].update(splits=7))
    code, _, err = _check(board, capsys)
    assert code == 1 and "DRIFT: auc_borji" in err


@pytest.mark.parametrize("content, message", [
    (b"", "empty results file (0 bytes)"),
    (None, "not valid JSON, truncated or corrupt"),
    (b'{"schema": "salbench.result/2", "metrics": []}', "not a salbench results file (missing"),
])
def test_unreadable_results_files_are_errors(board, capsys, content, message):
    path = _entry(board)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if content is None else content)
    code, out, err = _check(board, capsys)
    assert code == 1
    assert f"{ENTRY}: ERROR: {path}: {message}" in err
    assert "0 ok, 0 drifted, 1 errors, 0 skipped" in out


def test_metrics_empty_list_is_an_error(board, capsys):
    _edit(_entry(board), lambda d: d.update(metrics=[]))
    code, _, err = _check(board, capsys)
    assert code == 1 and "metrics must be a non-empty object of metric blocks" in err


def test_changed_predictions_or_dataset_are_errors(board, capsys):
    path = _entry(board)
    _edit(path, lambda d: d["dataset"].update(content_hash="0" * 64))
    code, _, err = _check(board, capsys, "--update")
    assert code == 1 and "content changed" in err  # --update never papers over an error
    assert load_result(path)["dataset"]["content_hash"] == "0" * 64
    npz = board / load_result(path)["predictions"]["file"]
    preds, names = load_predictions_npz(npz)
    save_predictions(npz, preds * 0.5, names)
    code, _, err = _check(board, capsys)
    assert code == 1 and "sha256 differs" in err
    npz.unlink()
    code, _, err = _check(board, capsys)
    assert code == 1 and "are missing" in err
    assert "missing" in verification_status(load_result(path)).summary


# -- skipped, --strict ------------------------------------------------------------------------------
def test_unavailable_dataset_is_skipped_and_fails_with_strict(board, capsys):
    _edit(_entry(board), lambda d: d["dataset"].update(name="nus", data_dir="../shared-absent/data/osie"))
    code, out, _ = _check(board, capsys)
    assert code == 0
    assert f"{ENTRY}: skipped: dataset nus not available here" in out
    assert "0 ok, 0 drifted, 0 errors, 1 skipped" in out
    code, out, err = _check(board, capsys, "--strict")
    assert code == 1
    assert f"{ENTRY}: SKIPPED (--strict): dataset nus not available here" in err
    assert "1 skipped (--strict: skipped entries fail)" in out


def test_a_tampered_entry_cannot_hide_behind_absent_data(board, capsys):
    path = _entry(board)
    mean = load_result(path)["metrics"]["cc"]["mean"]
    _edit(path, lambda d: (d["dataset"].update(name="nus", data_dir="../shared-absent/data/osie"),
                           d["metrics"]["cc"].update(mean=mean + 0.1)))
    code, _, err = _check(board, capsys)
    assert code == 1
    assert f"{ENTRY}: ERROR: dataset nus not available here" in err and "the record contradicts itself" in err
    assert "DRIFT: cc (mean (from the per-image values))" in err


# -- --update -----------------------------------------------------------------------------------------
def test_update_rewrites_every_derived_value_and_then_passes(board, capsys):
    path = _entry(board)
    before = load_result(path)
    _edit(path, lambda d: (d["metrics"]["cc"].update(mean=9.0), d["metrics"]["cc"]["per_image"].__setitem__(0, 9.0),
                           d["metrics"].pop("auc_borji"), d["metrics"]["auc_shuffled"].update(higher_is_better=False),
                           d["metrics"].__setitem__("nss", dict(d["metrics"]["cc"]))))
    code, out, _ = _check(board, capsys, "--update")
    assert code == 0
    assert f"{ENTRY}: updated" in out and "(1 updated)" in out
    after = load_result(path)
    assert list(after["metrics"]) == list(before["metrics"])
    for m in before["metrics"]:
        for key in ("mean", "ci95", "per_image"):
            assert after["metrics"][m][key] == pytest.approx(before["metrics"][m][key], abs=1e-12)
        assert after["metrics"][m]["higher_is_better"] == before["metrics"][m]["higher_is_better"]
    assert after["protocol"] == before["protocol"] and after["predictions"] == before["predictions"]
    assert "updated" in after
    assert not list(board.glob(".*"))  # atomic write left no temporary file
    assert main(["check", str(board)]) == 0


def test_update_refuses_datasets_with_duplicate_names(board, capsys, monkeypatch):
    import salbench.check.recompute as chk

    real = chk._open_dataset

    class WithDuplicates:  # a dataset whose loader let duplicate names through
        def __init__(self, ds):
            self._ds, self.names = ds, [ds.names[0]] * len(ds.names)

        def __len__(self):
            return len(self._ds)

        def __getitem__(self, i):
            return self._ds[i]

        def __getattr__(self, key):
            return getattr(self._ds, key)

    def with_duplicates(ds_info, path):
        return WithDuplicates(real(ds_info, path))

    monkeypatch.setattr(chk, "_open_dataset", with_duplicates)
    path = _entry(board)
    _edit(path, lambda d: d["metrics"]["cc"]["per_image"].__setitem__(0, 9.0))
    before = path.read_bytes()
    code, _, err = _check(board, capsys, "--update")
    assert code == 1
    assert "has duplicate image names ['synthetic_val_00000.png']; its entries cannot be checked or updated" in err
    assert path.read_bytes() == before


def test_update_does_not_overwrite_an_entry_changed_meanwhile(board):
    from salbench.check import update_result
    from salbench.results import rewrite_result
    from salbench.io import FileError

    path = _entry(board)
    result = load_result(path)
    report = check_result(result)
    _edit(path, lambda d: d.update(seed=4))  # a concurrent writer replaced the entry
    with pytest.raises(FileError, match="changed while it was being checked; not updated"):
        rewrite_result(result, update_result(result, report))


# -- formats and sources ----------------------------------------------------------------------------
def test_check_report_statuses(board):
    report = check_result(load_result(_entry(board)))
    assert report.status == "ok" and not report.drifts and not report.errors
    assert set(report.new_scores) == set(get_protocol("coursework").metrics)


def test_entries_of_earlier_layouts_name_their_own_file_and_are_checked(board, capsys):
    """``STEM.predictions.<16 hex>.npz`` (one copy per entry) in format ``salbench.predictions/2``."""
    import io
    import zipfile

    path = _entry(board)
    d = json.loads(path.read_text())
    shared = board / d["predictions"]["file"]
    buf = io.BytesIO()  # the same archive with a /2 index: one member per map, no "same"
    with zipfile.ZipFile(shared) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        index = json.loads(src.read("index.json"))
        assert index["same"] == [None] * len(index["names"])
        index["format"] = "salbench.predictions/2"
        del index["same"]
        for name in src.namelist():
            dst.writestr(name, json.dumps(index) if name == "index.json" else src.read(name))
    from salbench.io import file_sha256

    sha = __import__("hashlib").sha256(buf.getvalue()).hexdigest()
    legacy = board / ENTRY.replace(".json", f".predictions.{sha[:16]}.npz")
    legacy.write_bytes(buf.getvalue())
    shared.unlink()
    _edit(path, lambda d: d["predictions"].update(file=legacy.name, sha256=sha, format="salbench.predictions/2",
                                                  size=legacy.stat().st_size))
    assert file_sha256(legacy) == sha
    code, out, err = _check(board, capsys, "--strict")
    assert code == 0, err
    assert f"{ENTRY}: ok" in out and verification_status(load_result(path)).ok


def test_entries_sharing_one_predictions_file_are_each_checked(tmp_path, capsys):
    """One model's maps scored under two protocols: one file on disk, named by both entries."""
    root = tmp_path / "lb"
    make_entry(root, protocol="coursework")
    make_entry(root, protocol="mit")
    entries = sorted(p for p in root.glob("*.json"))
    files = {load_result(p)["predictions"]["file"] for p in entries}
    assert len(entries) == 2 and len(files) == 1
    assert sorted(p.name for p in root.glob("*.npz")) == sorted(files)
    code, out, err = _check(root, capsys, "--strict")
    assert code == 0, err
    assert "2 ok, 0 drifted, 0 errors, 0 skipped" in out
    npz = root / files.pop()  # a change to the shared file is an error in every entry that names it
    preds, names = load_predictions_npz(npz)
    save_predictions(npz, preds * 0.5, names)
    code, _, err = _check(root, capsys)
    assert code == 1 and err.count("sha256 differs") == 2


@pytest.mark.filterwarnings("ignore::salbench.protocols.coursework.QuantisationWrapWarning")  # 8-bit maps, 0..255
def test_folder_record_verifies_each_map_before_recomputing(tmp_path, capsys):
    ds = get_dataset("synthetic", "val", **OPTIONS)
    records = [ds[i] for i in range(len(ds))]
    folder = tmp_path / "maps"
    pred.save_maps(folder, ds.names, list(_predictions(records)))
    matched = pred.open_predictions(folder).match(ds.names)
    proto = get_protocol("coursework")
    root = tmp_path / "res"
    with ResultWriter(root, result_stem("mine", "synthetic", "val", "coursework"), folder=folder) as w:
        maps = []
        for k in matched.indices.tolist():
            w.add_map_file(ds.names[k], matched.fingerprint(k))
            maps.append(matched.load(k))
        scored = proto.evaluate(maps, records, seed=0)
        w.commit(build_result(model={"name": "mine", "checkpoint": None, "source": "predictions"},
                              dataset={**ds.identity(), "options": OPTIONS, "data_dir": None},
                              protocol="coursework", params=proto.params, seed=0, names=list(scored.names),
                              scores=scored.scores))
    assert main(["check", str(root)]) == 0
    capsys.readouterr()
    first = sorted(folder.iterdir())[0]
    pred.save_map(first, np.ones((48, 48)) * 0.5)  # another map under the same name
    assert main(["check", str(root)]) == 1
    assert "changed (sha256 differs from the results file)" in capsys.readouterr().err
    shutil.rmtree(folder)
    assert main(["check", str(root)]) == 0  # the user's folder is data: absent means skipped
    assert "skipped: predictions folder ../maps not available here" in capsys.readouterr().out
    assert main(["check", str(root), "--strict"]) == 1


def test_default_directory_is_cwd_leaderboards(board, monkeypatch, capsys):
    monkeypatch.chdir(board.parent)
    assert main(["check"]) == 0
    assert f"in {board}" in capsys.readouterr().out


def test_empty_directory_and_file_are_errors(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert "no results files" in capsys.readouterr().err
    (tmp_path / "f").write_text("x")
    assert main(["check", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err.strip() == f"salbench: error: {tmp_path / 'f'}: is a file, not a results directory"
    assert main(["check", str(tmp_path), "--tolerance", "nan"]) == 2


def test_stored_predictions_are_exactly_what_was_scored(tmp_path):
    rng = np.random.default_rng(1)
    raw = rng.random((3, 6, 5)).astype(np.float32)
    info32 = save_predictions(tmp_path / "a.npz", raw, ["a", "b", "c"])
    assert info32["dtype"] == "float32"  # float16 would change the scored values
    back, names = load_predictions_npz(tmp_path / "a.npz")
    assert names == ["a", "b", "c"] and np.array_equal(back, raw)
    q = quantise_predictions(raw)
    assert np.abs(q - raw).max() < 1e-3 and not np.array_equal(q, raw)
    info16 = save_predictions(tmp_path / "b.npz", q, ["a", "b", "c"])
    assert info16["dtype"] == "float16" and info16["shape"] == [3, 6, 5]
    assert np.array_equal(load_predictions_npz(tmp_path / "b.npz")[0], q)
    ragged = [raw[0], raw[1, :4, :3]]
    save_predictions(tmp_path / "c.npz", ragged, ["a", "b"])
    back, _ = load_predictions_npz(tmp_path / "c.npz")
    assert [m.shape for m in back] == [(6, 5), (4, 3)] and np.array_equal(back[1], ragged[1])
    with pytest.raises(ValueError, match="2 predictions for 3 image names"):
        save_predictions(tmp_path / "d.npz", ragged, ["a", "b", "c"])
    with pytest.raises(ValueError, match="NaN"):
        save_predictions(tmp_path / "d.npz", raw * np.nan, ["a", "b", "c"])
