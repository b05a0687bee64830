"""``salbench check``: recompute results entries; exit 1 on drift, errors (and skips with --strict)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DIR = "leaderboards"

EPILOG = """Every results file under DIR is audited (the record against itself, the metric
registry and its protocol; its predictions file present and unchanged) and then
recomputed from its predictions with the dataset, protocol, parameters and seed it
records. Each entry ends as lines:

  ENTRY: ok
  ENTRY: DRIFT: METRIC (WHERE) was OLD, now NEW (tolerance TOL)
  ENTRY: ERROR: REASON
  ENTRY: skipped: REASON

DRIFT is a derived value that differs from the recomputation (a per-image value, a
mean, a CI, a count, the metric set, a direction); ERROR an entry that cannot be
recomputed as recorded or is broken (an unreadable or truncated results file,
missing or changed predictions, changed dataset, unknown or unread protocol
parameters, its own "tolerances"); skipped an entry whose data is not on this
machine. Exit status: 1 on any drift or error (and, with --strict, any skip), else 0.

DIR defaults to ./leaderboards when the working directory has one, else the leaderboards/
folder of the source checkout salbench is installed from (pip install -e .).

To change an entry on purpose (a fixed metric bug), run
  salbench check --update
and commit the rewritten results files with a message that says why the values moved
(see docs/leaderboards.md). --update rewrites drifted values only, never an error.

A results file of an older schema (salbench.result/1) is read through the migration
step, recomputed like any entry and reported as DRIFT; --update rewrites it in the
current schema (its predictions re-stored in today's format). This is the one
migration path for old results files.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="recompute leaderboard entries and fail on metric drift",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", default=None, metavar="DIR",
                   help="results directory (default: ./leaderboards, else the checkout's leaderboards/)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="tolerance of every comparison (default: 1e-6)")
    p.add_argument("--update", action="store_true",
                   help="rewrite drifted entries with the recomputed values (atomically)")
    p.add_argument("--strict", action="store_true",
                   help="fail on entries that could not be recomputed here (data absent), e.g. in CI")
    p.add_argument("--executor", default="local", metavar="local|dask[:ADDRESS]",
                   help="where entries are recomputed: local (default), dask (a LocalCluster started for the run) "
                   "or dask:ADDRESS (a running scheduler, or its scheduler file); the workers must see the results "
                   "and the data at the same paths (docs/dask.md)")
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
    from salbench.check import check_tolerance
    from salbench.cli import CLIError
    from salbench.evaluate.executor import ClusterError, open_executor, parse_executor

    tolerance = check_tolerance(args.tolerance)  # before any file is read
    parse_executor(args.executor)
    try:
        with open_executor(args.executor) as client:  # None: entries are checked here
            return _run(args, tolerance, client)
    except ClusterError as exc:
        raise CLIError(str(exc)) from None


def _run(args, tolerance: float, client) -> int:
    from salbench.check import broken_report, update_result
    from salbench.check.entries import check_entries
    from salbench.cli import CLIError
    from salbench.io import FileError
    from salbench.results import rewrite_result, scan_results
    from salbench.results.migrate import write_migrated

    root = Path(args.dir) if args.dir else default_results_dir()
    entries = scan_results(root, migrate=True)
    if not entries:
        raise CLIError(f"{root}: no results files to check")
    print(f"checking {len(entries)} entries in {root}", flush=True)
    reports = check_entries([s.result for s in entries if s.result is not None], tolerance=tolerance, client=client)
    counts = {"ok": 0, "drift": 0, "skipped": 0, "error": 0}
    failed = updated = 0
    for scanned in entries:
        shown = scanned.path.relative_to(root) if root in scanned.path.parents else scanned.path.name
        if scanned.result is None:
            report = broken_report(scanned.path, scanned.error or "unreadable")
        else:
            report = next(reports)
        counts[report.status] += 1
        if report.status == "ok":
            print(f"{shown}: ok", flush=True)
        elif report.status == "skipped":
            if args.strict:
                failed += 1
                print(f"{shown}: SKIPPED (--strict): {report.message}", file=sys.stderr, flush=True)
            else:
                print(f"{shown}: skipped: {report.message}", flush=True)
        elif report.status == "error":
            failed += 1
            for line in report.errors or [report.message]:
                print(f"{shown}: ERROR: {line}", file=sys.stderr, flush=True)
            for drift in report.drifts:
                print(f"{shown}: DRIFT: {drift.detail}", file=sys.stderr, flush=True)
        else:
            for drift in report.drifts:
                print(f"{shown}: DRIFT: {drift.detail}", file=sys.stderr, flush=True)
            if not args.update:
                failed += 1
                continue
            write = write_migrated if scanned.migrated_from else rewrite_result
            try:
                write(scanned.result, update_result(scanned.result, report))
            except (ValueError, FileError) as exc:
                failed += 1
                print(f"{shown}: ERROR: not updated: {exc}", file=sys.stderr, flush=True)
            else:
                updated += 1
                print(f"{shown}: updated", flush=True)
    sys.stderr.flush()
    tail = f" ({updated} updated)" if args.update and counts["drift"] else ""
    strict = " (--strict: skipped entries fail)" if args.strict and counts["skipped"] else ""
    print(f"{counts['ok']} ok, {counts['drift']} drifted{tail}, {counts['error']} errors, "
          f"{counts['skipped']} skipped{strict}")
    return 1 if failed else 0
