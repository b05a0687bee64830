"""The site's pages as data (:mod:`.model`), built from results records through :mod:`.source`.

Pages: ``index.html``; one ``board-<dataset>-<split>-<protocol>.html`` per (dataset, split,
protocol), every model ranked; ``report-table-2.html`` / ``report-table-3.html`` (the
report's Tables II and III, published rows beside measured rows, one table per dataset);
``protocols-<dataset>-<split>.html`` (one model's maps under every protocol). Everything is
ordered by sorted keys, so the same results give the same pages.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from salbench.leaderboard.site import source
from salbench.leaderboard.site.model import (
    MARKS, Cell, Column, EntryDetail, Link, Page, Row, SeedValue, Table, rank_rows, sort_rows,
)


@dataclass
class Context:
    """Where the results and the site lie (links are relative from the site folder)."""

    root: Path
    site_dir: Path
    cards: Mapping[str, Mapping[str, Any]]
    _verified: dict = field(default_factory=dict)

    def verification(self, entry: Mapping[str, Any]) -> source.Verification:
        """:func:`source.verification` once per results file and build (it hashes the predictions)."""
        key = (entry.get("_path"), entry.get("_sha256"))
        if key not in self._verified:
            self._verified[key] = source.verification(entry)
        return self._verified[key]

    def link(self, path: str | os.PathLike, text: str | None = None, note: str = "") -> Link:
        rel = Path(os.path.relpath(Path(path).resolve(), self.site_dir.resolve())).as_posix()
        return Link(quote(rel), text if text is not None else Path(path).name, note)


def slug(text: str) -> str:
    """A file-name-safe form of ``text``; a changed or empty one gets 8 hex of its SHA-256 (no clashes)."""
    s = re.sub(r"[^a-z0-9_.-]+", "-", str(text).lower()).strip("-.")
    if s == str(text) and s:
        return s
    return f"{s[:40]}-{hashlib.sha256(str(text).encode('utf-8')).hexdigest()[:8]}".lstrip("-")


def board_filename(dataset: str, split: str, protocol: str) -> str:
    return f"board-{slug(dataset)}-{slug(split)}-{slug(protocol)}.html"


def protocols_filename(dataset: str, split: str) -> str:
    return f"protocols-{slug(dataset)}-{slug(split)}.html"


def report_filename(table: int) -> str:
    return f"report-table-{table}.html"


def _ds_key(r: Mapping[str, Any]) -> tuple[str, str]:
    return r["dataset"]["name"], str(r["dataset"].get("split"))


def _columns(metrics: Iterable[str], entries: Sequence[Mapping[str, Any]], labels: Mapping[str, str] | None = None):
    return [Column(m, (labels or {}).get(m) or source.metric_label(m), source.higher_is_better(m, entries),
                   source.metric_description(m)) for m in metrics]


# -- rows ----------------------------------------------------------------------------------------
def _pairs(mapping: Mapping[str, Any] | None, skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    skip = set(skip)
    return [(str(k), source.describe_json(v)) for k, v in sorted((mapping or {}).items(), key=lambda kv: str(kv[0]))
            if k not in skip and v not in (None, "", {}, [])]


def _date(created: Any) -> str:
    return str(created)[:10] if created else "-"


def _cell(entries: Sequence[Mapping[str, Any]], group, metric: str) -> Cell:
    blocks = [r["metrics"].get(metric) for r in entries]
    if len(entries) == 1:
        b = blocks[0]
        if b is None:
            return Cell(None)
        return Cell(b.get("mean"), ci95=tuple(b.get("ci95") or (None, None)), n=b.get("n"))
    seeds = [SeedValue(source.training_seed(r), b.get("mean"), tuple(b.get("ci95") or (None, None)), b.get("n"))
             for r, b in zip(entries, blocks) if b is not None]
    return Cell(group.mean(metric), sd=group.spread(metric), seeds=seeds)


def _card(entry: Mapping[str, Any], cards: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Model card lines: the card (built-in models) and what the entry records of its model."""
    model = entry["model"]
    card = cards.get(model["name"]) or {}
    training = source.training_of(entry)
    recipe = training.get("recipe") if isinstance(training.get("recipe"), Mapping) else {}
    out = [("model", model["name"])]
    for key, label in (("description", "description"), ("architecture", "architecture"), ("loss", "loss"),
                       ("source", "source")):
        if card.get(key):
            out.append((label, str(card[key])))
    if isinstance(card.get("parameters"), int):
        out.append(("parameters", f"{card['parameters']:,}"))
    trained_on = model.get("card_trained_on") or card.get("trained_on")
    if trained_on:
        out.append(("trained on", str(trained_on)))
    if training.get("label"):
        out.append(("training", str(training["label"])))
    target = training.get("target", recipe.get("target"))
    if target:
        out.append(("KL target" if model["name"] == "shallow_kl" else "training target", str(target)))
    if recipe:
        out.append(("training recipe", ", ".join(f"{k}={source.describe_json(v)}" for k, v in sorted(recipe.items()))))
    if model.get("output_size"):
        out.append(("output size", source.describe_json(model["output_size"])))
    if model.get("options"):
        out.append(("options", source.describe_json(model["options"])))
    if not card:
        out.append(("card", "no built-in card (a plugin's card is not read when building the site)"))
    return out


