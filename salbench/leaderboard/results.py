"""One JSON results file per (model, dataset, split, protocol), in the style of mteb.

A results file is the only source of a measured leaderboard row: tables are
rendered from these files and ``salbench check`` recomputes them from the
predictions stored beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from salbench import __version__
from salbench.io import atomic_path, atomic_write_json
from salbench.stats import mean_ci95

RESULT_SCHEMA = "salbench.result/1"
_REQUIRED_KEYS = ("schema", "model", "dataset", "protocol", "seed", "n_images", "metrics")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def result_filename(model: str, dataset: str, split: str, protocol: str) -> str:
    """File name of a results file: ``<dataset>__<split>__<model>__<protocol>.json``."""
    return f"{dataset}__{split}__{model}__{protocol}.json"


def metrics_block(scores: Mapping[str, Iterable[float]]) -> dict[str, dict[str, Any]]:
    """Per-metric ``{"mean", "ci95", "per_image"}`` from per-image scores.

    Non-finite per-image values (a metric undefined on that image) are stored as
    ``None`` so that the JSON stays strict, and left out of the mean.
    """
    from salbench.metrics import METRICS  # deferred: imports numba

    block = {}
    for name, values in scores.items():
        v = np.asarray(list(values), dtype=np.float64)
        mean, ci = mean_ci95(v)
        info = METRICS.get(name)
        block[name] = {
            "mean": _finite_or_none(mean),
            "ci95": [_finite_or_none(x) for x in ci],
            "per_image": [_finite_or_none(x) for x in v.tolist()],
            "higher_is_better": None if info is None else bool(info.higher_is_better),
        }
    return block


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def build_result(
    *,
    model: Mapping[str, Any],
    dataset: Mapping[str, Any],
    protocol: str,
    params: Mapping[str, Any],
    seed: int,
    names: list[str],
    scores: Mapping[str, Iterable[float]],
    wall_time_s: Mapping[str, float] | None = None,
    predictions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a results record (a plain, JSON-serialisable dict).

    Parameters
    ----------
    model : mapping
        ``{"name": ..., "checkpoint": {"path", "sha256"} or None, ...}``.
    dataset : mapping
        The dataset's ``identity()`` plus the options needed to reload it.
    protocol, params, seed
        Protocol name, its complete parameter set, and the seed used.
    names : list of str
        Image file names, in the order of the per-image scores.
    scores : mapping
        Metric name -> per-image values.
    wall_time_s : mapping, optional
        Seconds spent per stage (``predict``, ``evaluate``, ``total``).
    predictions : mapping, optional
        ``{"file": relative path, "sha256": ..., "shape": ...}`` of the stored predictions.
    """
    return {
        "schema": RESULT_SCHEMA,
        "salbench_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": dict(model),
        "dataset": dict(dataset),
        "protocol": {"name": protocol, "params": dict(params)},
        "seed": int(seed),
        "n_images": len(names),
        "image_names": list(names),
        "metrics": metrics_block(scores),
        "wall_time_s": dict(wall_time_s or {}),
        "predictions": None if predictions is None else dict(predictions),
    }


def write_result(path: str | os.PathLike, result: Mapping[str, Any]) -> Path:
    """Validate and write a results file atomically."""
    validate_result(result, source=str(path))
    return atomic_write_json(path, result)


def validate_result(result: Mapping[str, Any], *, source: str = "<result>") -> None:
    """Raise ValueError unless ``result`` looks like a salbench results record."""
    if not isinstance(result, Mapping):
        raise ValueError(f"{source}: a results file must hold a JSON object")
    missing = [k for k in _REQUIRED_KEYS if k not in result]
    if missing:
        raise ValueError(f"{source}: not a salbench results file (missing {', '.join(missing)})")
    if result["schema"] != RESULT_SCHEMA:
        raise ValueError(f"{source}: unsupported schema {result['schema']!r} (expected {RESULT_SCHEMA})")
    for name, block in result["metrics"].items():
        if len(block.get("per_image", [])) != result["n_images"]:
            raise ValueError(f"{source}: metric {name} has {len(block.get('per_image', []))} "
                             f"per-image values for {result['n_images']} images")


def load_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one results file; the path is kept under ``_path``."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    validate_result(result, source=str(path))
    result["_path"] = str(path)
    return result


