"""One JSON results file per (model, dataset, split, protocol), in the style of mteb.

A results file is the only source of a measured leaderboard row: tables are
rendered from these files and ``salbench check`` recomputes them from the
predictions they name.

Writing an entry (what ``salbench.evaluate`` does)
--------------------------------------------------
An evaluation writes its predictions and its results file as one unit with
:class:`ResultWriter`, one map at a time::

    stem = result_stem(model, dataset, split, protocol)
    with ResultWriter(results_dir, stem) as w:
        for name, prediction in ...:            # dataset order
            stored = w.add_prediction(name, quantize_map(prediction, name))
            ...score `stored` (float64, exactly the stored values)...
        result = build_result(model=..., dataset=..., protocol=..., params=..., seed=...,
                              names=names, scores=scores, n_skipped=0)
        path = w.commit(result)                 # fills result["predictions"]

Predictions that live in the user's folder of maps are recorded, not copied:
``ResultWriter(results_dir, stem, folder=DIR)`` and ``w.add_map_file(name,
sha256_of_the_map_file)`` per scored image (``salbench.predictions``'
``m.fingerprint(k)``); ``salbench check`` re-reads the folder and verifies each
map's hash before recomputing.

The predictions file is ``<16 hex of its sha256>.predictions.npz`` beside the
JSON (:mod:`salbench.io.map_store`, streamed, hashed from the bytes written; a
map identical to an earlier one is stored once). It is named by its content
alone, so the entries of one directory that scored the same maps (one model
under several protocols) share one file: a writer whose file already exists
with the same SHA-256 reuses it, and a file is removed only once no JSON in the
directory names it. The JSON ``STEM.json`` is written last and atomically under
a directory lock (:mod:`salbench.io.entry`): a crash, a full disk or a
concurrent writer leaves the old entry or the new one, never a mix, and a
failure is one :class:`~salbench.io.errors.FileError` line naming the entry.
Leaving the ``with`` block without ``commit`` (an exception, Ctrl-C) discards
the new predictions and leaves the old entry as it was.

Schema ``salbench.result/2``
----------------------------
``schema, salbench_version, created, model, dataset, protocol {name, params}, seed,
n_images, n_skipped, n_excluded, image_names, metrics {name: {mean, ci95, n,
per_image, higher_is_better}}, wall_time_s, predictions``. ``predictions`` is
``{"kind": "stored", "format", "file", "sha256", "size", "n", "shape", "dtype",
"dtypes"}`` or ``{"kind": "folder", "path", "n", "map_sha256": [...], "sha256"}``.
``file`` is a name in the results file's directory (no path). A results file
never carries ``tolerances`` (``salbench check`` refuses one that does). Entries
whose predictions file has an older name (``STEM.predictions.<16 hex>.npz``) are
read and checked as they are; schema ``salbench.result/1`` files (one ``.npz``
named ``STEM.predictions.npz``, no ``n_excluded``/``n``) too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from salbench import __version__
from salbench.io import atomic_write_bytes
from salbench.io.atomic import is_temporary, json_bytes
from salbench.io.entry import EntryWriter
from salbench.io.errors import FileError
from salbench.io.lock import directory_lock
from salbench.io.map_store import FORMAT as PREDICTIONS_FORMAT
from salbench.io.map_store import MapStreamWriter, open_stored_predictions
from salbench.stats import mean_ci95

RESULT_SCHEMA = "salbench.result/2"
LEGACY_SCHEMAS = ("salbench.result/1",)
_REQUIRED_KEYS = ("schema", "model", "dataset", "protocol", "seed", "n_images", "image_names", "metrics")
_REQUIRED_V2 = ("n_skipped", "n_excluded")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ResultsFileError(ValueError):
    """A results file that cannot be read or is not a valid record (the message names it)."""


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def result_filename(model: str, dataset: str, split: str, protocol: str) -> str:
    """File name of a results file: ``<dataset>__<split>__<model>__<protocol>.json``."""
    return f"{result_stem(model, dataset, split, protocol)}.json"


def result_stem(model: str, dataset: str, split: str, protocol: str) -> str:
    """``<dataset>__<split>__<model>__<protocol>`` (the entry name, without ``.json``)."""
    parts = [dataset, split, model, protocol]
    bad = [p for p in parts if not p or "/" in str(p) or os.sep in str(p) or str(p).startswith(".")]
    if bad:
        raise ValueError(f"cannot name a results file after {bad[0]!r}")
    return "__".join(str(p) for p in parts)


# -- building records ----------------------------------------------------------------------------
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
    n_skipped: int = 0,
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
        Image file names, in the order of the per-image scores (no duplicates).
    scores : mapping
        Metric name -> per-image values.
    wall_time_s : mapping, optional
        Seconds spent per stage (``predict``, ``evaluate``, ``total``).
    predictions : mapping, optional
        Filled by :meth:`ResultWriter.commit`; pass it only when writing with
        :func:`write_result` (e.g. from :func:`save_predictions`).
    n_skipped : int
        Dataset images left out because they had no prediction (a folder of maps
        scored with missing maps allowed); ``dataset["n_files"] == len(names) + n_skipped``.
    """
    names = [str(n) for n in names]
    dups = _duplicates(names)
    if dups:
        raise ValueError(f"duplicate image names {dups[:3]}: every scored image must have its own name")
    metrics = metrics_block(scores)
    return {
        "schema": RESULT_SCHEMA,
        "salbench_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": dict(model),
        "dataset": dict(dataset),
        "protocol": {"name": protocol, "params": dict(params)},
        "seed": None if seed is None else int(seed),
        "n_images": len(names),
        "n_skipped": int(n_skipped),
        "n_excluded": count_excluded({k: b["per_image"] for k, b in metrics.items()}),
        "image_names": names,
        "metrics": metrics,
        "wall_time_s": dict(wall_time_s or {}),
        "predictions": None if predictions is None else dict(predictions),
    }


