"""Leaderboard tables rendered from results files (never typed by hand).

``report_table(2 | 3, results)`` rebuilds the report's Tables II and III: the
published rows from the model cards, then one measured row per results file
of the table's models, labelled with dataset, split, protocol and checkpoint.
``leaderboard_table(results, ...)`` ranks every model on one
(dataset, split, protocol); ``leaderboards(results)`` does so for every group.
``protocol_comparison_table`` puts one model's scores under every protocol side by side.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import textwrap
from pathlib import PurePath
from typing import Any, Iterable, Mapping, Sequence

from tabulate import tabulate

from salbench.leaderboard.rows import (Row, card_metric, changed_params, comparison_metrics, group_rows,  # noqa: F401
                                        metric_columns, metric_label, model_label, protocol_label, select_results,
                                        training_seed)

# The report's Tables II and III: their metrics (registry names), in the report's column order.
REPORT_METRICS = ("cc", "auc_shuffled", "auc_borji")
# The report's printed headers of those columns, kept as published text on the published
# tables only (everywhere else a metric is shown with its registry label, e.g. "sAUC").
REPORT_HEADERS = {"cc": "CC", "auc_shuffled": "AUC Shuffled", "auc_borji": "AUC Borji"}
# Which models each report table shows.
REPORT_TABLE_MODELS = {2: ("shallow_mse",), 3: ("shallow_mse", "shallow_kl")}
REPORT_TABLE_TITLES = {
    2: "Table II: replicated quantitative results (published rows: SALICON val)",
    3: "Table III: improved quantitative results (published rows: SALICON val)",
}
FORMATS = ("github", "latex", "csv", "plain")
#: Width of every github / plain table and note (a 120-column terminal): a wider table is cut
#: into column groups (:func:`render_fitted`), notes are wrapped. LaTeX and CSV are never cut.
MAX_WIDTH = 120
FITTED_FORMATS = ("github", "plain")


def checkpoint_label(result: Mapping[str, Any]) -> str:
    """Short checkpoint identity of a measured row: ``ckpt <sha256[:8]>`` or ``no checkpoint``."""
    ckpt = (result["model"].get("checkpoint") or {}).get("sha256")
    return f"ckpt {ckpt[:8]}" if ckpt else "no checkpoint"


def measured_label(result: Mapping[str, Any]) -> str:
    """How a measured row is labelled: model, dataset/split, protocol, checkpoint."""
    ds = result["dataset"]
    return (f"salbench {result['model']['name']} ({ds['name']}/{ds.get('split')}, "
            f"{result['protocol']['name']}, {checkpoint_label(result)})")


def published_rows_from_cards(cards: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The report's published rows from model cards, keyed by model name.

    A card's ``published_scores`` entries (``{"CC", "AUC_shuffled", "AUC_Borji",
    "dataset", "protocol", "source"}``) become ``{"label", "scores", "tables",
    "dataset", "protocol"}``: the label is the part of ``source`` after
    ``"report Table ...:"`` (or before its first comma), and a row quoted in
    Table II is shown in Tables II and III (Table III repeats Table II's rows),
    a Table III row only in Table III. Entries may give ``label`` and ``tables``
    themselves (plugins).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for name, card in cards.items():
        rows = []
        for entry in card.get("published_scores") or ():
            source = str(entry.get("source", ""))
            label = entry.get("label") or _label_from_source(source)
            tables = entry.get("tables")
            if tables is None:
                found = {2 if m == "II" else 3 for m in re.findall(r"Table (II|III)\b", source)}
                tables = sorted({3} if found == {3} else {2, 3}) if found else [2, 3]
            scores = {card_metric(k): v for k, v in entry.items() if card_metric(k) and v is not None}
            scores.update(entry.get("scores") or {})
            rows.append({"label": label, "scores": scores, "tables": list(tables),
                         "dataset": entry.get("dataset", ""), "protocol": _short(entry.get("protocol", ""))})
        out[name] = rows
    return out


def _label_from_source(source: str) -> str:
    if ":" in source:
        text = source.split(":", 1)[1].strip()
    else:
        text = source.split(",", 1)[0].strip()
    return text[:1].upper() + text[1:]


def _short(text: str) -> str:
    """A protocol description without its parenthesised aside."""
    return re.sub(r"\s*\(.*\)\s*$", "", str(text))


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *, numeric_from: int | None = None,
           align: Sequence[str] | None = None) -> str:
    """Render a table as GitHub markdown, LaTeX (booktabs), CSV or plain text.

    Columns from index ``numeric_from`` on are right-aligned (numbers), or each column
    as ``align`` says; LaTeX gets ``$\\uparrow$`` / ``$\\downarrow$`` for the arrows.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return buf.getvalue()
    tablefmt = {"github": "github", "latex": "latex_booktabs", "plain": "simple"}[fmt]
    colalign = list(align) if align is not None else None
    if colalign is None and numeric_from is not None:
        colalign = ["left"] * numeric_from + ["right"] * (len(headers) - numeric_from)
    text = tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True, colalign=colalign)
    if fmt == "latex":
        text = text.replace("↑", "$\\uparrow$").replace("↓", "$\\downarrow$")
    return text


