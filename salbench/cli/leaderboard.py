"""``salbench leaderboard``: Tables II/III, per-dataset rankings, protocol comparisons."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_RESULTS = "leaderboards"

EPILOG = """examples:
  salbench leaderboard --table 2
  salbench leaderboard --table 3 --format latex
  salbench leaderboard --dataset synthetic --protocol mit
  salbench leaderboard --compare-protocols --model shallow_kl --dataset nus
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("leaderboard", help="print leaderboards built from results files",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=None,
                   help=f"results directory (default: ./{DEFAULT_RESULTS} if it exists, else ./results)")
    p.add_argument("--table", type=int, choices=(2, 3), help="the report's Table II or III")
    p.add_argument("--dataset", help="dataset to rank models on")
    p.add_argument("--split", help="split to rank models on")
    p.add_argument("--protocol", help="only results under this protocol")
    p.add_argument("--sort", help="metric to sort by (default: the first one)")
    p.add_argument("--compare-protocols", action="store_true",
                   help="one model's predictions scored under every protocol")
    p.add_argument("--model", help="model for --compare-protocols")
    p.add_argument("--format", default="github", choices=("github", "latex", "csv", "plain"))
    p.set_defaults(func=run)


def _results_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    for candidate in (DEFAULT_RESULTS, "results"):
        if Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError("no results directory: pass --results DIR (or run salbench eval first)")


def published_rows() -> dict[str, list[dict]]:
    """Published rows of every model card, keyed by model name."""
    from salbench.models import list_models, model_card

    rows = {}
    for name in list_models():
        try:
            card = model_card(name)
        except Exception:  # a broken plugin must not hide the built-in rows
            continue
        rows[name] = list(card.get("published", []))
    return rows


def run(args) -> int:
    from salbench.leaderboard.results import load_results
    from salbench.leaderboard.tables import leaderboard_table, protocol_comparison_table, report_table

    results = load_results(_results_dir(args.results))
    if args.table:
        print(report_table(args.table, results, published_rows(), fmt=args.format,
                           dataset=args.dataset, protocol=args.protocol))
    elif args.compare_protocols:
        if not (args.model and args.dataset):
            raise ValueError("--compare-protocols needs --model and --dataset")
        print(protocol_comparison_table(results, model=args.model, dataset=args.dataset,
                                        split=args.split, fmt=args.format))
    else:
        datasets = [args.dataset] if args.dataset else sorted({r["dataset"]["name"] for r in results})
        if not datasets:
            raise ValueError("no results files found")
        for i, name in enumerate(datasets):
            protocols = [args.protocol] if args.protocol else sorted(
                {r["protocol"]["name"] for r in results if r["dataset"]["name"] == name})
            for proto in protocols:
                if args.format != "csv":
                    print(f"{'' if i == 0 and proto == protocols[0] else chr(10)}## {name}"
                          f"{'/' + args.split if args.split else ''} — protocol {proto}\n")
                print(leaderboard_table(results, dataset=name, split=args.split, protocol=proto,
                                        sort_by=args.sort, fmt=args.format))
    return 0
