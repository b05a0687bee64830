"""Issue 11 evidence on a GPU: OSIE with the report's MSE recipe and both KL targets, 3 seeds each;
optionally the synthetic MSE recipe at its full 1000 epochs.

Run from the repository root (no install needed; the OSIE arrays are carried, ``../shared`` is not
on the device)::

    PYTHONPATH=. python tests/benchmarks/gpu_issue11.py --out $OUT --osie .devdata/osie.npz --budget 400
    PYTHONPATH=. python tests/benchmarks/gpu_issue11.py --out $OUT --stages synthetic-mse --budget 580

(carry ``.devdata``; give each command a ``timeout_s`` ~20 s above its budget, at most 600).

``.devdata/osie.npz`` is written here by ``python tests/benchmarks/gpu_prep_osie.py
../shared/data/osie .devdata/osie.npz`` (the ``nus`` split's x96/y48 as uint8, exact).

Stages (``--stages``, comma-separated, run in this order; every run is guarded by the wall-clock
``--budget`` counted from the script's start, so the script always writes what it finished):

``osie`` (default)
    On the 500 OSIE train images and their mirrors (1000), validated on the 200 val images,
    seeds ``--seeds`` (default 0,1,2), seed-major (every recipe's seed 0 first):
    ``shallow_kl`` preset ``distribution`` (target y/sum(y), batch 16, lr 0.01 -> 1e-4, 10 epochs,
    fc2 bias = log mean map), ``shallow_kl`` preset ``full`` (the report's softmax(y) target,
    100 epochs), ``shallow_mse`` preset ``full`` (the report's recipe, 1000 epochs). A run whose
    estimated time no longer fits is skipped (said in the log and the summary). Expected on an
    H200 (bf16; previous session: MSE 31,650 img/s, KL 26,000 img/s at batch 128): about 6, 10
    and 45 s per seed, ~3.5 min for all nine with start-up.
``synthetic-mse``
    ``shallow_mse`` preset ``full`` (1000 epochs) on the built-in synthetic train split (10000
    base images generated here in parallel, + mirrors = 20000), validated on its 500 val images:
    2e7 images at ~38,700 img/s = ~8.6 min + ~30 s of generation and validation. It does not fit
    beside ``osie`` in one 600 s command; run it as its own command. Cut by the budget, it stops
    cleanly and writes a result labelled ``completed: false`` with the epochs done (the learning
    rate follows the 1000-epoch schedule up to there). The val inputs generated there hash to
    ``9cb590037ef3c06c`` (sha256 prefix of the float32 x96 stack, printed) as generated here.
``synthetic-kl``
    Both KL targets on the same synthetic data (presets ``full`` and ``distribution``, seed 0):
    ~75 s + ~40 s.

Files written to ``--out`` (at most 8, each far below 16 MiB):

``<tag>-<name>.npz`` (``tag`` osie / synthetic; ``name`` shallow_mse, shallow_kl (softmax target,
the report's), shallow_kl-distribution), rewritten after every run:
    ``predictions`` (N, 48, 48) float16 and ``summary`` (JSON) of the first seed run, in the
    format ``leaderboards/build.py``'s ``gpu_predictions()`` reads; ``predictions_by_seed``
    (S, N, 48, 48) float16, ``seeds`` (S,), ``summaries`` (JSON list, one per seed); ``names``
    (N,). float16 loses nothing the evaluation keeps: ``evaluate`` scores float16-rounded maps.
    Synthetic files add ``conv1_weight`` (the first layer, for ``salbench plot filters``).
``<tag>-<name>-log.jsonl``
    The runs' loss logs, every entry tagged with its ``seed``: ``train`` (batch losses, train
    mode), ``train_eval`` (eval-mode loss and CC48 on a fixed subset of 512 training images) and
    ``val`` (the same measurement on the validation images).
``issue11-summary.json``
    Every run's summary (device, torch, precision, recipe incl. target, seed, epochs, chosen
    checkpoint and its selection metric, weights sha256, wall time, img/s, validation CC48 of the
    stored predictions), the skipped runs, and per-stage wall times; rewritten after every run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np

# (file name, model, preset): in the order each seed runs them (cheapest first).
OSIE_RUNS = (("shallow_kl-distribution", "shallow_kl", "distribution"),
             ("shallow_kl", "shallow_kl", "full"),
             ("shallow_mse", "shallow_mse", "full"))
# Seconds per run on an H200, from the previous session's throughput (docs/benchmarks-training.md);
# replaced by the measured time once a run of the same recipe has finished.
ESTIMATE_S = {("osie", "shallow_kl-distribution"): 8, ("osie", "shallow_kl"): 12, ("osie", "shallow_mse"): 45,
              ("synthetic", "shallow_mse"): 560, ("synthetic", "shallow_kl"): 80,
              ("synthetic", "shallow_kl-distribution"): 45}
RESERVE_S = 12  # kept back for predicting, hashing and writing after a run


def log(*a):
    print(*a, flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cc48(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean Pearson CC of predictions and 48x48 targets (constant maps score 0)."""
    a = pred.reshape(len(pred), -1).astype(np.float64)
    b = y.reshape(len(y), -1).astype(np.float64)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 0) & (nb > 0)
    cc = np.where(ok, (a * b).sum(1) / np.where(ok, na * nb, 1), 0.0)
    return float(cc.mean())


