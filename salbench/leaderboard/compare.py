"""Paired comparison of two leaderboard rows on their per-image scores (``salbench compare``).

A row is one results entry, or several entries of one model that differ only in
their training seed (a seed-averaged leaderboard row). Two rows are compared
only when their scores are paired: the same dataset content, split, dataset and
protocol parameters, evaluation seed and image names (:func:`first_difference`).
Per metric, a seed-averaged row contributes the per-image mean over its entries,
and the statistics are those of :mod:`salbench.stats` on the per-image
differences A - B (:func:`compare_rows`).

Results files are read only through :func:`load_entry`.

JSON report, schema ``salbench.compare/1`` (:func:`compare_rows`; keys sorted when written)::

    {"schema": "salbench.compare/1", "salbench_version", "scipy_version",
     "a": SIDE, "b": SIDE,
     "dataset": {"name", "split", "content_hash"}, "protocol": {"name", "params"},
     "evaluation_seed", "n_images",
     "seed_averaging": null | "per-image values averaged over the entries of each row before A - B",
     "bootstrap": {"method": "BCa", "paired": true, "statistic", "n_resamples", "seed", "confidence_level"},
     "wilcoxon": {"zero_method", "correction", "alternative", "method", "all_zero_differences"},
     "metrics": {METRIC: {"higher_is_better", "better", "mean_a", "mean_b", "mean_difference", "ci95",
                          "p_value", "wilcoxon_statistic", "n", "n_excluded", "n_zero_differences"}}}
    SIDE = {"label", "model", "entries": [path, ...], "training_seeds": [...]}

Non-finite numbers (a CI BCa cannot give, a p-value of no pairs) are ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from salbench import stats

COMPARE_SCHEMA = "salbench.compare/1"
SEED_AVERAGING = "per-image values averaged over the entries of each row before A - B"
ALL_ZERO_RULE = "p = 1 and statistic null when every difference is zero"


class NotComparable(ValueError):
    """Two rows (or two entries of one row) whose per-image scores are not paired; the message says why."""


def load_entry(path) -> dict[str, Any]:
    """Read and validate one results file (the only place this module reads one)."""
    from salbench.results import load_result

    return load_result(path)


# -- what must agree -----------------------------------------------------------------------------
def pairing_key(entry: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """What two entries must share, besides their image names, for their scores to be paired.

    In the order differences are reported: dataset content hash, split, dataset
    parameters and options (they define the ground truth), protocol, protocol
    parameters, evaluation seed (it draws e.g. the shuffled-AUC negatives).
    """
    ds = entry["dataset"]
    proto = entry["protocol"]
    return [
        ("dataset content hash", ds.get("content_hash")),
        ("split", ds.get("split")),
        ("dataset parameters", ds.get("params") or {}),
        ("dataset options", ds.get("options") or {}),
        ("protocol", proto.get("name")),
        ("protocol parameters", proto.get("params") or {}),
        ("evaluation seed", entry.get("seed")),
    ]


def _name(entry: Mapping[str, Any]) -> str:
    path = entry.get("_path")
    return str(path) if path else f"entry of {entry['model']['name']}"


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else str(value)


def first_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """The first reason the scores of entries ``a`` and ``b`` are not paired, or None.

    Parameters are reported one by one (``protocol parameter ground_truth: mit vs
    dataset``); image names as how many are shared and the first one missing.
    """
    for (what, va), (_, vb) in zip(pairing_key(a), pairing_key(b)):
        if what == "dataset content hash" and (va is None or vb is None):
            return "no dataset content hash recorded (cannot tell the data is the same)"
        if va == vb:
            continue
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            key = sorted(k for k in set(va) | set(vb) if va.get(k, _MISSING) != vb.get(k, _MISSING))[0]
            return (f"{what[:-1] if what.endswith('s') else what} {key}: "
                    f"{_show(va.get(key, '(absent)'))} vs {_show(vb.get(key, '(absent)'))}")
        return f"{what}: {_show(va)} vs {_show(vb)}"
    names_a, names_b = a["image_names"], b["image_names"]
    if set(names_a) != set(names_b):
        shared = len(set(names_a) & set(names_b))
        only_a = sorted(set(names_a) - set(names_b))
        only_b = sorted(set(names_b) - set(names_a))
        first = f"{only_a[0]} only in the first" if only_a else f"{only_b[0]} only in the second"
        return (f"image names: {shared} shared of {len(names_a)} and {len(names_b)} "
                f"(e.g. {first})")
    return None


_MISSING = object()


def check_pair(a: Mapping[str, Any], b: Mapping[str, Any], what: str = "A and B") -> None:
    """Raise :class:`NotComparable` naming the first difference between entries ``a`` and ``b``."""
    diff = first_difference(a, b)
    if diff is not None:
        raise NotComparable(f"{what} are not paired ({_name(a)} vs {_name(b)}): {diff}")


def check_row(entries: Sequence[Mapping[str, Any]], side: str = "A") -> None:
    """A row's entries must be distinct, of one model and paired with each other."""
    if not entries:
        raise NotComparable(f"row {side} has no results entry")
    paths = [e.get("_path") for e in entries if e.get("_path")]
    if len(set(paths)) != len(paths):
        dup = next(p for p in paths if paths.count(p) > 1)
        raise NotComparable(f"row {side} names {dup} twice")
    models = sorted({e["model"]["name"] for e in entries})
    if len(models) > 1:
        raise NotComparable(f"row {side} mixes models {', '.join(models)}: a row is one model's seed entries")
    for e in entries[1:]:
        check_pair(entries[0], e, f"the entries of row {side}")


