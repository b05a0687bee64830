"""Regenerate the committed leaderboard entries and tables.

Run from the repository root::

    python leaderboards/build.py [--gpu-dir DIR] [--osie ../shared/data/osie] [--only synthetic|osie]

Every entry is written by :func:`salbench.evaluate.evaluate_model` (results JSON + float16
predictions beside it), so ``salbench check leaderboards`` can recompute each one. Entries:

* ``synthetic/`` (built-in dataset, default preset, split ``val``): ``uniform``,
  ``center_bias`` (fitted on the first 1000 train images), ``gold`` and both shallow
  variants, under ``mit`` and ``coursework``;
* ``osie/`` (the ``nus`` dataset on ``../shared/data/osie``, split ``val`` = 200 images):
  ``uniform``, ``center_bias`` (fitted on the 500 train images) and both shallow variants,
  under ``mit`` and ``coursework``; ``center_bias`` and ``shallow_kl`` also under ``salicon``
  and ``exact`` for the protocol comparison.

Shallow-network predictions come from ``--gpu-dir`` when it holds ``<set>-<model>.npz``
(written by ``tests/benchmarks/gpu_training.py``: full recipes on a GPU; the weights are not
kept, their hash is recorded), else from the cached quick CPU checkpoint on the built-in
dataset (synthetic only). Tables go to ``tables/``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHALLOW = ("shallow_mse", "shallow_kl")
PROTOCOL_FILTER: set[str] | None = None


def gpu_predictions(gpu_dir: Path | None, tag: str, model: str, names: list[str]):
    """``(predictions, model_info)`` from a GPU run's ``<tag>-<model>.npz``, or ``(None, None)``."""
    if gpu_dir is None or not (gpu_dir / f"{tag}-{model}.npz").is_file():
        return None, None
    d = np.load(gpu_dir / f"{tag}-{model}.npz")
    if list(d["names"]) != list(names):
        raise ValueError(f"{tag}-{model}.npz: image names differ from the dataset split's")
    s = json.loads(str(d["summary"]))
    info = {
        "trained": {
            "where": f"GPU run ({s['device']}, torch {s['torch']}, {s['precision']})",
            "train_data": s["config"]["train_data"], "preset": s["config"]["preset"],
            "recipe": s["config"]["recipe"], "seed": s["seed"], "epochs": s["epoch"],
            "best": s.get("best"), "train_images_per_s": round(s["train_images_per_s"], 1),
            "wall_time_s": round(s["wall_time_s"], 1),
        },
        "checkpoint": {"path": f"not kept (GPU run, {s['evaluated_checkpoint']} checkpoint, 300 MB)",
                       "sha256": s["evaluated_weights_sha256"]},
        "card_trained_on": f"{tag} train split on a GPU ({s['config']['preset']} recipe)",
    }
    return d["predictions"], info


# gold at full resolution would store 170 MB of predictions per entry; its 8x block mean is
# smooth enough (SALICON blur sigma 19 px = 2.4 px at 60x80) and 100x smaller.
MODEL_OPTIONS = {"gold": {"output_size": [60, 80]}}
# The SALICON server's filterAnns keeps only repeated coordinates (meant for its raw mouse
# samples); OSIE has eye-tracking fixations, so every point is kept there.
PROTOCOL_OVERRIDES = {("nus", "salicon"): {"filter_anns": False}}


def evaluate(model, dataset, out: Path, protocols, *, data_dir=None, options=None, gpu_dir=None, tag=None):
    from salbench.data import get_dataset
    from salbench.evaluate import evaluate_model

    preds = info = None
    if model in SHALLOW:
        names = get_dataset(dataset, "val", data_dir=data_dir, **(options or {})).names
        preds, info = gpu_predictions(gpu_dir, tag, model, list(names))
        if preds is None and dataset != "synthetic":
            print(f"skip {model} on {tag}: no GPU predictions in {gpu_dir}")
            return
    checkpoint = None
    for protocol in protocols:
        if PROTOCOL_FILTER is not None and protocol not in PROTOCOL_FILTER:
            continue
        print(f"== {tag} {model} {protocol}", flush=True)
        result, _ = evaluate_model(
            model, dataset=dataset, split="val", data_dir=data_dir, dataset_options=options,
            protocol=protocol, protocol_overrides=PROTOCOL_OVERRIDES.get((dataset, protocol)), seed=0,
            checkpoint=checkpoint, model_options=MODEL_OPTIONS.get(model), predictions=preds, model_info=info,
            results_dir=out, progress=False)
        if result["model"]["checkpoint"] and checkpoint is None and preds is None:
            # center_bias is fitted on the first protocol's run; the others reuse that fit.
            checkpoint = out / result["model"]["checkpoint"]["path"]