def text_width(text: str) -> int:
    """Characters in the longest line of ``text``."""
    return max((len(line) for line in text.splitlines()), default=0)


def render_fitted(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *,
                  numeric_from: int | None = None, align: Sequence[str] | None = None, keep: int = 1,
                  width: int = MAX_WIDTH) -> str:
    """:func:`render`, cut into tables at most ``width`` characters wide in the github and plain formats.

    A wider table becomes several, one below the other: each repeats the first ``keep``
    columns (what names a row) and takes a run of the next columns, in order: the first table
    as many as fit (what a row is, first), the others as few tables as fit, cut where their
    widest is narrowest (no lone last column). LaTeX and CSV tables are returned whole.
    """
    if align is None:
        align = ["right" if numeric_from is not None and c >= numeric_from else "left" for c in range(len(headers))]
    full = render(headers, rows, fmt, align=align)
    if fmt not in FITTED_FORMATS or text_width(full) <= width or len(headers) <= keep + 1:
        return full

    def part(cols: list[int]) -> str:
        return render([headers[c] for c in cols], [[row[c] for c in cols] for row in rows], fmt,
                      align=[align[c] for c in cols])

    key, cols = list(range(keep)), list(range(keep, len(headers)))
    base = text_width(part(key))
    extra = [text_width(part(key + [c])) - base for c in cols]  # a column adds its own width: additive

    @functools.lru_cache(maxsize=None)
    def cut(i: int) -> tuple[int, int, tuple]:
        """(tables, widest, runs) of the best cut of ``cols[i:]``."""
        if i == len(cols):
            return 0, 0, ()
        best, w = None, base
        for j in range(i, len(cols)):
            w += extra[j]
            if w > width and j > i:
                break
            n, widest, runs = cut(j + 1)
            candidate = (n + 1, max(widest, w), ((i, j + 1),) + runs)
            best = candidate if best is None or candidate[:2] < best[:2] else best
        return best

    first, w = 1, base + extra[0]
    while first < len(cols) and w + extra[first] <= width:
        w += extra[first]
        first += 1
    runs = ((0, first),) + cut(first)[2]
    return "\n\n".join(part(key + cols[a:b]) for a, b in runs)


