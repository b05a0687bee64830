"""Recompute committed leaderboard entries and report metric drift.

Each results file names its stored predictions, its dataset (with the options
needed to reload it) and its protocol with every parameter and the seed, so an
entry can be recomputed from scratch and compared value by value.
"""

from __future__ import annotations

import os
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

    def __str__(self) -> str:
        return (f"{self.entry}: {self.metric} ({self.where}) was {self.old!r}, now {self.new!r} "
                f"(tolerance {self.tolerance:g})")


@dataclass
class CheckReport:
    """Outcome of checking one results file."""

    entry: str
    status: str  # "ok", "drift", "skipped", "error"
    message: str = ""
    drifts: list[Drift] = field(default_factory=list)
    new_scores: dict[str, np.ndarray] = field(default_factory=dict)


def _resolve_data_dir(data_dir: str | None, results_path: Path) -> str | None:
    """Data directories are stored relative to the repository holding the results."""
    if data_dir is None or os.path.isabs(data_dir):
        return data_dir
    for base in [results_path.parent, *results_path.parents]:
        candidate = base / data_dir
        if candidate.exists():
            return str(candidate)
    return data_dir


def _close(old: float | None, new: float, tol: float) -> bool:
    if old is None:
        return not np.isfinite(new)
    return bool(np.isfinite(new) and abs(new - old) <= tol)


def check_result(result: Mapping[str, Any], *, tolerance: float | None = None) -> CheckReport:
    """Recompute one results record (as loaded by ``load_result``) and compare."""
    from salbench.data import get_dataset
    from salbench.leaderboard.results import file_sha256, load_predictions_npz
    from salbench.protocols import get_protocol

    path = Path(result["_path"])
    entry = path.name
    pred = result.get("predictions") or {}
    if not pred.get("file"):
        return CheckReport(entry, "error", "no stored predictions to recompute from")
    pred_path = path.parent / pred["file"]
    if not pred_path.is_file():
        return CheckReport(entry, "error", f"stored predictions {pred_path} are missing")
    if pred.get("sha256") and file_sha256(pred_path) != pred["sha256"]:
        return CheckReport(entry, "error", f"stored predictions {pred_path} changed (sha256 differs)")

    ds_info = result["dataset"]
    data_dir = _resolve_data_dir(ds_info.get("data_dir"), path)
    if data_dir is not None and not Path(data_dir).exists():
        return CheckReport(entry, "skipped", f"dataset directory {ds_info.get('data_dir')} not found here")
    dataset = get_dataset(ds_info["name"], ds_info["split"], data_dir=data_dir, **(ds_info.get("options") or {}))
    stored_hash = ds_info.get("content_hash")
    if stored_hash and dataset.identity().get("content_hash") != stored_hash:
        return CheckReport(entry, "error", f"dataset {ds_info['name']}/{ds_info['split']} content changed "
                                           f"(hash {dataset.identity().get('content_hash')} != {stored_hash})")

    predictions, names = load_predictions_npz(pred_path)
    records = [dataset[i] for i in range(len(dataset))]
    if [r.name for r in records] != list(result["image_names"]):
        return CheckReport(entry, "error", "dataset image order differs from the results file")
    proto = get_protocol(result["protocol"]["name"], **result["protocol"]["params"])
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
    """Return ``result`` with its metric values replaced by the recomputed ones."""
    from salbench.leaderboard.results import metrics_block

    updated = {k: v for k, v in result.items() if k != "_path"}
    updated["metrics"] = metrics_block(report.new_scores)
    return updated
