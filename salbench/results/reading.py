"""Reading results files: strict JSON, validation, scanning a directory, locating recorded data."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salbench.io.atomic import is_temporary
from salbench.results.naming import VERIFICATION_RECORD, is_entry_name
from salbench.results.schema import LEGACY_SCHEMAS, ResultsFileError, validate_result


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


def read_result_file(path: str | os.PathLike) -> tuple[Any, str]:
    """``(parsed JSON, sha256 of the bytes read)`` of a results file, not validated.

    Raises
    ------
    ResultsFileError
        Unreadable, empty or not strict JSON (the message names the file).
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
    return parse_result_bytes(data, str(path)), hashlib.sha256(data).hexdigest()


def load_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one results file.

    The path is kept under ``_path`` and the SHA-256 of the bytes read under
    ``_sha256`` (``check --update`` rewrites an entry only if it is unchanged).

    Raises
    ------
    ResultsFileError
        Empty, truncated or invalid JSON, not a valid record, or a record of an
        older schema (the message names the file and the migration command).
    FileNotFoundError
        No such file.
    """
    result, sha = read_result_file(path)
    validate_result(result, source=str(path))
    result["_path"] = str(path)
    result["_sha256"] = sha
    return result


def result_paths(root: str | os.PathLike) -> list[Path]:
    """The results files under ``root`` (recursively), sorted.

    A ``.json`` is an entry when it is named like one (``<dataset>__<split>__<model>__<protocol>.json``)
    or its text names the ``salbench.result`` schema. Hidden files and folders,
    salbench's temporary files (``.NAME.*.tmp*``) and ``salbench check --record``'s
    ``verification.json`` never are; other JSON files (a fitted ``center_bias``'s
    ``*.fit.json``, tables) are ignored.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such results directory")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: is a file, not a results directory")
    found = []
    for path in sorted(root.rglob("*.json")):
        rel = path.relative_to(root).parts
        if any(part.startswith(".") for part in rel) or is_temporary(path.name) or not path.is_file() \
                or path.name == VERIFICATION_RECORD:
            continue
        if is_entry_name(path.name):
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
    """One results file found by :func:`scan_results`: its record, or why it could not be read.

    ``migrated_from`` names the older schema of a file read with ``migrate=True``
    (``result`` is then its record in the current schema, not yet written, marked
    ``_migrated_from`` like its ``_path``).
    """

    path: Path
    result: dict[str, Any] | None
    error: str | None = None
    migrated_from: str | None = None


def scan_results(root: str | os.PathLike, *, migrate: bool = False) -> list[ScannedEntry]:
    """Every results file under ``root``, each loaded or with its error (for ``salbench check``).

    With ``migrate``, a file of an older schema is read through
    :func:`salbench.results.migrate.migrate_record` instead of being an error.
    """
    from salbench.results.migrate import migrate_record

    out = []
    for path in result_paths(root):
        try:
            raw, sha = read_result_file(path)
            schema = raw.get("schema") if isinstance(raw, dict) else None
            if migrate and schema in LEGACY_SCHEMAS:
                record = migrate_record(raw, source=path)
                record = {**record, "_path": str(path), "_sha256": sha, "_migrated_from": schema}
                out.append(ScannedEntry(path, record, migrated_from=schema))
                continue
            validate_result(raw, source=str(path))
            out.append(ScannedEntry(path, {**raw, "_path": str(path), "_sha256": sha}))
        except (ResultsFileError, OSError) as exc:
            out.append(ScannedEntry(path, None, str(exc)))
    return out


def load_results(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every results file under ``root`` (see :func:`result_paths`), sorted by path.

    Raises
    ------
    ResultsFileError
        The first results file that is empty, truncated, not valid JSON, not a
        valid record or of an older schema: a broken entry is an error, never
        silently dropped.
    """
    return [load_result(p) for p in result_paths(root)]


def resolve_data_dir(data_dir: str | None, results_path: str | os.PathLike) -> str | None:
    """Where a recorded ``dataset.data_dir`` is on this machine.

    Data directories are stored relative to the repository holding the results: a
    relative ``data_dir`` is tried against the results file's folder and every
    folder above it (so ``../shared/data/osie`` recorded from the repository root
    resolves from ``leaderboards/``), then against the working directory. Returned
    as recorded when none exists.
    """
    if data_dir is None or os.path.isabs(data_dir):
        return data_dir
    results_path = Path(results_path)
    for base in [results_path.parent, *results_path.parents, Path.cwd()]:
        candidate = base / data_dir
        if candidate.exists():
            return str(candidate)
    return data_dir
