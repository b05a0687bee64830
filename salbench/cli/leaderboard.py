"""``salbench leaderboard``: Tables II/III, per-dataset rankings, protocol comparisons."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_RESULTS = "leaderboards"
#: Most decimals --digits takes (a float64 mean has about 16 significant digits).
MAX_DIGITS = 12

EPILOG = """Tables are built only from results files (written by salbench eval); the
published rows of Tables II and III come from the model cards (models/*.json).

examples:
  salbench leaderboard                                  every dataset/split/protocol, best first
  salbench leaderboard --dataset synthetic --protocol mit --sort kld
  salbench leaderboard --table 2
  salbench leaderboard --table 3 --format latex
  salbench leaderboard --compare-protocols --model shallow_kl --dataset nus
  salbench leaderboard --html site/                     the static site; open site/index.html

The results directory defaults to ./leaderboards, else ./results (salbench eval's
default output), else the leaderboards/ folder of the salbench source checkout.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("leaderboard", help="print leaderboards built from results files",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=None, metavar="DIR",
                   help="results directory (default: ./leaderboards, ./results, the checkout's leaderboards/)")
    p.add_argument("--table", type=int, choices=(2, 3), help="the report's Table II or III")
    p.add_argument("--dataset", help="only this dataset")
    p.add_argument("--split", help="only this split")
    p.add_argument("--protocol", help="only results under this protocol")
    p.add_argument("--sort", help="metric to rank by (default: the protocol's first, cc)")
    p.add_argument("--compare-protocols", action="store_true",
                   help="one model's predictions scored under every protocol")
    p.add_argument("--model", help="model for --compare-protocols")
    p.add_argument("--digits", type=int, default=None, help="decimals (default 2 for --table, else 3)")
    p.add_argument("--format", default="github", choices=("github", "latex", "csv", "plain"))
    p.add_argument("--html", metavar="DIR", help="write the static leaderboard site (every page) into DIR")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="level of the marks of rows not significantly different from the best (default 0.05)")
    p.add_argument("--no-marks", action="store_true", help="leave out those marks")
    p.set_defaults(func=run)


def results_dir(arg: str | None) -> Path:
    """The directory to read: the argument, else the first default that exists."""
    if arg:
        return Path(arg)
    import salbench

    checkout = Path(salbench.__file__).resolve().parents[1] / DEFAULT_RESULTS
    for candidate in (Path(DEFAULT_RESULTS), Path("results"), checkout):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("no results directory: pass --results DIR (or run salbench eval first)")


def published_rows() -> dict[str, list[dict]]:
    """Published rows of the built-in model cards (the source of models/*.json), by model name.

    Tables II and III show only the built-in shallow models, so plugin cards
    (which would mean building each plugin model) are not read.
    """
    from salbench.leaderboard.tables import published_rows_from_cards
    from salbench.models.cards import builtin_cards

    return published_rows_from_cards(builtin_cards())


def run(args) -> int:
    from salbench.leaderboard.tables import leaderboards, protocol_comparison_table, report_table
    from salbench.results import load_results

    if args.digits is not None and not 0 <= args.digits <= MAX_DIGITS:
        raise ValueError(f"--digits must be an integer from 0 to {MAX_DIGITS}, not {args.digits}")
    root = results_dir(args.results)
    if args.html:
        return write_site(root, args)
    results = load_results(root)
    if args.table:
        print(report_table(args.table, results, published_rows(), fmt=args.format,
                           digits=2 if args.digits is None else args.digits,
                           dataset=args.dataset, protocol=args.protocol), end="" if args.format == "csv" else "\n")
        return 0
    if not results:
        raise ValueError(f"{root}: no results files (run salbench eval first)")
    digits = 3 if args.digits is None else args.digits
    if args.compare_protocols:
        if not (args.model and args.dataset):
            raise ValueError("--compare-protocols needs --model and --dataset")
        print(protocol_comparison_table(results, model=args.model, dataset=args.dataset,
                                        split=args.split, fmt=args.format, digits=digits),
              end="" if args.format == "csv" else "\n")
        return 0
    print(leaderboards(results, dataset=args.dataset, split=args.split, protocol=args.protocol,
                       sort_by=args.sort, fmt=args.format, digits=digits,
                       alpha=None if args.no_marks else args.alpha), end="" if args.format == "csv" else "\n")
    return 0


def write_site(root: Path, args) -> int:
    """``--html DIR``: the whole static site (docs/leaderboards.md, "The site")."""
    from salbench.leaderboard.site import build_site

    chosen = [f"--{k.replace('_', '-')}" for k in ("table", "dataset", "split", "protocol", "sort", "model", "digits")
              if getattr(args, k) is not None] + (["--compare-protocols"] if args.compare_protocols else [])
    if chosen:
        raise ValueError(f"--html writes every page; it takes only --results (not {', '.join(chosen)})")
    files = build_site(root, args.html)
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {len(files)} files ({size / 1024:.0f} KB) to {args.html}; open {Path(args.html) / 'index.html'}")
    return 0
