"""Names of results entries: ``<dataset>__<split>__<model>__<protocol>.json``."""

from __future__ import annotations

import os

ENTRY_SUFFIX = ".json"
#: ``salbench check --record``'s record beside the results (never a results file).
VERIFICATION_RECORD = "verification.json"


def result_stem(model: str, dataset: str, split: str, protocol: str) -> str:
    """``<dataset>__<split>__<model>__<protocol>`` (the entry name, without ``.json``).

    Raises
    ------
    ValueError
        A part is empty, holds a path separator or starts with ``.`` (it would name
        another folder or a hidden file).
    """
    parts = [dataset, split, model, protocol]
    bad = [p for p in parts if not p or "/" in str(p) or os.sep in str(p) or str(p).startswith(".")]
    if bad:
        raise ValueError(f"cannot name a results file after {bad[0]!r}")
    return "__".join(str(p) for p in parts)


def result_filename(model: str, dataset: str, split: str, protocol: str) -> str:
    """File name of a results file: ``<dataset>__<split>__<model>__<protocol>.json``."""
    return f"{result_stem(model, dataset, split, protocol)}{ENTRY_SUFFIX}"


def is_entry_name(name: str) -> bool:
    """Named like an entry (``a__b__c__d.json``); a fitted model's ``*.fit.json`` has three parts."""
    return name.endswith(ENTRY_SUFFIX) and len(name[: -len(ENTRY_SUFFIX)].split("__")) >= 4
