"""Rows of the leaderboard tables: entries grouped by model variant, labels, metric order.

The shared vocabulary of :mod:`salbench.leaderboard.tables` (markdown tables),
:mod:`salbench.leaderboard.significance` and :mod:`salbench.leaderboard.compare`
(paired tests between rows) and the HTML site: it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np


def _registry():
    from salbench.metrics import METRICS  # deferred: imports numba

    return METRICS


def metric_order() -> tuple[str, ...]:
    """Column order of every table: the metric registry's order."""
    return tuple(_registry())


def metric_direction(name: str, stored: bool | None = None) -> bool | None:
    """Whether higher is better: the registry's answer (a results file's own claim only for unknown metrics)."""
    info = _registry().get(name)
    return info.higher_is_better if info is not None else stored


def metric_label(name: str, higher_is_better: bool | None = None) -> str:
    """Column header for a metric (the registry's label), with an arrow saying which way is better."""
    info = _registry().get(name)
    label = info.label if info is not None else name
    hib = metric_direction(name, higher_is_better)
    if hib is None:
        return label
    return f"{label} {'↑' if hib else '↓'}"


def card_metric(key: str) -> str | None:
    """The metric a model card's published-score key names (``"AUC_shuffled"`` -> ``"auc_shuffled"``)."""
    name = str(key).lower()
    return name if name in _registry() else None


def comparison_metrics() -> tuple[str, ...]:
    """What a protocol comparison shows by default: CC and every AUC variant, in registry order."""
    return tuple(m for m, info in _registry().items() if m == "cc" or "AUC" in info.label)


def training_of(result: Mapping[str, Any]) -> Mapping[str, Any]:
    """How the entry's model was trained (``model.training`` from its checkpoint, or a GPU run's record)."""
    m = result["model"]
    return m.get("training") or m.get("trained") or {}


def variant_label(result: Mapping[str, Any]) -> str:
    """What tells entries of one model apart beyond their training seed (e.g. ``target=distribution``)."""
    t = training_of(result)
    recipe = t.get("recipe") if isinstance(t.get("recipe"), Mapping) else {}
    parts = []
    for key in ("target", "preset"):
        value = t.get(key, recipe.get(key))
        if value not in (None, ""):
            parts.append(f"{key}={value}")
    trained = result["model"].get("trained") or {}
    if trained.get("completed") is False:  # a run cut short (e.g. by a device budget) says so in its label
        parts.append(f"stopped at epoch {trained.get('epochs')}/{trained.get('planned_epochs')}")
    if result.get("maps") == "metric-specific":  # its own row, marked: each metric scored its map of the density
        parts.append("metric-specific maps")
    return ", ".join(parts)


def protocol_label(result: Mapping[str, Any]) -> str:
    """The protocol's name, with the parameters that differ from its defaults (e.g. ``ground_truth=dataset``)."""
    changed = changed_params(result)
    name = result["protocol"]["name"]
    return name if changed == "-" else f"{name} ({changed})"


def model_label(result: Mapping[str, Any]) -> str:
    """The row label of an entry: the model name and its training variant."""
    v = variant_label(result)
    return f"{result['model']['name']} [{v}]" if v else result["model"]["name"]


def training_seed(result: Mapping[str, Any]):
    return training_of(result).get("seed")


