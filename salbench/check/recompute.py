"""Recompute a results entry from its predictions and compare every derived value.

With the data: the dataset's content hash and size, no duplicate names, every
recorded image present; the predictions are rescored (one map at a time, through
:func:`salbench.scoring.score_stream`) with the recorded seed, and every per-image
value, mean, CI, ``n`` and ``n_excluded`` is compared with the recomputation, and so are
the data side's counts the entry records (``ground_truth``: fixations dropped outside their
image; ``n_aspect_mismatch``). The model that produced the maps is created as recorded and
re-run on a sample of the images (:mod:`salbench.check.model`) (an entry scored
with metric-specific maps: its log-densities rescored the same way, and its
``map_derivation`` record compared with the recomputation's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from salbench.check.audit import (
    audit, check_tolerance, close, excluded_count, recorded_maps, set_and_direction_drifts, summary_drifts,
)
from salbench.check.model import ModelIdentityError, RerunPolicy, prepare, rerun
from salbench.check.report import CheckReport, Drift, ModelCheck


class _Unavailable(Exception):
    """The entry's data (dataset or folder of maps) is not on this machine."""


class _EntryError(Exception):
    """The entry cannot be recomputed as recorded (the message says why)."""


def _open_dataset(ds_info: Mapping[str, Any], path: Path):
    """Open the dataset a results file names, or raise ``_Unavailable`` saying why."""
    from salbench.data import get_dataset
    from salbench.results import resolve_data_dir

    recorded = ds_info.get("data_dir")
    data_dir = None if not reads_directory(ds_info["name"]) else resolve_data_dir(recorded, path)
    if data_dir is not None and not Path(data_dir).exists():
        raise _Unavailable(f"dataset {ds_info['name']} not available here ({recorded} not found)")
    try:
        return get_dataset(ds_info["name"], ds_info["split"], data_dir=data_dir, **(ds_info.get("options") or {}))
    except FileNotFoundError as exc:
        raise _Unavailable(f"dataset {ds_info['name']} not available here ({exc})") from None
    except ValueError as exc:
        if data_dir is None and "data" in str(exc).lower() and "duplicate" not in str(exc).lower():
            # a file dataset recorded without its folder
            raise _Unavailable(f"dataset {ds_info['name']} not available here ({exc})") from None
        raise


def reads_directory(name: str) -> bool:
    """Whether dataset ``name`` reads files from a directory (the built-in synthetic set does not)."""
    from salbench.data import DATASETS

    info = DATASETS.get(name)
    return info is None or info.needs_data_dir


def _data_dir_drift(entry: str, result: Mapping[str, Any]) -> list[Drift]:
    """A directory recorded for a dataset that reads none: ignored when recomputing, flagged, nulled by --update."""
    ds = result["dataset"]
    if ds.get("data_dir") is None or reads_directory(ds["name"]):
        return []
    return [Drift(entry, "dataset.data_dir", "field", ds["data_dir"], None,
                  note=f"recorded {ds['data_dir']!r}, but dataset {ds['name']} reads no directory (recomputed "
                       "without it; --update sets it to null)")]


def _count_drifts(entry: str, result: Mapping[str, Any], counts: Mapping[str, Any]) -> list[Drift]:
    """The data side's recorded counts against the recomputed ones (an entry without them: nothing to compare)."""
    drifts = []
    recorded = result.get("ground_truth")
    if isinstance(recorded, Mapping):
        for key, new in counts["ground_truth"].items():
            if recorded.get(key) != new:
                drifts.append(Drift(entry, f"ground_truth.{key}", "count", recorded.get(key), new,
                                    note=f"recorded {recorded.get(key)}, recomputed {new}"))
    if "n_aspect_mismatch" in result and result["n_aspect_mismatch"] != counts["n_aspect_mismatch"]:
        drifts.append(Drift(entry, "n_aspect_mismatch", "count", result["n_aspect_mismatch"],
                            counts["n_aspect_mismatch"],
                            note=f"recorded {result['n_aspect_mismatch']} predictions stretched to their image's "
                                 f"aspect ratio, recomputed {counts['n_aspect_mismatch']}"))
    return drifts


