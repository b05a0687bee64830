"""``salbench check``: recompute committed leaderboard entries; exit 1 on metric drift."""

from __future__ import annotations

import argparse
import sys

EPILOG = """Every results file under DIR is recomputed from its stored predictions with the
protocol, parameters and seed it records. A value that moved more than its tolerance
(default 1e-6, or the file's "tolerances" entry) is reported as
  ENTRY: METRIC (mean) was OLD, now NEW (tolerance TOL)
and the command exits 1. To change an entry on purpose (a fixed metric bug), run
  salbench check --update
and commit the rewritten results files with a message that says why the values moved.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="recompute leaderboard entries and fail on metric drift",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="leaderboards", help="results directory (default: leaderboards)")
    p.add_argument("--tolerance", type=float, default=None, help="override every tolerance")
    p.add_argument("--update", action="store_true", help="rewrite drifted entries with the new values")
    p.set_defaults(func=run)


def run(args) -> int:
    from salbench.io import atomic_write_json
    from salbench.leaderboard.check import check_result, update_result
    from salbench.leaderboard.results import load_results

    results = load_results(args.results)
    if not results:
        raise ValueError(f"{args.results}: no results files to check")
    counts = {"ok": 0, "drift": 0, "skipped": 0, "error": 0}
    for result in results:
        report = check_result(result, tolerance=args.tolerance)
        counts[report.status] += 1
        if report.status == "ok":
            print(f"ok       {report.entry}")
        elif report.status == "skipped":
            print(f"skipped  {report.entry}: {report.message}")
        elif report.status == "error":
            print(f"ERROR    {report.entry}: {report.message}", file=sys.stderr)
        else:
            for drift in report.drifts:
                print(f"DRIFT    {drift}", file=sys.stderr)
            if args.update:
                atomic_write_json(result["_path"], update_result(result, report))
                print(f"updated  {report.entry}")
    print(f"{counts['ok']} ok, {counts['drift']} drifted, {counts['error']} errors, {counts['skipped']} skipped")
    if counts["error"] or (counts["drift"] and not args.update):
        return 1
    return 0
