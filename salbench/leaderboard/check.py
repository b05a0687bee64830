"""Recompute results entries and compare everything that can be derived.

Each results file names its predictions (a stored file, or a folder of maps with
each map's hash), its dataset (with the options needed to reload it) and its
protocol with every parameter and the seed, so an entry can be recomputed from
scratch and compared value by value.

What is compared
----------------
Without the data (cheap; also what :func:`verification_status` reports):

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
* the metric set is the protocol's, every direction (``higher_is_better``) is the
  registry's, and every mean, CI, ``n`` and ``n_excluded`` follows from the
  recorded per-image values.

With the data: the dataset's content hash and size, no duplicate names, every
recorded image present; the predictions are rescored (one map at a time) with
the recorded seed and every per-image value, mean, CI, ``n`` and
``n_excluded`` is compared with the recomputation.

Outcomes per entry: ``ok``; ``drift`` (a derived value differs: per-image
value, mean, CI, counts, metric set or direction; ``--update`` rewrites these);
``error`` (the entry cannot be recomputed as recorded, or is broken or
contradicts itself: never rewritten); ``skipped`` (data absent here and the
record is consistent; a failure under ``--strict``).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

DEFAULT_TOLERANCE = 1e-6
#: Largest dataset a results file may name (images); the largest public sets have ~10^5.
MAX_CHECK_IMAGES = 1_000_000
#: Largest integer protocol parameter ``check`` rebuilds a protocol with (e.g. ``splits``, ``n_other``).
MAX_PROTOCOL_INT = 1_000_000  # 10x the largest default (salicon n_random=100000)


@dataclass
class Drift:
    """One derived value that differs from its recomputation."""

    entry: str
    metric: str
    where: str  # "mean", "ci95 low", "n", "image <name>", "metric set", "direction", ...
    old: Any
    new: Any
    tolerance: float = 0.0
    note: str = ""

    @property
    def detail(self) -> str:
        """``metric (where) was OLD, now NEW (tolerance TOL)``, or ``metric: note``."""
        if self.note:
            return f"{self.metric}: {self.note}"
        tol = f" (tolerance {self.tolerance:g})" if self.tolerance else ""
        return f"{self.metric} ({self.where}) was {_num(self.old)}, now {_num(self.new)}{tol}"

    def __str__(self) -> str:
        return f"{self.entry}: {self.detail}"


def _num(x) -> str:
    if isinstance(x, (bool, str)) or (isinstance(x, int) and not isinstance(x, bool)):
        return str(x).lower() if isinstance(x, bool) else str(x)
    return "undefined" if x is None or not np.isfinite(x) else repr(float(x))


@dataclass
class CheckReport:
    """Outcome of checking one results file.

    ``errors`` lists every problem that makes the entry unusable (one line each),
    ``drifts`` every derived value that differs; ``message`` is the one-line
    summary (the skip reason for ``skipped``).
    """

    entry: str
    status: str  # "ok", "drift", "skipped", "error"
    message: str = ""
    drifts: list[Drift] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    new_scores: dict[str, np.ndarray] = field(default_factory=dict)
    new_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verification:
    """What :func:`verification_status` found: ``ok`` and the problems, one line each."""

    ok: bool
    problems: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok

    @property
    def summary(self) -> str:
        """``"verified"`` or the first problem (with how many more)."""
        if self.ok:
            return "verified"
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return self.problems[0] + more


class _Unavailable(Exception):
    """The entry's data (dataset or folder of maps) is not on this machine."""


class _EntryError(Exception):
    """The entry cannot be recomputed as recorded (the message says why)."""


# -- data-free audit -----------------------------------------------------------------------------
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


def _rebuild_protocol(result: Mapping[str, Any], errors: list[str], cache: dict | None = None):
    """The protocol the record names, built from its parameters; None (with errors) if it cannot be."""
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
    from salbench.leaderboard.results import LEGACY_SCHEMAS

    legacy = result["schema"] in LEGACY_SCHEMAS
    key = json.dumps([name, params, legacy], sort_keys=True, default=str)
    protocols = cache.setdefault("_protocols", {}) if cache is not None else {}
    if key not in protocols:
        try:
            protocols[key] = _legacy_protocol(name, params) if legacy else get_protocol(name, **params)
        except (ValueError, TypeError) as exc:
            errors.append(f"protocol {name} cannot be rebuilt from the recorded parameters: {exc}")
            return None
    proto = protocols[key]
    if legacy:
        # Older records may name parameters that are now conventions (with the value those
        # versions used) and lack parameters added since: the protocol's from_record decides.
        return proto
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