def _dataset(result: Mapping[str, Any], path: Path, cache: dict):
    """The recorded dataset (one open dataset kept in ``cache``), verified against the record."""
    from salbench.results import resolve_data_dir
    from salbench.results.schema import duplicates

    ds_info = result["dataset"]
    data_dir = resolve_data_dir(ds_info.get("data_dir"), path) if reads_directory(ds_info["name"]) else None
    key = json.dumps([ds_info["name"], ds_info["split"], data_dir, ds_info.get("options") or {}],
                     sort_keys=True, default=str)
    if cache.get("_dataset_key") != key:
        cache["_dataset"] = _open_dataset(ds_info, path)
        cache["_dataset_key"] = key
    dataset = cache["_dataset"]
    names = list(dataset.names)
    if len(set(names)) != len(names):
        raise _EntryError(f"dataset {ds_info['name']}/{ds_info['split']} has duplicate image names "
                          f"{duplicates(names)[:3]}; its entries cannot be checked or updated")
    if len(dataset) != ds_info.get("n_files"):
        raise _EntryError(f"dataset {ds_info['name']}/{ds_info['split']} has {len(dataset)} images, the record "
                          f"says {ds_info.get('n_files')}")
    stored_hash = ds_info.get("content_hash")
    now_hash = dataset.identity().get("content_hash")
    if stored_hash and now_hash != stored_hash:
        raise _EntryError(f"dataset {ds_info['name']}/{ds_info['split']} content changed "
                          f"(hash {now_hash} != {stored_hash})")
    return dataset


def _prediction_source(result: Mapping[str, Any], path: Path, dataset) -> tuple[Callable[[int], np.ndarray], Callable]:
    """``(get_prediction(dataset_index) -> map, close)`` for the recorded predictions."""
    pred = result["predictions"]
    names = list(result["image_names"])
    if pred.get("kind", "stored") == "folder":
        return _folder_source(result, path, dataset)
    from salbench.io.map_store import open_stored_predictions

    sp = open_stored_predictions(path.parent / pred["file"])
    position = {n: j for j, n in enumerate(sp.names)}
    if len(sp.names) != len(names) or set(sp.names) != set(names):
        sp.close()
        raise _EntryError("stored predictions are for other images than the results file")

    def get(k: int) -> np.ndarray:
        return sp.load(position[dataset.names[k]])

    return get, sp.close


def _folder_source(result: Mapping[str, Any], path: Path, dataset):
    pred = result["predictions"]
    folder = Path(pred["path"])
    if not folder.is_absolute():
        folder = path.parent / folder
    if not folder.exists():
        raise _Unavailable(f"predictions folder {pred['path']} not available here ({folder} not found)")
    from salbench.predictions import open_predictions

    expected = dict(zip(result["image_names"], pred["map_sha256"]))
    matched = open_predictions(folder).match(list(dataset.names), allow_missing=result["n_skipped"] > 0)
    have = [dataset.names[k] for k in matched.indices]
    if sorted(have) != sorted(expected):
        extra = sorted(set(have) - set(expected))[:3]
        gone = sorted(set(expected) - set(have))[:3]
        raise _EntryError(f"predictions folder {folder} now matches other images (new: {extra}, missing: {gone})")

    def get(k: int) -> np.ndarray:
        name = dataset.names[k]
        m, sha = matched.read(k)  # one read of the file: the hash is of the bytes decoded
        if sha != expected[name]:
            raise _EntryError(f"map of {name} in {folder} ({_entry_label(matched, k)}) changed "
                              "(sha256 differs from the results file)")
        return m

    return get, lambda: None


def _entry_label(matched, k: int) -> str:
    try:
        return matched.entry(k)
    except Exception:  # noqa: BLE001 - only for the message
        return f"image {k}"


