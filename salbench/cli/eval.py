"""``salbench eval``: score a model, or maps you already have, on a dataset split.

Examples::

    salbench eval --model shallow_kl --split val
    salbench eval --model center_bias --dataset nus --data-dir ../osie --protocol coursework
    salbench eval --model shallow_kl --save-maps maps/          # also write 8-bit PNG maps
    salbench eval --predictions maps/ --dataset salicon --data-dir ~/salicon --split val
    salbench eval --predictions preds.pkl --dataset salicon-pkl --data-dir DIR --protocol coursework
    salbench eval --model gold --maps metric-specific           # each metric scores its own map of the density
    salbench eval --predictions logp.npz --density --maps metric-specific --dataset nus --data-dir ../osie

Both forms stream the split chunk by chunk (memory does not grow with the number of
images) and write a results entry under ``--results-dir``: ``--model`` stores its
predictions in the entry, ``--predictions DIR`` records each map's SHA-256 so that
``salbench check`` can re-read and verify the folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from salbench.cli import CLIError


def register(subparsers) -> None:
    """Add the ``eval`` subcommand."""
    p = subparsers.add_parser(
        "eval",
        help="score a model (or a folder/file of maps) on a dataset split",
        description="Run a registered model, or read maps you already have (a folder of PNG/JPEG/TIFF/.npy "
        "maps named like the stimuli, or a .npy/.npz/.pkl file), on a dataset split and score them under a "
        "named protocol. A results entry (JSON + predictions or map hashes) is written to --results-dir.",
        epilog="Examples: salbench eval --model shallow_kl --split val | salbench eval --predictions maps/ "
        "--dataset salicon --data-dir ~/salicon | salbench eval --predictions preds.pkl --dataset salicon-pkl "
        "--data-dir DIR --protocol coursework",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="NAME", help="registered model to run (see `salbench models`)")
    src.add_argument("--predictions", metavar="PATH",
                     help="a folder of maps matched to the images by file stem (PNG 8/16-bit, JPEG, TIFF, .npy), "
                     "or a .npy/.npz/.pkl file (matched by the names it carries, else by order); "
                     "see docs/predictions.md")
    p.add_argument("--maps", choices=("raw", "metric-specific", "model"), default="raw",
                   help="raw: every metric scores the model's own map (default; 'model' is a synonym); metric-specific: a density model's "
                   "(or --density file's) predicted fixation density is scored on each metric with the map that "
                   "metric rewards (Kuemmerer et al., ECCV 2018; docs/metrics.md)")
    p.add_argument("--density", action="store_true",
                   help="with --predictions: the file (.npy/.npz) holds natural-log fixation densities, one per "
                   "image, each summing to 1 (checked); needed for --maps metric-specific")
    p.add_argument("--map-option", action="append", default=[], metavar="KEY=VALUE",
                   help="with --maps metric-specific: a parameter of the maps, e.g. sim_samples=200 (repeatable; "
                   "docs/metrics.md)")
    p.add_argument("--name", default=None,
                   help="with --predictions: the name results and leaderboards give these maps "
                   "(default: the folder's name, or its parent's when it is called maps, predictions, saliency, ...; "
                   "docs/predictions.md)")
    p.add_argument("--allow-missing", action="store_true",
                   help="with --predictions: score only the images that have a map (the entry records how many "
                   "were skipped) instead of failing")
    p.add_argument("--allow-extra", action="store_true",
                   help="with --predictions: ignore maps that match no image of the split instead of failing")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, VALUE parsed as JSON, e.g. output_size=[60,80] (repeatable)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="weights for --model (default: a cached quick checkpoint on the built-in dataset)")
    p.add_argument("--dataset", default=None,
                   help="dataset name (default: salicon when SALBENCH_DATA or --data-dir is set, else the "
                   "built-in synthetic)")
    p.add_argument("--data-dir", default=None, help="directory holding the dataset files")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, e.g. preset=small or n_images=2000 for synthetic (repeatable)")
    p.add_argument("--split", default="val", help="dataset split (default: val)")
    p.add_argument("--protocol", default=None,
                   help="mit, coursework, salicon or exact (default: coursework for salicon-pkl, else mit)")
    p.add_argument("--protocol-option", action="append", default=[], metavar="KEY=VALUE",
                   help="protocol parameter override, e.g. ground_truth=dataset (repeatable; see docs/protocols.md)")
    p.add_argument("--metrics", default=None, metavar="NAME,...",
                   help="compute only these metrics (registry names, any subset of the protocol's; default: all); "
                   "recorded in the entry, and `salbench check` recomputes exactly those")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("--output", default=None, help="also write the JSON summary to this file (atomically)")
    p.add_argument("--results-dir", default="results",
                   help="where the results entry is written (default: ./results)")
    p.add_argument("--save-maps", default=None, metavar="DIR",
                   help="with --model: also write each map as an 8-bit PNG named after its stimulus "
                   "(what the MIT and SALICON benchmarks take; docs/predictions.md)")
    p.add_argument("--batch-size", type=int, default=32, help="images per model.predict call (default: 32)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="images scored per chunk (default: 32 with --model, 64 with --predictions)")
    p.add_argument("--workers", type=int, default=None,
                   help="threads preparing and scoring images (default: one per available core); numbers do not change")
    p.add_argument("--executor", default="local", metavar="local|dask[:ADDRESS]",
                   help="where chunks are scored: local (default), dask (a LocalCluster started for the run) or "
                   "dask:ADDRESS (a running scheduler, e.g. tcp://host:8786, or its scheduler file); "
                   "numbers do not change (docs/dask.md)")
    p.add_argument("--no-train", action="store_true",
                   help="never train a quick checkpoint implicitly: fail if the model has no weights")
    p.set_defaults(func=run)


def request_from_args(args):
    """The :class:`~salbench.evaluate.EvaluationRequest` of the command line (checked when built)."""
    from salbench.cli.train import parse_options
    from salbench.evaluate import EvaluationRequest

    if args.output and Path(args.output).is_dir():
        raise CLIError(f"--output {args.output} is a directory; give a file name")
    return EvaluationRequest(
        model=args.model, predictions=args.predictions, name=args.name, allow_missing=args.allow_missing,
        allow_extra=args.allow_extra, model_options=parse_options(args.model_option), checkpoint=args.checkpoint,
        train_if_needed=not args.no_train, save_maps=args.save_maps, dataset=args.dataset, split=args.split,
        data_dir=args.data_dir, dataset_options=parse_options(args.option), protocol=args.protocol,
        protocol_overrides=parse_options(args.protocol_option), seed=args.seed, results_dir=args.results_dir,
        chunk_size=args.chunk_size, workers=args.workers, batch_size=args.batch_size, metrics=args.metrics,
        executor=args.executor, maps="raw" if args.maps == "model" else args.maps, density=args.density,
        map_options=parse_options(args.map_option))


def result_record_to_doc(result: dict) -> dict:
    """The ``--format json`` document of a results entry."""
    return {
        "protocol": result["protocol"], "seed": result["seed"], "n_images": result["n_images"],
        "n_skipped": result["n_skipped"], "n_excluded": result["n_excluded"],
        "names": result["image_names"], "model": result["model"], "dataset": result["dataset"],
        "maps": result.get("maps", "raw"),
        "metrics": {k: {"mean": m["mean"], "ci95": m["ci95"], "per_image": m["per_image"], "n": m["n"]}
                    for k, m in result["metrics"].items()},
    }


def render_table(doc: dict) -> str:
    """Plain-text table of mean scores with 95% CIs, metrics in the registry's order."""
    from tabulate import tabulate

    from salbench.metrics import METRICS

    rows = []
    fmt = (lambda v: "-" if v is None else f"{v:.4f}")
    for name, m in doc["metrics"].items():
        lo, hi = m["ci95"]
        info = METRICS.get(name)
        label = name if info is None else f"{info.label} {'↑' if info.higher_is_better else '↓'}"
        rows.append([label, fmt(m["mean"]), f"[{fmt(lo)}, {fmt(hi)}]", m["n"]])
    head = f"protocol {doc['protocol']['name']}, seed {doc['seed']}, {doc['n_images']} images"
    if doc.get("maps") == "metric-specific":
        head += ", metric-specific maps"
    extra = []
    if doc.get("n_excluded"):
        extra.append(f"{doc['n_excluded']} without fixations excluded from every metric")
    if doc.get("n_skipped"):
        extra.append(f"{doc['n_skipped']} skipped (no map)")
    if extra:
        head += " (" + "; ".join(extra) + ")"
    return head + "\n" + tabulate(rows, headers=["metric", "mean", "95% CI", "n"])