def load_results(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every results file under ``root`` (recursively), sorted by path.

    JSON files that are not salbench results (no ``schema`` key naming a
    salbench result) are ignored; a file that claims to be one but is broken
    raises ValueError.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such results directory")
    found = []
    for path in sorted(root.rglob("*.json")):
        try:
            head = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(head, dict) and str(head.get("schema", "")).startswith("salbench.result"):
            found.append(load_result(path))
    return found


def results_to_dataframe(results: Iterable[Mapping[str, Any]]):
    """One row per (results file, metric): model, dataset, split, protocol, metric, mean, CI."""
    import pandas as pd

    rows = []
    for r in results:
        for metric, block in r["metrics"].items():
            rows.append({
                "model": r["model"]["name"],
                "checkpoint": (r["model"].get("checkpoint") or {}).get("sha256", "")[:12] or "-",
                "dataset": r["dataset"]["name"],
                "split": r["dataset"].get("split"),
                "protocol": r["protocol"]["name"],
                "seed": r["seed"],
                "metric": metric,
                "mean": block["mean"],
                "ci95_low": block["ci95"][0],
                "ci95_high": block["ci95"][1],
                "higher_is_better": block.get("higher_is_better"),
                "n_images": r["n_images"],
                "path": r.get("_path"),
            })
    return pd.DataFrame(rows)


def quantize_predictions(predictions) -> list[np.ndarray] | np.ndarray:
    """Round predictions to float16, the compact form a results file stores.

    Score ``quantize_predictions(p)`` rather than ``p`` and :func:`save_predictions`
    keeps float16 (about three significant digits, plenty for a saliency map)
    while ``salbench check`` recomputes exactly the scored values.
    """
    maps = _as_maps(predictions)
    out = [m.astype(np.float16).astype(np.float32) for m in maps]
    if any(not np.isfinite(m).all() for m in out):
        raise ValueError("predictions overflow float16 (values beyond 65504) or contain NaN")
    return np.stack(out) if len({m.shape for m in out}) == 1 else out


def _as_maps(predictions) -> list[np.ndarray]:
    """A stack (N, h, w) or a sequence of 2-D maps (sizes may differ) as a list of arrays."""
    maps = [np.asarray(m) for m in predictions]
    for i, m in enumerate(maps):
        if m.ndim != 2:
            raise ValueError(f"prediction {i} has shape {m.shape}; expected a 2-D map")
    if not maps:
        raise ValueError("no predictions to store")
    return maps


def save_predictions(path: str | os.PathLike, predictions, names: list[str]) -> dict[str, Any]:
    """Store predictions losslessly and compactly (``.npz``); describe them for a results file.

    ``salbench check`` recomputes an entry from exactly these stored values, so
    they must be the values that were scored: maps that float16 represents
    exactly (see :func:`quantize_predictions`) are stored as float16, anything
    else as float32 (a model's output type). Maps of different sizes are stored
    one array per image.

    Returns
    -------
    dict
        ``{"file", "sha256", "shape", "dtype"}`` (``shape`` is None for ragged maps).
    """
    path = Path(path)
    maps = _as_maps(predictions)
    if len(maps) != len(names):
        raise ValueError(f"{len(maps)} predictions for {len(names)} image names")
    if any(not np.isfinite(m).all() for m in maps):
        raise ValueError("predictions contain NaN or infinity")
    as32 = [m.astype(np.float32) for m in maps]
    if any(not np.array_equal(a, m) for a, m in zip(as32, maps)):
        raise ValueError("predictions are not representable in float32 without loss; round them first")
    lossless16 = all(np.array_equal(a.astype(np.float16).astype(np.float32), a) for a in as32)
    dtype = np.float16 if lossless16 else np.float32
    ragged = len({m.shape for m in maps}) > 1
    arrays = ({f"prediction_{i:05d}": a.astype(dtype) for i, a in enumerate(as32)} if ragged
              else {"predictions": np.stack(as32).astype(dtype)})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, names=np.asarray(names), **arrays)
    shape = None if ragged else [len(maps), *maps[0].shape]
    return {"file": path.name, "sha256": file_sha256(path), "shape": shape, "dtype": np.dtype(dtype).name}


def load_predictions_npz(path: str | os.PathLike) -> tuple[list[np.ndarray] | np.ndarray, list[str]]:
    """Read predictions written by :func:`save_predictions` as float32.

    Returns an (N, h, w) array, or a list of 2-D arrays when the sizes differ.
    """
    with np.load(path, allow_pickle=False) as z:
        names = [str(n) for n in z["names"]]
        if "predictions" in z.files:
            return z["predictions"].astype(np.float32), names
        return [z[f"prediction_{i:05d}"].astype(np.float32) for i in range(len(names))], names