def _score(result: Mapping[str, Any], proto, dataset, get_prediction) -> tuple[dict[str, np.ndarray], dict, dict | None]:
    """Per-image scores in the recorded image order (``{metric: ndarray}``), the data side's counts and the
    map derivation record (None: the model's own maps)."""
    import warnings

    from salbench.protocols.base import AspectMismatchWarning
    from salbench.results.schema import ground_truth_counts
    from salbench.scoring import score_stream

    names = list(result["image_names"])
    index = {n: i for i, n in enumerate(dataset.names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise _EntryError(f"images {missing[:3]} are not in dataset {result['dataset']['name']}/"
                          f"{result['dataset']['split']}")
    indices = [index[n] for n in names]
    whole = indices == list(range(len(dataset)))  # the whole split: its ground-truth cache entry
    maps, derivation = recorded_maps(result)
    with warnings.catch_warnings():  # counted and compared below; the warning was eval's to give
        warnings.simplefilter("ignore", AspectMismatchWarning)
        res = score_stream(proto, dataset, get_prediction, seed=result["seed"], progress=False,
                           indices=None if whole else indices, maps=maps, map_derivation=derivation)
    got = list(res.names)
    if sorted(got) != sorted(names):
        raise _EntryError("the protocol scored other images than the record names")
    order = {n: i for i, n in enumerate(got)}
    perm = np.array([order[n] for n in names], dtype=np.intp)
    counts = {"ground_truth": ground_truth_counts(dataset.dropped_fixations_total(indices, warn=False)),
              "n_aspect_mismatch": res.n_aspect_mismatch}
    return {k: np.asarray(v, dtype=np.float64)[perm] for k, v in res.scores.items()}, counts, res.map_derivation


def _recompute_drifts(entry: str, result: Mapping[str, Any], proto, scores: Mapping[str, np.ndarray],
                      tol: float) -> list[Drift]:
    drifts = set_and_direction_drifts(entry, result, proto)
    for metric, block in result["metrics"].items():
        if metric not in scores:
            continue  # reported as a metric-set drift
        new = scores[metric]
        drifts += summary_drifts(entry, metric, block, new, tol)
        for name, old_v, new_v in zip(result["image_names"], block["per_image"], new):
            if not close(old_v, float(new_v), tol):
                drifts.append(Drift(entry, metric, f"image {name}", old_v, float(new_v), tol))
                break  # one image per metric is enough to point at the problem
    now = excluded_count({m: scores[m] for m in proto.metrics if m in scores})
    if now != result["n_excluded"]:
        drifts.append(Drift(entry, "n_excluded", "count", result["n_excluded"], now,
                            note=f"recorded {result['n_excluded']} images excluded, recomputed {now}"))
    return drifts


def _derivation_drifts(entry: str, result: Mapping[str, Any], derivation: dict | None) -> list[Drift]:
    """The recorded ``map_derivation`` against the recomputation's (every parameter and count it states)."""
    if derivation is None:
        return []
    recorded = json.loads(json.dumps(result.get("map_derivation"), sort_keys=True))
    now = json.loads(json.dumps(derivation, sort_keys=True))
    if recorded == now:
        return []
    keys = sorted(set(recorded) | set(now))
    diff = next(k for k in keys if recorded.get(k) != now.get(k))
    return [Drift(entry, "map_derivation", diff, None, None,
                  note=f"map_derivation.{diff} was {json.dumps(recorded.get(diff))[:200]}, recomputed "
                       f"{json.dumps(now.get(diff))[:200]}")]


def _schema_drift(entry: str, result: Mapping[str, Any]) -> list[Drift]:
    """A file read through :mod:`salbench.results.migrate`: its schema is what ``--update`` rewrites."""
    from salbench.results import RESULT_SCHEMA

    old = result.get("_migrated_from")
    if not old:
        return []
    return [Drift(entry, "schema", "schema", old, RESULT_SCHEMA,
                  note=f"a {old} file; --update rewrites it as {RESULT_SCHEMA} (predictions re-stored)")]


def check_result(result: Mapping[str, Any], *, tolerance: float | None = None,
                 cache: dict | None = None, rerun_policy: RerunPolicy | None = None) -> CheckReport:
    """Audit and recompute one results record (as loaded by ``load_result``) and compare.

    Parameters
    ----------
    result : mapping
        A results record with its ``_path`` (set by :func:`~salbench.results.load_result`;
        ``scan_results(..., migrate=True)`` also marks a migrated one ``_migrated_from``).
    tolerance : float, optional
        Tolerance of every float comparison (default :data:`~salbench.check.DEFAULT_TOLERANCE`);
        a results file cannot set its own.
    cache : dict, optional
        Shared between calls so that consecutive entries on the same dataset reuse
        the open dataset, rebuilt protocols, the created model and its re-runs.
    rerun_policy : RerunPolicy, optional
        How the entry's model is re-run (default: 8 images, sample seed 0).

    Returns
    -------
    CheckReport
        ``status`` is ``ok``, ``drift``, ``skipped`` or ``error`` (see :mod:`salbench.check`);
        ``model`` says what was verified of who produced the maps, ``verification`` the word.
    """
    path = Path(result["_path"])
    entry = path.name
    tol = check_tolerance(tolerance)
    cache = {} if cache is None else cache
    policy = rerun_policy or RerunPolicy()
    try:
        errors, static, proto = audit(result, path, tol, cache)
    except Exception as exc:  # noqa: BLE001 - one entry's failure must not stop the others
        return CheckReport(entry, "error", f"cannot audit: {type(exc).__name__}: {exc}",
                           errors=[f"cannot audit: {type(exc).__name__}: {exc}"])
    if errors:
        return CheckReport(entry, "error", errors[0], drifts=static, errors=errors)
    try:
        prepared = prepare(result, path, policy, cache)  # the model as recorded: no data needed
    except ModelIdentityError as exc:
        return CheckReport(entry, "error", str(exc), drifts=static, errors=[str(exc)])
    close_source = None
    try:
        dataset = _dataset(result, path, cache)
        get_prediction, close_source = _prediction_source(result, path, dataset)
        scores, counts, derivation = _score(result, proto, dataset, get_prediction)
        drifts = (_schema_drift(entry, result) + _data_dir_drift(entry, result)
                  + _recompute_drifts(entry, result, proto, scores, tol) + _count_drifts(entry, result, counts)
                  + _derivation_drifts(entry, result, derivation))
        model = rerun(prepared, result, path, dataset, policy, cache)
    except _Unavailable as exc:
        if static:
            msg = f"{exc}; and the record contradicts itself"
            return CheckReport(entry, "error", msg, drifts=static, errors=[msg])
        return CheckReport(entry, "skipped", str(exc), model=prepared.outcome or ModelCheck(
            "not checked", "model not re-run: the data is not available here"))
    except (_EntryError, ModelIdentityError) as exc:
        return CheckReport(entry, "error", str(exc), errors=[str(exc)])
    except MemoryError:
        msg = "cannot recompute: out of memory"
        return CheckReport(entry, "error", msg, errors=[msg])
    except Exception as exc:  # noqa: BLE001
        msg = f"cannot recompute: {type(exc).__name__}: {exc}"
        return CheckReport(entry, "error", msg, errors=[msg])
    finally:
        if close_source is not None:
            close_source()
    report = CheckReport(entry, "drift" if drifts else "ok", drifts=drifts,
                         new_scores={m: scores[m] for m in proto.metrics if m in scores},
                         new_names=list(result["image_names"]), model=model, new_counts=counts,
                         new_map_derivation=derivation)
    if drifts:
        report.message = drifts[0].detail
    return report


def update_result(result: Mapping[str, Any], report: CheckReport) -> dict[str, Any]:
    """Return ``result`` with every derived value replaced by the recomputed one.

    The metrics block is rebuilt from the recomputation (the recorded metric
    set, registry directions, means, CIs, ``n``; ``protocol.metrics`` written
    explicitly), ``n_excluded`` and the data side's counts (``ground_truth``,
    ``n_aspect_mismatch``) too, plus ``updated`` and the salbench version that
    recomputed it; the model, dataset, protocol, seed, image names and predictions
    stay as recorded (except a ``data_dir`` recorded for a dataset that reads none,
    which becomes null).

    Raises
    ------
    ValueError
        The report is not ``ok``/``drift`` (errors are never papered over).
    """
    from salbench import __version__
    from salbench.results import count_excluded, metrics_block
    from salbench.results.schema import now_utc

    if report.status not in ("ok", "drift") or not report.new_scores:
        raise ValueError(f"{report.entry}: cannot update an entry that was not recomputed ({report.message})")
    if report.new_names != list(result["image_names"]):
        raise ValueError(f"{report.entry}: recomputed for other images; not updated")
    updated = {k: v for k, v in result.items() if not k.startswith("_")}
    updated["metrics"] = metrics_block(report.new_scores)
    updated["protocol"] = {**updated["protocol"], "metrics": list(report.new_scores)}  # explicit from now on
    if report.new_map_derivation is not None:
        updated["map_derivation"] = report.new_map_derivation
    updated["n_excluded"] = count_excluded({k: b["per_image"] for k, b in updated["metrics"].items()})
    updated.update(report.new_counts)
    if updated["dataset"].get("data_dir") is not None and not reads_directory(updated["dataset"]["name"]):
        updated["dataset"] = {**updated["dataset"], "data_dir": None}
    updated["salbench_version"] = __version__
    updated["updated"] = now_utc()
    return updated
