"""Which leaderboard rows are indistinguishable from the best row, metric by metric.

For each metric (a table column), the rows whose scores are paired (same data,
split, dataset and protocol parameters, evaluation seed, image names: see
:func:`salbench.leaderboard.compare.pairing_key`) form a group; the row with the best mean in the metric's direction is the
group's best, and every other row of the group is tested against it with the
two-sided Wilcoxon signed-rank test on the per-image values (a seed-averaged row:
per-image values averaged over its seeds). The p-values of one column's group
are Holm-corrected together; a row whose adjusted p-value exceeds ``alpha`` is
*indistinguishable* from the best, otherwise *different*. Rows scored on other
images form groups of their own: a row alone in its group is *not compared* (with
the reason), as is a row whose seed entries are not paired with each other.

:func:`mark_table` works on the rows of a rendered table (``tables.Row``);
:func:`table_significance` / :func:`leaderboard_significance` give the same
marks as plain data (schema ``salbench.significance/1``) for other renderers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from salbench import stats
from salbench.leaderboard.compare import first_difference, pairing_key, row_values

DEFAULT_ALPHA = 0.05
SIGNIFICANCE_SCHEMA = "salbench.significance/1"
TEST = "two-sided Wilcoxon signed-rank test on per-image values"
CORRECTION = "holm"

BEST, INDISTINGUISHABLE, DIFFERENT, NOT_COMPARED = "best", "indistinguishable", "different", "not compared"
# Cell suffixes by table format (csv tables stay numbers only).
SYMBOLS = {BEST: "★", INDISTINGUISHABLE: "≈"}
LATEX_SYMBOLS = {BEST: "$\\star$", INDISTINGUISHABLE: "$\\approx$"}


@dataclass
class RowMark:
    """One row's mark in one column, with the test behind it."""

    mark: str | None = None  #: BEST, INDISTINGUISHABLE, DIFFERENT, NOT_COMPARED or None (no value / alone)
    p_value: float | None = None
    p_adjusted: float | None = None
    mean_difference: float | None = None  #: this row minus the best row, over the images used
    n: int | None = None
    n_excluded: int | None = None
    reason: str | None = None  #: why NOT_COMPARED


@dataclass
class ColumnMarks:
    """Marks of one metric over the rows of a table (``rows`` in the table's row order)."""

    metric: str
    higher_is_better: bool | None
    alpha: float
    rows: list[RowMark]
    groups: list[dict[str, Any]] = field(default_factory=list)  #: {"label", "best", "members"} (row indices)


def _mean(row, metric: str) -> float | None:
    value = row.mean(metric)
    return None if value is None or not math.isfinite(value) else float(value)


def _row_problem(row, metric: str) -> str | None:
    """Why a row's seed entries cannot be averaged per image (None when they can)."""
    missing = [e for e in row.entries if metric not in e["metrics"]]
    if missing:
        return f"{len(missing)} of its {len(row.entries)} entries do not measure {metric}"
    for e in row.entries[1:]:
        diff = first_difference(row.entries[0], e)
        if diff is not None:
            return f"its seed entries are not paired ({diff})"
    return None


def _key(row) -> str:
    """Rows with equal keys are paired: same data, settings and image names."""
    first = row.entries[0]
    return json.dumps([[v for _, v in pairing_key(first)], sorted(first["image_names"])], sort_keys=True, default=str)


def _group_labels(rows, groups: list[list[int]]) -> list[str]:
    """Name each group by what sets it apart: the protocol label, else the key field that differs."""
    from salbench.leaderboard.rows import protocol_label

    if len(groups) < 2:
        return ["all rows"] * len(groups)
    keys = [dict(pairing_key(rows[g[0]].entries[0])) for g in groups]
    image_sets = [frozenset(rows[g[0]].entries[0]["image_names"]) for g in groups]
    distinct_sets = list(dict.fromkeys(image_sets))
    labels = []
    for g, key, names in zip(groups, keys, image_sets):
        parts = [protocol_label(rows[g[0]].entries[0])]
        for what in ("dataset content hash", "split", "dataset parameters", "dataset options", "evaluation seed"):
            if any(k[what] != key[what] for k in keys):
                value = key[what]
                parts.append(f"{what} {str(value)[:12] if what == 'dataset content hash' else value}")
        if len(distinct_sets) > 1:
            parts.append(f"image set {distinct_sets.index(names) + 1} ({len(names)} images)")
        labels.append(", ".join(parts))
    return labels


