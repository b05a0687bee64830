"""What a page shows, as plain data: tables of rows of metric cells, ranks and marks.

Templates render these objects and nothing else; tests build them directly (for
example rows carrying significance marks) to test the rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

# Marks a cell may carry (from the significance test of issue 16); absent when not computed.
MARK_BEST = "best"
MARK_TIED = "tied"  # not significantly different from the best row
MARK_DIFFERENT = "different"
MARK_NOT_COMPARABLE = "not comparable"
MARKS = (MARK_BEST, MARK_TIED, MARK_DIFFERENT, MARK_NOT_COMPARABLE)


@dataclass(frozen=True)
class Column:
    """A metric column: registry key, label, direction (None: unknown) and a one-line description."""

    key: str
    label: str
    higher_is_better: bool | None
    description: str = ""

    @property
    def arrow(self) -> str:
        return "" if self.higher_is_better is None else ("↑" if self.higher_is_better else "↓")

    @property
    def better(self) -> str:
        """``"higher"``, ``"lower"`` or ``""``: which way the sort puts the best row first."""
        return "" if self.higher_is_better is None else ("higher" if self.higher_is_better else "lower")


@dataclass(frozen=True)
class SeedValue:
    """One entry's value behind a seed-averaged cell."""

    seed: Any
    mean: float | None
    ci95: tuple[float | None, float | None] | None
    n: int | None


@dataclass
class Cell:
    """One metric of one row.

    ``mean`` is the entry's mean over images, or for a seed-averaged row the mean over seeds
    of the entries' means with ``sd`` their sample standard deviation; ``ci95`` is the entry's
    95% CI of the mean over images (single-entry rows only: seeds' CIs are in ``seeds``).
    """

    mean: float | None
    sd: float | None = None
    ci95: tuple[float | None, float | None] | None = None
    n: int | None = None
    seeds: list[SeedValue] = field(default_factory=list)
    rank: int | None = None
    mark: str | None = None


@dataclass(frozen=True)
class Link:
    """A relative link (``href`` already URL-quoted) and the text shown for it."""

    href: str
    text: str
    note: str = ""


@dataclass
class EntryDetail:
    """One results file behind a row: where it is, when it was scored, what it records."""

    file: Link
    created: str
    seed: Any
    verification: tuple[str, str]
    checkpoint: str
    model: list[tuple[str, str]]
    dataset: list[tuple[str, str]]
    protocol: list[tuple[str, str]]
    maps: str | None = None


@dataclass
class Row:
    """A table row: a published row, or the entries of one model variant (seeds averaged)."""

    key: str
    label: str
    cells: dict[str, Cell]
    kind: str = "measured"  # or "published"
    model: str = ""
    protocol: str = ""
    checkpoint: str = ""
    images: str = ""
    scored: str = ""
    source: str = ""
    n_seeds: int = 1
    maps: str | None = None
    verification: tuple[str, str] | None = None
    card: list[tuple[str, str]] = field(default_factory=list)
    entries: list[EntryDetail] = field(default_factory=list)
    figures: list[Link] = field(default_factory=list)
    scores: list[tuple[Column, Cell]] = field(default_factory=list)  # every metric measured (details)

    @property
    def metric_specific(self) -> bool:
        return self.maps == "metric-specific"


@dataclass
class Table:
    """A sortable table: metric columns, rows (pre-sorted by ``sort_key``), optional marks.

    ``ranked``: cells carry per-metric ranks and the ``#`` column shows the rank under the
    sorted metric. ``significance``: the footer's name of the test behind the cells' marks
    (None: no marks computed, none shown). ``show``: which descriptive columns appear.
    """

    key: str
    title: str
    columns: list[Column]
    rows: list[Row]
    sort_key: str | None = None
    ranked: bool = True
    digits: int = 3
    significance: str | None = None
    significance_note: str = ""
    notes: list[str] = field(default_factory=list)
    show: tuple[str, ...] = ("protocol", "checkpoint", "images", "scored", "verification")

    @property
    def before_columns(self) -> list[str]:
        """Descriptive columns shown between the model and the metrics."""
        return [k for k in ("source", "protocol", "checkpoint", "images") if k in self.show]

    @property
    def after_columns(self) -> list[str]:
        return [k for k in ("scored", "verification") if k in self.show]

    @property
    def n_columns(self) -> int:
        return int(self.ranked) + 1 + len(self.before_columns) + len(self.columns) + len(self.after_columns)

    @property
    def has_metric_specific(self) -> bool:
        return any(r.metric_specific for r in self.rows)

    @property
    def has_marks(self) -> bool:
        return self.significance is not None and any(c.mark for r in self.rows for c in r.cells.values())


@dataclass
class Page:
    """One HTML page: a file name in the site folder, a title, paragraphs and tables."""

    filename: str
    title: str
    intro: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)


def rank_rows(rows: Sequence[Row], column: Column) -> None:
    """Set each row's rank under ``column`` (1 = best; equal means share a rank; undefined: None).

    Competition ranking ("1, 2, 2, 4") on the full-precision means, in the metric's direction;
    a metric of unknown direction is not ranked.
    """
    if column.higher_is_better is None:
        return
    values = [(r.cells[column.key].mean if column.key in r.cells else None) for r in rows]
    sign = -1.0 if column.higher_is_better else 1.0
    ordered = sorted(sign * v for v in values if v is not None)
    for row, v in zip(rows, values):
        if column.key in row.cells:
            row.cells[column.key].rank = None if v is None else 1 + _count_below(ordered, sign * v)


def _count_below(ordered: list[float], x: float) -> int:
    import bisect

    return bisect.bisect_left(ordered, x)


def sort_rows(rows: Sequence[Row], column: Column | None) -> list[Row]:
    """Best first under ``column`` (undefined last; ties in the given order), as the page's script sorts."""
    if column is None or column.higher_is_better is None:
        return list(rows)
    sign = -1.0 if column.higher_is_better else 1.0

    def key(row: Row):
        cell = row.cells.get(column.key)
        value = None if cell is None else cell.mean
        return (value is None, 0.0 if value is None else sign * value)

    return sorted(rows, key=key)
