"""``salbench plot``: prediction panels, loss curves, first-layer filters (PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  salbench plot panels --result results/synthetic__val__shallow_kl__mit.json --metric cc --n 2
  salbench plot loss --log ~/.cache/salbench/runs/shallow_kl/synthetic-quick/log.jsonl
  salbench plot filters --checkpoint ~/.cache/salbench/runs/shallow_kl/synthetic-quick

A run directory designates checkpoints/best when its recipe keeps one (highest validation CC at
48x48), else checkpoints/final: the same checkpoint eval and --checkpoint RUN_DIR use.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("plot", help="figures like the report's (PNG)", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="figure", metavar="FIGURE", required=True)
    panels = sub.add_parser("panels", help="image | ground truth | prediction for best and worst images")
    panels.add_argument("--result", required=True, help="a results file written by salbench eval")
    panels.add_argument("--metric", default="cc", help="metric that picks best/worst images (default cc)")
    panels.add_argument("--n", type=int, default=2, help="how many best and how many worst (default 2)")
    panels.add_argument("--data-dir", help="dataset directory, if not the one the results file records")
    panels.add_argument("--out", default="figures", help="output directory (default figures/)")
    panels.set_defaults(func=run_panels)
    loss = sub.add_parser("loss", help="training and validation loss curves (and CC at 48x48) from a training log")
    loss.add_argument("--log", required=True, help="a run's log.jsonl (salbench train), or a CSV with kind,step,loss")
    loss.add_argument("--out", default="figures/loss.png")
    loss.add_argument("--seed", type=int, default=None,
                      help="the run to plot from a log of several seeds (default: the smallest)")
    loss.set_defaults(func=run_loss)
    filters = sub.add_parser("filters", help="first-layer filters of a checkpoint")
    filters.add_argument("--checkpoint", required=True,
                         help="model.safetensors, a checkpoint directory or a training run directory")
    filters.add_argument("--out", default="figures/filters.png")
    filters.set_defaults(func=run_filters)


def run_panels(args) -> int:
    from salbench.data import get_dataset
    from salbench.leaderboard.tables import metric_label
    from salbench.results import load_predictions_npz, load_result, resolve_data_dir
    from salbench.plotting import pick_images, plot_panels

    if args.n < 1:
        raise ValueError("--n must be at least 1")
    result = load_result(args.result)
    if not (result.get("predictions") or {}).get("file"):
        raise ValueError(f"{args.result}: the results file stores no predictions to plot")
    ds = result["dataset"]
    data_dir = args.data_dir or resolve_data_dir(ds.get("data_dir"), Path(args.result))
    dataset = get_dataset(ds["name"], ds["split"], data_dir=data_dir, **(ds.get("options") or {}))
    predictions, names = load_predictions_npz(Path(args.result).parent / result["predictions"]["file"])
    best, worst = pick_images(result, args.metric, args.n)
    index = {name: i for i, name in enumerate(dataset.names)}
    block = result["metrics"][args.metric]
    label = metric_label(args.metric, block.get("higher_is_better"))
    out = Path(args.out)
    stem = Path(args.result).stem
    for kind, picks in (("best", best), ("worst", worst)):
        rows = []
        for i in picks:
            if names[i] not in index:
                raise ValueError(f"image {names[i]} of {args.result} is not in dataset {ds['name']}/{ds['split']}")
            rec = dataset[index[names[i]]]
            rows.append({"image": rec.image, "density": rec.density, "prediction": predictions[i],
                         "label": f"{names[i]}\n{label.split()[0]} = {block['per_image'][i]:.3f}"})
        path = plot_panels(rows, out / f"{stem}.{kind}-{args.metric}.png",
                           prediction_title=f"prediction ({result['model']['name']})",
                           title=f"{result['model']['name']}: {kind} {len(rows)} by {label} "
                                 f"({ds['name']}/{ds['split']}, protocol {result['protocol']['name']})")
        print(path)
    return 0


def run_loss(args) -> int:
    from salbench.plotting import loss_title, plot_loss_curves, read_loss_log

    print(plot_loss_curves(read_loss_log(args.log), args.out, title=loss_title(args.log), seed=args.seed))
    return 0


def run_filters(args) -> int:
    from salbench.models._weights import resolve_checkpoint
    from salbench.plotting import first_conv_weights, plot_filters

    weights = first_conv_weights(args.checkpoint)
    ck = resolve_checkpoint(args.checkpoint).parent
    where = f"run {ck.parent.parent.name}, checkpoint {ck.name}" if ck.parent.name == "checkpoints" else ck.name
    title = (f"first-layer filters: {weights.shape[0]} x {weights.shape[1]}x{weights.shape[2]}x{weights.shape[3]} "
             f"({where}; each scaled to its own range)")
    print(plot_filters(weights, args.out, title=title))
    return 0
