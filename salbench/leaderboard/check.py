"""Recompute committed leaderboard entries and report metric drift.

Each results file names its stored predictions, its dataset (with the options
needed to reload it) and its protocol with every parameter and the seed, so an
entry can be recomputed from scratch and compared value by value.

A check has four outcomes per entry: ``ok``; ``drift`` (a value moved more
than its tolerance); ``skipped`` (the entry's dataset is not available on this
machine, e.g. ``../shared`` absent: not a failure); ``error`` (the entry cannot
be recomputed as recorded: predictions missing or changed, dataset content
changed, unknown protocol).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

DEFAULT_TOLERANCE = 1e-6


@dataclass
class Drift:
    """One value that moved more than its tolerance."""

    entry: str
    metric: str
    where: str  # "mean" or "image <name>"
    old: float | None
    new: float | None
    tolerance: float

    @property
    def detail(self) -> str:
        """``metric (where) was OLD, now NEW (tolerance TOL)``."""
        return (f"{self.metric} ({self.where}) was {_num(self.old)}, now {_num(self.new)} "
                f"(tolerance {self.tolerance:g})")

    def __str__(self) -> str:
        return f"{self.entry}: {self.detail}"


def _num(x: float | None) -> str:
    return "undefined" if x is None or not np.isfinite(x) else repr(float(x))


@dataclass
class CheckReport:
    """Outcome of checking one results file."""

    entry: str
    status: str  # "ok", "drift", "skipped", "error"
    message: str = ""
    drifts: list[Drift] = field(default_factory=list)
    new_scores: dict[str, np.ndarray] = field(default_factory=dict)


class _Unavailable(Exception):
    """The entry's dataset cannot be opened on this machine."""


def _resolve_data_dir(data_dir: str | None, results_path: Path) -> str | None:
    """Data directories are stored relative to the repository holding the results.

    A relative ``data_dir`` is tried against the results file's folder and every
    folder above it (so ``../shared/data/osie`` recorded from the repository root
    resolves from ``leaderboards/``), then against the working directory.
    """
    if data_dir is None or os.path.isabs(data_dir):
        return data_dir
    for base in [results_path.parent, *results_path.parents, Path.cwd()]:
        candidate = base / data_dir
        if candidate.exists():
            return str(candidate)
    return data_dir


def _open_dataset(ds_info: Mapping[str, Any], path: Path):
    """Open the dataset a results file names, or raise ``_Unavailable`` saying why."""
    from salbench.data import get_dataset

    recorded = ds_info.get("data_dir")
    data_dir = _resolve_data_dir(recorded, path)
    if data_dir is not None and not Path(data_dir).exists():
        raise _Unavailable(f"dataset {ds_info['name']} not available here ({recorded} not found)")
    try:
        return get_dataset(ds_info["name"], ds_info["split"], data_dir=data_dir, **(ds_info.get("options") or {}))
    except FileNotFoundError as exc:
        raise _Unavailable(f"dataset {ds_info['name']} not available here ({exc})") from None
    except ValueError as exc:
        if data_dir is None and "data" in str(exc).lower():  # a file dataset recorded without its folder
            raise _Unavailable(f"dataset {ds_info['name']} not available here ({exc})") from None
        raise


def _close(old: float | None, new: float, tol: float) -> bool:
    """Equal within ``tol``; an undefined value (stored as None) must stay undefined."""
    if old is None:
        return not np.isfinite(new)
    return bool(np.isfinite(new) and abs(new - old) <= tol)


def check_result(result: Mapping[str, Any], *, tolerance: float | None = None,
                 cache: dict | None = None) -> CheckReport:
    """Recompute one results record (as loaded by ``load_result``) and compare.

    Parameters
    ----------
    result : mapping
        A results record with its ``_path`` (set by :func:`load_result`).
    tolerance : float, optional
        Overrides every metric's tolerance (default: the file's ``tolerances``
        entry for the metric, else :data:`DEFAULT_TOLERANCE`).
    cache : dict, optional
        Shared between calls so that consecutive entries on the same dataset
        (several models and protocols) decode its records once; it holds one
        dataset at a time.

    Returns
    -------
    CheckReport
        ``status`` is ``ok``, ``drift``, ``skipped`` or ``error``; drifts name
        the metric, where it moved (mean or first image that moved), old and new value.
    """
    path = Path(result["_path"])
    entry = path.name
    try:
        return _check(result, path, entry, tolerance, {} if cache is None else cache)
    except _Unavailable as exc:
        return CheckReport(entry, "skipped", str(exc))
    except (ValueError, KeyError, TypeError, OSError) as exc:
        return CheckReport(entry, "error", f"cannot recompute: {type(exc).__name__}: {exc}")


