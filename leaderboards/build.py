"""Regenerate the committed leaderboard entries and tables.

Run from the repository root::

    python leaderboards/build.py [--gpu-dir DIR] [--osie ../shared/data/osie] [--only synthetic|osie|tables]
                                 [--models a,b] [--protocols mit,coursework]

Every entry is written by :func:`salbench.evaluate.evaluate` from an
:class:`~salbench.evaluate.EvaluationRequest` (results JSON + float16 predictions beside it,
committed as one unit), so ``salbench check leaderboards`` can recompute each one. Entries:

* ``synthetic/`` (built-in dataset, default preset, split ``val``): ``uniform``, ``center_bias``
  (fitted on the first 1000 train images), ``gold`` and the shallow networks, under ``mit`` and
  ``coursework``;
* ``osie/`` (the ``nus`` dataset on ``../shared/data/osie``, split ``val`` = 200 images at the
  original 600x800): ``uniform``, ``center_bias`` (fitted on the 500 train images) and the shallow
  networks, under ``mit`` and ``coursework``; ``center_bias`` and ``shallow_kl`` (distribution
  target, seed 0) also under ``salicon`` and ``exact`` (protocol comparison), and ``mit`` with the
  dataset's sigma-19 density as ground truth (``mit-dataset-gt``: issue 12's side-by-side comparison).
* beside the raw entries of the density models of :data:`METRIC_SPECIFIC` (OSIE: ``center_bias`` and
  every ``shallow_kl`` run under ``mit`` and ``coursework``; synthetic: ``center_bias`` and ``gold``
  under ``mit``): the same model scored with metric-specific maps (``--maps metric-specific``,
  entries ``<model>[-<tag>]-metric-specific``; issue 16). The trained ``shallow_kl`` runs are
  scored from their stored maps (the density scaled to maximum 1, float16): see :func:`log_densities`.

Shallow-network predictions come from GPU runs, never from this machine:
``--gpu-dir`` holding ``<tag>-<name>.npz`` files written by ``tests/benchmarks/gpu_issue11.py``
(``predictions_by_seed``, ``seeds``, ``summaries``, ``names``; one entry per training seed, named
``<model>-<variant>-s<seed>``), else the predictions stored in the entries already committed
here (rescored with today's protocols, their model records kept). After new entries,
``salbench check leaderboards --record`` writes ``verification.json`` (what the tables' ``Verified``
column and the site show: "model re-run", "recomputed", ...). Tables go to ``tables/``, the
static site (``salbench leaderboard --html``) to ``site/``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PROTOCOL_FILTER: set[str] | None = None

# gold at full resolution would store 170 MB of predictions per entry; its 8x block mean is
# smooth enough (SALICON blur sigma 19 px = 2.4 px at 60x80) and 100x smaller.
MODEL_OPTIONS = {"gold": {"output_size": [60, 80]}}
# The SALICON server's filterAnns keeps only repeated coordinates (meant for its raw mouse
# samples); OSIE has eye-tracking fixations, so every point is kept there.
PROTOCOL_OVERRIDES = {("nus", "salicon"): {"filter_anns": False}}
# GPU file name -> (registered model, variant tag in entry names)
# The trained network scored under every protocol for the protocol comparison (seed 0 of the
# distribution target, the best-scoring recipe on OSIE).
COMPARED_RUN = "distribution-s0"
# Entry-name suffix of the `mit-dataset-gt` comparison: the same maps as the run without it.
DATASET_GT_TAG = "dataset-gt"
# Density models also scored with metric-specific maps (issue 16): dataset -> (models, protocols).
# uniform is left out (every derived map of a constant density is constant: it scores as its raw row)
# and synthetic keeps to mit, so that `salbench check leaderboards --strict` (CI) stays within minutes.
METRIC_SPECIFIC = {"nus": (("center_bias", "shallow_kl"), ("mit", "coursework")),
                   "synthetic": (("center_bias", "gold"), ("mit",))}
# The stored maps of a trained shallow_kl are its softmax divided by its maximum, rounded to float16:
# a pixel below float16's smallest subnormal (2**-24 of the peak) is stored as 0 and read as this.
STORED_DENSITY_FLOOR = 2.0 ** -24
GPU_NAMES = {"shallow_mse": ("shallow_mse", "report"), "shallow_kl": ("shallow_kl", "softmax"),
             "shallow_kl-distribution": ("shallow_kl", "distribution")}


def gpu_runs(gpu_dir: Path | None, tag: str, names: list[str]):
    """``[(model, entry tag, predictions, model_info)]`` of every seed of every GPU file for ``tag``."""
    if gpu_dir is None:
        return []
    runs = []
    for file_name, (model, variant) in GPU_NAMES.items():
        path = gpu_dir / f"{tag}-{file_name}.npz"
        if not path.is_file():
            continue
        d = np.load(path)
        if [str(n) for n in d["names"]] != list(names):
            raise ValueError(f"{path}: image names differ from the dataset split's")
        preds = d["predictions_by_seed"] if "predictions_by_seed" in d.files else d["predictions"][None]
        summaries = (json.loads(str(d["summaries"])) if "summaries" in d.files else [json.loads(str(d["summary"]))])
        for p, s in zip(preds, summaries):
            runs.append((model, f"{variant}-s{s['seed']}", p.astype(np.float32), _gpu_info(s, tag)))
    return runs


def _gpu_info(s: dict, tag: str) -> dict:
    training = dict(s.get("training") or {})
    training.setdefault("seed", s["seed"])
    completed = s.get("completed", True)
    return {
        "training": training,
        "trained": {
            "where": f"GPU run ({s['device']}, torch {s['torch']}, {s['precision']})",
            "recipe": s["config"]["recipe"], "preset": s["config"]["preset"], "seed": s["seed"],
            "epochs": s["epoch"], "planned_epochs": s.get("planned_epochs", s["epoch"]), "completed": completed,
            "chosen_checkpoint": s.get("chosen_checkpoint"), "train_images_per_s": round(s["train_images_per_s"], 1),
            "wall_time_s": round(s["wall_time_s"], 1),
        },
        "checkpoint": {"path": f"not kept (GPU run, {s['evaluated_checkpoint']} checkpoint, 300 MB)",
                       "sha256": s["evaluated_weights_sha256"]},
        "card_trained_on": f"{tag} train split on a GPU ({s['config']['preset']} recipe"
                           + ("" if completed else ", stopped early by the device budget") + ")",
    }


def committed_runs(out: Path, dataset: str, models: tuple[str, ...]):
    """``[(model, entry tag, predictions, model_info)]`` from entries already committed under ``out``.

    Used when no GPU directory is given: the stored predictions are rescored with today's
    protocols and the entry keeps its model record (one run per distinct stored entry).
    """
    from salbench.results import load_predictions_npz

    seen, runs = set(), []
    for path in sorted(out.glob(f"{dataset}__val__*__*.json")):
        rec = json.loads(path.read_text())
        model = rec["model"]["name"]
        stem_model = path.name.split("__")[2]
        if (model not in models or stem_model in seen or stem_model.endswith(f"-{DATASET_GT_TAG}")
                or rec.get("maps") == "metric-specific"):
            continue  # a comparison entry is rescored with its run, never as a run of its own
        pred = rec.get("predictions") or {}
        file = out / pred.get("file", "")
        if not file.is_file():
            continue
        seen.add(stem_model)
        preds, _names = load_predictions_npz(file)
        info = {k: v for k, v in rec["model"].items() if k not in ("name", "output_size")}
        if model == "shallow_kl" and "training" not in info:
            # Entries trained before the target became a recipe option used the report's softmax
            # target and kept the best checkpoint by validation loss under running BatchNorm statistics.
            info["training"] = {"target": "softmax", "preset": info.get("trained", {}).get("preset"),
                                "seed": info.get("trained", {}).get("seed"),
                                "checkpoint_rule": "lowest validation loss, running BatchNorm statistics "
                                                   "(the rule before 2026-11-29)"}
        tag = stem_model[len(model) + 1:] if stem_model.startswith(model + "-") else None
        runs.append((model, tag, preds, info))
    return runs


def log_densities(predictions) -> np.ndarray:
    """A density model's stored maps (its density scaled to maximum 1) as normalised natural-log densities.

    ``log(max(map, STORED_DENSITY_FLOOR)) - logsumexp``: the model's density to float16's relative
    precision (~5e-4), the pixels stored as 0 at ``2**-24`` of the peak.
    """
    from scipy.special import logsumexp

    ld = np.log(np.maximum(np.asarray(predictions, dtype=np.float64), STORED_DENSITY_FLOOR))
    return ld - logsumexp(ld, axis=(1, 2), keepdims=True)


def score_entries(model, dataset, out: Path, protocols, *, data_dir=None, options=None, predictions=None, info=None,
             tag=None):
    from salbench.evaluate import EvaluationRequest, evaluate

    checkpoint = densities = None
    for protocol in protocols:
        overrides = dict(PROTOCOL_OVERRIDES.get((dataset, protocol), {}))
        name = protocol
        if protocol == "mit-dataset-gt":  # issue 12: the same maps against the dataset's sigma-19 density
            protocol, overrides = "mit", {**overrides, "ground_truth": "dataset"}
        if PROTOCOL_FILTER is not None and name not in PROTOCOL_FILTER:
            continue
        entry_tag = tag if name == protocol else "-".join(x for x in (tag, DATASET_GT_TAG) if x)
        print(f"== {dataset} {model} {entry_tag or ''} {name}", flush=True)
        request = EvaluationRequest(
            model=model, dataset=dataset, split="val", data_dir=data_dir, dataset_options=options or {},
            protocol=protocol, protocol_overrides=overrides, seed=0, checkpoint=checkpoint,
            model_options=MODEL_OPTIONS.get(model, {}), model_predictions=predictions, model_info=info,
            results_dir=out, tag=entry_tag)
        result, _ = evaluate(request, progress=False)
        if result["model"]["checkpoint"] and checkpoint is None and predictions is None:
            # center_bias is fitted on the first protocol's run; the others reuse that fit.
            checkpoint = out / result["model"]["checkpoint"]["path"]
        ms_models, ms_protocols = METRIC_SPECIFIC.get(dataset, ((), ()))
        if model in ms_models and name in ms_protocols:  # issue 16: side by side
            print(f"== {dataset} {model} {entry_tag or ''} {name} metric-specific maps", flush=True)
            if predictions is not None and densities is None:
                densities = log_densities(predictions)
            derived = {**(info or {}), "log_density_from": "the stored maps of its raw entry (float16, scaled to "
                       "maximum 1; floor 2**-24)"} if predictions is not None else None
            evaluate(replace(request, checkpoint=checkpoint, maps="metric-specific", model_predictions=densities,
                             model_info=derived), progress=False)


def copy_logs(gpu_dir: Path | None, tag: str, out: Path) -> None:
    """Keep a GPU run's loss logs (``<tag>-<name>-log.jsonl``) and run summaries beside the entries, in ``runs/``."""
    if gpu_dir is None:
        return
    for log in sorted([*gpu_dir.glob(f"{tag}-*-log.jsonl"), *gpu_dir.glob(f"{tag}-*summary.json")]):
        (out / "runs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, out / "runs" / log.name)


def remove_orphans(out: Path) -> None:
    """Delete predictions files no entry names any more (superseded content-addressed files)."""
    named = set()
    for path in out.glob("*.json"):
        try:
            rec = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("predictions"), dict) and rec["predictions"].get("file"):
            named.add(rec["predictions"]["file"])
    for path in out.glob("*.predictions*.npz"):
        if path.name not in named:
            path.unlink()
            print(f"removed {path.relative_to(HERE)} (no entry names it)")


