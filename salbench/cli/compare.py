"""``salbench compare``: paired significance of the difference between two leaderboard rows."""

from __future__ import annotations

import argparse
import glob
import os

EPILOG = """A and B must be scored on the same images of the same data (dataset content
hash, split, dataset and protocol parameters, evaluation seed, image names);
otherwise the first difference is reported and the exit status is 2.

Per metric: the mean of the per-image differences A - B (with the metric's direction),
its paired BCa bootstrap 95% CI (scipy.stats.bootstrap, seeded), the two-sided
Wilcoxon signed-rank p on the differences (scipy.stats.wilcoxon; p = 1 when every
difference is zero), and the images used and excluded (NaN in either row).

A row may be several entries of one model (training seeds): give them all before
--against, and the other row's after it. Per-image values are averaged over each
row's entries before the difference. Quoted glob patterns are expanded.

examples:
  salbench compare leaderboards/osie/nus__val__shallow_kl-distribution-s0__mit.json \\
                   leaderboards/osie/nus__val__center_bias__mit.json
  salbench compare 'leaderboards/osie/nus__val__shallow_kl-distribution-s?__mit.json' \\
                   --against 'leaderboards/osie/nus__val__shallow_kl-softmax-s?__mit.json' --metrics cc,sauc
  salbench compare A.json B.json --format json --seed 1 --resamples 20000

See docs/compare.md for the JSON schema (salbench.compare/1).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="paired significance of the difference between two rows",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("entries", nargs="+", metavar="ENTRY.json",
                   help="row A then row B (two entries), or row A's entries when --against is given")
    p.add_argument("--against", nargs="+", metavar="ENTRY.json", default=None,
                   help="row B's entries (one, or one per training seed)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics (default: every metric both rows measure)")
    p.add_argument("--format", default="table", choices=("table", "json"))
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (default 0)")
    p.add_argument("--resamples", type=int, default=None, help="bootstrap resamples (default 9999)")
    p.set_defaults(func=run)


def expand(patterns: list[str]) -> list[str]:
    """Paths as given; a pattern with ``*?[`` that names no file is expanded (sorted)."""
    from salbench.cli import CLIError

    out = []
    for pattern in patterns:
        if not os.path.exists(pattern) and any(c in pattern for c in "*?["):
            found = sorted(glob.glob(pattern))
            if not found:
                raise CLIError(f"no results file matches {pattern}")
            out.extend(found)
        else:
            out.append(pattern)
    return out


def run(args) -> int:
    from salbench import stats
    from salbench.cli import CLIError
    from salbench.leaderboard.compare import compare_rows, format_report, load_entry, report_json

    entries = expand(args.entries)
    if args.against is None:
        if len(entries) != 2:
            raise CLIError(f"give two entries (A B), or row A's entries and --against B's; got {len(entries)}")
        a_paths, b_paths = entries[:1], entries[1:]
    else:
        a_paths, b_paths = entries, expand(args.against)
    resamples = stats.DEFAULT_RESAMPLES if args.resamples is None else args.resamples
    if resamples < 1:
        raise CLIError(f"--resamples must be at least 1, not {resamples}")
    if args.seed is not None and args.seed < 0:
        raise CLIError(f"--seed must be an integer >= 0, not {args.seed}")
    metrics = None
    if args.metrics is not None:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        if not metrics:
            raise CLIError("--metrics names no metric")
    report = compare_rows([load_entry(p) for p in a_paths], [load_entry(p) for p in b_paths], metrics=metrics,
                          n_resamples=resamples, seed=stats.DEFAULT_SEED if args.seed is None else args.seed)
    print(report_json(report) if args.format == "json" else format_report(report),
          end="" if args.format == "json" else "\n")
    return 0
