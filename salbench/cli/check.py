"""``salbench check``: recompute committed leaderboard entries; exit 1 on metric drift."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DIR = "leaderboards"

EPILOG = """Every results file under DIR is recomputed from its stored predictions (the .npz
beside it) with the dataset, protocol, parameters and seed it records. A value that moved
more than its tolerance (default 1e-6, or the file's "tolerances" entry) is reported as
  ENTRY: DRIFT: METRIC (mean) was OLD, now NEW (tolerance TOL)
and the command exits 1; so does an entry that cannot be recomputed ("ENTRY: ERROR: ...").
An entry whose dataset is not available on this machine is reported as
"ENTRY: skipped: <reason>" and does not fail the check.

DIR defaults to ./leaderboards when the working directory has one, else the leaderboards/
folder of the source checkout salbench is installed from (pip install -e .).

To change an entry on purpose (a fixed metric bug), run
  salbench check --update
and commit the rewritten results files with a message that says why the values moved
(see docs/leaderboards.md).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="recompute leaderboard entries and fail on metric drift",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", default=None, metavar="DIR",
                   help="results directory (default: ./leaderboards, else the checkout's leaderboards/)")
    p.add_argument("--results", default=None, help=argparse.SUPPRESS)  # older spelling of DIR
    p.add_argument("--tolerance", type=float, default=None, help="override every tolerance")
    p.add_argument("--update", action="store_true",
                   help="rewrite drifted entries with the recomputed values (atomically)")
    p.set_defaults(func=run)


def default_results_dir() -> Path:
    """``./leaderboards`` if present, else ``leaderboards/`` beside the installed package's source."""
    import salbench

    cwd = Path.cwd() / DEFAULT_DIR
    if cwd.is_dir():
        return cwd
    checkout = Path(salbench.__file__).resolve().parents[1] / DEFAULT_DIR
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"no {DEFAULT_DIR}/ directory here or in the salbench checkout; pass DIR")


def run(args) -> int:
    from salbench.io import atomic_write_json
    from salbench.leaderboard.check import check_result, update_result
    from salbench.leaderboard.results import load_results

    if args.dir and args.results and Path(args.dir) != Path(args.results):
        raise ValueError("give the results directory once (DIR or --results)")
    root = Path(args.dir or args.results) if (args.dir or args.results) else default_results_dir()
    results = load_results(root)
    if not results:
        raise ValueError(f"{root}: no results files to check")
    print(f"checking {len(results)} entries in {root}")
    cache: dict = {}  # each dataset's records are decoded once for all its entries
    counts = {"ok": 0, "drift": 0, "skipped": 0, "error": 0}
    for result in results:
        report = check_result(result, tolerance=args.tolerance, cache=cache)
        counts[report.status] += 1
        entry = Path(result["_path"]).relative_to(root) if root in Path(result["_path"]).parents else report.entry
        if report.status == "ok":
            print(f"{entry}: ok")
        elif report.status == "skipped":
            print(f"{entry}: skipped: {report.message}")
        elif report.status == "error":
            print(f"{entry}: ERROR: {report.message}", file=sys.stderr)
        else:
            for drift in report.drifts:
                print(f"{entry}: DRIFT: {drift.detail}", file=sys.stderr)
            if args.update:
                atomic_write_json(result["_path"], update_result(result, report))
                print(f"{entry}: updated")
    sys.stderr.flush()
    print(f"{counts['ok']} ok, {counts['drift']} drifted{' (updated)' if args.update and counts['drift'] else ''}, "
          f"{counts['error']} errors, {counts['skipped']} skipped")
    if counts["error"] or (counts["drift"] and not args.update):
        return 1
    return 0