# -- validating ----------------------------------------------------------------------------------
def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x, low: int = 0) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


def _duplicates(names: list[str]) -> list[str]:
    seen, dups = set(), []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    return dups


def validate_result(result: Mapping[str, Any], *, source: str = "<result>") -> None:
    """Raise :class:`ResultsFileError` unless ``result`` is a well-formed salbench results record.

    Checks the structure and types of every field ``salbench check`` and the
    tables read (not the values: that is what ``check`` recomputes). A file that
    claims the schema but is broken (missing keys, ``"metrics": []``, per-image
    lists of the wrong length, duplicate image names, a predictions file outside
    the results directory) is an error, never skipped.
    """

    def bad(msg: str) -> ResultsFileError:
        return ResultsFileError(f"{source}: {msg}")

    if not isinstance(result, Mapping):
        raise bad("a results file must hold a JSON object")
    missing = [k for k in _REQUIRED_KEYS if k not in result]
    if missing:
        raise bad(f"not a salbench results file (missing {', '.join(missing)})")
    schema = result["schema"]
    if schema != RESULT_SCHEMA and schema not in LEGACY_SCHEMAS:
        raise bad(f"unsupported schema {schema!r} (expected {RESULT_SCHEMA})")
    v2 = schema == RESULT_SCHEMA
    if v2:
        missing = [k for k in _REQUIRED_V2 if k not in result]
        if missing:
            raise bad(f"missing {', '.join(missing)} (required by {RESULT_SCHEMA})")
        if not _is_int(result["n_skipped"]) or not _is_int(result["n_excluded"]):
            raise bad("n_skipped and n_excluded must be non-negative integers")
    n = result["n_images"]
    if not _is_int(n, 1):
        raise bad(f"n_images must be a positive integer, not {n!r}")
    names = result["image_names"]
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise bad("image_names must be a list of strings")
    if len(names) != n:
        raise bad(f"{len(names)} image names for n_images={n}")
    dups = _duplicates(names)
    if dups:
        raise bad(f"duplicate image names {dups[:3]}")
    for key in ("model", "dataset", "protocol"):
        if not isinstance(result[key], Mapping) or not isinstance(result[key].get("name"), str):
            raise bad(f"{key} must be an object with a name")
    if not isinstance(result["protocol"].get("params"), Mapping):
        raise bad("protocol.params must be an object")
    if not isinstance(result["dataset"].get("split"), str):
        raise bad("dataset.split must be a string")
    seed = result["seed"]
    if seed is not None and not _is_int(seed, -(2**63)):
        raise bad(f"seed must be an integer or null, not {seed!r}")
    metrics = result["metrics"]
    if not isinstance(metrics, Mapping) or not metrics:
        raise bad("metrics must be a non-empty object of metric blocks")
    for name, block in metrics.items():
        _validate_block(name, block, n, v2, bad)
    if "tolerances" in result and not isinstance(result["tolerances"], Mapping):
        raise bad("tolerances must be an object")
    _validate_predictions(result.get("predictions"), n, v2, bad)


