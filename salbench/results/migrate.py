"""Results files of older schemas, brought to the current one: the one migration path.

``salbench check --update DIR`` reads a file of an older schema through
:func:`migrate_record`, recomputes it like any entry, and -- when the recomputation
succeeds -- writes it in the current schema with :func:`write_migrated` (its
predictions re-stored in today's format, the old file removed once no entry names
it). Without ``--update`` such a file is reported as drift; everything else
(tables, ``load_result``) refuses it with a line naming that command. Nothing
else in salbench reads an older schema.

``salbench.result/1`` (salbench before the streamed results store) differs from
``salbench.result/2`` in:

- no ``n_skipped`` (always 0 then), ``n_excluded``, per-metric ``n``; ``higher_is_better``
  optional;
- ``predictions`` ``{"file", "sha256"?, "shape", "dtype"}``: ``STEM.predictions.npz``
  written by ``np.savez_compressed`` (``names`` plus a stacked ``predictions`` array, or
  ``prediction_00000`` ... for maps of different sizes);
- protocol parameters: keys that are fixed conventions now, recorded with the only
  value salbench implemented (:data:`LEGACY_PROTOCOL_KEYS`), and no parameter added
  since (:data:`LEGACY_PROTOCOL_DEFAULTS` gives the value that reproduces what such a
  record computed; the other new parameters take their defaults).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from salbench import __version__
from salbench.results.schema import LEGACY_SCHEMAS, RESULT_SCHEMA, ResultsFileError, count_excluded, validate_result

#: Per protocol: keys ``salbench.result/1`` files recorded in ``protocol.params`` that are
#: fixed conventions now -> the value they recorded (any other value is refused).
LEGACY_PROTOCOL_KEYS: dict[str, dict[str, Any]] = {
    "mit": {"resize": "matlab_bicubic", "ig_baseline": "center_gaussian"},
    "coursework": {"input_size": [48, 48], "quantise": "uint8_wrap", "resize": "pillow_bicubic_uint8",
                   "fixations": "y_original > 0", "cc_target": "gaussian_filter(y_original, 19) as uint8, min-max",
                   "auc_method": "binned"},
    "exact": {"resize": "bilinear", "shuffled_negatives": "all other images' fixated pixels"},
    "salicon": {"resize": "scipy_zoom_order3", "rng": "numpy.random.RandomState(seed), sequential over images",
                "shuffle_map": "sum of binary fixation maps of the evaluated images"},
}
#: Per protocol: parameters added since ``salbench.result/1`` -> the value that reproduces what
#: those records computed (``mit`` scored the dataset's own density before ``ground_truth`` existed).
LEGACY_PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {"mit": {"ground_truth": "dataset"}}


def migrate_protocol_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The complete, current parameter set (with ``name``) of a ``salbench.result/1`` record's protocol.

    Raises
    ------
    ValueError
        Unknown protocol, a convention recorded with another value than salbench
        implemented, or a parameter the protocol refuses.
    """
    from salbench.protocols import get_protocol

    current = get_protocol(name).params
    params = {k: v for k, v in params.items() if k != "name"}
    for key, recorded in LEGACY_PROTOCOL_KEYS.get(name, {}).items():
        if key in params and key not in current:
            if params[key] != recorded:
                raise ValueError(f"protocol {name!r}: recorded {key}={params[key]!r} is not a convention this "
                                 f"salbench implements ({recorded!r})")
            del params[key]
    if not set(current) - {"name"} <= set(params):  # recorded before a parameter existed
        for key, value in LEGACY_PROTOCOL_DEFAULTS.get(name, {}).items():
            params.setdefault(key, value)
    return get_protocol(name, **params).params


