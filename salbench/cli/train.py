"""``salbench train``: train a shallow network on a dataset, resumably."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train shallow_mse / shallow_kl",
        description=(
            "Train a shallow network with a recipe preset (full = the report's schedule, quick = a CPU-"
            "friendly smoke run). Writes log.jsonl, checkpoints/ (safetensors + JSON), summary.json."
        ),
        epilog=(
            "Examples: salbench train shallow_kl --dataset synthetic --preset quick\n"
            "  salbench train shallow_mse --dataset salicon-pkl --data-dir ~/salicon --preset full --device cuda\n"
            "  salbench train shallow_mse --dataset salicon-pkl --data-dir ~/salicon --preset full --resume"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="shallow_mse or shallow_kl")
    p.add_argument("--dataset", required=True, help="dataset name (see salbench data)")
    p.add_argument("--data-dir", help="dataset root (file-based datasets)")
    p.add_argument("--split", default="train", help="training split (default: train)")
    p.add_argument("--val-split", default="val", help="validation split, 'none' to skip (default: val)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, VALUE parsed as JSON when possible (repeatable)")
    p.add_argument("--preset", choices=("quick", "full"), default="quick")
    p.add_argument("--epochs", type=int, help="override the preset's epoch count")
    p.add_argument("--batch-size", type=int, help="override the preset's batch size")
    p.add_argument("--max-train", type=int, help="use only the first N training images")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="default auto: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the network")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default: under $SALBENCH_CACHE or ~/.cache/salbench)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_options(items: list[str]) -> dict:
    """``["resolution=[480,640]", "mirror=true"]`` -> ``{"resolution": [480, 640], "mirror": True}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from salbench.training import train

    result = train(
        args.model, args.dataset, split=args.split,
        val_split=None if args.val_split.lower() == "none" else args.val_split,
        data_dir=args.data_dir, dataset_options=parse_options(args.option), preset=args.preset,
        epochs=args.epochs, device=args.device, resume=args.resume, seed=args.seed, out=args.out,
        progress=not args.no_progress, batch_size=args.batch_size, max_train=args.max_train,
        precision=args.precision, compile=args.compile,
    )
    s = result.summary
    print(
        f"trained {args.model} for {s['epoch']} epochs in {s['wall_time_s']:.1f} s "
        f"({s['train_images_per_s']:.1f} img/s training, {s['device']}, {s['precision']}); "
        f"final val loss {s['final_val_loss']}"
    )
    print(f"checkpoint: {result.checkpoint}")
    if result.best is not None:
        print(f"best (by validation loss): {result.best}")
    print(f"log: {result.out / 'log.jsonl'}")
    return 0