def build_set(tag: str, dataset: str, out: Path, baselines, shallow_protocols, *, data_dir=None, gpu_dir=None,
              keep=lambda m: True, comparison=(), comparison_models=()):
    from salbench.data import get_dataset

    names = list(get_dataset(dataset, "val", data_dir=data_dir).names)
    base_protocols = ("mit", "coursework")
    for model in filter(keep, baselines):
        protocols = base_protocols + (comparison if model in comparison_models else ())
        score_entries(model, dataset, out, protocols, data_dir=data_dir)
    runs = gpu_runs(gpu_dir, tag, names)
    trained_here = {model for model, *_ in runs}
    # A model without a new GPU run keeps its committed predictions (rescored with today's protocols).
    runs += [r for r in committed_runs(out, dataset, ("shallow_mse", "shallow_kl")) if r[0] not in trained_here]
    for model, run_tag, preds, info in runs:
        if not keep(model):
            continue
        protocols = shallow_protocols + (comparison if run_tag == COMPARED_RUN else ())
        score_entries(model, dataset, out, protocols, data_dir=data_dir, predictions=preds, info=info, tag=run_tag)
    copy_logs(gpu_dir, tag, out)
    remove_orphans(out)


def write_tables(root: Path, out: Path | None = None) -> None:
    """The markdown tables of the entries under ``root``, written to ``out`` (default ``root/tables``)."""
    from salbench.cli import main

    tables = root / "tables" if out is None else out
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
            print(f"wrote {tables.name}/{name}")
        else:
            print(f"table {name}: exit {code}", file=sys.stderr)