def fit_notes(text: str, fmt: str, width: int = MAX_WIDTH) -> str:
    """Notes under a table wrapped at ``width`` in the github and plain formats (table lines left alone)."""
    if fmt not in FITTED_FORMATS:
        return text
    out = []
    for line in text.split("\n"):
        if len(line) <= width or line.lstrip().startswith("|"):
            out.append(line)
        else:
            out.extend(textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


def _titled(title: str, body: str, fmt: str) -> str:
    if fmt == "csv":
        return body
    if fmt == "latex":
        return f"% {title}\n{body}"
    return f"{title}\n\n{body}"


def report_table(
    table: int,
    results: Iterable[Mapping[str, Any]],
    published: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    fmt: str = "github",
    digits: int = 2,
    dataset: str | None = None,
    protocol: str | None = None,
) -> str:
    """Render Table II or III: published rows, then measured rows.

    Parameters
    ----------
    table : {2, 3}
    results : iterable of results records
        Measured rows come only from these (filtered to the table's models, to
        results that measure all three report metrics and, optionally, to one
        dataset / protocol), one per results file, labelled with model,
        dataset/split, protocol and checkpoint (columns) and the file (Source).
    published : mapping
        Model name -> its card's published rows, each ``{"label", "scores",
        "tables"}`` (see :func:`published_rows_from_cards`); rows are shown for
        the tables they list, in card order, without repeating a label.
    fmt : {"github", "latex", "csv", "plain"}
    digits : int
        Decimals, 2 as in the report.
    """
    if table not in REPORT_TABLE_MODELS:
        raise ValueError(f"--table must be 2 or 3, got {table}")
    models = REPORT_TABLE_MODELS[table]
    headers = ["Row", "Source", "Dataset", "Protocol", "Checkpoint"] + [REPORT_HEADERS[m] for m in REPORT_METRICS]
    rows: list[list[str]] = []
    seen: set[str] = set()
    for model in models:
        for row in published.get(model, ()):
            if table not in row.get("tables", (table,)) or row["label"] in seen:
                continue
            seen.add(row["label"])
            rows.append([row["label"], "published", row.get("dataset") or "-", row.get("protocol") or "-", "-"] +
                        [_fmt(row["scores"].get(m), digits) for m in REPORT_METRICS])
    measured = [r for r in results if r["model"]["name"] in models
                and (dataset is None or r["dataset"]["name"] == dataset)
                and (protocol is None or r["protocol"]["name"] == protocol)
                and all(m in r["metrics"] for m in REPORT_METRICS)]
    grouped = group_rows(measured)
    grouped.sort(key=lambda g: (models.index(g.first["model"]["name"]), g.first["dataset"]["name"],
                                str(g.first["dataset"].get("split")), g.first["protocol"]["name"], g.label))
    if (dataset is not None or protocol is not None) and not grouped:
        raise ValueError(f"no measured results of {', '.join(models)} for dataset={dataset or 'any'} "
                         f"protocol={protocol or 'any'}")
    by_dataset: dict[str, list[list[str]]] = {}
    for g in grouped:
        ds = g.first["dataset"]
        files = [PurePath(r["_path"]).name for r in g.entries if r.get("_path")]
        source = "measured: " + (files[0] if len(files) == 1 else f"{len(files)} results files (mean ± sd over seeds)"
                                 if files else "results file")
        where = f"{ds['name']}/{ds.get('split')}"
        by_dataset.setdefault(where, []).append(
            [f"salbench {g.label}", source, where, protocol_label(g.first),
             g.checkpoint if g.n_seeds > 1 else checkpoint_label(g.first)] + [g.cell(m, digits) for m in REPORT_METRICS])
    if fmt == "csv":  # one machine-readable table, the dataset a column
        rows += [row for part in by_dataset.values() for row in part]
        return render(headers, rows, fmt)
    # One table per dataset (numbers on different datasets do not compare), the published rows atop each,
    # numbered; a table wider than the terminal is cut into column groups that repeat the number.
    parts = []
    for where in sorted(by_dataset) or [None]:
        table_rows = rows + by_dataset.get(where, [])
        numbered = [[str(i), label, *metrics, proto, ckpt,
                     source.removeprefix("measured: ") if source != "published" else f"published ({ds})"]
                    for i, (label, source, ds, proto, ckpt, *metrics) in enumerate(table_rows, start=1)]
        columns = ["#", "Row", *headers[5:], "Protocol", "Checkpoint", "Source"]
        body = render_fitted(columns, numbered, fmt, keep=1,
                             align=["left", "left"] + ["right"] * len(REPORT_METRICS) + ["left"] * 3)
        body = body if where is None else (f"% {where}\n{body}" if fmt == "latex" else f"## {where}\n\n{body}"
                                           if fmt == "github" else f"{where}\n\n{body}")
        parts.append(body)
    return _titled(REPORT_TABLE_TITLES[table], "\n\n".join(parts), fmt)


def _ranked(rows: Sequence[Row], key: str, higher_is_better: bool | None) -> list[Row]:
    """Best first by the mean of ``key``; undefined means last; ties by label."""
    sign = 1.0 if higher_is_better is False else -1.0

    def sort_key(row: Row):
        value = row.mean(key)
        return (value is None, sign * (value if value is not None else 0.0), row.label, row.first.get("_path", ""))

    return sorted(rows, key=sort_key)


def images_cell(result: Mapping[str, Any]) -> str:
    """``N`` scored images, with how many had no fixations (excluded) or no map (skipped)."""
    text = str(result["n_images"])
    notes = []
    if result.get("n_excluded"):
        notes.append(f"{result['n_excluded']} excl.")
    if result.get("n_skipped"):
        notes.append(f"{result['n_skipped']} skipped")
    return text + (f" ({', '.join(notes)})" if notes else "")


def leaderboard_table(
    results: Iterable[Mapping[str, Any]],
    *,
    dataset: str,
    split: str | None = None,
    protocol: str | None = None,
    sort_by: str | None = None,
    fmt: str = "github",
    digits: int = 3,
    verify: bool = True,
    alpha: float | None = 0.05,
) -> str:
    """Every model measured on one dataset (and split / protocol), best first.

    Rows are sorted by ``sort_by`` (default: the first column in the metric
    registry's order), respecting whether higher or lower is better; headers carry
    ↑ / ↓. Entries of one model variant that differ only in their training seed
    form one row: the mean over seeds ``±`` the standard deviation over seeds.
    ``verify`` adds a column with each row's verification word (its weakest entry's,
    :meth:`~salbench.leaderboard.rows.Row.verified`): what ``salbench check --record``
    recorded for the entries' exact bytes, else ``audited only`` or ``not verified``.
    ``alpha`` marks, per metric, the best row and the rows not significantly
    different from it (:mod:`salbench.leaderboard.significance`; None: no marks).
    """
    chosen = select_results(results, dataset, split, protocol)
    metrics, better = metric_columns(chosen)
    key = sort_by or metrics[0]
    if key not in metrics:
        raise ValueError(f"cannot sort by {key!r}: measured metrics are {', '.join(metrics)}")
    headers = ["#", "Model", "Protocol", "Checkpoint", "N"] + [metric_label(m, better[m]) for m in metrics]
    if verify:
        headers.append("Verified")
    rows = []
    ranked = _ranked(group_rows(chosen), key, better.get(key))
    from salbench.leaderboard.significance import mark_table

    marks = mark_table(ranked, metrics, better, alpha=alpha, fmt=fmt)
    for rank, row in enumerate(ranked, start=1):
        cells = [str(rank), row.label, protocol_label(row.first), row.checkpoint, images_cell(row.first)]
        cells += [row.cell(m, digits) + marks.suffix(rank - 1, m) for m in metrics]
        if verify:
            cells.append(row.verified(True))
        rows.append(cells)
    return render_fitted(headers, rows, fmt, numeric_from=4, keep=1) + fit_notes(marks.footer(), fmt)


def leaderboards(
    results: Iterable[Mapping[str, Any]],
    *,
    dataset: str | None = None,
    split: str | None = None,
    protocol: str | None = None,
    sort_by: str | None = None,
    fmt: str = "github",
    digits: int = 3,
    verify: bool = True,
    alpha: float | None = 0.05,
) -> str:
    """One ranking per (dataset, split, protocol) found in ``results``, optionally filtered.

    Text formats give one titled table per group; ``csv`` gives a single table
    with ``dataset``, ``split``, ``protocol`` and ``rank`` columns and the union
    of the groups' metrics (``-`` where a protocol does not measure one).
    """
    results = list(results)
    groups = sorted({(r["dataset"]["name"], str(r["dataset"].get("split")), r["protocol"]["name"])
                     for r in results
                     if (dataset is None or r["dataset"]["name"] == dataset)
                     and (split is None or r["dataset"].get("split") == split)
                     and (protocol is None or r["protocol"]["name"] == protocol)})
    if not groups:
        raise ValueError(f"no results for dataset={dataset or 'any'} split={split or 'any'} "
                         f"protocol={protocol or 'any'}")
    if fmt == "csv":
        return _leaderboards_csv(results, groups, sort_by, digits)
    parts = []
    for ds, sp, proto in groups:
        body = leaderboard_table(results, dataset=ds, split=sp, protocol=proto, sort_by=sort_by, fmt=fmt,
                                 digits=digits, verify=verify, alpha=alpha)
        title = f"{ds}/{sp}, protocol {proto}"
        parts.append(f"% {title}\n{body}" if fmt == "latex" else
                     f"## {title}\n\n{body}" if fmt == "github" else f"{title}\n\n{body}")
    return "\n\n".join(parts)


def _leaderboards_csv(results, groups, sort_by, digits) -> str:
    per_group = []
    for ds, sp, proto in groups:
        chosen = [r for r in results if (r["dataset"]["name"], str(r["dataset"].get("split")),
                                         r["protocol"]["name"]) == (ds, sp, proto)]
        metrics, better = metric_columns(chosen)
        key = sort_by or metrics[0]
        if key not in metrics:
            raise ValueError(f"cannot sort {ds}/{sp} {proto} by {key!r}: measured metrics are {', '.join(metrics)}")
        per_group.append((ds, sp, proto, _ranked(group_rows(chosen), key, better.get(key)), metrics, better))
    columns: list[str] = []
    better_all: dict[str, bool | None] = {}
    for *_, metrics, better in per_group:
        for m in metrics:
            if m not in columns:
                columns.append(m)
                better_all[m] = better[m]
    headers = ["dataset", "split", "protocol", "rank", "model", "checkpoint", "n_images", "n_seeds"] + [
        metric_label(m, better_all[m]) for m in columns]
    rows = []
    for ds, sp, proto, ranked, _, _ in per_group:
        for rank, row in enumerate(ranked, start=1):
            rows.append([ds, sp, proto, rank, row.label, row.checkpoint, row.first["n_images"], row.n_seeds] +
                        [_fmt(row.mean(m), digits) for m in columns])
    return render(headers, rows, "csv")


def protocol_comparison_table(
    results: Iterable[Mapping[str, Any]],
    *,
    model: str,
    dataset: str,
    split: str | None = None,
    metrics: Sequence[str] | None = None,
    fmt: str = "github",
    digits: int = 3,
) -> str:
    """The same model (same predictions) under every protocol, side by side.

    Shows why one model's "AUC" differs between the MIT benchmark, the SALICON
    server, the coursework script and the exact computation: each protocol
    measures its own AUC variants (``-`` where a protocol does not). Columns
    are ``metrics`` (default: CC and every AUC variant that any row has).
    """
    chosen = [r for r in results if r["model"]["name"] == model and r["dataset"]["name"] == dataset
              and (split is None or r["dataset"].get("split") == split)]
    # Only the maps scored under the most protocols take part (the same maps side by side): a
    # model trained with several seeds or recipes shows that set, not one row per seed.
    def same_maps(r):
        return (model_label(r), str(training_seed(r)), (r["model"].get("checkpoint") or {}).get("sha256"))

    runs: dict = {}
    for r in chosen:
        runs.setdefault(same_maps(r), set()).add((r["protocol"]["name"], json_key(r["protocol"]["params"])))
    most = max((len(v) for v in runs.values()), default=0)
    if most > 1:
        chosen = [r for r in chosen if len(runs[same_maps(r)]) == most]
    if not chosen:
        raise ValueError(f"no results for model={model} dataset={dataset} split={split}")
    chosen.sort(key=lambda r: (str(r["dataset"].get("split")), r["protocol"]["name"], json_key(r["protocol"]["params"])))
    present, better = metric_columns(chosen)
    if metrics is None:
        metrics = [m for m in comparison_metrics() if m in present]
    headers = ["Protocol", "Parameters", "Model", "Split"] + [metric_label(m, better.get(m)) for m in metrics]
    rows = []
    for r in chosen:
        rows.append([r["protocol"]["name"], changed_params(r), model_label(r), str(r["dataset"].get("split"))] +
                    [_fmt(r["metrics"].get(m, {}).get("mean"), digits) for m in metrics])
    labels, splits = {row[2] for row in rows}, {row[3] for row in rows}
    if fmt not in FITTED_FORMATS or len(labels) > 1 or len(splits) > 1:
        return render_fitted(headers, rows, fmt, numeric_from=4, keep=2)  # protocol and parameters name a row
    # In a terminal: the one model and split above the table, a protocol and its parameters in one cell.
    short = [[r[0] if r[1] == "-" else f"{r[0]} ({r[1]})", *r[4:]] for r in rows]
    table = render_fitted(["Protocol", *headers[4:]], short, fmt, numeric_from=1, keep=1)
    return f"{labels.pop()} on {dataset}/{splits.pop()}: the same maps under each protocol\n\n{table}"


def json_key(obj) -> str:
    import json

    return json.dumps(obj, sort_keys=True, default=str)