def _legacy_protocol(name: str, params: Mapping[str, Any]):
    """A ``salbench.result/1`` record's protocol, through ``protocol_from_record`` where it exists."""
    try:
        from salbench.protocols import protocol_from_record
    except ImportError:
        from salbench.protocols import get_protocol

        return get_protocol(name, **params)
    return protocol_from_record({"name": name, **params})


def _check_counts(result: Mapping[str, Any], errors: list[str]) -> None:
    ds = result["dataset"]
    n, n_skipped = result["n_images"], result.get("n_skipped", 0)
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


def _static_drifts(entry: str, result: Mapping[str, Any], proto, tol: float) -> list[Drift]:
    """Metric set, directions, and the summaries derived from the recorded per-image values."""
    values = {m: np.array([np.nan if x is None else x for x in b["per_image"]], dtype=np.float64)
              for m, b in result["metrics"].items()}
    drifts = _set_and_direction_drifts(entry, result, proto)
    for metric, v in values.items():
        drifts += _summary_drifts(entry, metric, result["metrics"][metric], v, tol, derived_from="per-image values")
    if "n_excluded" in result:
        derived = _excluded(values)
        if derived != result["n_excluded"]:
            drifts.append(Drift(entry, "n_excluded", "count", result["n_excluded"], derived,
                                note=f"recorded {result['n_excluded']} images excluded, the per-image values "
                                     f"exclude {derived}"))
    return drifts


def _excluded(values: Mapping[str, np.ndarray]) -> int:
    if not values:
        return 0
    return int((~np.isfinite(np.vstack(list(values.values())))).all(axis=0).sum())


def _set_and_direction_drifts(entry: str, result: Mapping[str, Any], proto) -> list[Drift]:
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
        hib = result["metrics"][m].get("higher_is_better")
        info = METRICS.get(m)
        if info is not None and hib is not None and bool(hib) != bool(info.higher_is_better):
            drifts.append(Drift(entry, m, "direction", hib, bool(info.higher_is_better),
                                note=f"recorded higher_is_better={str(hib).lower()}, the metric registry says "
                                     f"{str(bool(info.higher_is_better)).lower()}"))
    return drifts


def _summary_drifts(entry: str, metric: str, block: Mapping[str, Any], values: np.ndarray, tol: float,
                    derived_from: str = "") -> list[Drift]:
    from salbench.stats import mean_ci95

    mean, ci = mean_ci95(values)
    n = int(np.isfinite(values).sum())
    out = []
    suffix = f" (from the {derived_from})" if derived_from else ""
    if not _close(block["mean"], mean, tol):
        out.append(Drift(entry, metric, "mean" + suffix, block["mean"], mean, tol))
    for label, old, new in (("ci95 low", block["ci95"][0], ci[0]), ("ci95 high", block["ci95"][1], ci[1])):
        if not _close(old, new, tol):
            out.append(Drift(entry, metric, label + suffix, old, new, tol))
    if "n" in block and block["n"] != n:
        out.append(Drift(entry, metric, "n" + suffix, block["n"], n))
    return out


def _close(old: float | None, new: float, tol: float) -> bool:
    """Equal within ``tol``; an undefined value (stored as None) must stay undefined."""
    if old is None:
        return not np.isfinite(new)
    return bool(np.isfinite(new) and abs(new - old) <= tol)


def _predictions_audit(result: Mapping[str, Any], path: Path, errors: list[str], *, hash_files: bool = True) -> None:
    """The stored predictions exist, hash as recorded and hold the recorded names (folder: digest)."""
    from salbench.io.map_store import open_stored_predictions
    from salbench.leaderboard.results import file_sha256, folder_digest

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
    if hash_files and pred.get("sha256") and file_sha256(pred_path) != pred["sha256"]:
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