class Budget:
    def __init__(self, seconds: float):
        self.t0 = time.time()
        self.deadline = self.t0 + seconds

    def left(self) -> float:
        return self.deadline - time.time()

    def elapsed(self) -> float:
        return time.time() - self.t0


class Collector:
    """Accumulates runs per output file and rewrites the files after each run (a kill keeps the rest)."""

    def __init__(self, out: Path, device_info: dict):
        self.out = out
        self.files: dict[str, dict] = {}
        self.doc = {"device": device_info, "runs": [], "skipped": [], "stages": {}, "errors": []}

    def add(self, tag: str, name: str, seed: int, preds: np.ndarray, names, summary: dict, log_text: str,
            extra: dict | None = None) -> None:
        f = self.files.setdefault(f"{tag}-{name}", {"seeds": [], "preds": [], "summaries": [], "names": names,
                                                    "logs": [], "extra": {}})
        f["seeds"].append(seed)
        f["preds"].append(preds.astype(np.float16))
        f["summaries"].append(summary)
        f["extra"].update(extra or {})
        for line in log_text.splitlines():
            if line.strip():
                entry = json.loads(line)
                entry["seed"] = seed
                f["logs"].append(json.dumps(entry, sort_keys=True))
        self._write(f"{tag}-{name}", f)
        self.doc["runs"].append({"file": f"{tag}-{name}.npz", **{k: v for k, v in summary.items() if k != "history"}})
        self.save_doc()

    def _write(self, stem: str, f: dict) -> None:
        tmp = self.out / f".{stem}.npz.tmp"
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, predictions=f["preds"][0], summary=np.array(json.dumps(f["summaries"][0])),
                names=np.asarray(f["names"]), predictions_by_seed=np.stack(f["preds"]),
                seeds=np.asarray(f["seeds"], dtype=np.int64), summaries=np.array(json.dumps(f["summaries"])),
                **f["extra"])
        os.replace(tmp, self.out / f"{stem}.npz")
        tmp = self.out / f".{stem}-log.jsonl.tmp"
        tmp.write_text("".join(line + "\n" for line in f["logs"]))
        os.replace(tmp, self.out / f"{stem}-log.jsonl")

    def save_doc(self) -> None:
        tmp = self.out / ".issue11-summary.json.tmp"
        tmp.write_text(json.dumps(self.doc, indent=1, default=str))
        os.replace(tmp, self.out / "issue11-summary.json")