def mark_column(rows: Sequence, metric: str, higher_is_better: bool | None, *,
                alpha: float = DEFAULT_ALPHA) -> ColumnMarks:
    """Marks of ``metric`` for ``rows`` (objects with ``entries`` and ``mean(metric)``, e.g. ``tables.Row``).

    See the module docstring for the rule. ``higher_is_better=None`` (a metric of
    unknown direction) marks nothing.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    marks = [RowMark() for _ in rows]
    column = ColumnMarks(metric, higher_is_better, alpha, marks)
    if higher_is_better is None:
        return column
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if _mean(row, metric) is None:
            continue
        problem = _row_problem(row, metric)
        if problem is not None:
            marks[i] = RowMark(NOT_COMPARED, reason=problem)
            continue
        groups.setdefault(_key(row), []).append(i)
    members = list(groups.values())
    sign = 1.0 if higher_is_better else -1.0
    for label, idx in zip(_group_labels(rows, members), members):
        best = max(idx, key=lambda i: (sign * _mean(rows[i], metric), -i))  # ties: the earlier row
        column.groups.append({"label": label, "best": best, "members": idx})
        if len(idx) < 2:
            if len(members) > 1:
                marks[best] = RowMark(NOT_COMPARED, reason=f"no other row was scored on its images under its "
                                                           f"settings ({label})")
            continue
        _test_group(rows, metric, best, [i for i in idx if i != best], marks, alpha)
    return column


def _test_group(rows, metric: str, best: int, others: list[int], marks: list[RowMark], alpha: float) -> None:
    best_names = rows[best].entries[0]["image_names"]  # the group shares them (in any order)
    best_values = row_values(rows[best].entries, metric, best_names)
    tested, pvalues = [], []
    for i in others:
        res = stats.paired_comparison(row_values(rows[i].entries, metric, best_names), best_values, bootstrap=False)
        if not math.isfinite(res.p_value):
            marks[i] = RowMark(NOT_COMPARED, n=res.n, n_excluded=res.n_excluded,
                               reason="no image has a value in both rows")
            continue
        marks[i] = RowMark(None, res.p_value, None, res.mean_difference, res.n, res.n_excluded)
        tested.append(i)
        pvalues.append(res.p_value)
    adjusted = stats.holm(pvalues)
    for i, p_adj in zip(tested, adjusted):
        marks[i].p_adjusted = float(p_adj)
        marks[i].mark = DIFFERENT if p_adj <= alpha else INDISTINGUISHABLE
    marks[best] = RowMark(BEST, n=len(best_names), n_excluded=int((~np.isfinite(best_values)).sum()))


@dataclass
class TableMarks:
    """Every column's marks for the rows of one table, and how to print them.

    ``rows`` are in the table's order: the notes call row ``i`` "row i + 1" (the ``#`` column).
    """

    rows: Sequence
    columns: dict[str, ColumnMarks]
    alpha: float
    fmt: str = "github"

    def suffix(self, i: int, metric: str) -> str:
        """What to append to row ``i``'s cell of ``metric`` (``""``, ``" ★"``, ``" ≈"``)."""
        column = self.columns.get(metric)
        mark = column.rows[i].mark if column is not None else None
        symbols = LATEX_SYMBOLS if self.fmt == "latex" else SYMBOLS
        return f" {symbols[mark]}" if mark in symbols else ""

    def notes(self) -> list[str]:
        """The footer's sentences: the test, seed averaging, groups, rows left unmarked and why."""
        if not any(m.mark for c in self.columns.values() for m in c.rows):
            return []
        s = SYMBOLS if self.fmt != "latex" else LATEX_SYMBOLS
        alpha = f"{self.alpha:g}"
        notes = [f"{s[BEST]} best row of the column; {s[INDISTINGUISHABLE]} not significantly different from it "
                 f"({TEST}, Holm-corrected over the column's comparisons with the best row, alpha = {alpha}); "
                 "unmarked values differ significantly from the best."]
        if any(len(self.rows[i].entries) > 1 for c in self.columns.values() for i, m in enumerate(c.rows)
               if m.mark in (BEST, INDISTINGUISHABLE, DIFFERENT)):
            notes.append("Rows of several training seeds are tested on their per-image values averaged over the seeds.")
        groups: dict[str, set[int]] = {}
        for c in self.columns.values():
            for g in c.groups if len(c.groups) > 1 else ():
                groups.setdefault(g["label"], set()).update(g["members"])
        if groups:
            listed = "; ".join(f"{label} (row{'s' if len(rows) > 1 else ''} {', '.join(str(i + 1) for i in sorted(rows))})"
                               for label, rows in sorted(groups.items(), key=lambda kv: min(kv[1])))
            notes.append("Rows are tested only against rows scored on the same data under the same settings, "
                         f"each group with its own best: {listed}.")
        unmarked: dict[tuple[str, str], list[str]] = {}
        for metric, c in self.columns.items():
            for i, m in enumerate(c.rows):
                if m.mark == NOT_COMPARED:
                    unmarked.setdefault((self.rows[i].label, m.reason), []).append(metric)
        for (label, reason), metrics in unmarked.items():
            which = "" if len(metrics) == len(self.columns) else f" ({', '.join(metrics)})"
            notes.append(f"Not marked{which}: {label}: {reason}.")
        return notes

    def footer(self) -> str:
        """The notes as text under the table in this format (``""`` when nothing is marked)."""
        notes = self.notes()
        if not notes or self.fmt == "csv":
            return ""
        if self.fmt == "latex":
            return "\n" + "\n".join(f"% {n}" for n in notes)
        return "\n\n" + ("\n\n" if self.fmt == "github" else "\n").join(notes)


