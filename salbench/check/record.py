"""The verification record: what ``salbench check --record`` found, for the tables and the site.

Tables and the site are built from files, without recomputing anything (that takes minutes),
so they learn what a check found from a small record beside the results,
``<results dir>/verification.json``::

    {"schema": "salbench.verification/1",
     "entries": {"osie/nus__val__center_bias__mit.json":
                 {"sha256": "<sha256 of the entry's bytes>", "salbench_version": "0.1.0",
                  "word": "model re-run", "detail": "..."}}}

A line counts only for the entry whose path (relative to the record's folder), SHA-256 and
salbench version it names: a changed entry, or another salbench, invalidates its line and
the entry shows as "audited only" (never as verified). The record is tamper-evident, not
tamper-proof: ``salbench check --strict`` re-derives every line and fails where the record
claims more than the check found, has no current line for an entry, or names files that
are not there. It holds no dates, so the same outcomes give the same bytes.

:func:`entry_verification` is what the leaderboard tables and the site show for an entry:
the cheap audit first (a failure is "not verified"), then the entry's current line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from salbench.check.report import AUDITED, NOT_VERIFIED, VERIFICATION_WORDS, CheckReport
from salbench.results.naming import VERIFICATION_RECORD as RECORD_FILE
RECORD_SCHEMA = "salbench.verification/1"


@dataclass(frozen=True)
class EntryVerification:
    """One of :data:`~salbench.check.report.VERIFICATION_WORDS` and the line that backs it."""

    word: str
    detail: str


def record_line(report: CheckReport, sha256: str) -> dict[str, str]:
    """The record's line for an entry whose file hashes to ``sha256``, checked as ``report`` says."""
    from salbench import __version__

    return {"sha256": sha256, "salbench_version": __version__, "word": report.verification,
            "detail": report.verification_detail}


def write_record(root: str | os.PathLike, lines: Mapping[str, Mapping[str, str]]) -> Path:
    """Write ``root/verification.json`` atomically (keys: entry paths relative to ``root``, sorted)."""
    from salbench.io import atomic_write_bytes
    from salbench.io.atomic import json_bytes

    data = {"schema": RECORD_SCHEMA, "entries": {k: dict(lines[k]) for k in sorted(lines)}}
    return atomic_write_bytes(Path(root) / RECORD_FILE, json_bytes(data), what="verification record")


def read_record(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """The lines of a verification record (entry path -> line).

    Raises
    ------
    ValueError
        Not a verification record, or a malformed one (the message names the file).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable verification record ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != RECORD_SCHEMA or not isinstance(data.get("entries"), dict):
        raise ValueError(f"{path}: not a {RECORD_SCHEMA} record")
    lines = {}
    for key, line in data["entries"].items():
        if not (isinstance(line, dict) and all(isinstance(line.get(k), str) for k in
                                               ("sha256", "salbench_version", "word", "detail"))
                and line["word"] in VERIFICATION_WORDS):
            raise ValueError(f"{path}: malformed line for {key!r}")
        lines[str(key)] = line
    return lines


def is_current(line: Mapping[str, str] | None, sha256: str | None) -> bool:
    """Whether ``line`` speaks for an entry whose bytes hash to ``sha256``, under this salbench."""
    from salbench import __version__

    return bool(line) and sha256 is not None and line["sha256"] == sha256 \
        and line["salbench_version"] == __version__


_CACHE: dict[str, tuple[tuple, dict | None]] = {}


def _lines_at(path: Path) -> dict | None:
    """The record at ``path`` (cached while its size and time stamp stay), None when unreadable."""
    st = path.stat()
    stamp = (st.st_size, st.st_mtime_ns)
    hit = _CACHE.get(str(path))
    if hit is None or hit[0] != stamp:
        try:
            lines = read_record(path)
        except ValueError:
            lines = None
        hit = _CACHE[str(path)] = (stamp, lines)
    return hit[1]


def find_line(entry: Mapping[str, Any]) -> tuple[Path, dict[str, str] | None] | None:
    """The nearest record above a loaded entry (its folder, then the folders above, up to the repository
    root) and the entry's current line there (None when it has none); None when no record is found."""
    if "_path" not in entry:
        return None
    path = Path(entry["_path"]).resolve()
    for folder in path.parents:
        candidate = folder / RECORD_FILE
        if candidate.is_file():
            lines = _lines_at(candidate) or {}
            line = lines.get(path.relative_to(folder).as_posix())
            return candidate, line if is_current(line, entry.get("_sha256")) else None
        if (folder / ".git").exists():
            break
    return None


def entry_verification(entry: Mapping[str, Any], *, hash_files: bool = True) -> EntryVerification:
    """What a table or page may say about a loaded entry: the audit, then its line in the record.

    * the cheap audit (:func:`~salbench.check.verification_status`) fails: ``not verified`` and why;
    * else the entry's current line in the nearest ``verification.json`` (its word and detail);
    * else ``audited only``: nothing says it was recomputed.
    """
    from salbench.check.audit import verification_status

    status = verification_status(entry, hash_files=hash_files)
    if not status.ok:
        return EntryVerification(NOT_VERIFIED, status.summary)
    found = find_line(entry)
    if found is not None and found[1] is not None:
        line = found[1]
        return EntryVerification(line["word"], line["detail"])
    why = ("no verification.json above it" if found is None else
           f"{found[0].name} has no current line for it (it changed since, or was never checked with --record)")
    return EntryVerification(AUDITED, f"record, hashes and predictions file consistent; not recomputed: {why}")


def record_problems(lines: Mapping[str, Mapping[str, str]], found: Mapping[str, tuple[str, CheckReport]],
                    missing_ok: Iterable[str] = ()) -> list[str]:
    """Where a record disagrees with a check: one line each (``salbench check --strict`` fails on any).

    Parameters
    ----------
    lines : mapping
        The record's lines (entry path -> line).
    found : mapping
        Entry path -> ``(sha256 of its bytes, its CheckReport)`` from this check.
    missing_ok : iterable of str
        Entry paths whose lines are not compared (none by default).
    """
    skip = set(missing_ok)
    problems = []
    for key, (sha, report) in sorted(found.items()):
        if key in skip:
            continue
        line = lines.get(key)
        if not is_current(line, sha):
            why = "has no line for it" if line is None else "has a line for an older version of it"
            problems.append(f"{RECORD_FILE} {why}: {key} (salbench check --record rewrites it)")
        elif report.status != "skipped" and line["word"] != report.verification:
            problems.append(f"{RECORD_FILE} says {line['word']!r} for {key}, this check found "
                            f"{report.verification!r} (salbench check --record rewrites it)")
    for key in sorted(set(lines) - set(found)):
        problems.append(f"{RECORD_FILE} has a line for {key}, which is not a results file here")
    return problems
