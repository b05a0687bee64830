"""``salbench check``: recompute results entries; exit 1 on drift, errors (and skips with --strict)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DIR = "leaderboards"

EPILOG = """Every results file under DIR is audited (the record against itself, the metric
registry and its protocol; its predictions file present and unchanged; its model a
registered one) and then recomputed from its predictions with the dataset, protocol,
parameters and seed it records. The model that produced the maps is created with its
recorded options and checkpoint (found at its recorded path or in --checkpoints DIR, by
SHA-256) and re-run on a seeded sample of the images (--rerun, default 8); its maps must
equal the stored ones exactly. Each entry ends as lines:

  ENTRY: ok (model re-run on 8 of 500 images (sample seed 0) reproduced the stored maps exactly)
  ENTRY: ok (predictions, no model)
  ENTRY: recomputed, model not verified: REASON
  ENTRY: DRIFT: METRIC (WHERE) was OLD, now NEW (tolerance TOL)
  ENTRY: ERROR: REASON
  ENTRY: skipped: REASON

"ok" means every score was recomputed and nothing about the maps' origin is left unverified
(the model re-run reproduced them, or a user's maps have no model). "recomputed, model not
verified": the scores were recomputed, but the model's checkpoint is not available here
(e.g. weights that were not kept), so who produced the maps is not verified. DRIFT is a
derived value that differs from the recomputation (a per-image value, a mean, a CI, a count,
the metric set, a direction); ERROR an entry that cannot be recomputed as recorded or is
broken (an unreadable results file, missing or changed predictions, changed dataset,
unknown or unread protocol parameters, its own "tolerances", an unknown model, options or a
checkpoint the model refuses, a checkpoint with another SHA-256, maps the model does not
reproduce); skipped an entry whose data is not on this machine.

Each entry's verification word ("model re-run", "recomputed", "audited only", "not
verified") is what the leaderboard tables and the site show; --record writes them to
DIR/verification.json, which they read (a line counts only while the entry's bytes are
unchanged). When DIR holds a verification.json, a line that disagrees with this check is
reported; when DIR holds a site/, a site that is stale with respect to the results files is
reported.

Exit status: 1 on any drift or error; with --strict also on any skip, a verification.json
that disagrees with this check, or a stale site/. "model not verified" never fails, not even
with --strict: it is printed on the entry's line and counted in the summary. Else 0.

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
                   help="fail on entries that could not be recomputed here (data absent), a verification.json "
                        "that disagrees, or a stale site/ (e.g. in CI)")
    p.add_argument("--rerun", default=None, metavar="N|all",
                   help="images per entry its model is re-run on (default 8; all: every image; "
                        "0: none, the model is then not verified)")
    p.add_argument("--rerun-seed", type=int, default=0, metavar="SEED",
                   help="seed of the images sampled for the re-run (default 0; printed and recorded)")
    p.add_argument("--checkpoints", action="append", default=[], metavar="DIR",
                   help="also look for recorded checkpoints here, by SHA-256 (repeatable)")
    p.add_argument("--record", action="store_true",
                   help="write DIR/verification.json: each entry's verification word, read by the tables and site")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the full report (every entry, its word, model outcome, problems) as JSON")
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


def _policy(args):
    """The re-run policy of the command line (bad values: one line, before any file is read)."""
    from salbench.check import DEFAULT_RERUN, RerunPolicy
    from salbench.cli import CLIError

    try:
        n = DEFAULT_RERUN if args.rerun is None else RerunPolicy.parse_n(args.rerun)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.rerun_seed < 0:
        raise CLIError(f"--rerun-seed must be an integer >= 0, not {args.rerun_seed}")
    dirs = tuple(Path(d) for d in args.checkpoints)
    for d in dirs:
        if not d.is_dir():
            raise CLIError(f"--checkpoints {d}: not a directory")
    return RerunPolicy(n=n, seed=args.rerun_seed, checkpoint_dirs=dirs)


def _entry_line(shown, report) -> tuple[str, bool]:
    """The line of an entry that was recomputed without drift, and whether it counts as ok."""
    model = report.model
    if model is not None and model.verified:
        return f"{shown}: ok ({model.detail})", True
    detail = model.detail if model is not None else "model not verified"
    return f"{shown}: recomputed, {detail}", False


def run(args) -> int:
    from salbench.check import check_tolerance
    from salbench.cli import CLIError
    from salbench.evaluate.executor import ClusterError, open_executor, parse_executor

    tolerance = check_tolerance(args.tolerance)  # before any file is read
    policy = _policy(args)
    if args.json and (Path(args.json).is_dir() or not Path(args.json).resolve().parent.is_dir()):
        raise CLIError(f"--json {args.json}: not a file in an existing directory")
    parse_executor(args.executor)
    try:
        with open_executor(args.executor) as client:  # None: entries are checked here
            return _run(args, tolerance, policy, client)
    except ClusterError as exc:
        raise CLIError(str(exc)) from None