def copy_logs(gpu_dir: Path | None, tag: str, out: Path) -> None:
    """Keep a GPU run's loss logs (``<tag>-<model>-log.jsonl``) beside the entries, in ``runs/``."""
    if gpu_dir is None:
        return
    for log in sorted(gpu_dir.glob(f"{tag}-*-log.jsonl")):
        (out / "runs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, out / "runs" / log.name)


def write_tables(root: Path) -> None:
    from salbench.cli import main

    tables = root / "tables"
    tables.mkdir(exist_ok=True)
    jobs = {
        "table2.md": ["--table", "2"],
        "table3.md": ["--table", "3"],
        "synthetic-mit.md": ["--dataset", "synthetic", "--protocol", "mit"],
        "synthetic-coursework.md": ["--dataset", "synthetic", "--protocol", "coursework"],
        "osie-mit.md": ["--dataset", "nus", "--protocol", "mit"],
        "osie-coursework.md": ["--dataset", "nus", "--protocol", "coursework"],
        "osie-protocols-center_bias.md": ["--compare-protocols", "--dataset", "nus", "--model", "center_bias"],
        "osie-protocols-shallow_kl.md": ["--compare-protocols", "--dataset", "nus", "--model", "shallow_kl"],
    }
    for name, args in jobs.items():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["leaderboard", "--results", str(root), *args])
        if code == 0:
            cmd = "salbench leaderboard --results leaderboards " + " ".join(args)
            (tables / name).write_text(f"<!-- generated by: {cmd} -->\n\n{buf.getvalue()}")
            print(f"wrote tables/{name}")
        else:
            print(f"table {name}: exit {code}", file=sys.stderr)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpu-dir", type=Path, default=None)
    p.add_argument("--osie", default=str(HERE.parent.parent / "shared" / "data" / "osie"))
    p.add_argument("--only", choices=("synthetic", "osie", "tables"), default=None)
    p.add_argument("--models", default=None, help="comma-separated subset of models to (re)build")
    p.add_argument("--protocols", default=None, help="comma-separated subset of protocols to (re)build")
    a = p.parse_args(argv)
    keep = (lambda m: True) if a.models is None else (lambda m: m in a.models.split(","))
    global PROTOCOL_FILTER
    PROTOCOL_FILTER = None if a.protocols is None else set(a.protocols.split(","))

    if a.only in (None, "synthetic"):
        out = HERE / "synthetic"
        for model in filter(keep, ("uniform", "center_bias", "gold", *SHALLOW)):
            evaluate(model, "synthetic", out, ("mit", "coursework"), gpu_dir=a.gpu_dir, tag="synthetic")
        copy_logs(a.gpu_dir, "synthetic", out)
    if a.only in (None, "osie"):
        if not Path(a.osie).is_dir():
            print(f"skip OSIE: {a.osie} not found")
        else:
            out = HERE / "osie"
            # A path relative to the repository root, so that `salbench check` finds it from there.
            data_dir = "../shared/data/osie" if Path(a.osie).resolve() == (HERE.parent.parent / "shared" / "data" / "osie").resolve() else a.osie
            for model in filter(keep, ("uniform", "center_bias", *SHALLOW)):
                protocols = ("mit", "coursework") + (("salicon", "exact") if model in ("center_bias", "shallow_kl") else ())
                evaluate(model, "nus", out, protocols, data_dir=data_dir, gpu_dir=a.gpu_dir, tag="osie")
            copy_logs(a.gpu_dir, "osie", out)
    write_tables(HERE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
