"""Results records as a pandas DataFrame (one row per entry and metric)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def results_to_dataframe(results: Iterable[Mapping[str, Any]]):
    """One row per (results file, metric): model, dataset, split, protocol, metric, mean, CI."""
    import pandas as pd

    rows = []
    for r in results:
        for metric, block in r["metrics"].items():
            rows.append({
                "model": r["model"]["name"],
                "checkpoint": (r["model"].get("checkpoint") or {}).get("sha256", "")[:12] or "-",
                "dataset": r["dataset"]["name"],
                "split": r["dataset"].get("split"),
                "protocol": r["protocol"]["name"],
                "seed": r["seed"],
                "metric": metric,
                "mean": block["mean"],
                "ci95_low": block["ci95"][0],
                "ci95_high": block["ci95"][1],
                "higher_is_better": block.get("higher_is_better"),
                "n_images": r["n_images"],
                "path": r.get("_path"),
            })
    return pd.DataFrame(rows)