def _validate_block(name: str, block, n: int, v2: bool, bad) -> None:
    if not isinstance(block, Mapping):
        raise bad(f"metric {name}: expected an object")
    for key in ("mean", "ci95", "per_image") + (("n", "higher_is_better") if v2 else ()):
        if key not in block:
            raise bad(f"metric {name}: missing {key}")
    per_image = block["per_image"]
    if not isinstance(per_image, list):
        raise bad(f"metric {name}: per_image must be a list")
    if len(per_image) != n:
        raise bad(f"metric {name} has {len(per_image)} per-image values for {n} images")
    if not all(x is None or _is_num(x) for x in per_image):
        raise bad(f"metric {name}: per-image values must be finite numbers or null")
    if not (block["mean"] is None or _is_num(block["mean"])):
        raise bad(f"metric {name}: mean must be a finite number or null")
    ci = block["ci95"]
    if not (isinstance(ci, list) and len(ci) == 2 and all(x is None or _is_num(x) for x in ci)):
        raise bad(f"metric {name}: ci95 must be a list of two numbers (or nulls)")
    if "n" in block and not _is_int(block["n"]):
        raise bad(f"metric {name}: n must be a non-negative integer")
    hib = block.get("higher_is_better")
    if not (hib is None and not v2) and not isinstance(hib, bool):
        raise bad(f"metric {name}: higher_is_better must be true or false")


def _validate_predictions(pred, n: int, v2: bool, bad) -> None:
    if pred is None:
        return
    if not isinstance(pred, Mapping):
        raise bad("predictions must be an object or null")
    kind = pred.get("kind", "stored")
    if kind == "stored":
        file = pred.get("file")
        if not isinstance(file, str) or not file or "/" in file or "\\" in file or file.startswith("."):
            raise bad(f"predictions.file must be a file name beside the results file, not {file!r}")
        if (v2 or "sha256" in pred) and not (isinstance(pred.get("sha256"), str) and _HEX64.fullmatch(pred["sha256"])):
            raise bad("predictions.sha256 must be 64 hex digits")
    elif kind == "folder":
        if not isinstance(pred.get("path"), str) or not pred["path"]:
            raise bad("predictions.path must name the folder of maps")
        shas = pred.get("map_sha256")
        if not (isinstance(shas, list) and len(shas) == n and all(isinstance(s, str) and _HEX64.fullmatch(s)
                                                                 for s in shas)):
            raise bad(f"predictions.map_sha256 must list {n} hex sha256 digests, one per image")
        if not (isinstance(pred.get("sha256"), str) and _HEX64.fullmatch(pred["sha256"])):
            raise bad("predictions.sha256 must be 64 hex digits")
    else:
        raise bad(f"unknown predictions kind {kind!r} (stored or folder)")


# -- reading -------------------------------------------------------------------------------------
def _no_constants(token: str):
    raise ValueError(f"{token} is not valid in strict JSON")


