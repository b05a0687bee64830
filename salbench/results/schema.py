"""Schema ``salbench.result/2``: what a results file holds, how a record is built, and its validation.

``schema, salbench_version, created, model, dataset, protocol {name, params, metrics}, seed,
n_images, n_skipped, n_excluded, image_names, metrics {name: {mean, ci95, n,
per_image, higher_is_better}}, wall_time_s, predictions``. ``predictions`` is
``{"kind": "stored", "format", "file", "sha256", "size", "n", "shape", "dtype",
"dtypes"}`` or ``{"kind": "folder", "path", "n", "map_sha256": [...], "sha256"}``.
``file`` is a name in the results file's directory (no path). A results file
never carries ``tolerances`` (``salbench check`` refuses one that does). Optional:
``updated`` (when ``salbench check --update`` last rewrote it), ``migrated``
(``{"from": <older schema>, "by": "salbench <version>"}``); what the data side counted
(written by ``salbench eval``, recomputed by ``salbench check``): ``ground_truth``
(``{"dropped_fixations", "recorded_fixations", "images_with_dropped_fixations"}`` over the
scored images, :func:`ground_truth_counts`) and ``n_aspect_mismatch`` (predictions stretched
to their image's aspect ratio); ``maps`` with ``map_derivation`` for an entry scored with
metric-specific maps (``maps: "metric-specific"``, the stored predictions then natural-log
densities; absent, or ``"raw"``: every metric scored the model's own map).

``protocol.metrics`` is the metric set the evaluation computed (``--metrics``, default
every metric the protocol reports), registry names in registry order; ``salbench check``
rebuilds the protocol with exactly that set. Entries written before it existed lack it:
they computed every metric of their protocol at the time (the built-in metrics the
protocol reports, plus any plugin metric whose block they hold), and ``check`` reads
them so (:func:`salbench.check.audit.recorded_metrics`); ``check --update`` writes the
field.

Files of an older schema are not read here: ``salbench check --update`` migrates
them (:mod:`salbench.results.migrate`).
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Iterable, Mapping

import numpy as np

from salbench import __version__
from salbench.stats import mean_ci95

RESULT_SCHEMA = "salbench.result/2"
#: Schemas of older salbench versions: refused here, read only by :mod:`salbench.results.migrate`.
LEGACY_SCHEMAS = ("salbench.result/1",)
REQUIRED_KEYS = ("schema", "model", "dataset", "protocol", "seed", "n_images", "n_skipped", "n_excluded",
                 "image_names", "metrics")
BLOCK_KEYS = ("mean", "ci95", "n", "per_image", "higher_is_better")
HEX64 = re.compile(r"[0-9a-f]{64}")
#: Keys of a record's ``ground_truth`` block (counts over the scored images).
GROUND_TRUTH_KEYS = ("dropped_fixations", "recorded_fixations", "images_with_dropped_fixations")


class ResultsFileError(ValueError):
    """A results file that cannot be read or is not a valid record (the message names it)."""


def is_number(x) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_count(x, low: int = 0) -> bool:
    """An int (not a bool) of at least ``low``."""
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


def duplicates(names: list[str]) -> list[str]:
    """Names that occur more than once, each once, in order of their second occurrence."""
    seen, dups = set(), []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    return dups


# -- building ------------------------------------------------------------------------------------
def metrics_block(scores: Mapping[str, Iterable[float]]) -> dict[str, dict[str, Any]]:
    """Per-metric ``{"mean", "ci95", "n", "per_image", "higher_is_better"}`` from per-image scores.

    Non-finite per-image values (a metric undefined on that image) are stored as
    ``None`` so that the JSON stays strict, and left out of the mean and of ``n``.
    The direction comes from the metric registry (an unknown metric is refused).
    """
    from salbench.metrics import METRICS  # deferred: imports numba

    block = {}
    for name, values in scores.items():
        if name not in METRICS:
            raise ValueError(f"metric {name!r} is not in the metric registry")
        v = np.asarray(list(values), dtype=np.float64)
        mean, ci = mean_ci95(v)
        block[name] = {
            "mean": _finite_or_none(mean),
            "ci95": [_finite_or_none(x) for x in ci],
            "n": int(np.isfinite(v).sum()),
            "per_image": [_finite_or_none(x) for x in v.tolist()],
            "higher_is_better": bool(METRICS[name].higher_is_better),
        }
    return block


def count_excluded(per_image: Mapping[str, Iterable[float | None]]) -> int:
    """Images on which every metric is undefined (no fixations: excluded from every mean)."""
    columns = [np.array([np.nan if x is None else x for x in v], dtype=np.float64) for v in per_image.values()]
    if not columns:
        return 0
    return int((~np.isfinite(np.vstack(columns))).all(axis=0).sum())


def ground_truth_counts(summary: Mapping[str, Any]) -> dict[str, int]:
    """A record's ``ground_truth`` block from :meth:`~salbench.data.SaliencyDataset.dropped_fixations_total`."""
    return {"dropped_fixations": int(summary["n_dropped"]), "recorded_fixations": int(summary["n_recorded"]),
            "images_with_dropped_fixations": int(summary["n_images"])}


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def now_utc() -> str:
    """The time stamp results files carry (``created``, ``updated``): ISO 8601, UTC, seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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
    n_skipped: int = 0,
    ground_truth: Mapping[str, int] | None = None,
    n_aspect_mismatch: int | None = None,
    metrics: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Assemble a results record.

    Parameters
    ----------
    model : mapping
        ``{"name": ..., "checkpoint": {"path", "sha256"} or None, ...}``.
    dataset : mapping
        The dataset's ``identity()`` plus the options needed to reload it.
    protocol, params, seed
        Protocol name, its complete parameter set, and the seed used.
    names : list of str
        Image file names, in the order of the per-image scores (no duplicates).
    scores : mapping
        Metric name -> per-image values.
    wall_time_s : mapping, optional
        Seconds spent per stage (``predict``, ``evaluate``, ``total``).
    predictions : mapping, optional
        Filled by :meth:`~salbench.results.ResultWriter.commit`; pass it only when
        writing with :func:`~salbench.results.write_result` (e.g. from
        :func:`~salbench.results.save_predictions`).
    n_skipped : int
        Dataset images left out because they had no prediction (a folder of maps
        scored with missing maps allowed); ``dataset["n_files"] == len(names) + n_skipped``.
    ground_truth : mapping, optional
        Fixations dropped for lying outside their image, over the scored images
        (:func:`ground_truth_counts`); recorded when given.
    n_aspect_mismatch : int, optional
        Predictions stretched to their image's aspect ratio (``ProtocolResult.n_aspect_mismatch``);
        recorded when given.
    metrics : iterable of str, optional
        The metric set the protocol computed (``protocol.metrics``; default: the
        metrics of ``scores``, in their order); it must be the metrics of ``scores``.
    """
    names = [str(n) for n in names]
    dups = duplicates(names)
    if dups:
        raise ValueError(f"duplicate image names {dups[:3]}: every scored image must have its own name")
    chosen = list(scores) if metrics is None else [str(m) for m in metrics]
    if sorted(chosen) != sorted(scores):
        raise ValueError(f"protocol metrics {chosen} differ from the scored metrics {list(scores)}")
    metrics = metrics_block(scores)
    counted = {}
    if ground_truth is not None:
        counted["ground_truth"] = {k: int(ground_truth[k]) for k in GROUND_TRUTH_KEYS}
    if n_aspect_mismatch is not None:
        counted["n_aspect_mismatch"] = int(n_aspect_mismatch)
    return {
        "schema": RESULT_SCHEMA,
        "salbench_version": __version__,
        "created": now_utc(),
        "model": dict(model),
        "dataset": dict(dataset),
        "protocol": {"name": protocol, "params": dict(params), "metrics": chosen},
        "seed": None if seed is None else int(seed),
        "n_images": len(names),
        "n_skipped": int(n_skipped),
        "n_excluded": count_excluded({k: b["per_image"] for k, b in metrics.items()}),
        "image_names": names,
        "metrics": metrics,
        **counted,
        "wall_time_s": dict(wall_time_s or {}),
        "predictions": None if predictions is None else dict(predictions),
    }