def _entry_detail(r: Mapping[str, Any], ctx: Context) -> EntryDetail:
    model = r["model"]
    ckpt = model.get("checkpoint") or {}
    checkpoint = f"{ckpt.get('sha256')} ({ckpt.get('path')})" if ckpt.get("sha256") else "none"
    trained = model.get("trained") or {}
    model_lines = []
    if trained:
        model_lines.append(("trained", ", ".join(f"{k}={source.describe_json(trained[k])}" for k in
                                                  ("where", "epochs", "planned_epochs", "completed", "wall_time_s")
                                                  if k in trained)))
        chosen = trained.get("chosen_checkpoint")
        if isinstance(chosen, Mapping):
            model_lines.append(("chosen checkpoint", ", ".join(f"{k}={source.describe_json(v)}"
                                                               for k, v in sorted(chosen.items()))))
    ds = r["dataset"]
    dataset = [("dataset", f"{ds['name']}/{ds.get('split')}"), ("images scored", source.images_label(r))]
    dataset += _pairs(ds, skip=("name", "split", "params", "options"))
    dataset += [(f"dataset.{k}", v) for k, v in _pairs(ds.get("params"))]
    dataset += [(f"option {k}", v) for k, v in _pairs(ds.get("options"))]
    protocol = [("protocol", source.protocol_label(r)), ("evaluation seed", source.describe_json(r.get("seed")))]
    protocol += _pairs(r["protocol"].get("params"), skip=("name",))
    if source.maps_kind(r):
        protocol.append(("maps", source.describe_json(r.get("maps"))))
    v = ctx.verification(r)
    created = str(r.get("created") or "-") + (f" (updated {r['updated']})" if r.get("updated") else "")
    return EntryDetail(file=ctx.link(r["_path"]), created=created, seed=source.training_seed(r),
                       verification=(v.word, v.detail), checkpoint=checkpoint, model=model_lines,
                       dataset=dataset, protocol=protocol, maps=source.maps_kind(r))


def measured_row(key: str, group, columns: Sequence[Column], ctx: Context, *, label: str | None = None) -> Row:
    """A row from a :class:`salbench.leaderboard.rows.Row` (entries differing only in training seed)."""
    entries = list(group.entries)
    first = group.first
    verifications = [ctx.verification(r) for r in entries]
    row_v = source.weakest(verifications)
    figures, seen = [], set()
    for r in entries:
        for fig in source.figures_for(r, ctx.root):
            if fig.path not in seen:
                seen.add(fig.path)
                figures.append(ctx.link(fig.path, f"{fig.kind}: {fig.path.name}", fig.note))
    dates = sorted({_date(r.get("created")) for r in entries})
    every = _columns(source.metric_keys(entries), entries)
    return Row(
        key=key, label=label or source.row_label(group), kind="measured",
        cells={c.key: _cell(entries, group, c.key) for c in columns},
        model=first["model"]["name"], protocol=source.protocol_label(first),
        checkpoint=source.checkpoint_label(group), images=source.images_label(first),
        scored=dates[0] if len(dates) == 1 else f"{dates[0]} – {dates[-1]}",
        n_seeds=group.n_seeds, maps=source.maps_kind(first), verification=(row_v.word, row_v.detail),
        card=_card(first, ctx.cards), entries=[_entry_detail(r, ctx) for r in entries], figures=figures,
        scores=[(c, _cell(entries, group, c.key)) for c in every],
    )