def one_run(col: Collector, budget: Budget, tag: str, name: str, model: str, preset: str, seed: int,
            data: tuple, names, work: Path, device: str, epochs=None, allow_partial=False, extra_fn=None,
            ident: dict | None = None) -> None:
    """Train one recipe/seed, predict the validation images with the checkpoint the run designates, record."""
    from salbench.models.shallow import ShallowModel
    from salbench.training import train

    key = (tag, name)
    est = ESTIMATE_S.get(key, 60)
    if not allow_partial and budget.left() < est + RESERVE_S:
        col.doc["skipped"].append({"run": f"{tag}-{name}", "seed": seed, "reason":
                                   f"estimated {est:.0f} s, {budget.left():.0f} s left"})
        col.save_doc()
        log(f"skip {tag} {name} seed {seed}: estimated {est:.0f} s, {budget.left():.0f} s left")
        return
    x, y, xv, yv = data
    run_dir = work / f"{tag}-{name}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.time()
    # Periodic checkpoints are 600 MB each (weights + momentum): only final (and best) are written.
    res = train(model, (x, y), val=(xv, yv), preset=preset, device=device, seed=seed, epochs=epochs,
                out=run_dir, progress=False, checkpoint_every=10 ** 6, predict_every=0,
                should_stop=(lambda e: budget.left() < RESERVE_S) if allow_partial else None)
    t_train = time.time() - t0
    m = ShallowModel(model.split("_")[1], checkpoint=res.checkpoint, device=device)
    preds = m.predict_arrays(xv)
    summary = dict(res.summary)
    if ident is not None:
        summary["config"] = {**summary["config"], "train_data": {**ident, **{
            k: v for k, v in summary["config"]["train_data"].items() if k in ("mirror", "n_base", "n_used")}}}
    training = dict(m.training or {})
    training["train_data"] = summary["config"]["train_data"]  # the dataset, not "arrays"
    summary.update(
        run=f"{tag}-{name}", evaluated_checkpoint=res.checkpoint.name,
        evaluated_weights_sha256=sha256(res.checkpoint / "model.safetensors"), training=training,
        predictions_dtype="float16", val_cc48_of_predictions=cc48(preds, yv), run_wall_time_s=time.time() - t0,
        train_call_s=t_train)
    extra = extra_fn(m) if extra_fn else None
    col.add(tag, name, seed, preds, names, summary, (run_dir / "log.jsonl").read_text(), extra)
    if res.completed:
        ESTIMATE_S[key] = time.time() - t0
    h = summary["history"]
    log(f"{tag} {name} seed {seed}: {time.time() - t0:.1f}s ({summary['train_images_per_s']:.0f} img/s), "
        f"{summary['epoch']}/{summary['planned_epochs']} epochs, checkpoint {res.checkpoint.name} "
        f"(epoch {summary['chosen_checkpoint']['epoch']}), val CC48 {summary['val_cc48_of_predictions']:.4f}; "
        f"val CC48 first/last {h[0].get('val_cc48', float('nan')):.4f}/{h[-1].get('val_cc48', float('nan')):.4f}, "
        f"train_eval loss first/last {h[0]['train_loss']:.5g}/{h[-1]['train_loss']:.5g}, "
        f"val loss first/last {h[0].get('val_loss', float('nan')):.5g}/{h[-1].get('val_loss', float('nan')):.5g}")
    shutil.rmtree(run_dir, ignore_errors=True)


def osie_stage(col, budget, npz: Path, work: Path, device: str, seeds, epochs=None, limit=None) -> None:
    d = np.load(npz)
    x, y = d["x_train"].astype(np.float32) / 255, d["y_train"].astype(np.float32) / 255
    xv, yv = d["x_val"].astype(np.float32) / 255, d["y_val"].astype(np.float32) / 255
    names = d["names_val"]
    if limit:  # CPU smoke test of this script
        x, y, xv, yv, names = x[:limit], y[:limit], xv[:limit], yv[:limit], names[:limit]
    ident = {"name": "nus", "split": "train", "dataset": "OSIE (../shared/data/osie)",
             "n_files": int(len(d["x_train"])), "source": f"{npz.name} (gpu_prep_osie.py)"}
    for seed in seeds:
        for name, model, preset in OSIE_RUNS:
            try:
                one_run(col, budget, "osie", name, model, preset, seed, (x, y, xv, yv), names, work, device,
                        epochs=epochs, ident=ident)
            except Exception as exc:  # record and go on: one failing run must not lose the others
                traceback.print_exc()
                col.doc["errors"].append({"run": f"osie-{name}", "seed": seed, "error": f"{type(exc).__name__}: {exc}"[:800]})
                col.save_doc()


def _synthetic_chunk(args):
    """x96 / y48 (uint8) of synthetic ``split`` records ``[start, stop)`` (a worker process)."""
    split, start, stop = args
    from salbench.data import get_dataset

    ds = get_dataset("synthetic", split, workers=0)
    x = np.empty((stop - start, 3, 96, 96), np.uint8)
    y = np.empty((stop - start, 48, 48), np.uint8)
    for j, i in enumerate(range(start, stop)):
        r = ds[i]
        x[j], y[j] = np.rint(r.x96 * 255), np.rint(r.y48 * 255)
    return x, y


_GENERATED: dict = {}


def synthetic_arrays(split: str, n: int, workers: int):
    """The built-in dataset's first ``n`` records of ``split`` as float32 arrays, generated in parallel.

    ``x96`` / ``y48`` are uint8 images divided by 255, so the uint8 transport is exact.
    """
    if (split, n) in _GENERATED:
        return _GENERATED[(split, n)]
    if workers <= 1:
        x, y = _synthetic_chunk((split, 0, n))
    else:
        from concurrent.futures import ProcessPoolExecutor

        step = -(-n // (workers * 4))
        jobs = [(split, a, min(a + step, n)) for a in range(0, n, step)]
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_synthetic_chunk, jobs))
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    _GENERATED[(split, n)] = x.astype(np.float32) / 255, y.astype(np.float32) / 255
    return _GENERATED[(split, n)]