def write_record(root: Path) -> None:
    """``salbench check ROOT --record``: recompute every entry, re-run its model where its checkpoint is
    available, and write ``verification.json`` (read by the tables and the site)."""
    from salbench.cli import main

    code = main(["check", str(root), "--record"])
    if code:
        print(f"salbench check --record: exit {code} (entries that drifted or failed are recorded as not verified)",
              file=sys.stderr)


def write_site(root: Path) -> None:
    """The static site (``salbench leaderboard --html``) under ``site/``; check flags a stale one."""
    from salbench.leaderboard.site import build_site

    files = build_site(root, root / "site")
    print(f"wrote site/ ({len(files)} files, {sum(p.stat().st_size for p in files)} bytes)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpu-dir", type=Path, default=None)
    p.add_argument("--osie", default=str(REPO.parent / "shared" / "data" / "osie"))
    p.add_argument("--only", choices=("synthetic", "osie", "tables"), default=None)
    p.add_argument("--models", default=None, help="comma-separated subset of models to (re)build")
    p.add_argument("--protocols", default=None, help="comma-separated subset of protocols to (re)build")
    a = p.parse_args(argv)
    keep = (lambda m: True) if a.models is None else (lambda m: m in a.models.split(","))
    global PROTOCOL_FILTER
    PROTOCOL_FILTER = None if a.protocols is None else set(a.protocols.split(","))

    if a.only in (None, "synthetic"):
        build_set("synthetic", "synthetic", HERE / "synthetic", ("uniform", "center_bias", "gold"),
                  ("mit", "coursework"), gpu_dir=a.gpu_dir, keep=keep)
    if a.only in (None, "osie"):
        if not Path(a.osie).is_dir():
            print(f"skip OSIE: {a.osie} not found")
        else:
            # A path relative to the repository root, so that `salbench check` finds it from there.
            shared = (REPO.parent / "shared" / "data" / "osie").resolve()
            data_dir = "../shared/data/osie" if Path(a.osie).resolve() == shared else a.osie
            build_set("osie", "nus", HERE / "osie", ("uniform", "center_bias"), ("mit", "coursework"),
                      data_dir=data_dir, gpu_dir=a.gpu_dir, keep=keep,
                      comparison=("salicon", "exact", "mit-dataset-gt"), comparison_models=("center_bias",))
    if a.only != "tables":  # new entries: record what a check finds before the tables show it
        write_record(HERE)
    write_tables(HERE)
    write_site(HERE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
