"""``salbench models``: list registered models, their cards, and plugins that failed to load or were refused."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list models (built-in and plugins)",
        description="List registered saliency models and report plugins that failed to import.",
        epilog="Examples: salbench models | salbench models 'shallow_*' | salbench models --card shallow_kl",
    )
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name filter (default: all)")
    p.add_argument("--card", metavar="NAME", help="print one model's card as JSON")
    p.add_argument("--json", action="store_true", help="machine-readable listing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from salbench.metrics import plugin_failures as metric_plugin_failures
    from salbench.models import create_model, default_registry, list_models, plugin_failures

    if args.card:
        print(json.dumps(create_model(args.card).card, indent=2, sort_keys=True, default=str))
        return 0
    failures = plugin_failures()  # imports every entry point so broken plugins surface now
    metric_failures = metric_plugin_failures()  # a broken metric plugin is as silent otherwise
    reg = default_registry()
    rows = []
    for name in list_models(args.pattern):
        rows.append({"name": name, "origin": reg.origin(name), "doc": _first_line(reg.get(name).__doc__)})
    if args.json:
        print(json.dumps({"models": rows, "failed": failures, "failed_metrics": metric_failures}, indent=2,
                         sort_keys=True))
        return 0
    from tabulate import tabulate

    if not rows:
        print(f"no model matches {args.pattern!r}; known: {', '.join(list_models())}")
    else:
        print(tabulate([[r["name"], r["origin"], r["doc"]] for r in rows], headers=["model", "from", "description"]))
    if failures:  # one line each, naming the distribution and entry point
        print(f"\n{len(failures)} plugin(s) failed to load or were refused (the other models work):")
        for _, err in sorted(failures.items()):
            print(f"  {err}")
    if metric_failures:
        print(f"\n{len(metric_failures)} metric plugin(s) failed to load or were refused (the other metrics work):")
        for _, err in sorted(metric_failures.items()):
            print(f"  {err}")
    return 0


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