def _run(args, tolerance: float, policy, client) -> int:
    from dataclasses import replace

    from salbench import __version__
    from salbench.check import RECORD_FILE, VERIFICATION_WORDS, broken_report, update_result
    from salbench.check.entries import check_entries
    from salbench.check.record import read_record, record_line, record_problems, write_record, is_current
    from salbench.cli import CLIError
    from salbench.io import FileError
    from salbench.io.digest import file_sha256
    from salbench.results import rewrite_result, scan_results
    from salbench.results.migrate import write_migrated

    root = Path(args.dir) if args.dir else default_results_dir()
    entries = scan_results(root, migrate=True)
    if not entries:
        raise CLIError(f"{root}: no results files to check")
    shown_policy = "all images" if policy.n is None else f"{policy.n} images, sample seed {policy.seed}"
    print(f"checking {len(entries)} entries in {root} (models re-run on {shown_policy})", flush=True)
    reports = check_entries([s.result for s in entries if s.result is not None], tolerance=tolerance,
                            client=client, rerun_policy=policy)
    counts = {"ok": 0, "model not verified": 0, "drift": 0, "skipped": 0, "error": 0}
    failed = updated = 0
    found: dict = {}  # entry path relative to root -> (sha256 of its bytes, report)
    for scanned in entries:
        shown = scanned.path.relative_to(root) if root in scanned.path.parents else scanned.path.name
        key = Path(shown).as_posix()
        if scanned.result is None:
            report = broken_report(scanned.path, scanned.error or "unreadable")
        else:
            report = next(reports)
            found[key] = (scanned.result.get("_sha256"), report)
        if report.status == "ok":
            line, ok = _entry_line(shown, report)
            counts["ok" if ok else "model not verified"] += 1
            print(line, flush=True)
            continue
        counts[report.status] += 1
        if report.status == "skipped":
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
            if report.model is not None and not report.model.verified:
                print(f"{shown}: {report.model.detail}", flush=True)
            if not args.update:
                failed += 1
                continue
            write = write_migrated if scanned.migrated_from else rewrite_result
            try:
                written = write(scanned.result, update_result(scanned.result, report))
            except (ValueError, FileError) as exc:
                failed += 1
                print(f"{shown}: ERROR: not updated: {exc}", file=sys.stderr, flush=True)
            else:
                updated += 1
                found[key] = (file_sha256(written), replace(report, status="ok", drifts=[]))
                print(f"{shown}: updated", flush=True)
    sys.stderr.flush()

    record_path = root / RECORD_FILE
    problems: list[str] = []  # what --strict fails on besides entries
    if args.record:
        previous = {}
        if record_path.is_file():
            try:
                previous = read_record(record_path)
            except ValueError as exc:
                print(f"salbench: warning: {exc}; rewritten", file=sys.stderr, flush=True)
        lines, kept = {}, 0
        for key, (sha, report) in found.items():
            old = previous.get(key)
            if report.status == "skipped" and is_current(old, sha) and old["word"] != report.verification:
                lines[key], kept = old, kept + 1  # not recomputable here: what an earlier check found stands
            else:
                lines[key] = record_line(report, sha)
        write_record(root, lines)
        more = f"; {kept} lines of skipped entries kept from the previous record" if kept else ""
        print(f"wrote {record_path} ({len(lines)} entries{more})", flush=True)
    elif record_path.is_file():
        try:
            problems += record_problems(read_record(record_path), found)
        except ValueError as exc:
            problems.append(str(exc))
    else:
        print(f"no {RECORD_FILE} in {root}: tables and the site show these entries as \"audited only\" "
              "(salbench check --record writes it)", flush=True)
    if (root / "site").is_dir():
        from salbench.leaderboard.site import site_is_stale

        problems += [f"site: {reason}" for reason in site_is_stale(root, root / "site")]
        if problems and any(p.startswith("site: ") for p in problems):
            problems.append("site: rebuild it with python leaderboards/build.py --only tables, or salbench "
                            f"leaderboard --results {root} --html {root / 'site'}")
    for problem in problems:
        if args.strict:
            print(f"{problem} (--strict)", file=sys.stderr, flush=True)
        else:
            print(f"note: {problem}", flush=True)
    if args.strict and problems:
        failed += 1

    words = {w: 0 for w in VERIFICATION_WORDS}
    for _, report in found.values():
        words[report.verification] += 1
    tail = f" ({updated} updated)" if args.update and counts["drift"] else ""
    strict = " (--strict: skipped entries fail)" if args.strict and counts["skipped"] else ""
    print(f"{counts['ok']} ok, {counts['drift']} drifted{tail}, {counts['error']} errors, "
          f"{counts['skipped']} skipped{strict}, {counts['model not verified']} model not verified; "
          f"verification: " + ", ".join(f"{n} {w}" for w, n in words.items()))
    code = 1 if failed else 0
    if args.json:
        from salbench.io.atomic import atomic_write_json

        atomic_write_json(args.json, {
            "schema": "salbench.check-report/1", "salbench_version": __version__, "root": str(root),
            "tolerance": tolerance, "rerun": {"images": "all" if policy.n is None else policy.n, "seed": policy.seed},
            "strict": bool(args.strict), "exit_status": code, "counts": counts, "verification": words,
            "problems": problems,
            "entries": {key: {"sha256": sha, **report.as_json()} for key, (sha, report) in sorted(found.items())},
        }, what="check report")
    return code
