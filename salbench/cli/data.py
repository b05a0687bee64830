"""``salbench data info|export`` and ``salbench datasets``.

Examples::

    salbench datasets
    salbench data info --dataset nus --data-dir ../shared/data/osie --resolution 480x640
    salbench data export --dataset synthetic --preset small --to pkl out/
"""

from __future__ import annotations

import argparse
import json


def _parse_value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def dataset_options(args) -> dict:
    """Dataset options from ``--preset/--seed/--resolution/--fixations`` and ``--option K=V``."""
    opts = {}
    for key in ("preset", "seed", "resolution", "fixations"):
        if getattr(args, key, None) is not None:
            opts[key] = getattr(args, key)
    for item in getattr(args, "option", None) or []:
        if "=" not in item:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        opts[k.strip().replace("-", "_")] = _parse_value(v.strip())
    return opts


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="dataset name (see: salbench datasets)")
    p.add_argument("--data-dir", help="dataset root (file-based datasets; default $SALBENCH_DATA)")
    p.add_argument("--preset", help="synthetic: default or small")
    p.add_argument("--seed", type=int, help="synthetic: generator seed")
    p.add_argument("--resolution", help="nus: evaluate at HxW, e.g. 480x640 (default: original)")
    p.add_argument("--fixations", choices=("fixations", "location"), help="salicon .mat field to read")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="any other dataset option")


def register(subparsers) -> None:
    """Add the ``data`` (info, export) and ``datasets`` subcommands."""
    p = subparsers.add_parser("data", help="inspect or export datasets",
                              epilog="Example: salbench data info --dataset synthetic --preset small")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    info = sub.add_parser("info", help="splits, image counts, resolution, observers, fixations, location")
    _add_dataset_args(info)
    info.add_argument("--max-images", type=int, help="scan at most N images per split for fixation statistics")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=run_info)
    exp = sub.add_parser("export", help="write train.pkl / val.pkl in the coursework format",
                         epilog="Example: salbench data export --dataset nus --data-dir osie --resolution 480x640 --to pkl out/")
    _add_dataset_args(exp)
    exp.add_argument("--to", choices=("pkl",), required=True, help="output format (coursework pickles)")
    exp.add_argument("out_dir", help="directory to write train.pkl / val.pkl into")
    exp.add_argument("--splits", default="train,val", help="comma-separated splits to export (default: train,val)")
    exp.set_defaults(func=run_export)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    ds = subparsers.add_parser("datasets", help="list the known datasets")
    ds.set_defaults(func=run_datasets)


def run_datasets(args) -> int:
    from salbench.data.registry import DATASETS

    width = max(len(n) for n in DATASETS)
    for name in sorted(DATASETS):
        print(f"{name:<{width}}  {DATASETS[name].description}")
    return 0


def run_info(args) -> int:
    from salbench.data import describe

    summary = describe(args.dataset, args.data_dir, max_images=args.max_images, **dataset_options(args))
    if not summary["splits"]:
        raise ValueError(f"dataset {args.dataset!r}: no split found" + (f" in {args.data_dir}" if args.data_dir else ""))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"{summary['dataset']}: {summary['description']}")
    print(f"files: {summary.get('location') or 'generated on demand (not stored)'}")
    for split, s in summary["splits"].items():
        scanned = "" if s["scanned"] == s["images"] else f" (statistics over the first {s['scanned']})"
        o = s["observers"]
        obs = "unknown" if not o else (str(o[0]) if len(o) == 1 else f"{min(o)}-{max(o)}")
        print(f"  {split}: {s['images']} images, resolution {', '.join(s['resolution'])}, observers {obs}, "
              f"{s['total_fixations']} fixations, {s['fixations_per_image']:.1f} per image{scanned}")
    return 0


def run_export(args) -> int:
    from salbench.data import get_dataset
    from salbench.data.export import export_pickles

    opts = dataset_options(args)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    datasets = {s: get_dataset(args.dataset, s, data_dir=args.data_dir, **opts) for s in splits}
    for path in export_pickles(datasets, args.out_dir):
        print(f"wrote {path}")
    return 0
