"""The site's one window onto results files, table grouping, labels, cards and verification.

Every other module of :mod:`salbench.leaderboard.site` reads results only through the
functions here, so that when the results layer, the table layer or ``salbench check``
moves or grows (the significance marks of ``salbench compare``, the verification words
of a recomputing check), this is the one module to re-point. What each function
returns is plain data (dicts, strings, :class:`Entry`); nothing here renders HTML.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from salbench.check import AUDITED, MODEL_RERUN, NOT_VERIFIED, RECOMPUTED, VERIFICATION_WORDS  # noqa: F401
from salbench.leaderboard import rows as row_groups, tables
from salbench.leaderboard.site.model import MARK_BEST, MARK_DIFFERENT, MARK_NOT_COMPARABLE, MARK_TIED
from salbench.results import scan_results

# Verification words, strongest first, are ``salbench check``'s (:mod:`salbench.check.report`,
# imported above: AUDITED, MODEL_RERUN, NOT_VERIFIED, RECOMPUTED, VERIFICATION_WORDS). An entry is
# shown as recomputed only where ``salbench check --record`` recorded it for exactly its bytes
# (``verification.json``); otherwise an entry whose audit passes is "audited only".

METRIC_SPECIFIC = "metric-specific"


@dataclass(frozen=True)
class Unreadable:
    """A results file the site could not read: its path and why (listed on the index page)."""

    path: Path
    error: str


@dataclass(frozen=True)
class Verification:
    """One of :data:`VERIFICATION_WORDS` and what backs it (one line)."""

    word: str
    detail: str


def load_entries(root: str | os.PathLike) -> tuple[list[dict[str, Any]], list[Unreadable]]:
    """Every results record under ``root`` (with ``_path``), and the files that could not be read.

    A broken file never stops the site: it is listed on the index page with its error.
    """
    good, bad = [], []
    for scanned in scan_results(root):
        if scanned.result is None:
            bad.append(Unreadable(Path(scanned.path), _relative_error(scanned.error or "unreadable", root)))
        else:
            good.append(scanned.result)
    return good, bad


def _relative_error(message: str, root: str | os.PathLike) -> str:
    """An error message with the results root written as ``<results>`` (the site must not depend on
    where the checkout lies)."""
    for prefix in (str(Path(root).resolve()), str(root)):
        message = message.replace(prefix.rstrip("/") + "/", "").replace(prefix, ".")
    return message


# -- metrics -------------------------------------------------------------------------------------
def metric_keys(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics measured by ``entries``, in the metric registry's order (unknown ones last, by name)."""
    seen = {m for r in entries for m in r["metrics"]}
    rank = {m: i for i, m in enumerate(row_groups.metric_order())}
    return sorted(seen, key=lambda m: (rank.get(m, len(rank)), m))