@dataclass
class Row:
    """Entries of one model variant on one (dataset, split, protocol) that differ only in training seed."""

    entries: list
    label: str

    @property
    def first(self) -> Mapping[str, Any]:
        return self.entries[0]

    @property
    def n_seeds(self) -> int:
        return len(self.entries)

    def mean(self, metric: str) -> float | None:
        """Mean over seeds of the entries' means (None when undefined in every entry)."""
        vals = [r["metrics"].get(metric, {}).get("mean") for r in self.entries]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else None

    def spread(self, metric: str) -> float | None:
        """Sample standard deviation over seeds (None for a single seed)."""
        vals = [r["metrics"].get(metric, {}).get("mean") for r in self.entries]
        vals = [v for v in vals if v is not None]
        return float(np.std(vals, ddof=1)) if len(vals) > 1 else None

    def cell(self, metric: str, digits: int) -> str:
        m, sd = self.mean(metric), self.spread(metric)
        if m is None:
            return "-"
        return f"{m:.{digits}f}" if sd is None else f"{m:.{digits}f} ± {sd:.{digits}f}"

    @property
    def checkpoint(self) -> str:
        if self.n_seeds > 1:
            return f"{self.n_seeds} seeds"
        ckpt = (self.first["model"].get("checkpoint") or {}).get("sha256")
        return ckpt[:8] if ckpt else "-"

    def verified(self, check: bool) -> str:
        """The weakest verification word of the row's entries (:func:`salbench.check.entry_verification`).

        ``model re-run``, ``recomputed``, ``audited only`` (nothing recorded that it was recomputed)
        or ``not verified (<first problem>)``: an entry is shown as recomputed only where
        ``salbench check --record`` recorded it for exactly these bytes.
        """
        if not check:
            return "-"
        from salbench.check import NOT_VERIFIED, VERIFICATION_WORDS, entry_verification

        found = [entry_verification(r) for r in self.entries]
        worst = max(found, key=lambda v: VERIFICATION_WORDS.index(v.word))
        return f"{NOT_VERIFIED} ({worst.detail})" if worst.word == NOT_VERIFIED else worst.word


def group_rows(results: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Group entries that differ only in their training seed (mean and spread shown per row).

    The key is (model, training variant, dataset, split, protocol, its parameters and the
    metrics computed, evaluation seed): entries of a baseline (no training seed) stay one row
    each, and seeds that computed other metric sets (``--metrics``) are not averaged together.
    """
    import json

    groups: dict[str, list] = {}
    for r in results:
        seed = training_seed(r)
        key = json.dumps([r["model"]["name"], variant_label(r), r["dataset"]["name"], r["dataset"].get("split"),
                          r["protocol"]["name"], r["protocol"].get("params"), sorted(r["metrics"]), r.get("seed"),
                          None if seed is not None else r.get("_path")],
                         sort_keys=True, default=str)
        groups.setdefault(key, []).append(r)
    rows = []
    for entries in groups.values():
        entries.sort(key=lambda r: (str(training_seed(r)), r.get("_path", "")))
        rows.append(Row(entries, model_label(entries[0])))
    return rows


def select_results(results: Iterable[Mapping[str, Any]], dataset: str, split: str | None = None,
                   protocol: str | None = None) -> list[Mapping[str, Any]]:
    """The entries of one table: ``dataset`` and, where given, ``split`` and ``protocol``.

    Raises
    ------
    ValueError
        No entry matches.
    """
    chosen = [r for r in results if r["dataset"]["name"] == dataset
              and (split is None or r["dataset"].get("split") == split)
              and (protocol is None or r["protocol"]["name"] == protocol)]
    if not chosen:
        raise ValueError(f"no results for dataset={dataset} split={split} protocol={protocol}")
    return chosen


def metric_columns(chosen: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict[str, bool | None]]:
    """Metrics measured in ``chosen`` in a fixed order (results files store them sorted by name)."""
    better: dict[str, bool | None] = {}
    for r in chosen:
        for name, block in r["metrics"].items():
            if name not in better:
                better[name] = metric_direction(name, block.get("higher_is_better"))
    rank = {m: i for i, m in enumerate(metric_order())}
    metrics = sorted(better, key=lambda m: (rank.get(m, len(rank)), m))
    return metrics, better


def changed_params(result: Mapping[str, Any]) -> str:
    """The entry's protocol parameters that differ from the protocol's defaults (``-`` if none)."""
    try:
        from salbench.protocols import get_protocol

        defaults = get_protocol(result["protocol"]["name"]).params
    except Exception:  # noqa: BLE001 - an unknown protocol: show nothing rather than fail the table
        return "-"
    params = result["protocol"].get("params") or {}
    changed = [f"{k}={v}" for k, v in sorted(params.items()) if k != "name" and defaults.get(k, v) != v]
    return ", ".join(changed) or "-"
