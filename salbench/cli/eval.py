"""``salbench eval``: run a model (or read a predictions file) and score it under a protocol.

Examples::

    salbench eval --model shallow_kl --split val
    salbench eval --model center_bias --dataset nus --data-dir ../osie --protocol coursework
    salbench eval --predictions preds.pkl --dataset salicon-pkl --data-dir DIR \
        --split val --protocol coursework --seed 0 --format json --output scores.json

With ``--model`` the work is :func:`salbench.evaluate.evaluate_model` (it also writes
a results file and the predictions under ``--results-dir``); with ``--predictions``
the file's maps are scored and nothing is written unless ``--output`` is given.
"""

from __future__ import annotations

import json
import sys

from salbench.cli import CLIError


def register(subparsers) -> None:
    """Add the ``eval`` subcommand."""
    p = subparsers.add_parser(
        "eval",
        help="run a model (or read predictions) on a dataset split and score it",
        description="Run a registered model, or read a predictions file, on a dataset split and "
        "score it under a named protocol. With --model a results file (JSON) and the predictions "
        "(.npz) are written to --results-dir.",
        epilog="Examples: salbench eval --model shallow_kl --split val | salbench eval --predictions "
        "preds.pkl --dataset salicon-pkl --data-dir DIR --protocol coursework",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="NAME", help="registered model to run (see `salbench models`)")
    src.add_argument("--predictions", metavar="PREDS",
                     help="predictions file: .pkl (list of 2304-value outputs), .npy or .npz (N,H,W)")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, VALUE parsed as JSON, e.g. output_size=[60,80] (repeatable)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="weights for --model (default: a cached quick checkpoint on the built-in dataset)")
    p.add_argument("--dataset", default=None,
                   help="dataset name (default: salicon when SALBENCH_DATA or --data-dir is set, else the "
                   "built-in synthetic)")
    p.add_argument("--data-dir", default=None, help="directory holding the dataset files")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, e.g. preset=small for synthetic (repeatable)")
    p.add_argument("--split", default="val", help="dataset split (default: val)")
    p.add_argument("--protocol", default=None,
                   help="mit, coursework, salicon or exact (default: coursework for salicon-pkl, else mit)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("--output", default=None, help="also write the JSON result to this file (atomically)")
    p.add_argument("--results-dir", default="results",
                   help="where --model writes its results file and predictions (default: ./results)")
    p.add_argument("--batch-size", type=int, default=32, help="images per model.predict call (default: 32)")
    p.add_argument("--no-train", action="store_true",
                   help="never train a quick checkpoint implicitly: fail if the model has no weights")
    p.set_defaults(func=run)


def load_records(dataset: str, split: str, data_dir=None, options=None) -> list:
    """Records of a dataset split, through ``salbench.data.get_dataset``."""
    from salbench.data import get_dataset

    return list(get_dataset(dataset, split, data_dir=data_dir, **dict(options or {})))


def predictions_for(args, records):
    """The predictions to score, one per record (from ``--predictions``)."""
    from salbench.predictions import load_predictions

    if not args.predictions:
        raise CLIError("nothing to evaluate: give --model NAME or --predictions PREDS")
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

    from salbench.metrics import METRICS

    rows = []
    for name, m in doc["metrics"].items():
        lo, hi = m["ci95"]
        fmt = (lambda v: "nan" if v is None else f"{v:.4f}")
        info = METRICS.get(name)
        arrow = "" if info is None else (" ↑" if info.higher_is_better else " ↓")
        rows.append([name + arrow, fmt(m["mean"]), f"[{fmt(lo)}, {fmt(hi)}]", m["n"]])
    head = f"protocol {doc['protocol']['name']}, seed {doc['seed']}, {doc['n_images']} images"
    return head + "\n" + tabulate(rows, headers=["metric", "mean", "95% CI", "n"])


def result_record_to_doc(result: dict) -> dict:
    """The ``--format json`` document of a results file written by ``--model``."""
    return {
        "protocol": result["protocol"], "seed": result["seed"], "n_images": result["n_images"],
        "names": result["image_names"], "model": result["model"], "dataset": result["dataset"],
        "metrics": {k: {"mean": m["mean"], "ci95": m["ci95"], "per_image": m["per_image"],
                        "n": sum(v is not None for v in m["per_image"])} for k, m in result["metrics"].items()},
    }


def run_model(args) -> int:
    """``--model``: evaluate through :func:`salbench.evaluate.evaluate_model` and print."""
    from salbench.cli.train import parse_options
    from salbench.evaluate import NeedsTrainingError, evaluate_model

    log = (lambda msg: print(msg, file=sys.stderr)) if args.format == "json" else print
    try:
        result, path = evaluate_model(
            args.model, dataset=args.dataset, split=args.split, data_dir=args.data_dir,
            dataset_options=parse_options(args.option), model_options=parse_options(args.model_option),
            protocol=args.protocol, seed=args.seed, checkpoint=args.checkpoint, results_dir=args.results_dir,
            batch_size=args.batch_size, progress=sys.stderr.isatty(), train_if_needed=not args.no_train, log=log,
        )
    except NeedsTrainingError as exc:
        raise CLIError(str(exc)) from None
    doc = result_record_to_doc(result)
    return emit(args, doc, [
        f"model {args.model}, dataset {result['dataset'].get('name')}/{args.split}",
        render_table(doc),
        f"results: {path}",
        f"predictions: {path.parent / result['predictions']['file']}",
    ])


def emit(args, doc: dict, table_lines: list[str]) -> int:
    """Write ``--output``, then print ``doc`` as JSON or ``table_lines`` as text; exit code 0."""
    from salbench.io import atomic_write_json

    if args.output:
        atomic_write_json(args.output, doc)
    if args.format == "json":
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n".join(table_lines))
    return 0


def run(args) -> int:
    """Evaluate and print (table or JSON); exit code 0, or 2 via CLIError/ValueError."""
    from salbench.evaluate import choose_dataset
    from salbench.protocols import default_protocol_for, get_protocol

    if args.model:
        return run_model(args)
    if not args.predictions:
        raise CLIError("nothing to evaluate: give --model NAME or --predictions PREDS")
    from salbench.cli.train import parse_options

    chosen_for_user = args.dataset is None
    choice = choose_dataset(args.dataset, args.data_dir, parse_options(args.option))
    args.dataset, args.data_dir = choice.name, choice.data_dir
    if chosen_for_user:  # say which dataset salbench picked (stderr: stdout may be JSON)
        print(f"salbench: {choice.reason}, split {args.split}", file=sys.stderr)
    protocol = get_protocol(args.protocol or default_protocol_for(args.dataset))
    records = load_records(args.dataset, args.split, args.data_dir, choice.options)
    if not records:
        raise CLIError(f"{args.dataset}/{args.split} has no images")
    preds = predictions_for(args, records)
    result = protocol.evaluate(preds, records, seed=args.seed)
    doc = result_to_json(result)
    return emit(args, doc, [render_table(doc)])