def comparison_metrics(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """What a protocol comparison shows: CC and every AUC variant measured (as the markdown table)."""
    present = set(metric_keys(entries))
    return [m for m in row_groups.comparison_metrics() if m in present]


def metric_label(name: str) -> str:
    """The registry's label of a metric (without an arrow), else its name."""
    return row_groups.metric_label(name, None).rstrip(" ↑↓")


def higher_is_better(name: str, entries: Sequence[Mapping[str, Any]] = ()) -> bool | None:
    """The registry's direction; a results file's own claim only for a metric the registry lacks."""
    stored = next((r["metrics"][name].get("higher_is_better") for r in entries if name in r["metrics"]), None)
    return row_groups.metric_direction(name, stored)


def metric_description(name: str) -> str:
    """The registry's one-line description of a metric ("" for an unknown one)."""
    from salbench.metrics import METRICS

    info = METRICS.get(name)
    return info.description if info is not None else ""


# -- rows ----------------------------------------------------------------------------------------
def maps_kind(entry: Mapping[str, Any]) -> str | None:
    """How the entry's maps were derived: ``"metric-specific"``, ``"model"`` or None (not recorded).

    Results entries scored with ``--maps metric-specific`` (issue 16) carry ``maps`` as a
    string or as an object with a ``kind``; older entries carry nothing (one map for all metrics).
    """
    maps = entry.get("maps")
    if isinstance(maps, Mapping):
        maps = maps.get("kind") or maps.get("name")
    return str(maps) if isinstance(maps, str) and maps else None


def group_rows(entries: Iterable[Mapping[str, Any]]) -> list[row_groups.Row]:
    """The tables' grouping of entries that differ only in training seed, never mixing maps kinds.

    Within one maps kind the grouping is :func:`salbench.leaderboard.row_groups.group_rows`'; a
    model scored both with its own maps and with metric-specific maps gives two rows.
    """
    by_kind: dict[str, list] = {}
    for r in entries:
        by_kind.setdefault(str(maps_kind(r)), []).append(r)
    rows = []
    for kind in sorted(by_kind):
        rows.extend(row_groups.group_rows(by_kind[kind]))
    return rows


def row_label(row: row_groups.Row) -> str:
    return row.label


def protocol_label(entry: Mapping[str, Any]) -> str:
    return row_groups.protocol_label(entry)


def checkpoint_label(row: row_groups.Row) -> str:
    """``ckpt 1a2b3c4d``, ``no checkpoint`` or ``3 seeds`` (as the markdown tables say)."""
    return row.checkpoint if row.n_seeds > 1 else tables.checkpoint_label(row.first)


def images_label(entry: Mapping[str, Any]) -> str:
    return tables.images_cell(entry)


def training_seed(entry: Mapping[str, Any]):
    return row_groups.training_seed(entry)


def training_of(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    return row_groups.training_of(entry)


def comparison_groups(entries: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Per model, the entries that scored the same maps under several protocols, side by side.

    The same choice as :func:`salbench.leaderboard.tables.protocol_comparison_table`: the maps
    (model variant, training seed, checkpoint) scored under the most protocols take part.
    Models scored under one protocol only are left out. Returns ``[(model, entries)]`` by model name.
    """
    by_model: dict[str, list] = {}
    for r in entries:
        by_model.setdefault(r["model"]["name"], []).append(r)
    out = []
    for model in sorted(by_model):
        runs: dict[tuple, set] = {}
        for r in by_model[model]:
            runs.setdefault(_same_maps(r), set()).add((r["protocol"]["name"], tables.json_key(r["protocol"]["params"])))
        most = max(len(v) for v in runs.values())
        if most < 2:
            continue
        chosen = [r for r in by_model[model] if len(runs[_same_maps(r)]) == most]
        chosen.sort(key=lambda r: (str(training_seed(r)), row_groups.model_label(r), r["protocol"]["name"],
                                   tables.json_key(r["protocol"]["params"]), r.get("_path", "")))
        out.append((model, chosen))
    return out


def _same_maps(r: Mapping[str, Any]) -> tuple:
    return (row_groups.model_label(r), str(training_seed(r)), (r["model"].get("checkpoint") or {}).get("sha256"),
            str(maps_kind(r)))


# -- significance (issue 16) ---------------------------------------------------------------------
@dataclass(frozen=True)
class Significance:
    """Per-metric marks of one table: which rows are not significantly different from the best.

    ``marks[i][metric]`` for row ``i`` (in the order given) is ``"best"``, ``"tied"`` (not
    significantly different from the best row), ``"different"`` or ``"not comparable"``;
    ``test`` names the test for the table's footer; ``note`` says why rows could not be compared.
    """

    test: str
    marks: list[dict[str, str]]
    note: str = ""


def significance(rows: Sequence[row_groups.Row], metrics: Sequence[str]) -> Significance | None:
    """Significance marks for the rows of one leaderboard (the same rule as the markdown tables).

    :func:`salbench.leaderboard.significance.mark_table`: Wilcoxon signed-rank on per-image values
    (seed rows averaged per image), Holm-corrected over each column's comparisons with its best
    row, alpha 0.05. None when no row could be compared (nothing is invented).
    """
    from salbench.leaderboard import significance as sig

    better = {m: row_groups.metric_direction(m) for m in metrics}
    table = sig.mark_table(rows, metrics, better)
    words = {sig.BEST: MARK_BEST, sig.INDISTINGUISHABLE: MARK_TIED, sig.DIFFERENT: MARK_DIFFERENT,
             sig.NOT_COMPARED: MARK_NOT_COMPARABLE}
    marks = [{m: words[c.rows[i].mark] for m, c in table.columns.items() if c.rows[i].mark in words}
             for i in range(len(rows))]
    if not any(marks):
        return None
    notes = table.notes()
    return Significance(test=notes[0] if notes else sig.TEST, marks=marks, note=" ".join(notes[1:]))


# -- verification --------------------------------------------------------------------------------
def verification(entry: Mapping[str, Any]) -> Verification:
    """What the site may say about whether the entry's numbers were verified.

    :func:`salbench.check.entry_verification`: the audit of the record, its hashes and files
    (a failure is "not verified"), then the entry's line in the ``verification.json`` that
    ``salbench check --record`` wrote ("model re-run", "recomputed", ...), valid only for the
    entry's current bytes; without one, "audited only".
    """
    from salbench.check import entry_verification

    found = entry_verification(entry)
    detail = found.detail
    if found.word == NOT_VERIFIED:
        detail = _relative_error(detail, Path(entry.get("_path", ".")).parent)
    return Verification(found.word, detail)


def weakest(found: Iterable[Verification]) -> Verification:
    """The weakest of several entries' verifications (a row is only as verified as its least entry)."""
    found = list(found)
    return max(found, key=lambda v: VERIFICATION_WORDS.index(v.word) if v.word in VERIFICATION_WORDS
               else len(VERIFICATION_WORDS))


# -- cards and published rows --------------------------------------------------------------------
def model_cards() -> dict[str, dict[str, Any]]:
    """The built-in models' cards (``models/*.json``). Plugin cards are not read: that would
    import and build each plugin, and a site is built from results files alone."""
    from salbench.models.cards import builtin_cards

    return builtin_cards()


def report_columns() -> list[tuple[str, str]]:
    """``[(metric, header)]`` of the report's Tables II and III."""
    return [(m, tables.REPORT_HEADERS[m]) for m in tables.REPORT_METRICS]


def report_models(table: int) -> tuple[str, ...]:
    return tables.REPORT_TABLE_MODELS[table]


def report_title(table: int) -> str:
    return tables.REPORT_TABLE_TITLES[table]


def published_rows(table: int) -> list[dict[str, Any]]:
    """The published rows of Table II or III from the model cards, in the markdown table's order:
    ``{"label", "scores", "dataset", "protocol", "model"}``."""
    published = tables.published_rows_from_cards(model_cards())
    rows, seen = [], set()
    for model in report_models(table):
        for row in published.get(model, ()):
            if table not in row.get("tables", (table,)) or row["label"] in seen:
                continue
            seen.add(row["label"])
            rows.append({**row, "model": model})
    return rows


def report_entries(table: int, entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The entries Table II or III shows: its models, measured on all three report metrics."""
    models = report_models(table)
    return [r for r in entries if r["model"]["name"] in models
            and all(key in r["metrics"] for key in tables.REPORT_METRICS)]


def report_order(table: int, rows: list[row_groups.Row]) -> list[row_groups.Row]:
    """Measured rows in the order of :func:`salbench.leaderboard.tables.report_table`."""
    models = report_models(table)
    return sorted(rows, key=lambda g: (models.index(g.first["model"]["name"]), g.first["dataset"]["name"],
                                       str(g.first["dataset"].get("split")), g.first["protocol"]["name"],
                                       str(maps_kind(g.first)), g.label))


# -- figures -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """A figure of an entry, linked (not copied) from the results folder's ``figures/``."""

    path: Path
    kind: str
    note: str = ""


_SEED_SUFFIX = re.compile(r"-s\d+$")


def figures_for(entry: Mapping[str, Any], root: str | os.PathLike) -> list[Figure]:
    """Figures of ``root/figures`` that belong to ``entry``.

    - prediction panels ``<entry stem>.<best|worst>-<metric>.png`` (``salbench plot panels``);
    - loss curves and first-layer filters ``loss-<folder>-<model>[-<variant>].png`` /
      ``filters-...png``, where ``<folder>`` is the entry's folder under ``root`` and the
      variant is the entry name's (``shallow_kl-distribution-s0`` -> ``shallow_kl-distribution``);
      a figure named after the model alone is used when no variant's figure exists, with a note
      saying so (the reader can tell whether it shows this variant).
    """
    root = Path(root)
    fig_dir = root / "figures"
    path = Path(entry.get("_path", ""))
    if not fig_dir.is_dir() or not path.name:
        return []
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.stem
    out = [Figure(p, "prediction panels") for p in sorted(fig_dir.glob(_glob_escape(stem) + ".*.png"))]
    try:
        folder = path.resolve().relative_to(root.resolve()).parts[0] if len(path.parts) > 1 else ""
    except ValueError:
        folder = ""
    parts = stem.split("__")
    if folder and len(parts) >= 4:
        variant = _SEED_SUFFIX.sub("", parts[2].removesuffix("-dataset-gt"))
        model = entry["model"]["name"]
        for kind, label in (("loss", "loss curves"), ("filters", "first-layer filters")):
            exact = fig_dir / f"{kind}-{folder}-{variant}.png"
            fallback = fig_dir / f"{kind}-{folder}-{model}.png"
            if exact.is_file():
                out.append(Figure(exact, label))
            elif fallback.is_file():
                note = "" if variant == model else f"the figure is named after the model {model}, not this variant"
                out.append(Figure(fallback, label, note))
    return out


def _glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


# -- record fields shown in a row's detail -------------------------------------------------------
def describe_json(value: Any) -> str:
    """A compact, deterministic one-line rendering of a recorded value (for detail tables)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