# -- validating ----------------------------------------------------------------------------------
def validate_result(result: Mapping[str, Any], *, source: str = "<result>") -> None:
    """Raise :class:`ResultsFileError` unless ``result`` is a well-formed ``salbench.result/2`` record.

    Checks the structure and types of every field ``salbench check`` and the
    tables read (not the values: that is what ``check`` recomputes). A file that
    claims the schema but is broken (missing keys, ``"metrics": []``, per-image
    lists of the wrong length, duplicate image names, a predictions file outside
    the results directory) is an error, never skipped. A file of an older schema
    is an error naming the migration command.
    """

    def bad(msg: str) -> ResultsFileError:
        return ResultsFileError(f"{source}: {msg}")

    if not isinstance(result, Mapping):
        raise bad("a results file must hold a JSON object")
    schema = result.get("schema")
    if schema != RESULT_SCHEMA:
        if schema in LEGACY_SCHEMAS:
            raise bad(f"schema {schema} is not read any more; `salbench check --update DIR` migrates it to "
                      f"{RESULT_SCHEMA}")
        if "schema" in result:
            raise bad(f"unsupported schema {schema!r} (expected {RESULT_SCHEMA})")
    missing = [k for k in REQUIRED_KEYS if k not in result]
    if missing:
        raise bad(f"not a salbench results file (missing {', '.join(missing)})")
    if not is_count(result["n_skipped"]) or not is_count(result["n_excluded"]):
        raise bad("n_skipped and n_excluded must be non-negative integers")
    n = result["n_images"]
    if not is_count(n, 1):
        raise bad(f"n_images must be a positive integer, not {n!r}")
    names = result["image_names"]
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise bad("image_names must be a list of strings")
    if len(names) != n:
        raise bad(f"{len(names)} image names for n_images={n}")
    dups = duplicates(names)
    if dups:
        raise bad(f"duplicate image names {dups[:3]}")
    for key in ("model", "dataset", "protocol"):
        if not isinstance(result[key], Mapping) or not isinstance(result[key].get("name"), str):
            raise bad(f"{key} must be an object with a name")
    if not isinstance(result["protocol"].get("params"), Mapping):
        raise bad("protocol.params must be an object")
    if "metrics" in result["protocol"]:
        chosen = result["protocol"]["metrics"]
        if not (isinstance(chosen, list) and chosen and all(isinstance(m, str) and m for m in chosen)):
            raise bad("protocol.metrics must be a non-empty list of metric names")
        if duplicates(chosen):
            raise bad(f"protocol.metrics names {duplicates(chosen)[0]!r} twice")
    if not isinstance(result["dataset"].get("split"), str):
        raise bad("dataset.split must be a string")
    seed = result["seed"]
    if seed is not None and not is_count(seed, -(2**63)):
        raise bad(f"seed must be an integer or null, not {seed!r}")
    metrics = result["metrics"]
    if not isinstance(metrics, Mapping) or not metrics:
        raise bad("metrics must be a non-empty object of metric blocks")
    for name, block in metrics.items():
        _validate_block(name, block, n, bad)
    if "tolerances" in result and not isinstance(result["tolerances"], Mapping):
        raise bad("tolerances must be an object")
    _validate_counts(result, n, bad)
    maps = result.get("maps", "raw")
    if maps not in ("raw", "metric-specific"):
        raise bad(f"maps must be 'raw' or 'metric-specific', not {maps!r}")
    if "map_derivation" in result and not isinstance(result["map_derivation"], Mapping):
        raise bad("map_derivation must be an object")  # what it holds: salbench check rebuilds and compares it
    _validate_predictions(result.get("predictions"), n, bad)