def _audit(result: Mapping[str, Any], path: Path, tol: float, cache: dict | None, *,
           hash_files: bool = True) -> tuple[list[str], list[Drift], Any]:
    """Everything checkable without the data: ``(errors, drifts, protocol or None)``."""
    entry = path.name
    errors: list[str] = []
    if "tolerances" in result:
        errors.append("the results file sets its own tolerances; a results file cannot (remove the key; "
                      "use salbench check --tolerance)")
    _check_counts(result, errors)
    proto = _rebuild_protocol(result, errors, cache)
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
        As returned by :func:`~salbench.leaderboard.results.load_result` (with ``_path``).
    """
    path = Path(result.get("_path", "<result>"))
    try:
        errors, drifts, _ = _audit(result, path, DEFAULT_TOLERANCE, None, hash_files=hash_files)
    except Exception as exc:  # noqa: BLE001 - a status, never a crash of the table
        return Verification(False, (f"cannot verify: {type(exc).__name__}: {exc}",))
    problems = tuple(errors) + tuple(d.detail for d in drifts)
    return Verification(not problems, problems)


# -- recomputation -------------------------------------------------------------------------------
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
        if data_dir is None and "data" in str(exc).lower() and "duplicate" not in str(exc).lower():
            # a file dataset recorded without its folder
            raise _Unavailable(f"dataset {ds_info['name']} not available here ({exc})") from None
        raise


def _dataset(result: Mapping[str, Any], path: Path, cache: dict):
    """The recorded dataset (one open dataset kept in ``cache``), verified against the record."""
    ds_info = result["dataset"]
    key = json.dumps([ds_info["name"], ds_info["split"], _resolve_data_dir(ds_info.get("data_dir"), path),
                      ds_info.get("options") or {}], sort_keys=True, default=str)
    if cache.get("_dataset_key") != key:
        cache.pop("_records", None)  # one dataset's records at a time: entries are grouped by dataset
        cache["_dataset"] = _open_dataset(ds_info, path)
        cache["_dataset_key"] = key
    dataset = cache["_dataset"]
    names = list(dataset.names)
    if len(set(names)) != len(names):
        from salbench.leaderboard.results import _duplicates

        dups = _duplicates(names)
        raise _EntryError(f"dataset {ds_info['name']}/{ds_info['split']} has duplicate image names {dups[:3]}; "
                          "its entries cannot be checked or updated")
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
    matched = open_predictions(folder).match(list(dataset.names), allow_missing=result.get("n_skipped", 0) > 0)
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


def _score(result: Mapping[str, Any], proto, dataset, get_prediction, cache: dict):
    """Per-image scores in the recorded image order: ``{metric: ndarray}``, names."""
    names = list(result["image_names"])
    index = {n: i for i, n in enumerate(dataset.names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise _EntryError(f"images {missing[:3]} are not in dataset {result['dataset']['name']}/"
                          f"{result['dataset']['split']}")
    indices = [index[n] for n in names]
    seed = result["seed"]
    stream = _score_stream()
    if stream is not None and indices == list(range(len(dataset))):
        res = _call_stream(stream, proto, dataset, get_prediction, seed)
    elif stream is not None and "indices" in inspect.signature(stream).parameters:
        res = _call_stream(stream, proto, dataset, get_prediction, seed, indices=indices)
    else:
        # Until salbench.scoring lands: decode records once per dataset (kept for the entries
        # that follow on the same dataset), load the stored maps one at a time.
        records = cache.setdefault("_records", {})
        for k in indices:
            if dataset.names[k] not in records:
                records[dataset.names[k]] = dataset[k]
        res = proto.evaluate([get_prediction(k) for k in indices], [records[dataset.names[k]] for k in indices],
                             seed=seed)
    got = list(res.names)
    if sorted(got) != sorted(names):
        raise _EntryError("the protocol scored other images than the record names")
    order = {n: i for i, n in enumerate(got)}
    perm = np.array([order[n] for n in names], dtype=np.intp)
    return {k: np.asarray(v, dtype=np.float64)[perm] for k, v in res.scores.items()}


def _score_stream():
    try:
        from salbench.scoring import score_stream
    except ImportError:
        return None
    return score_stream


def _call_stream(stream, proto, dataset, get_prediction, seed, **extra):
    params = inspect.signature(stream).parameters
    kwargs = {"seed": seed, **extra}
    if "progress" in params:
        kwargs["progress"] = False
    return stream(proto, dataset, get_prediction, **kwargs)


def _recompute_drifts(entry: str, result: Mapping[str, Any], proto, scores: Mapping[str, np.ndarray],
                      tol: float) -> list[Drift]:
    drifts = _set_and_direction_drifts(entry, result, proto)
    for metric, block in result["metrics"].items():
        if metric not in scores:
            continue  # reported as a metric-set drift
        new = scores[metric]
        drifts += _summary_drifts(entry, metric, block, new, tol)
        for name, old_v, new_v in zip(result["image_names"], block["per_image"], new):
            if not _close(old_v, float(new_v), tol):
                drifts.append(Drift(entry, metric, f"image {name}", old_v, float(new_v), tol))
                break  # one image per metric is enough to point at the problem
    if "n_excluded" in result:
        now = _excluded({m: scores[m] for m in proto.metrics if m in scores})
        if now != result["n_excluded"]:
            drifts.append(Drift(entry, "n_excluded", "count", result["n_excluded"], now,
                                note=f"recorded {result['n_excluded']} images excluded, recomputed {now}"))
    return drifts


def check_result(result: Mapping[str, Any], *, tolerance: float | None = None,
                 cache: dict | None = None) -> CheckReport:
    """Audit and recompute one results record (as loaded by ``load_result``) and compare.

    Parameters
    ----------
    result : mapping
        A results record with its ``_path`` (set by :func:`load_result`).
    tolerance : float, optional
        Tolerance of every float comparison (default :data:`DEFAULT_TOLERANCE`);
        a results file cannot set its own.
    cache : dict, optional
        Shared between calls so that consecutive entries on the same dataset reuse
        the open dataset and rebuilt protocols.

    Returns
    -------
    CheckReport
        ``status`` is ``ok``, ``drift``, ``skipped`` or ``error`` (see the module docstring).
    """
    path = Path(result["_path"])
    entry = path.name
    tol = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"--tolerance must be a finite number >= 0, not {tolerance!r}")
    cache = {} if cache is None else cache
    try:
        errors, static, proto = _audit(result, path, tol, cache)
    except Exception as exc:  # noqa: BLE001 - one entry's failure must not stop the others
        return CheckReport(entry, "error", f"cannot audit: {type(exc).__name__}: {exc}",
                           errors=[f"cannot audit: {type(exc).__name__}: {exc}"])
    if errors:
        return CheckReport(entry, "error", errors[0], drifts=static, errors=errors)
    close = None
    try:
        dataset = _dataset(result, path, cache)
        get_prediction, close = _prediction_source(result, path, dataset)
        scores = _score(result, proto, dataset, get_prediction, cache)
    except _Unavailable as exc:
        if static:
            msg = f"{exc}; and the record contradicts itself"
            return CheckReport(entry, "error", msg, drifts=static, errors=[msg])
        return CheckReport(entry, "skipped", str(exc))
    except _EntryError as exc:
        return CheckReport(entry, "error", str(exc), errors=[str(exc)])
    except MemoryError:
        msg = "cannot recompute: out of memory"
        return CheckReport(entry, "error", msg, errors=[msg])
    except Exception as exc:  # noqa: BLE001
        msg = f"cannot recompute: {type(exc).__name__}: {exc}"
        return CheckReport(entry, "error", msg, errors=[msg])
    finally:
        if close is not None:
            close()
    drifts = _recompute_drifts(entry, result, proto, scores, tol)
    report = CheckReport(entry, "drift" if drifts else "ok", drifts=drifts,
                         new_scores={m: scores[m] for m in proto.metrics if m in scores},
                         new_names=list(result["image_names"]))
    if drifts:
        report.message = drifts[0].detail
    return report


def broken_report(path: str | os.PathLike, error: str) -> CheckReport:
    """The report of a results file that could not be read (always an error)."""
    return CheckReport(Path(path).name, "error", error, errors=[error])


def update_result(result: Mapping[str, Any], report: CheckReport) -> dict[str, Any]:
    """Return ``result`` with every derived value replaced by the recomputed one.

    The metrics block is rebuilt from the recomputation (the protocol's metric
    set, registry directions, means, CIs, ``n``), ``n_excluded`` too, plus
    ``updated`` and the salbench version that recomputed it; the dataset,
    protocol, seed, image names and predictions stay as recorded.

    Raises
    ------
    ValueError
        The report is not ``ok``/``drift`` (errors are never papered over).
    """
    from salbench import __version__
    from salbench.leaderboard.results import count_excluded, metrics_block

    if report.status not in ("ok", "drift") or not report.new_scores:
        raise ValueError(f"{report.entry}: cannot update an entry that was not recomputed ({report.message})")
    if report.new_names != list(result["image_names"]):
        raise ValueError(f"{report.entry}: recomputed for other images; not updated")
    updated = {k: v for k, v in result.items() if not k.startswith("_")}
    updated["metrics"] = metrics_block(report.new_scores)
    if "n_excluded" in updated:
        updated["n_excluded"] = count_excluded({k: b["per_image"] for k, b in updated["metrics"].items()})
    updated["salbench_version"] = __version__
    updated["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return updated