def _unique_keys(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def parse_result_bytes(data: bytes, source: str) -> Any:
    """Parse strict JSON (no NaN/Infinity, no duplicate keys); errors name ``source``."""
    if not data.strip():
        raise ResultsFileError(f"{source}: empty results file ({len(data)} bytes)")
    try:
        return json.loads(data, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ResultsFileError(f"{source}: not valid JSON, truncated or corrupt ({exc})") from None


def load_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one results file.

    The path is kept under ``_path`` and the SHA-256 of the bytes read under
    ``_sha256`` (``check --update`` rewrites an entry only if it is unchanged).

    Raises
    ------
    ResultsFileError
        Empty, truncated or invalid JSON, or not a valid record (the message names the file).
    FileNotFoundError
        No such file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"results file {path} not found") from None
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    result = parse_result_bytes(data, str(path))
    validate_result(result, source=str(path))
    result["_path"] = str(path)
    result["_sha256"] = hashlib.sha256(data).hexdigest()
    return result


def _entry_named(name: str) -> bool:
    """``a__b__c__d.json``: the name ``result_filename`` gives (``*.fit.json`` has three parts)."""
    return name.endswith(".json") and len(name[: -len(".json")].split("__")) >= 4


def result_paths(root: str | os.PathLike) -> list[Path]:
    """The results files under ``root`` (recursively), sorted.

    A ``.json`` is an entry when it is named like one (``<dataset>__<split>__<model>__<protocol>.json``)
    or its text names the ``salbench.result`` schema. Hidden files and folders
    and salbench's temporary files (``.NAME.*.tmp*``) never are; other JSON
    files (a fitted ``center_bias``'s ``*.fit.json``, tables) are ignored.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such results directory")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: is a file, not a results directory")
    found = []
    for path in sorted(root.rglob("*.json")):
        rel = path.relative_to(root).parts
        if any(part.startswith(".") for part in rel) or is_temporary(path.name) or not path.is_file():
            continue
        if _entry_named(path.name):
            found.append(path)
            continue
        try:
            claims = b"salbench.result/" in path.read_bytes()
        except OSError:
            claims = False
        if claims:
            found.append(path)
    return found


@dataclass
class ScannedEntry:
    """One results file found by :func:`scan_results`: its record, or why it could not be read."""

    path: Path
    result: dict[str, Any] | None
    error: str | None = None


def scan_results(root: str | os.PathLike) -> list[ScannedEntry]:
    """Every results file under ``root``, each loaded or with its error (for ``salbench check``)."""
    out = []
    for path in result_paths(root):
        try:
            out.append(ScannedEntry(path, load_result(path)))
        except (ResultsFileError, OSError) as exc:
            out.append(ScannedEntry(path, None, str(exc)))
    return out


def load_results(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every results file under ``root`` (see :func:`result_paths`), sorted by path.

    Raises
    ------
    ResultsFileError
        The first results file that is empty, truncated, not valid JSON or not a
        valid record: a broken entry is an error, never silently dropped.
    """
    return [load_result(p) for p in result_paths(root)]


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


# -- predictions ---------------------------------------------------------------------------------
def quantize_map(prediction, name: str = "prediction") -> np.ndarray:
    """One map rounded to float16 (returned as float32), the compact form a results file stores.

    Score ``quantize_map(p)`` rather than ``p``: the predictions file then keeps
    float16 (about three significant digits, plenty for a saliency map) while
    ``salbench check`` recomputes exactly the scored values.
    """
    m = np.asarray(prediction)
    if m.ndim != 2:
        raise ValueError(f"{name} has shape {m.shape}; expected a 2-D map")
    with np.errstate(over="ignore"):
        out = m.astype(np.float16).astype(np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} overflows float16 (values beyond 65504) or contains NaN")
    return out


def quantize_predictions(predictions) -> list[np.ndarray] | np.ndarray:
    """:func:`quantize_map` over a stack (N, h, w) or a sequence of 2-D maps."""
    maps = _as_maps(predictions)
    out = [quantize_map(m, f"prediction {i}") for i, m in enumerate(maps)]
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
    """Write predictions to ``path`` (atomically) and describe them for a results file.

    The stand-alone form of what :class:`ResultWriter` does inside an entry:
    each map is stored exactly (float16 where that is lossless, else float32,
    else float64), one member per distinct map (a repeated map is stored once).

    Returns
    -------
    dict
        ``{"kind": "stored", "format", "file", "sha256", "size", "n", "shape", "dtype", "dtypes"}``
        (``shape`` is None for maps of different sizes, ``dtype`` "mixed" when they differ).
    """
    from salbench.io import atomic_path

    path = Path(path)
    maps = _as_maps(predictions)
    if len(maps) != len(names):
        raise ValueError(f"{len(maps)} predictions for {len(names)} image names")
    with atomic_path(path, what="predictions file") as tmp:
        with open(tmp, "wb") as fh:
            writer = MapStreamWriter(fh)
            try:
                for name, m in zip(names, maps):
                    writer.add(name, m)
                info = writer.finish()
            except BaseException:
                writer.abort()
                raise
    return _stored_record(path.name, info)


def _stored_record(file: str, info: Mapping[str, Any]) -> dict[str, Any]:
    dtypes = dict(info["dtypes"])
    return {"kind": "stored", "format": PREDICTIONS_FORMAT, "file": file, "sha256": info["sha256"],
            "size": info["size"], "n": info["n"], "shape": info["shape"],
            "dtype": next(iter(dtypes)) if len(dtypes) == 1 else "mixed", "dtypes": dtypes}


def load_predictions_npz(path: str | os.PathLike) -> tuple[list[np.ndarray] | np.ndarray, list[str]]:
    """Read a whole predictions file (either format): ``(maps, names)``.

    Returns an (N, h, w) array, or a list of 2-D arrays when the sizes differ;
    float32 unless a map needed float64. Loads every map: to stream, use
    :func:`salbench.io.map_store.open_stored_predictions`.
    """
    with open_stored_predictions(path) as sp:
        maps = [sp.load(i) for i in range(len(sp))]
        names = list(sp.names)
    if all(np.array_equal(m.astype(np.float32), m) for m in maps):
        maps = [m.astype(np.float32) for m in maps]
    if len({m.shape for m in maps}) == 1:
        return np.stack(maps), names
    return maps, names


def folder_digest(names: Iterable[str], map_sha256: Iterable[str]) -> str:
    """SHA-256 identifying a folder's maps: of ``"name\\tsha256\\n"`` per image, in scoring order."""
    h = hashlib.sha256()
    for name, sha in zip(names, map_sha256):
        h.update(f"{name}\t{sha}\n".encode("utf-8"))
    return h.hexdigest()


# -- writing -------------------------------------------------------------------------------------
class ResultWriter:
    """Write one results entry (its predictions, then its JSON) as one unit.

    Parameters
    ----------
    results_dir : path
        Created if missing; a file there is a :class:`~salbench.io.errors.FileError`
        naming it.
    stem : str
        Entry name, :func:`result_stem` (``<dataset>__<split>__<model>__<protocol>``).
    folder : path, optional
        The predictions are a folder of map files the user keeps: record each map's
        hash with :meth:`add_map_file` instead of storing maps.

    See the module docstring for the protocol. Use as a context manager: leaving
    it without :meth:`commit` discards what was written.
    """

    def __init__(self, results_dir: str | os.PathLike, stem: str, *, folder: str | os.PathLike | None = None):
        self._entry = EntryWriter(results_dir, stem)
        self.json_path = self._entry.json_path
        self.folder = None if folder is None else Path(folder)
        self.names: list[str] = []
        self._seen: set[str] = set()
        self._map_sha256: list[str] = []
        self._maps: MapStreamWriter | None = None
        self._done = False
        # add_* may be called from scoring worker threads (score_stream's get_prediction)
        self._lock = threading.RLock()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._done:
            self.abort()

    def _add_name(self, name: str) -> str:
        """Validate a new name (call with the lock held)."""
        if self._done:
            raise ValueError(f"{self.json_path}: entry already committed or aborted")
        name = str(name)
        if name in self._seen:
            raise ValueError(f"duplicate image name {name!r}: each image is scored once")
        return name

    def add_prediction(self, name: str, prediction) -> np.ndarray:
        """Append one map to the predictions file; return it as float64, exactly as stored.

        Score the returned map (or the one passed in: the values are equal). A map
        is stored in float16 when that is lossless (pass :func:`quantize_map` output
        to get that), else float32, else float64. Thread-safe; maps may come in any
        order (the file is indexed by name).

        Raises
        ------
        ValueError
            Duplicate name; not a finite 2-D numeric map; a folder-backed writer.
        FileError
            The write failed (e.g. disk full): the message names the entry; the
            previous entry is unchanged and the writer is closed.
        """
        if self.folder is not None:
            raise ValueError("this entry records a folder of maps: use add_map_file")
        with self._lock:
            name = self._add_name(name)
            try:
                if self._maps is None:
                    self._maps = MapStreamWriter(self._entry.open_companion())
                stored = self._maps.add(name, prediction)
            except OSError as exc:
                self.abort()
                raise self._entry.error(exc, "could not write the predictions") from exc
            self.names.append(name)
            self._seen.add(name)
            return stored

    def add_map_file(self, name: str, sha256: str) -> None:
        """Record the SHA-256 of the map file scored for image ``name`` (folder-backed entries).

        Thread-safe; any order (the record lists the hashes in ``image_names`` order).
        """
        if self.folder is None:
            raise ValueError("pass folder= to ResultWriter to record a folder of maps")
        if not (isinstance(sha256, str) and _HEX64.fullmatch(sha256)):
            raise ValueError(f"map of {name}: {sha256!r} is not a hex sha256")
        with self._lock:
            name = self._add_name(name)
            self.names.append(name)
            self._seen.add(name)
            self._map_sha256.append(sha256)

    def commit(self, result: Mapping[str, Any]) -> Path:
        """Finish the predictions, then write ``result`` as the entry's JSON; return its path.

        ``result`` comes from :func:`build_result`; its ``image_names`` must be
        the names added (in any order). Its ``predictions`` is filled here.

        Raises
        ------
        ValueError
            The names differ, or the record is invalid (nothing is written).
        FileError
            A write failed: the previous entry is unchanged (the message says so).
        """
        with self._lock:
            return self._commit(result)

    def _commit(self, result: Mapping[str, Any]) -> Path:
        if self._done:
            raise ValueError(f"{self.json_path}: entry already committed or aborted")
        record = {k: v for k, v in result.items() if not k.startswith("_")}
        image_names = list(record.get("image_names", []))
        if len(image_names) != len(self.names) or set(image_names) != self._seen:
            self.abort()
            raise ValueError(f"{self.json_path}: the record's image_names differ from the {len(self.names)} "
                             "predictions added")
        if "tolerances" in record:
            self.abort()
            raise ValueError("a results file cannot set its own tolerances")
        sha = None
        try:
            if self.folder is not None:
                by_name = dict(zip(self.names, self._map_sha256))
                shas = [by_name[n] for n in image_names]  # recorded in image_names order
                record["predictions"] = {
                    "kind": "folder", "path": _relative_to(self.folder, self.json_path.parent),
                    "n": len(shas), "map_sha256": shas, "sha256": folder_digest(image_names, shas)}
            else:
                if self._maps is None:
                    raise ValueError("no predictions were added")
                info = self._maps.finish()
                sha = info["sha256"]
                record["predictions"] = _stored_record(self._entry.companion_name(sha), info)
            validate_result(record, source=str(self.json_path))
            data = json_bytes(record)
        except OSError as exc:
            self.abort()
            raise self._entry.error(exc, "could not write the predictions") from exc
        except BaseException:
            self.abort()
            raise
        self._done = True
        path = self._entry.commit(record, data, companion_sha256=sha)
        self.record = record  # what was written, ``predictions`` filled in
        return path

    def abort(self) -> None:
        """Discard what was written; the entry on disk stays as it was."""
        self._done = True
        if self._maps is not None:
            self._maps.abort()
        self._entry.abort()


def _relative_to(folder: Path, base: Path) -> str:
    """``folder`` relative to ``base`` where it can be (results move with their data), else absolute."""
    folder = folder.resolve()
    try:
        return Path(os.path.relpath(folder, base.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return str(folder)


def write_result(path: str | os.PathLike, result: Mapping[str, Any]) -> Path:
    """Validate and write a results file atomically, under the directory's lock.

    For records whose predictions were written separately (:func:`save_predictions`);
    an evaluation writes both as one unit with :class:`ResultWriter`.
    """
    path = Path(path)
    record = {k: v for k, v in result.items() if not k.startswith("_")}
    if "tolerances" in record:
        raise ValueError(f"{path}: a results file cannot set its own tolerances")
    validate_result(record, source=str(path))
    data = json_bytes(record)
    from salbench.io.atomic import ensure_directory

    ensure_directory(path.parent, "results directory")
    with directory_lock(path.parent):
        return atomic_write_bytes(path, data, what="results file")


def rewrite_result(result: Mapping[str, Any], updated: Mapping[str, Any]) -> Path:
    """Replace the results file ``result`` was loaded from with ``updated``, if unchanged since.

    Used by ``salbench check --update``: under the directory lock, the file's
    bytes must still hash to ``result["_sha256"]``, so a concurrent evaluation's
    new entry is never overwritten with values recomputed for the old one.
    """
    path = Path(result["_path"])
    record = {k: v for k, v in updated.items() if not k.startswith("_")}
    validate_result(record, source=str(path))
    data = json_bytes(record)
    with directory_lock(path.parent):
        try:
            now = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            now = None
        if now != result.get("_sha256"):
            raise FileError(f"results file {path} changed while it was being checked; not updated "
                            "(run salbench check again)", filename=path)
        return atomic_write_bytes(path, data, what="results file")