def _validate_counts(result: Mapping[str, Any], n: int, bad) -> None:
    """The optional ``ground_truth`` and ``n_aspect_mismatch`` counts are well-formed."""
    gt = result.get("ground_truth")
    if gt is not None:
        if not (isinstance(gt, Mapping) and all(is_count(gt.get(k)) for k in GROUND_TRUTH_KEYS)):
            raise bad(f"ground_truth must hold the counts {', '.join(GROUND_TRUTH_KEYS)} (integers >= 0)")
        if gt["images_with_dropped_fixations"] > n or gt["dropped_fixations"] > gt["recorded_fixations"]:
            raise bad("ground_truth counts contradict each other or n_images")
    k = result.get("n_aspect_mismatch")
    if k is not None and not (is_count(k) and k <= n):
        raise bad(f"n_aspect_mismatch must be an integer from 0 to n_images={n}, not {k!r}")


def _validate_block(name: str, block, n: int, bad) -> None:
    if not isinstance(block, Mapping):
        raise bad(f"metric {name}: expected an object")
    for key in BLOCK_KEYS:
        if key not in block:
            raise bad(f"metric {name}: missing {key}")
    per_image = block["per_image"]
    if not isinstance(per_image, list):
        raise bad(f"metric {name}: per_image must be a list")
    if len(per_image) != n:
        raise bad(f"metric {name} has {len(per_image)} per-image values for {n} images")
    if not all(x is None or is_number(x) for x in per_image):
        raise bad(f"metric {name}: per-image values must be finite numbers or null")
    if not (block["mean"] is None or is_number(block["mean"])):
        raise bad(f"metric {name}: mean must be a finite number or null")
    ci = block["ci95"]
    if not (isinstance(ci, list) and len(ci) == 2 and all(x is None or is_number(x) for x in ci)):
        raise bad(f"metric {name}: ci95 must be a list of two numbers (or nulls)")
    if not is_count(block["n"]):
        raise bad(f"metric {name}: n must be a non-negative integer")
    if not isinstance(block["higher_is_better"], bool):
        raise bad(f"metric {name}: higher_is_better must be true or false")


def _validate_predictions(pred, n: int, bad) -> None:
    if pred is None:
        return
    if not isinstance(pred, Mapping):
        raise bad("predictions must be an object or null")
    kind = pred.get("kind", "stored")
    if kind == "stored":
        file = pred.get("file")
        if not isinstance(file, str) or not file or "/" in file or "\\" in file or file.startswith("."):
            raise bad(f"predictions.file must be a file name beside the results file, not {file!r}")
        if not (isinstance(pred.get("sha256"), str) and HEX64.fullmatch(pred["sha256"])):
            raise bad("predictions.sha256 must be 64 hex digits")
    elif kind == "folder":
        if not isinstance(pred.get("path"), str) or not pred["path"]:
            raise bad("predictions.path must name the folder of maps")
        shas = pred.get("map_sha256")
        if not (isinstance(shas, list) and len(shas) == n and all(isinstance(s, str) and HEX64.fullmatch(s)
                                                                 for s in shas)):
            raise bad(f"predictions.map_sha256 must list {n} hex sha256 digests, one per image")
        if not (isinstance(pred.get("sha256"), str) and HEX64.fullmatch(pred["sha256"])):
            raise bad("predictions.sha256 must be 64 hex digits")
    else:
        raise bad(f"unknown predictions kind {kind!r} (stored or folder)")
