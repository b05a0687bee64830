"""``salbench train``: train a shallow network on a dataset, resumably."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train shallow_mse / shallow_kl",
        description=(
            "Train a shallow network with a recipe preset (full = the report's schedule; distribution = "
            "shallow_kl with the target y/sum(y), a documented deviation; quick = a CPU demo). Writes "
            "log.jsonl, checkpoints/ (safetensors + JSON), summary.json. The run directory designates "
            "checkpoints/best when the recipe keeps one (highest validation CC at 48x48), else "
            "checkpoints/final: eval, plot and --checkpoint RUN_DIR all use that one."
        ),
        epilog=(
            "Examples: salbench train shallow_kl --dataset synthetic --preset quick\n"
            "  salbench train shallow_kl --dataset nus --data-dir ../shared/data/osie --preset distribution\n"
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
    p.add_argument("--preset", choices=("quick", "full", "distribution"), default="quick")
    p.add_argument("--target", choices=("map", "softmax", "distribution"),
                   help="loss target: map (MSE), softmax (KL, the report's) or distribution (KL, y/sum(y))")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="train on the images and their horizontal mirrors (default: the preset's, on)")
    p.add_argument("--fc2-bias", choices=("report", "mean_map"), help="output bias init: 0.1 or the mean map")
    p.add_argument("--epochs", type=int, help="override the preset's epoch count")
    p.add_argument("--batch-size", type=int, help="override the preset's batch size")
    p.add_argument("--lr-start", type=float, help="override the initial learning rate")
    p.add_argument("--lr-end", type=float, help="override the final learning rate")
    p.add_argument("--max-train", type=int, help="use only the first N training images (before mirroring)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="default auto: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the network")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint (an error if there is none)")
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


def request_from_args(args: argparse.Namespace):
    """The :class:`~salbench.training.TrainingRequest` of ``salbench train``'s arguments."""
    from salbench.training import TrainingRequest

    recipe_options = dict(epochs=args.epochs, batch_size=args.batch_size, max_train=args.max_train,
                          precision=args.precision, compile=args.compile, target=args.target, mirror=args.mirror,
                          fc2_bias=args.fc2_bias, lr_start=args.lr_start, lr_end=args.lr_end)
    return TrainingRequest(
        model=args.model, dataset=args.dataset, split=args.split,
        val_split=None if args.val_split.lower() == "none" else args.val_split, data_dir=args.data_dir,
        dataset_options=parse_options(args.option), preset=args.preset, recipe_options=recipe_options,
        seed=args.seed, device=args.device, out=args.out, resume="require" if args.resume else "never",
        progress=not args.no_progress)


def run(args: argparse.Namespace) -> int:
    from salbench.training import run_training

    request = request_from_args(args)
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file, not a run directory")
    # Check the seed and the recipe before opening any data: a bad value fails at once, in one line.
    recipe = request.check()
    print(f"recipe {args.preset}: {recipe.describe()}")
    result = run_training(request)  # a diverged loss is a ValueError: one line, exit 2
    s = result.summary
    cc = s.get("final_val_cc48")
    if not result.trained:
        print(f"the run in {result.out} was already complete: nothing left to train")
    print(
        f"trained {args.model} for {s['epoch']} epochs in {s['wall_time_s']:.1f} s "
        f"({s['train_images_per_s']:.1f} img/s training, {s['device']}, {s['precision']}); "
        f"last val loss {s['final_val_loss']}" + (f", val CC48 {cc:.4f}" if cc is not None else "")
    )
    ck = result.checkpoint
    info = s.get("chosen_checkpoint") or {}
    why = info.get("rule", "")
    if info.get("value") is not None:
        why += f", val CC48 {info['value']:.4f}"
    print(f"checkpoint ({ck.name}, epoch {info.get('epoch')}: {why}): {ck}")
    if not result.completed:
        print(f"stopped early after {s['epoch']} of {s['planned_epochs']} epochs; --resume continues")
    print(f"the run directory designates this checkpoint (eval, plot and --checkpoint {result.out} use it)")
    print(f"log: {result.out / 'log.jsonl'}")
    return 0