def _apply_significance(table: Table, groups: Sequence, rows: Sequence[Row]) -> None:
    found = source.significance(groups, [c.key for c in table.columns])
    if found is None:
        return
    table.significance = found.test
    table.significance_note = found.note
    if len(found.marks) != len(rows):
        raise ValueError(f"significance marks for {len(found.marks)} rows, the table has {len(rows)}")
    for row, marks in zip(rows, found.marks):
        for metric, mark in marks.items():
            if mark not in MARKS:
                raise ValueError(f"unknown significance mark {mark!r} (expected one of {', '.join(MARKS)})")
            if metric in row.cells:
                row.cells[metric].mark = mark


# -- pages ---------------------------------------------------------------------------------------
def board_page(dataset: str, split: str, protocol: str, chosen: Sequence[Mapping[str, Any]], ctx: Context) -> Page:
    """Every model measured on (dataset, split) under ``protocol``, ranked per metric."""
    columns = _columns(source.metric_keys(chosen), chosen)
    groups = source.group_rows(chosen)
    groups.sort(key=lambda g: (g.label, str(source.maps_kind(g.first)), g.first.get("_path", "")))
    table_key = "board"
    rows = [measured_row(f"{table_key}-r{i}", g, columns, ctx) for i, g in enumerate(groups)]
    table = Table(key=table_key, title=f"{dataset}/{split}, protocol {protocol}", columns=columns, rows=rows,
                  sort_key=columns[0].key if columns else None)
    _apply_significance(table, groups, rows)
    for c in columns:
        rank_rows(rows, c)
    table.rows = sort_rows(rows, columns[0] if columns else None)
    if any(r.n_seeds > 1 for r in rows):
        table.notes.append("Rows of several training seeds show the mean over seeds ± the standard deviation "
                           "over seeds; each seed's 95% CI is in the row's details and on hover.")
    first = chosen[0]["dataset"]
    facts = [("dataset", f"{dataset} (split {split})"),
             ("images", ", ".join(sorted({str(r["n_images"]) for r in chosen}))),
             ("dataset content hash", ", ".join(sorted({str(r["dataset"].get("content_hash", "-"))[:16]
                                                         for r in chosen}))),
             ("protocol", protocol), ("results files", str(len(chosen)))]
    if first.get("data_dir"):
        facts.append(("data directory (as recorded)", str(first["data_dir"])))
    intro = ["Click a metric's name to sort by it (best first, in the metric's direction: ↑ higher is better, "
             "↓ lower is better; click again for the reverse). Each cell's small number is the row's rank on "
             "that metric; hover a value for its 95% confidence interval, or open a row (▸) for its details."]
    return Page(board_filename(dataset, split, protocol), f"{dataset}/{split} · {protocol}", intro, [table], facts)


def report_page(table_no: int, entries: Sequence[Mapping[str, Any]], ctx: Context) -> Page:
    """The report's Table II or III: its published rows beside the measured rows, one table per dataset."""
    published = source.published_rows(table_no)
    chosen = source.report_entries(table_no, entries)
    headers = dict(source.report_columns())
    columns = _columns(list(headers), chosen, headers)
    datasets = sorted({_ds_key(r) for r in chosen}) or [None]
    tables_out = []
    for ti, ds in enumerate(datasets):
        key = f"t{ti}"
        rows = [Row(key=f"{key}-p{i}", label=p["label"], kind="published",
                    cells={c.key: Cell(p["scores"].get(c.key)) for c in columns}, model=p["model"],
                    protocol=p.get("protocol") or "-", source=f"published ({p.get('dataset') or '-'})")
                for i, p in enumerate(published)]
        if ds is not None:
            groups = source.report_order(table_no, source.group_rows([r for r in chosen if _ds_key(r) == ds]))
            for i, g in enumerate(groups):
                row = measured_row(f"{key}-m{i}", g, columns, ctx, label=f"salbench {g.label}")
                files = [e.file.text for e in row.entries]
                row.source = ("measured: " + files[0]) if len(files) == 1 else \
                    f"measured: {len(files)} results files (mean ± sd over seeds)"
                rows.append(row)
        title = f"{ds[0]}/{ds[1]}" if ds else "published rows (no measured rows)"
        t = Table(key=key, title=title, columns=columns, rows=rows, ranked=False, digits=2,
                  show=("source", "protocol", "checkpoint", "scored", "verification"))
        t.notes.append("Published rows are the report's (SALICON val); measured rows are salbench's results files "
                       f"on {title}. Numbers on different datasets are not comparable with each other.")
        tables_out.append(t)
    intro = [f"{source.report_title(table_no)}. Published rows come from the model cards (models/*.json); "
             "measured rows come only from results files. Click a column to sort."]
    return Page(report_filename(table_no), f"Table {'II' if table_no == 2 else 'III'}", intro, tables_out)