def migrate_record(old: Mapping[str, Any], *, source: str | os.PathLike) -> dict[str, Any]:
    """``old`` (a record of a :data:`LEGACY_SCHEMAS` schema read from ``source``) in the current schema.

    Data-free: derived counts come from the recorded per-image values; a stored
    predictions file without a recorded SHA-256 is hashed. The values themselves
    are what ``salbench check`` then recomputes; the record gains
    ``"migrated": {"from": <old schema>, "by": "salbench <version>"}``.

    Raises
    ------
    ResultsFileError
        Not a record of an older schema, or one that cannot be migrated (the
        message names ``source`` and why).
    """
    from salbench.metrics import METRICS  # deferred: imports numba

    def bad(msg: str) -> ResultsFileError:
        return ResultsFileError(f"{source}: cannot migrate: {msg}")

    if not isinstance(old, Mapping) or old.get("schema") not in LEGACY_SCHEMAS:
        raise bad(f"not a record of an older schema ({', '.join(LEGACY_SCHEMAS)})")
    record = {k: v for k, v in old.items() if not k.startswith("_")}
    protocol = record.get("protocol")
    if not (isinstance(protocol, Mapping) and isinstance(protocol.get("name"), str)
            and isinstance(protocol.get("params"), Mapping)):
        raise bad("protocol must be an object with a name and params")
    if protocol["params"].get("name", protocol["name"]) != protocol["name"]:
        raise bad(f"protocol parameters name {protocol['params']['name']!r} but the protocol is "
                  f"{protocol['name']!r}")
    try:
        params = migrate_protocol_params(protocol["name"], protocol["params"])
    except (ValueError, TypeError) as exc:
        raise bad(str(exc)) from None
    record["schema"] = RESULT_SCHEMA
    record["protocol"] = {"name": protocol["name"], "params": params}
    record.setdefault("n_skipped", 0)
    metrics = record.get("metrics")
    if isinstance(metrics, Mapping):
        blocks = {}
        for metric, block in metrics.items():
            block = dict(block) if isinstance(block, Mapping) else block
            if isinstance(block, dict) and isinstance(block.get("per_image"), list):
                block.setdefault("n", sum(x is not None for x in block["per_image"]))
                if block.get("higher_is_better") is None and metric in METRICS:
                    block["higher_is_better"] = bool(METRICS[metric].higher_is_better)
            blocks[metric] = block
        record["metrics"] = blocks
        try:
            record["n_excluded"] = count_excluded({m: b["per_image"] for m, b in blocks.items()})
        except (TypeError, KeyError, ValueError):
            pass  # a broken block: validation below names it
    pred = record.get("predictions")
    if isinstance(pred, Mapping):
        pred = {"kind": "stored", **pred}
        file = pred.get("file")
        if pred["kind"] == "stored" and "sha256" not in pred and isinstance(file, str) and "/" not in file:
            path = Path(source).parent / file
            if not path.is_file():
                raise bad(f"stored predictions {path} are missing")
            from salbench.io.digest import file_sha256

            pred["sha256"] = file_sha256(path)
        record["predictions"] = pred
    record["migrated"] = {"from": old["schema"], "by": f"salbench {__version__}"}
    validate_result(record, source=str(source))
    return record


def write_migrated(result: Mapping[str, Any], updated: Mapping[str, Any]) -> Path:
    """Write a migrated entry: its predictions re-stored in today's format, then ``updated`` as its JSON.

    ``result`` is the migrated record as scanned (with ``_path`` and the ``_sha256``
    of the old file), ``updated`` its recomputed form (``salbench check``'s
    ``update_result``). The old JSON is replaced only if unchanged since it was
    read; the old predictions file is removed once no entry names it.

    Raises
    ------
    FileError
        A write failed or the file changed meanwhile (the old entry is unchanged).
    """
    from salbench.io.map_store import open_stored_predictions
    from salbench.results.writer import ResultWriter, rewrite_result

    path = Path(result["_path"])
    pred = result["predictions"]
    if pred.get("kind", "stored") != "stored":
        return rewrite_result(result, updated)
    names = list(result["image_names"])
    with open_stored_predictions(path.parent / pred["file"]) as sp, \
            ResultWriter(path.parent, path.name[: -len(".json")]) as writer:
        position = {n: j for j, n in enumerate(sp.names)}
        for name in names:
            writer.add_prediction(name, sp.load(position[name]))
        return writer.commit(updated, replaces_sha256=result["_sha256"])
