"""Everything ``salbench check`` verifies without the data (cheap; the leaderboard's verification status).

* the record is valid (a truncated, empty or malformed file is an error);
* it sets no ``tolerances`` of its own (refused: tolerances belong to the checker);
* the protocol rebuilt from the recorded name and parameters applies exactly the
  recorded parameters (an unknown, unread or missing parameter is an error);
* recorded counts are consistent and bounded (``dataset.n_files == n_images +
  n_skipped``, at most :data:`MAX_CHECK_IMAGES`; dataset options ``n_*`` at most
  ``n_files``; integer protocol parameters at most :data:`MAX_PROTOCOL_INT`),
  so that a tampered record cannot make ``check`` allocate without bound;
* the predictions file exists, hashes to the recorded SHA-256 and holds exactly
  the recorded image names (a folder record: its digest matches its hashes);
* an entry scored with metric-specific maps records parameters this salbench derives
  the maps with (:func:`recorded_maps`);
* the metric set is the one the entry computed (:func:`recorded_metrics`: its
  ``protocol.metrics``; every metric is installed here), every direction
  (``higher_is_better``) is the registry's, and every mean, CI, ``n`` and
  ``n_excluded`` follows from the recorded per-image values;
* a model entry names a registered model (:func:`salbench.check.model.model_audit`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from salbench.check.report import Drift, Verification

DEFAULT_TOLERANCE = 1e-6
#: Largest dataset a results file may name (images); the largest public sets have ~10^5.
MAX_CHECK_IMAGES = 1_000_000
#: Largest integer protocol parameter ``check`` rebuilds a protocol with (e.g. ``splits``, ``n_other``).
MAX_PROTOCOL_INT = 1_000_000  # 10x the largest default (salicon n_random=100000)


def check_tolerance(tolerance: float | None) -> float:
    """The tolerance of every comparison: ``tolerance``, else :data:`DEFAULT_TOLERANCE`.

    Raises
    ------
    ValueError
        Not a finite number >= 0.
    """
    if tolerance is None:
        return DEFAULT_TOLERANCE
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        tol = math.nan
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"--tolerance must be a finite number >= 0, not {tolerance!r}")
    return tol


def _json_normal(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=list))


def _big_ints(obj: Any, limit: int, where: str = "") -> list[str]:
    """``key=value`` of every integer in ``obj`` (nested) whose magnitude exceeds ``limit``."""
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int):
        return [f"{where}={obj}"] if abs(obj) > limit else []
    if isinstance(obj, float):
        return [f"{where}={obj!r}"] if not math.isfinite(obj) else []
    if isinstance(obj, Mapping):
        return [x for k, v in obj.items() for x in _big_ints(v, limit, f"{where}.{k}" if where else str(k))]
    if isinstance(obj, (list, tuple)):
        return [x for i, v in enumerate(obj) for x in _big_ints(v, limit, f"{where}[{i}]")]
    return []


def recorded_metrics(result: Mapping[str, Any]) -> list[str]:
    """The metric set an entry computed: its ``protocol.metrics``, else every metric of its protocol then.

    An entry written before ``protocol.metrics`` existed computed every metric its
    protocol reported: the built-in metrics the protocol reports, plus the plugin
    metrics installed at the time, which are exactly the non-built-in blocks it
    holds. So a metric plugin installed since adds no metric to it (no drift), and a
    deleted built-in block is still found missing.
    """
    protocol = result["protocol"]
    if "metrics" in protocol:
        return list(protocol["metrics"])
    from salbench.metrics.registry import BUILTIN_METRICS
    from salbench.protocols import PROTOCOLS

    cls = PROTOCOLS.get(protocol["name"])
    builtins = [m for m in cls.available_metrics() if m in BUILTIN_METRICS] if cls is not None else []
    return builtins + [m for m in result["metrics"] if m not in BUILTIN_METRICS]


def _not_installed(chosen: list[str]) -> str | None:
    """The error line for the first metric of ``chosen`` the registry lacks here, else None."""
    from salbench.metrics import METRICS
    from salbench.metrics.registry import plugin_failures

    for m in chosen:
        if m not in METRICS:
            failed = plugin_failures().get(m)
            why = f"its plugin failed to load: {failed}" if failed else "is its plugin installed?"
            return f"the entry computed metric {m!r}, which is not in the metric registry here ({why})"
    return None


def rebuild_protocol(result: Mapping[str, Any], errors: list[str], cache: dict | None = None):
    """The protocol the record names, built from its parameters and metric set; None (with ``errors``) if it cannot be.

    The protocol must apply exactly the recorded parameters: an unknown, unread or
    missing parameter is an error (older records are migrated first, see
    :mod:`salbench.results.migrate`). It computes exactly :func:`recorded_metrics`: a
    metric that is not installed here (a plugin's) or that the protocol cannot supply
    is an error.
    """
    from salbench.protocols import get_protocol

    name = result["protocol"]["name"]
    recorded = dict(result["protocol"]["params"])
    if recorded.get("name", name) != name:
        errors.append(f"protocol parameters name {recorded.get('name')!r} but the protocol is {name!r}")
        return None
    params = {k: v for k, v in recorded.items() if k != "name"}
    big = _big_ints(params, MAX_PROTOCOL_INT)
    if big:
        errors.append(f"protocol parameter {big[0]} is beyond check's bound ({MAX_PROTOCOL_INT}); refused "
                      "before any work")
        return None
    chosen = recorded_metrics(result)
    missing = _not_installed(chosen)
    if missing:
        errors.append(missing)
        return None
    key = json.dumps([name, params, chosen], sort_keys=True, default=str)
    protocols = cache.setdefault("_protocols", {}) if cache is not None else {}
    if key not in protocols:
        try:
            protocols[key] = get_protocol(name, metrics=chosen, **params)
        except (ValueError, TypeError) as exc:
            errors.append(f"protocol {name} cannot be rebuilt from the recorded parameters and metrics: {exc}")
            return None
    proto = protocols[key]
    applied = _json_normal(proto.params)
    wanted = _json_normal({"name": name, **params})
    if applied != wanted:
        keys = sorted(set(applied) | set(wanted))
        diff = [k for k in keys if applied.get(k, "<absent>") != wanted.get(k, "<absent>")]
        shown = ", ".join(f"{k}: recorded {wanted.get(k, '<absent>')!r}, applied {applied.get(k, '<absent>')!r}"
                          for k in diff[:3])
        errors.append(f"protocol {name} applies other parameters than recorded ({shown})")
        return None
    return proto


def _check_counts(result: Mapping[str, Any], errors: list[str]) -> None:
    ds = result["dataset"]
    n, n_skipped = result["n_images"], result["n_skipped"]
    n_files = ds.get("n_files")
    if not (isinstance(n_files, int) and not isinstance(n_files, bool)):
        errors.append(f"dataset.n_files must be an integer, not {n_files!r}")
        return
    if n_files > MAX_CHECK_IMAGES:
        errors.append(f"dataset.n_files={n_files} is beyond check's bound ({MAX_CHECK_IMAGES}); refused")
        return
    if n_files != n + n_skipped:
        errors.append(f"dataset.n_files={n_files} but the record scores {n} images and skips {n_skipped}")
    for key, value in (ds.get("options") or {}).items():
        if key.startswith("n_") and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and value > n_files:
            errors.append(f"dataset option {key}={value} exceeds the recorded n_files={n_files}; refused "
                          "before opening the dataset")


def excluded_count(values: Mapping[str, np.ndarray]) -> int:
    """Images undefined in every metric of ``values`` (metric -> per-image float array)."""
    if not values:
        return 0
    return int((~np.isfinite(np.vstack(list(values.values())))).all(axis=0).sum())


def _static_drifts(entry: str, result: Mapping[str, Any], proto, tol: float) -> list[Drift]:
    """Metric set, directions, and the summaries derived from the recorded per-image values."""
    values = {m: np.array([np.nan if x is None else x for x in b["per_image"]], dtype=np.float64)
              for m, b in result["metrics"].items()}
    drifts = set_and_direction_drifts(entry, result, proto)
    for metric, v in values.items():
        drifts += summary_drifts(entry, metric, result["metrics"][metric], v, tol, derived_from="per-image values")
    derived = excluded_count(values)
    if derived != result["n_excluded"]:
        drifts.append(Drift(entry, "n_excluded", "count", result["n_excluded"], derived,
                            note=f"recorded {result['n_excluded']} images excluded, the per-image values "
                                 f"exclude {derived}"))
    return drifts


def set_and_direction_drifts(entry: str, result: Mapping[str, Any], proto) -> list[Drift]:
    """The recorded metric set against the protocol's, recorded directions against the registry's."""
    from salbench.metrics import METRICS

    drifts = []
    recorded, expected = list(result["metrics"]), list(proto.metrics)
    for m in expected:
        if m not in recorded:
            drifts.append(Drift(entry, m, "metric set", None, None,
                                note=f"computed by protocol {proto.name} but missing from the results file"))
    for m in recorded:
        if m not in expected:
            drifts.append(Drift(entry, m, "metric set", None, None,
                                note=f"in the results file but not computed by protocol {proto.name}"))
    for m in recorded:
        hib = result["metrics"][m]["higher_is_better"]
        info = METRICS.get(m)
        if info is not None and bool(hib) != bool(info.higher_is_better):
            drifts.append(Drift(entry, m, "direction", hib, bool(info.higher_is_better),
                                note=f"recorded higher_is_better={str(hib).lower()}, the metric registry says "
                                     f"{str(bool(info.higher_is_better)).lower()}"))
    return drifts


def summary_drifts(entry: str, metric: str, block: Mapping[str, Any], values: np.ndarray, tol: float,
                   derived_from: str = "") -> list[Drift]:
    """Mean, CI and ``n`` of a metric block against those of ``values``."""
    from salbench.stats import mean_ci95

    mean, ci = mean_ci95(values)
    n = int(np.isfinite(values).sum())
    out = []
    suffix = f" (from the {derived_from})" if derived_from else ""
    if not close(block["mean"], mean, tol):
        out.append(Drift(entry, metric, "mean" + suffix, block["mean"], mean, tol))
    for label, old, new in (("ci95 low", block["ci95"][0], ci[0]), ("ci95 high", block["ci95"][1], ci[1])):
        if not close(old, new, tol):
            out.append(Drift(entry, metric, label + suffix, old, new, tol))
    if block["n"] != n:
        out.append(Drift(entry, metric, "n" + suffix, block["n"], n))
    return out


def close(old: float | None, new: float, tol: float) -> bool:
    """Equal within ``tol``; an undefined value (stored as None) must stay undefined."""
    if old is None:
        return not np.isfinite(new)
    return bool(np.isfinite(new) and abs(new - old) <= tol)


def _predictions_audit(result: Mapping[str, Any], path: Path, errors: list[str], *, hash_files: bool = True) -> None:
    """The stored predictions exist, hash as recorded and hold the recorded names (folder: digest)."""
    from salbench.io.digest import file_sha256
    from salbench.io.map_store import open_stored_predictions
    from salbench.results import folder_digest

    pred = result.get("predictions")
    if not pred:
        errors.append("no predictions recorded to recompute from")
        return
    if pred.get("kind", "stored") == "folder":
        if folder_digest(result["image_names"], pred["map_sha256"]) != pred["sha256"]:
            errors.append("predictions.sha256 is not the digest of the recorded map hashes")
        return
    pred_path = path.parent / pred["file"]
    if not pred_path.is_file():
        errors.append(f"stored predictions {pred_path} are missing")
        return
    if hash_files and file_sha256(pred_path) != pred["sha256"]:
        errors.append(f"stored predictions {pred_path} changed (sha256 differs from the results file; "
                      "re-run salbench eval to make a new entry)")
        return
    try:
        with open_stored_predictions(pred_path) as sp:
            names = list(sp.names)
    except (ValueError, OSError) as exc:
        errors.append(str(exc))
        return
    if len(names) != len(result["image_names"]) or set(names) != set(result["image_names"]):
        # the file is indexed by name: its order may differ (maps stored as workers finished them)
        errors.append(f"stored predictions {pred_path.name} are for other images than the results file "
                      f"({len(names)} maps, {result['n_images']} image names)")


def recorded_maps(result: Mapping[str, Any]) -> tuple[str, Any]:
    """``(maps, MapDerivation or None)`` the entry was scored with (``maps`` absent: raw, the model's own maps).

    Raises
    ------
    ValueError
        An unknown ``maps``, or metric-specific maps whose recorded parameters cannot be rebuilt.
    """
    from salbench.protocols.base import MAPS_CHOICES, MODEL_MAPS
    from salbench.protocols.metric_maps import MapDerivation

    maps = result.get("maps", MODEL_MAPS)
    if maps not in MAPS_CHOICES:
        raise ValueError(f"maps {maps!r} is not one of {', '.join(MAPS_CHOICES)}")
    if maps == MODEL_MAPS:
        return maps, None
    derivation = result.get("map_derivation")
    if not isinstance(derivation, Mapping) or not isinstance(derivation.get("parameters"), Mapping):
        raise ValueError("metric-specific maps without map_derivation.parameters")
    return maps, MapDerivation.from_parameters(derivation["parameters"])


def audit(result: Mapping[str, Any], path: Path, tol: float, cache: dict | None, *,
          hash_files: bool = True) -> tuple[list[str], list[Drift], Any]:
    """Everything checkable without the data: ``(errors, drifts, protocol or None)``."""
    entry = path.name
    errors: list[str] = []
    if "tolerances" in result:
        errors.append("the results file sets its own tolerances; a results file cannot (remove the key; "
                      "use salbench check --tolerance)")
    _check_counts(result, errors)
    from salbench.check.model import model_audit

    unknown_model = model_audit(result)
    if unknown_model:
        errors.append(unknown_model)
    proto = rebuild_protocol(result, errors, cache)
    try:
        recorded_maps(result)
    except ValueError as exc:
        errors.append(f"metric-specific maps cannot be rebuilt: {exc}")
    drifts = _static_drifts(entry, result, proto, tol) if proto is not None else []
    _predictions_audit(result, path, errors, hash_files=hash_files)
    return errors, drifts, proto


def verification_status(result: Mapping[str, Any], *, hash_files: bool = True) -> Verification:
    """Whether a loaded results entry can be trusted without recomputing it (cheap).

    Checks the record against itself, the metric registry and its protocol, and
    that its predictions file is present and hashes as recorded (``hash_files``;
    a folder record's maps are hashed only by ``salbench check``). No dataset is
    opened. The leaderboard marks entries whose status is not ``ok``.

    Parameters
    ----------
    result : mapping
        As returned by :func:`~salbench.results.load_result` (with ``_path``).
    """
    path = Path(result.get("_path", "<result>"))
    try:
        errors, drifts, _ = audit(result, path, DEFAULT_TOLERANCE, None, hash_files=hash_files)
    except Exception as exc:  # noqa: BLE001 - a status, never a crash of the table
        return Verification(False, (f"cannot verify: {type(exc).__name__}: {exc}",))
    problems = tuple(errors) + tuple(d.detail for d in drifts)
    return Verification(not problems, problems)