def protocols_page(dataset: str, split: str, chosen: Sequence[Mapping[str, Any]], ctx: Context) -> Page | None:
    """For each model of (dataset, split): the same maps scored under every protocol, side by side."""
    groups = source.comparison_groups(chosen)
    if not groups:
        return None
    from salbench.leaderboard.tables import Row as GroupRow

    tables_out = []
    for ti, (model, entries) in enumerate(groups):
        columns = _columns(source.comparison_metrics(entries), entries)
        rows = []
        for i, r in enumerate(entries):
            seed = source.training_seed(r)
            label = _model_label(r) + ("" if seed is None else f" seed {seed}")
            rows.append(measured_row(f"t{ti}-r{i}", GroupRow([r], label), columns, ctx, label=label))
        t = Table(key=f"t{ti}", title=f"{model}: the same maps under each protocol", columns=columns, rows=rows,
                  ranked=False, show=("protocol", "checkpoint", "images", "scored", "verification"))
        t.notes.append("Each protocol measures its own variants of the metrics (- where it does not); values of "
                       "one metric under different protocols differ by the protocol's choices, not the model. "
                       "Columns: CC and every AUC variant; a row's details list all its metrics.")
        tables_out.append(t)
    intro = [f"One model's predictions on {dataset}/{split} scored under every protocol that scored them "
             "(the maps scored under the most protocols), as in `salbench leaderboard --compare-protocols`."]
    return Page(protocols_filename(dataset, split), f"{dataset}/{split} · protocols", intro, tables_out)


def _model_label(r: Mapping[str, Any]) -> str:
    from salbench.leaderboard.tables import model_label

    return model_label(r)


@dataclass
class Index:
    """What ``index.html`` lists."""

    datasets: list[tuple[str, str]]
    protocols: list[str]
    boards: dict[tuple[str, str, str], tuple[str, int]]  # (dataset, split, protocol) -> (file, rows)
    reports: list[tuple[str, str]]
    comparisons: list[tuple[str, str]]
    unreadable: list[tuple[str, str]]
    results: Link
    n_entries: int


def build_pages(entries: Sequence[Mapping[str, Any]], unreadable, root: Path,
                site_dir: Path) -> tuple[Index, list[Page]]:
    """Every page of the site, and what the index lists."""
    ctx = Context(Path(root), Path(site_dir), source.model_cards())
    pages: list[Page] = []
    boards = {}
    keys = sorted({(*_ds_key(r), r["protocol"]["name"]) for r in entries})
    for ds, sp, proto in keys:
        chosen = [r for r in entries if (*_ds_key(r), r["protocol"]["name"]) == (ds, sp, proto)]
        page = board_page(ds, sp, proto, chosen, ctx)
        boards[(ds, sp, proto)] = (page.filename, len(page.tables[0].rows))
        pages.append(page)
    reports = []
    for n in (2, 3):
        page = report_page(n, entries, ctx)
        pages.append(page)
        reports.append((page.filename, source.report_title(n)))
    comparisons = []
    for ds, sp in sorted({_ds_key(r) for r in entries}):
        page = protocols_page(ds, sp, [r for r in entries if _ds_key(r) == (ds, sp)], ctx)
        if page is not None:
            pages.append(page)
            comparisons.append((page.filename, f"{ds}/{sp}: " + ", ".join(t.title.split(":")[0] for t in page.tables)))
    index = Index(
        datasets=sorted({(ds, sp) for ds, sp, _ in keys}), protocols=sorted({p for *_, p in keys}), boards=boards,
        reports=reports, comparisons=comparisons,
        unreadable=[(ctx.link(u.path).href, u.error) for u in unreadable],
        results=ctx.link(root, Path(os.path.relpath(Path(root).resolve(), Path(site_dir).resolve())).as_posix()),
        n_entries=len(entries))
    return index, pages