def emit(args, doc: dict, table_lines: list[str], entry=None) -> int:
    """Write ``--output``, then print ``doc`` as JSON or ``table_lines`` as text; exit code 0.

    The results entry ``entry`` is already committed: when ``--output`` cannot be written
    (a full disk) the table is printed all the same, and the error line says which of
    the three was written and which was not.
    """
    from salbench.io import atomic_write_json
    from salbench.io.errors import reason

    failed = None
    if args.output:
        existed = Path(args.output).exists()
        try:
            atomic_write_json(args.output, doc)
        except OSError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
            failed = (f"--output {args.output} was not written ({reason(cause)})"
                      + ("; the previous file is unchanged" if existed else ""))
    if args.format == "json":
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n".join(table_lines))
    if failed:
        shown = "JSON summary" if args.format == "json" else "table"
        raise CLIError(f"{failed}; the results entry {entry} was written and the {shown} is printed above"
                       if entry else f"{failed}; the {shown} is printed above")
    return 0


def run(args) -> int:
    """Evaluate and print (table or JSON); exit code 0, or 2 with one line on any error."""
    from salbench.evaluate import NeedsTrainingError, evaluate
    from salbench.evaluate.executor import ClusterError

    request = request_from_args(args)
    log = (lambda msg: print(msg, file=sys.stderr)) if args.format == "json" else print
    try:
        result, path = evaluate(request, progress=True, log=log)  # bars on a terminal, lines in a log
    except (NeedsTrainingError, ClusterError) as exc:
        raise CLIError(str(exc)) from None
    what = (f"model {args.model}" if args.model else
            f"maps {args.predictions} (as {result['model']['name']})")
    doc = result_record_to_doc(result)
    pred = result.get("predictions") or {}
    lines = [f"{what}, dataset {result['dataset'].get('name')}/{args.split}", render_table(doc),
             f"results: {path}"]
    if pred.get("kind") == "folder":
        lines.append(f"maps: {args.predictions} ({pred.get('n')} files, sha256 of each recorded)")
    elif pred.get("file"):
        lines.append(f"predictions: {Path(path).parent / pred['file']}")
    if args.save_maps:
        lines.append(f"maps: {args.save_maps} (8-bit PNG, one per stimulus)")
    return emit(args, doc, lines, entry=path)
