"""``salbench eval``: score predictions under a named protocol.

Example::

    salbench eval --predictions preds.pkl --dataset salicon-pkl --data-dir DIR \
        --split val --protocol coursework --seed 0 --format json --output scores.json

``run()`` gets records, then predictions from :func:`predictions_for` (a file
today; a model can plug in there), then evaluates and renders.
"""

from __future__ import annotations

import json
import sys

from salbench.cli import CLIError


def register(subparsers) -> None:
    """Add the ``eval`` subcommand."""
    p = subparsers.add_parser(
        "eval",
        help="score predictions against a dataset under a protocol",
        description="Score a predictions file against a dataset split under a named protocol.",
        epilog="Example: salbench eval --predictions preds.pkl --dataset salicon-pkl "
        "--data-dir DIR --split val --protocol coursework --seed 0",
    )
    p.add_argument("--predictions", metavar="PREDS",
                   help="predictions file: .pkl (list of 2304-value outputs), .npy or .npz (N,H,W)")
    p.add_argument("--dataset", default="salicon-pkl", help="dataset name (default: salicon-pkl)")
    p.add_argument("--data-dir", default=None, help="directory holding the dataset files")
    p.add_argument("--split", default="val", help="dataset split (default: val)")
    p.add_argument("--protocol", default=None,
                   help="mit, coursework, salicon or exact (default: coursework for salicon-pkl, else mit)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("--output", default=None, help="also write the JSON result to this file (atomically)")
    p.set_defaults(func=run)


def load_records(dataset: str, split: str, data_dir=None) -> list:
    """Records of a dataset split, through ``salbench.data.get_dataset``."""
    from salbench.data import get_dataset

    return list(get_dataset(dataset, split, data_dir=data_dir))


def predictions_for(args, records):
    """The predictions to score, one per record (from ``--predictions``)."""
    from salbench.predictions import load_predictions

    if not args.predictions:
        raise CLIError("nothing to evaluate: give --predictions PREDS")
    preds = load_predictions(args.predictions)
    if len(preds) != len(records):
        raise CLIError(
            f"{args.predictions} holds {len(preds)} predictions but {args.dataset}/{args.split} "
            f"has {len(records)} images"
        )
    return preds


def result_to_json(result) -> dict:
    """The JSON document of a :class:`~salbench.protocols.ProtocolResult`."""
    import math

    def clean(x):
        return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x

    summary = result.summary()
    return {
        "protocol": {"name": result.protocol, "params": result.params},
        "seed": result.seed,
        "n_images": len(result.names),
        "names": list(result.names),
        "metrics": {
            name: {
                "mean": clean(summary[name]["mean"]),
                "ci95": [clean(v) for v in summary[name]["ci95"]],
                "n": summary[name]["n"],
                "per_image": [clean(float(v)) for v in result.scores[name]],
            }
            for name in result.scores
        },
    }


def render_table(doc: dict) -> str:
    """Plain-text table of mean scores with 95% CIs."""
    from tabulate import tabulate

    rows = []
    for name, m in doc["metrics"].items():
        lo, hi = m["ci95"]
        fmt = (lambda v: "nan" if v is None else f"{v:.4f}")
        rows.append([name, fmt(m["mean"]), f"[{fmt(lo)}, {fmt(hi)}]", m["n"]])
    head = f"protocol {doc['protocol']['name']}, seed {doc['seed']}, {doc['n_images']} images"
    return head + "\n" + tabulate(rows, headers=["metric", "mean", "95% CI", "n"])


def run(args) -> int:
    """Evaluate and print (table or JSON); exit code 0, or 2 via CLIError/ValueError."""
    from salbench.io import atomic_write_json
    from salbench.protocols import default_protocol_for, get_protocol

    protocol = get_protocol(args.protocol or default_protocol_for(args.dataset))
    records = load_records(args.dataset, args.split, args.data_dir)
    if not records:
        raise CLIError(f"{args.dataset}/{args.split} has no images")
    preds = predictions_for(args, records)
    result = protocol.evaluate(preds, records, seed=args.seed)
    doc = result_to_json(result)
    if args.output:
        atomic_write_json(args.output, doc)
    if args.format == "json":
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_table(doc))
    return 0