# -- per-image values ----------------------------------------------------------------------------
def per_image(entry: Mapping[str, Any], metric: str, names: Sequence[str]) -> np.ndarray:
    """``entry``'s per-image values of ``metric`` in the order of ``names`` (NaN where undefined)."""
    block = entry["metrics"].get(metric)
    if block is None:
        raise NotComparable(f"{_name(entry)} does not measure {metric}")
    values = dict(zip(entry["image_names"], block["per_image"]))
    return np.array([np.nan if values[n] is None else values[n] for n in names], dtype=np.float64)


def row_values(entries: Sequence[Mapping[str, Any]], metric: str, names: Sequence[str]) -> np.ndarray:
    """Per-image values of a row: the mean over its entries, NaN where any entry is NaN."""
    stack = np.vstack([per_image(e, metric, names) for e in entries])
    return stack.mean(axis=0)  # a NaN in any entry stays NaN: that image is excluded and counted


def metric_direction(metric: str, entries: Iterable[Mapping[str, Any]]) -> bool | None:
    """Whether higher is better: the metric registry's answer, else what the entries record."""
    from salbench.metrics import METRICS  # deferred: imports numba

    if metric in METRICS:
        return bool(METRICS[metric].higher_is_better)
    for e in entries:
        hib = e["metrics"].get(metric, {}).get("higher_is_better")
        if hib is not None:
            return bool(hib)
    return None


