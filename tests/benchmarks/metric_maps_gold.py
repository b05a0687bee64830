"""Theory check of metric-specific maps: a density model's raw map against each metric's own map.

Scores ``--model`` (default ``gold``, at 60x80 as the leaderboards store it) on the synthetic val
split under ``--protocol`` twice through ``salbench eval`` (``--maps raw`` and ``--maps
metric-specific``: the same images, seeds and ground truth), then prints a markdown table: the
two means and the mean paired difference (metric-specific - raw) with its 95% Student-t CI.

    OPENBLAS_NUM_THREADS=1 python tests/benchmarks/metric_maps_gold.py --results /tmp/mm --protocol mit
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import stats

from salbench.cli import main as salbench
from salbench.metrics.registry import get_metric
from salbench.results import load_result


def paired_table(raw: dict, ms: dict) -> str:
    """Markdown: metric, raw mean, metric-specific mean, difference [95% CI] over images finite in both."""
    lines = ["| metric | raw map | metric-specific | difference [95% CI] |", "|---|---|---|---|"]
    for metric, block in raw["metrics"].items():
        a = np.array(ms["metrics"][metric]["per_image"], dtype=float)
        b = np.array(block["per_image"], dtype=float)
        ok = np.isfinite(a) & np.isfinite(b)
        d = a[ok] - b[ok]
        half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
        info = get_metric(metric)
        lines.append(f"| {info.label} ({'higher' if info.higher_is_better else 'lower'}) | {b[ok].mean():.4f} | "
                     f"{a[ok].mean():.4f} | {d.mean():+.4f} [{d.mean() - half:+.4f}, {d.mean() + half:+.4f}] |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gold")
    ap.add_argument("--protocol", default="mit")
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--preset", default=None, help="synthetic preset (e.g. small)")
    args = ap.parse_args()
    common = ["--model", args.model, "--split", "val", "--protocol", args.protocol, "--results-dir",
              str(args.results), "--format", "json"]
    if args.model == "gold":
        common += ["--model-option", "output_size=[60,80]"]
    if args.preset:
        common += ["--option", f"preset={args.preset}"]
    for maps in ("raw", "metric-specific"):
        if salbench(["eval", *common, "--maps", maps]) != 0:
            raise SystemExit(2)
    stem = f"synthetic__val__{args.model}{{}}__{args.protocol}.json"
    raw = load_result(args.results / stem.format(""))
    ms = load_result(args.results / stem.format("-metric-specific"))
    print(f"\n{args.model}, synthetic val ({raw['n_images']} images), {args.protocol}\n")
    print(paired_table(raw, ms))


if __name__ == "__main__":
    main()