class _NoMarks(TableMarks):
    def suffix(self, i: int, metric: str) -> str:
        return ""

    def footer(self) -> str:
        return ""


def mark_table(rows: Sequence, metrics: Sequence[str], better: Mapping[str, bool | None], *,
               alpha: float | None = DEFAULT_ALPHA, fmt: str = "github") -> TableMarks:
    """Marks of every metric for the rows of one table; ``alpha=None`` or ``fmt="csv"``: no marks."""
    if alpha is None or fmt == "csv":
        return _NoMarks(rows, {}, alpha or DEFAULT_ALPHA, fmt)
    columns = {m: mark_column(rows, m, better.get(m), alpha=alpha) for m in metrics}
    return TableMarks(rows, columns, alpha, fmt)


# -- as data -------------------------------------------------------------------------------------
def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def table_significance(results: Iterable[Mapping[str, Any]], *, dataset: str, split: str | None = None,
                       protocol: str | None = None, alpha: float = DEFAULT_ALPHA) -> dict[str, Any]:
    """The marks of one leaderboard table (the rows of ``leaderboard_table``), as plain data.

    Returns
    -------
    dict
        ``{"schema": "salbench.significance/1", "dataset", "split", "protocol", "alpha", "test",
        "correction": "holm", "rows": [{"label", "entries": [file names], "n_seeds"}],
        "metrics": {METRIC: {"higher_is_better", "groups": [{"label", "best", "members"}],
        "rows": [{"mark", "p_value", "p_adjusted", "mean_difference", "n", "n_excluded", "reason"}]}}}``.
        ``best`` and ``members`` are indices into ``rows``; each metric's ``rows`` is
        aligned with ``rows``; ``mark`` is ``"best"``, ``"indistinguishable"``,
        ``"different"``, ``"not compared"`` or null; ``mean_difference`` is the row
        minus the best row. Rows are ordered by label, then file.
    """
    from salbench.leaderboard.rows import group_rows, metric_columns, select_results

    chosen = select_results(results, dataset, split, protocol)
    metrics, better = metric_columns(chosen)
    rows = sorted(group_rows(chosen), key=lambda r: (r.label, str(r.first.get("_path", ""))))
    marks = mark_table(rows, metrics, better, alpha=alpha)
    return {
        "schema": SIGNIFICANCE_SCHEMA,
        "dataset": dataset, "split": split, "protocol": protocol, "alpha": alpha, "test": TEST,
        "correction": CORRECTION,
        "rows": [{"label": r.label, "entries": [PurePath(str(e.get("_path", ""))).name for e in r.entries],
                  "n_seeds": len(r.entries)} for r in rows],
        "metrics": {m: {"higher_is_better": c.higher_is_better, "groups": c.groups,
                        "rows": [{"mark": x.mark, "p_value": _finite(x.p_value), "p_adjusted": _finite(x.p_adjusted),
                                  "mean_difference": _finite(x.mean_difference), "n": x.n,
                                  "n_excluded": x.n_excluded, "reason": x.reason} for x in c.rows]}
                    for m, c in marks.columns.items()},
    }


def leaderboard_significance(results: Iterable[Mapping[str, Any]], *,
                             alpha: float = DEFAULT_ALPHA) -> list[dict[str, Any]]:
    """:func:`table_significance` for every (dataset, split, protocol) of ``results``, sorted."""
    results = list(results)
    groups = sorted({(r["dataset"]["name"], str(r["dataset"].get("split")), r["protocol"]["name"]) for r in results})
    return [table_significance(results, dataset=ds, split=sp, protocol=proto, alpha=alpha)
            for ds, sp, proto in groups]
