"""Leaderboard tables rendered from results files (never typed by hand).

``report_table(2 | 3, results)`` rebuilds the report's Tables II and III: the
published rows from the model cards, then one measured row per results file
of the table's models, labelled with dataset, split, protocol and checkpoint.
``leaderboard_table(results, ...)`` ranks every model on one
(dataset, split, protocol).
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Mapping, Sequence

from tabulate import tabulate

# Report columns, in the report's order, keyed by salbench metric names.
REPORT_COLUMNS = (("cc", "CC"), ("auc_shuffled", "AUC Shuffled"), ("auc_borji", "AUC Borji"))
# Which models each report table shows.
REPORT_TABLE_MODELS = {2: ("shallow_mse",), 3: ("shallow_mse", "shallow_kl")}
REPORT_TABLE_TITLES = {
    2: "Table II: replicated quantitative results (SALICON val in the report)",
    3: "Table III: improved quantitative results (SALICON val in the report)",
}
FORMATS = ("github", "latex", "csv", "plain")

_METRIC_LABELS = {
    "cc": "CC", "nss": "NSS", "auc_judd": "AUC-Judd", "auc_borji": "AUC-Borji",
    "auc_shuffled": "sAUC", "kld": "KLD", "sim": "SIM", "info_gain": "IG",
    "auc_exact": "AUC (exact)", "auc_shuffled_exact": "sAUC (exact)",
}


def metric_label(name: str, higher_is_better: bool | None = None) -> str:
    """Column header for a metric, with an arrow saying which way is better."""
    label = _METRIC_LABELS.get(name, name)
    if higher_is_better is None:
        return label
    return f"{label} {'↑' if higher_is_better else '↓'}"


def measured_label(result: Mapping[str, Any]) -> str:
    """How a measured row is labelled: model, dataset/split, protocol, checkpoint."""
    ckpt = (result["model"].get("checkpoint") or {}).get("sha256")
    ckpt_text = f"ckpt {ckpt[:8]}" if ckpt else "no checkpoint"
    ds = result["dataset"]
    return (f"salbench {result['model']['name']} ({ds['name']}/{ds.get('split')}, "
            f"{result['protocol']['name']}, {ckpt_text})")


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """Render a table as GitHub markdown, LaTeX (booktabs), CSV or plain text."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return buf.getvalue()
    tablefmt = {"github": "github", "latex": "latex_booktabs", "plain": "simple"}[fmt]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


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
    """Render Table II or III.

    Parameters
    ----------
    table : {2, 3}
    results : iterable of results records
        Measured rows come only from these (filtered to the table's models and,
        optionally, to one dataset / protocol).
    published : mapping
        Model name -> its card's published rows, each ``{"label", "scores",
        "tables"}``; rows are shown for the tables they list, in card order,
        without repeating a label.
    """
    if table not in REPORT_TABLE_MODELS:
        raise ValueError(f"--table must be 2 or 3, got {table}")
    models = REPORT_TABLE_MODELS[table]
    headers = ["Model", "Source"] + [label for _, label in REPORT_COLUMNS]
    rows: list[list[str]] = []
    seen: set[str] = set()
    for model in models:
        for row in published.get(model, ()):
            if table not in row.get("tables", (table,)) or row["label"] in seen:
                continue
            seen.add(row["label"])
            rows.append([row["label"], "published"] +
                        [_fmt(row["scores"].get(key), digits) for key, _ in REPORT_COLUMNS])
    measured = [r for r in results if r["model"]["name"] in models
                and (dataset is None or r["dataset"]["name"] == dataset)
                and (protocol is None or r["protocol"]["name"] == protocol)
                and any(key in r["metrics"] for key, _ in REPORT_COLUMNS)]
    measured.sort(key=lambda r: (models.index(r["model"]["name"]), r["dataset"]["name"], r["protocol"]["name"]))
    for r in measured:
        rows.append([measured_label(r), r.get("_path", "measured")] +
                    [_fmt(r["metrics"].get(key, {}).get("mean"), digits) for key, _ in REPORT_COLUMNS])
    title = REPORT_TABLE_TITLES[table]
    body = render(headers, rows, fmt)
    if fmt == "csv":
        return body
    if fmt == "latex":
        return f"% {title}\n{body}"
    return f"{title}\n\n{body}"


def leaderboard_table(
    results: Iterable[Mapping[str, Any]],
    *,
    dataset: str,
    split: str | None = None,
    protocol: str | None = None,
    sort_by: str | None = None,
    fmt: str = "github",
    digits: int = 3,
) -> str:
    """Every model measured on one dataset (and split / protocol), best first.

    Rows are sorted by ``sort_by`` (default: the protocol's first metric),
    respecting whether higher or lower is better.
    """
    chosen = [r for r in results if r["dataset"]["name"] == dataset
              and (split is None or r["dataset"].get("split") == split)
              and (protocol is None or r["protocol"]["name"] == protocol)]
    if not chosen:
        raise ValueError(f"no results for dataset={dataset} split={split} protocol={protocol}")
    metrics: list[str] = []
    better: dict[str, bool | None] = {}
    for r in chosen:
        for name, block in r["metrics"].items():
            if name not in metrics:
                metrics.append(name)
                better[name] = block.get("higher_is_better")
    key = sort_by or metrics[0]
    if key not in metrics:
        raise ValueError(f"cannot sort by {key!r}: measured metrics are {', '.join(metrics)}")
    sign = -1.0 if better.get(key, True) is not False else 1.0

    def sort_key(r):
        value = r["metrics"].get(key, {}).get("mean")
        return (value is None, sign * (value if value is not None else 0.0), r["model"]["name"])

    headers = ["#", "Model", "Protocol", "Checkpoint", "N"] + [metric_label(m, better[m]) for m in metrics]
    rows = []
    for rank, r in enumerate(sorted(chosen, key=sort_key), start=1):
        ckpt = (r["model"].get("checkpoint") or {}).get("sha256")
        rows.append([str(rank), r["model"]["name"], r["protocol"]["name"], ckpt[:8] if ckpt else "-",
                     str(r["n_images"])] +
                    [_fmt(r["metrics"].get(m, {}).get("mean"), digits) for m in metrics])
    return render(headers, rows, fmt)


def protocol_comparison_table(
    results: Iterable[Mapping[str, Any]],
    *,
    model: str,
    dataset: str,
    split: str | None = None,
    metrics: Sequence[str] = ("cc", "auc_borji", "auc_shuffled"),
    fmt: str = "github",
    digits: int = 3,
) -> str:
    """The same model (same predictions) under every protocol, side by side.

    Shows why one model's "AUC" differs between the MIT benchmark, the SALICON
    server and the coursework script.
    """
    chosen = [r for r in results if r["model"]["name"] == model and r["dataset"]["name"] == dataset
              and (split is None or r["dataset"].get("split") == split)]
    if not chosen:
        raise ValueError(f"no results for model={model} dataset={dataset} split={split}")
    chosen.sort(key=lambda r: r["protocol"]["name"])
    headers = ["Protocol", "Predictions"] + [metric_label(m) for m in metrics]
    rows = []
    for r in chosen:
        pred = (r.get("predictions") or {}).get("sha256")
        rows.append([r["protocol"]["name"], pred[:8] if pred else "-"] +
                    [_fmt(r["metrics"].get(m, {}).get("mean"), digits) for m in metrics])
    return render(headers, rows, fmt)