def synthetic_stage(col, budget, work: Path, device: str, which: str, n_train: int | None, n_val: int | None,
                    epochs=None, workers: int = 16) -> None:
    from salbench.data import get_dataset

    t0 = time.time()
    train_ds, val_ds = get_dataset("synthetic", "train"), get_dataset("synthetic", "val")
    n_base = min(n_train or train_ds.n_base, train_ds.n_base)
    n_val = min(n_val or len(val_ds), len(val_ds))
    # The base images only: training appends their exact flips (the split's rendered mirrors are
    # the same scenes; salbench.data.mirror).
    x, y = synthetic_arrays("train", n_base, workers)
    xv, yv = synthetic_arrays("val", n_val, workers)
    names = np.array(val_ds.names[:n_val])
    ident = {**train_ds.identity(), "n_used_base": int(n_base)}
    log(f"synthetic: generated {n_base} train + {n_val} val images in {time.time() - t0:.0f}s; "
        f"val x96 sha256 {hashlib.sha256(np.ascontiguousarray(xv).tobytes()).hexdigest()[:16]}")

    def conv1(m):
        return {"conv1_weight": m.net.state_dict()["conv1.weight"].float().cpu().numpy()}

    runs = {"synthetic-mse": [("shallow_mse", "shallow_mse", "full", True)],
            "synthetic-kl": [("shallow_kl-distribution", "shallow_kl", "distribution", False),
                             ("shallow_kl", "shallow_kl", "full", False)]}[which]
    for name, model, preset, partial in runs:
        try:
            one_run(col, budget, "synthetic", name, model, preset, 0, (x, y, xv, yv), names, work, device,
                    epochs=epochs, allow_partial=partial, extra_fn=conv1, ident=ident)
        except Exception as exc:
            traceback.print_exc()
            col.doc["errors"].append({"run": f"synthetic-{name}", "seed": 0, "error": f"{type(exc).__name__}: {exc}"[:800]})
            col.save_doc()


def _default_work() -> Path:
    """/dev/shm (RAM) when it has room for a run's checkpoints (~1 GB each, deleted after), else /tmp."""
    try:
        if shutil.disk_usage("/dev/shm").free > 8 << 30:
            return Path("/dev/shm/sb11")
    except OSError:
        pass
    return Path("/tmp/sb11")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--osie", default=".devdata/osie.npz")
    p.add_argument("--stages", default="osie", help="comma-separated: osie, synthetic-mse, synthetic-kl")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--budget", type=float, default=540, help="wall-clock seconds for the whole script")
    p.add_argument("--work", default=None, help="run directories (default /dev/shm/sb11 if it has 8 GB free, else /tmp/sb11)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs (smoke tests)")
    p.add_argument("--limit", type=int, default=None, help="first N OSIE images only (smoke tests)")
    p.add_argument("--synthetic-n", type=int, default=None, help="synthetic base train images (default all 10000)")
    p.add_argument("--synthetic-val-n", type=int, default=None, help="synthetic val images (default all 500)")
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    a = p.parse_args(argv)
    budget = Budget(a.budget)
    import torch

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(a.work) if a.work else _default_work()
    work.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    info = {"torch": torch.__version__, "cuda": cuda, "name": torch.cuda.get_device_name(0) if cuda else "cpu",
            "device_arg": a.device, "budget_s": a.budget, "argv": sys.argv[1:] if argv is None else list(argv)}
    info["work"] = str(work)
    log("issue11:", json.dumps(info))
    col = Collector(out, info)
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    for stage in [s.strip() for s in a.stages.split(",") if s.strip()]:
        t0 = time.time()
        try:
            if stage == "osie":
                osie_stage(col, budget, Path(a.osie), work, a.device, seeds, a.epochs, a.limit)
            elif stage in ("synthetic-mse", "synthetic-kl"):
                synthetic_stage(col, budget, work, a.device, stage, a.synthetic_n, a.synthetic_val_n, a.epochs,
                                a.workers)
            else:
                raise ValueError(f"unknown stage {stage!r}")
        except Exception as exc:
            traceback.print_exc()
            col.doc["errors"].append({"stage": stage, "error": f"{type(exc).__name__}: {exc}"[:800]})
        col.doc["stages"][stage] = round(time.time() - t0, 1)
        col.save_doc()
        log(f"stage {stage} done in {time.time() - t0:.0f}s ({budget.elapsed():.0f}s since start)")
    shutil.rmtree(work, ignore_errors=True)
    log(f"all done at {budget.elapsed():.0f}s; files: {sorted(p.name for p in out.iterdir())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