def shared_metrics(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Metrics every entry measures, in the metric registry's order (then by name)."""
    from salbench.metrics import METRICS

    entries = list(entries)
    common = set(entries[0]["metrics"])
    for e in entries[1:]:
        common &= set(e["metrics"])
    order = {m: i for i, m in enumerate(METRICS)}
    return sorted(common, key=lambda m: (order.get(m, len(order)), m))


def better_side(difference: float, higher_is_better: bool | None) -> str | None:
    """``"A"``, ``"B"`` or ``"neither"`` by the mean difference A - B and the metric's direction."""
    if higher_is_better is None or not math.isfinite(difference):
        return None
    if difference == 0:
        return "neither"
    return "A" if (difference > 0) == higher_is_better else "B"


# -- the comparison ------------------------------------------------------------------------------
def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _training_seed(entry: Mapping[str, Any]):
    from salbench.leaderboard.rows import training_seed

    return training_seed(entry)


def _side(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    from salbench.leaderboard.rows import model_label

    return {"label": model_label(entries[0]), "model": entries[0]["model"]["name"],
            "entries": [str(e.get("_path", "")) for e in entries],
            "training_seeds": [_training_seed(e) for e in entries]}


def compare_rows(
    a: Sequence[Mapping[str, Any]],
    b: Sequence[Mapping[str, Any]],
    *,
    metrics: Sequence[str] | None = None,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> dict[str, Any]:
    """Compare row A with row B on every metric both measure (or ``metrics``).

    Parameters
    ----------
    a, b : sequence of results records
        Each one entry, or the seed entries of one model (per-image values are
        averaged over them first).
    metrics : sequence of str, optional
        Metric names; default every metric all entries measure, in registry order.
    n_resamples, seed
        Of the paired BCa bootstrap (recorded in the report).

    Returns
    -------
    dict
        The ``salbench.compare/1`` report (module docstring).

    Raises
    ------
    NotComparable
        The rows are not paired (the message names the first difference), a row
        mixes models or repeats an entry, or a requested metric is not measured.
    """
    import scipy

    from salbench import __version__

    a, b = list(a), list(b)
    check_row(a, "A")
    check_row(b, "B")
    check_pair(a[0], b[0])
    if n_resamples < 1:
        raise ValueError(f"the bootstrap needs at least 1 resample, not {n_resamples}")
    available = shared_metrics(a + b)
    if metrics is None:
        metrics = available
    else:
        for m in metrics:
            if m not in available:
                missing = next(e for e in a + b if m not in e["metrics"])
                raise NotComparable(f"metric {m!r} is not measured by {_name(missing)} "
                                    f"(shared metrics: {', '.join(available) or 'none'})")
    names = list(a[0]["image_names"])
    out_metrics = {}
    for m in metrics:
        res = stats.paired_comparison(row_values(a, m, names), row_values(b, m, names),
                                      n_resamples=n_resamples, seed=seed)
        hib = metric_direction(m, a + b)
        out_metrics[m] = {
            "higher_is_better": hib,
            "better": better_side(res.mean_difference, hib),
            "mean_a": _finite(res.mean_a), "mean_b": _finite(res.mean_b),
            "mean_difference": _finite(res.mean_difference),
            "ci95": [_finite(res.ci95[0]), _finite(res.ci95[1])],
            "p_value": _finite(res.p_value), "wilcoxon_statistic": _finite(res.wilcoxon_statistic),
            "n": res.n, "n_excluded": res.n_excluded, "n_zero_differences": res.n_zero_differences,
        }
    ds = a[0]["dataset"]
    return {
        "schema": COMPARE_SCHEMA,
        "salbench_version": __version__,
        "scipy_version": scipy.__version__,
        "a": _side(a), "b": _side(b),
        "dataset": {"name": ds["name"], "split": ds.get("split"), "content_hash": ds.get("content_hash")},
        "protocol": {"name": a[0]["protocol"]["name"], "params": dict(a[0]["protocol"].get("params") or {})},
        "evaluation_seed": a[0].get("seed"),
        "n_images": len(names),
        "seed_averaging": SEED_AVERAGING if len(a) > 1 or len(b) > 1 else None,
        "bootstrap": {"method": stats.BOOTSTRAP_METHOD, "paired": True, "statistic": "mean of A - B",
                      "n_resamples": int(n_resamples), "seed": int(seed), "confidence_level": 0.95},
        "wilcoxon": {**stats.WILCOXON_SETTINGS, "all_zero_differences": ALL_ZERO_RULE},
        "metrics": out_metrics,
    }


def report_json(report: Mapping[str, Any]) -> str:
    """The report as stable JSON text (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(report, sort_keys=True, indent=2, allow_nan=False) + "\n"


# -- text ----------------------------------------------------------------------------------------
def _num(x: float | None, digits: int, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _side_line(tag: str, side: Mapping[str, Any]) -> str:
    n = len(side["entries"])
    if n == 1:
        return f"{tag}: {side['label']}  ({side['entries'][0]})"
    seeds = ", ".join(str(s) for s in side["training_seeds"])
    return f"{tag}: {side['label']}  ({n} entries, training seeds {seeds})"


def format_report(report: Mapping[str, Any], digits: int = 4) -> str:
    """The report as a plain-text table with the settings below it."""
    from tabulate import tabulate

    from salbench.leaderboard.rows import metric_label

    ds, proto = report["dataset"], report["protocol"]
    lines = [_side_line("A", report["a"]), _side_line("B", report["b"]),
             f"{ds['name']}/{ds['split']} (content {str(ds['content_hash'])[:12]}), protocol {proto['name']}, "
             f"{report['n_images']} images", ""]
    rows = []
    for m, r in report["metrics"].items():
        ci = r["ci95"]
        ci_text = "-" if None in ci else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"
        rows.append([metric_label(m, r["higher_is_better"]), _num(r["mean_a"], digits), _num(r["mean_b"], digits),
                     _num(r["mean_difference"], digits, signed=True), ci_text, _p(r["p_value"]),
                     r["better"] or "-", str(r["n"]), str(r["n_excluded"])])
    headers = ["Metric", "A", "B", "A - B", "95% CI of A - B", "Wilcoxon p", "Better", "n", "Excluded"]
    lines.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True,
                          colalign=["left"] + ["right"] * (len(headers) - 1)))
    bs = report["bootstrap"]
    lines += ["",
              f"A - B per image; CI: paired {bs['method']} bootstrap ({bs['n_resamples']} resamples, seed {bs['seed']}); "
              "p: two-sided Wilcoxon signed-rank test on the differences (zero differences dropped; "
              "p = 1 when all are zero).",
              "Better: the side whose mean is better in the metric's direction (↑ higher, ↓ lower is better); "
              "Excluded: images undefined (NaN) in either row."]
    if report["seed_averaging"]:
        lines.append("Seed-averaged: " + report["seed_averaging"] + "; an image NaN in any entry is excluded.")
    return "\n".join(lines)