def _check(result: Mapping[str, Any], path: Path, entry: str, tolerance: float | None, cache: dict) -> CheckReport:
    from salbench.leaderboard.results import file_sha256, load_predictions_npz
    from salbench.protocols import get_protocol

    pred = result.get("predictions") or {}
    if not pred.get("file"):
        return CheckReport(entry, "error", "no stored predictions to recompute from")
    pred_path = path.parent / pred["file"]
    if not pred_path.is_file():
        return CheckReport(entry, "error", f"stored predictions {pred_path} are missing")
    if pred.get("sha256") and file_sha256(pred_path) != pred["sha256"]:
        return CheckReport(entry, "error", f"stored predictions {pred_path} changed (sha256 differs from the "
                                           "results file; re-run salbench eval to make a new entry)")

    ds_info = result["dataset"]
    key = json.dumps([ds_info["name"], ds_info["split"], _resolve_data_dir(ds_info.get("data_dir"), path),
                      ds_info.get("options") or {}], sort_keys=True)
    if key not in cache:
        cache.clear()  # one dataset's records at a time: entries are grouped by dataset
        dataset = _open_dataset(ds_info, path)
        cache[key] = (dataset, dataset.identity().get("content_hash"), {}, {})
    dataset, now_hash, decoded, protocols = cache[key]
    stored_hash = ds_info.get("content_hash")
    if stored_hash and now_hash != stored_hash:
        return CheckReport(entry, "error", f"dataset {ds_info['name']}/{ds_info['split']} content changed "
                                           f"(hash {now_hash} != {stored_hash})")

    predictions, names = load_predictions_npz(pred_path)
    if names != list(result["image_names"]):
        return CheckReport(entry, "error", "stored predictions are for other images than the results file")
    index = {name: i for i, name in enumerate(dataset.names)}
    missing = [n for n in names if n not in index]
    if missing:
        return CheckReport(entry, "error",
                           f"images {missing[:3]} are not in dataset {ds_info['name']}/{ds_info['split']}")
    for n in names:
        if n not in decoded:
            decoded[n] = dataset[index[n]]
    records = [decoded[n] for n in names]
    # ``name`` is part of the recorded parameters but chooses the protocol, it is not an override.
    params = {k: v for k, v in result["protocol"]["params"].items() if k != "name"}
    # One protocol object per (name, params) and dataset: its ground-truth preparation (the
    # coursework target blur, ~75 ms per 480x640 image) is cached per record set and reused.
    pkey = json.dumps([result["protocol"]["name"], params], sort_keys=True)
    if pkey not in protocols:
        protocols[pkey] = get_protocol(result["protocol"]["name"], **params)
    proto = protocols[pkey]
    scored = proto.evaluate(list(predictions), records, seed=result["seed"])

    tolerances = result.get("tolerances") or {}
    report = CheckReport(entry, "ok", new_scores={k: np.asarray(v, float) for k, v in scored.scores.items()})
    for metric, block in result["metrics"].items():
        tol = tolerance if tolerance is not None else float(tolerances.get(metric, DEFAULT_TOLERANCE))
        if metric not in scored.scores:
            report.drifts.append(Drift(entry, metric, "mean", block["mean"], None, tol))
            continue
        new = np.asarray(scored.scores[metric], dtype=np.float64)
        finite = new[np.isfinite(new)]
        new_mean = float(finite.mean()) if finite.size else float("nan")
        if not _close(block["mean"], new_mean, tol):
            report.drifts.append(Drift(entry, metric, "mean", block["mean"], new_mean, tol))
        for name, old_v, new_v in zip(result["image_names"], block["per_image"], new):
            if not _close(old_v, float(new_v), tol):
                report.drifts.append(Drift(entry, metric, f"image {name}", old_v, float(new_v), tol))
                break  # one image per metric is enough to point at the problem
    if report.drifts:
        report.status = "drift"
    return report


def update_result(result: Mapping[str, Any], report: CheckReport) -> dict[str, Any]:
    """Return ``result`` with its metric values replaced by the recomputed ones.

    Only the metrics block changes (plus ``updated`` and the salbench version
    that recomputed it); the dataset, protocol, seed and predictions stay as recorded.
    """
    from salbench import __version__
    from salbench.leaderboard.results import metrics_block

    if report.status not in ("ok", "drift"):
        raise ValueError(f"{report.entry}: cannot update an entry that was not recomputed ({report.message})")
    updated = {k: v for k, v in result.items() if k != "_path"}
    updated["metrics"] = metrics_block(report.new_scores)
    updated["salbench_version"] = __version__
    updated["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return updated
