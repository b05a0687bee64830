"""GPU training check: throughput side by side, then the full recipes on OSIE.

Superseded for the OSIE and synthetic evidence by ``gpu_issue11.py`` (mirrored data, BatchNorm
statistics recomputed before validation, checkpoint chosen by validation CC at 48x48, both KL
targets, several seeds); kept for the throughput comparison and to reproduce the 2026-11-27 runs.

Run on a CUDA machine from the repository root (no install needed)::

    PYTHONPATH=. python tests/benchmarks/gpu_training.py --out OUT [--osie osie.npz] [--budget 420]

``osie.npz`` holds the ``nus`` dataset's train/val ``x96``/``y48`` as uint8 (exact: both are
k/255) and the file names, written by ``tests/benchmarks/gpu_prep_osie.py`` on a machine
that has ``../shared/data/osie``.

Stage 1, OSIE (when given): train ``shallow_mse`` and ``shallow_kl`` with their ``full``
recipes on the 500 training images (bf16 autocast, channels-last, data resident on the GPU),
predict the 200 validation images (final checkpoint for MSE, best-validation checkpoint for
KL) and write ``OUT/osie-<model>.npz`` (predictions, names, run summary, weights hash) plus the
loss logs. Stage 2, throughput: one epoch-long timed run per variant of the report's plain
loop (``DataLoader`` over a list of dicts, fp32, batches copied to the GPU) and of the
salbench trainer in fp32, bf16 and bf16 + ``torch.compile``; img/s and the extrapolation of
the full 1000-epoch x 20,000-image MSE recipe go to ``OUT/throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from salbench.io import file_sha256

FULL_MSE_IMAGES = 1000 * 20000


def log(*a):
    print(*a, flush=True)


def osie_stage(npz: Path, out: Path, work: Path, device: str = "cuda", epochs=None, limit=None) -> None:
    from salbench.models.shallow import ShallowModel
    from salbench.training import train

    d = np.load(npz)
    x, y = d["x_train"].astype(np.float32) / 255, d["y_train"].astype(np.float32) / 255
    xv, yv = d["x_val"].astype(np.float32) / 255, d["y_val"].astype(np.float32) / 255
    if limit:  # CPU smoke test of this script
        x, y, xv, yv = x[:limit], y[:limit], xv[:limit], yv[:limit]
    for model in ("shallow_mse", "shallow_kl"):
        t0 = time.time()
        # Checkpoints are 600 MB (weights + momentum): keep the final (and KL's best) only.
        res = train(model, (x, y), val=(xv, yv), preset="full", device=device, seed=0, epochs=epochs,
                    out=work / model, progress=False, checkpoint_every=100000, predict_every=0)
        ck = res.best if (model == "shallow_kl" and res.best is not None) else res.checkpoint
        m = ShallowModel(model.split("_")[1], checkpoint=ck, device=device)
        preds = m.predict_arrays(xv)
        summary = dict(res.summary)
        summary["evaluated_checkpoint"] = ck.name
        summary["evaluated_weights_sha256"] = file_sha256(ck / "model.safetensors")
        np.savez_compressed(out / f"osie-{model}.npz", predictions=preds.astype(np.float32),
                            names=d["names_val"][: len(preds)], summary=np.array(json.dumps(summary)))
        (out / f"osie-{model}-log.jsonl").write_text((work / model / "log.jsonl").read_text())
        log(f"{model}: {time.time() - t0:.1f}s, {summary['train_images_per_s']:.0f} img/s, "
            f"final val {summary['final_val_loss']:.5g}, best {summary.get('best')}")


def _synthetic_chunk(args):
    """x96 / y48 (uint8) of synthetic ``split`` records ``[start, stop)`` (a worker process)."""
    split, start, stop = args
    from salbench.data import get_dataset

    ds = get_dataset("synthetic", split)
    x = np.empty((stop - start, 3, 96, 96), np.uint8)
    y = np.empty((stop - start, 48, 48), np.uint8)
    for j, i in enumerate(range(start, stop)):
        r = ds[i]
        x[j], y[j] = np.rint(r.x96 * 255), np.rint(r.y48 * 255)
    return x, y


def synthetic_arrays(split: str, n: int, workers: int = 16):
    """The built-in dataset's first ``n`` records of ``split`` as float32 arrays, generated in parallel."""
    from concurrent.futures import ProcessPoolExecutor

    step = -(-n // (workers * 4))
    jobs = [(split, a, min(a + step, n)) for a in range(0, n, step)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_synthetic_chunk, jobs))
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255
    y = np.concatenate([p[1] for p in parts]).astype(np.float32) / 255
    return x, y


def synthetic_stage(out: Path, work: Path, n_train: int, val_npz: Path | None, mse_epochs: int,
                    device: str = "cuda", kl_epochs: int | None = None) -> None:
    """Train both variants on the built-in dataset's train split; predict its val split."""
    from salbench.data import get_dataset
    from salbench.models.shallow import ShallowModel
    from salbench.training import train

    t0 = time.time()
    x, y = synthetic_arrays("train", n_train)
    log(f"synthetic: generated {n_train} train images in {time.time() - t0:.0f}s")
    val = get_dataset("synthetic", "val")
    names = np.array(val.names)
    if val_npz is not None:  # the val inputs as generated where the entries are scored
        d = np.load(val_npz)
        xv, yv = d["x"].astype(np.float32) / 255, d["y"].astype(np.float32) / 255
        k = min(64, len(xv))
        xg, _ = synthetic_arrays("val", k)
        log(f"synthetic: max |x96 here - x96 carried| over {k} val images: {np.abs(xg - xv[:k]).max():.3g}")
    else:
        xv, yv = synthetic_arrays("val", len(val))
    ident = {"name": "synthetic", "split": "train", "n_used": n_train, "preset": "default"}
    runs = (("shallow_kl", {"epochs": kl_epochs}), ("shallow_mse", {"epochs": mse_epochs}))
    for model, extra in runs[: 1 if mse_epochs == 0 else 2]:
        t1 = time.time()
        res = train(model, (x, y), val=(xv, yv), preset="full", device=device, seed=0, out=work / f"syn-{model}",
                    progress=False, checkpoint_every=100000, predict_every=0, **extra)
        ck = res.best if (model == "shallow_kl" and res.best is not None) else res.checkpoint
        m = ShallowModel(model.split("_")[1], checkpoint=ck, device=device)
        preds = m.predict_arrays(xv)
        summary = dict(res.summary)
        summary["config"]["train_data"] = ident
        summary["evaluated_checkpoint"] = ck.name
        summary["evaluated_weights_sha256"] = file_sha256(ck / "model.safetensors")
        conv1 = m.net.state_dict()["conv1.weight"].float().cpu().numpy()  # for `salbench plot filters`
        np.savez_compressed(out / f"synthetic-{model}.npz", predictions=preds.astype(np.float32), names=names,
                            summary=np.array(json.dumps(summary)), conv1_weight=conv1)
        (out / f"synthetic-{model}-log.jsonl").write_text((work / f"syn-{model}" / "log.jsonl").read_text())
        log(f"synthetic {model}: {time.time() - t1:.1f}s, {summary['train_images_per_s']:.0f} img/s, "
            f"final val {summary['final_val_loss']:.5g}, best {summary.get('best')}")


def plain_loop_ips(variant: str, x: np.ndarray, y: np.ndarray) -> float:
    """The report's loop: DataLoader over a list of dicts, fp32, per-batch host->device copies."""
    import torch
    from torch.utils.data import DataLoader

    from salbench.models.shallow import build_network
    from salbench.training.loop import loss_function

    net = build_network(batch_norm=variant == "kl", seed=0).cuda()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.0005)
    crit = loss_function(variant)
    samples = [{"X": x[i], "y": y[i].reshape(-1)} for i in range(len(x))]
    loader = DataLoader(samples, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(0))

    def epoch():
        for b in loader:
            out = net(b["X"].cuda())
            loss = crit(out, b["y"].cuda())
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()

    epoch()  # warm-up (cuDNN autotune, allocator)
    torch.cuda.synchronize()
    t = time.perf_counter()
    epoch()
    torch.cuda.synchronize()
    return len(x) / (time.perf_counter() - t)


def trainer_ips(variant: str, x, y, **recipe) -> tuple[float, float]:
    """(img/s, warm-up seconds) of the salbench trainer over resident data, one timed epoch."""
    import torch

    from salbench.training import get_recipe
    from salbench.training.loop import make_trainer

    tr = make_trainer(variant, get_recipe(f"shallow_{variant}", "full", **recipe), x, y, seed=0, device="cuda")
    t = time.perf_counter()
    tr.train_epoch(0)
    torch.cuda.synchronize()
    warm = time.perf_counter() - t
    best = 0.0
    for e in (1, 2):
        t = time.perf_counter()
        tr.train_epoch(e)
        torch.cuda.synchronize()
        best = max(best, len(x) / (time.perf_counter() - t))
    del tr
    torch.cuda.empty_cache()
    return best, warm


def throughput_stage(out: Path, n: int, deadline: float) -> None:
    import torch

    rng = np.random.default_rng(0)
    x = rng.random((n, 3, 96, 96), dtype=np.float32)
    y = rng.random((n, 48, 48), dtype=np.float32)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "images_per_epoch": n,
           "batch_size": 128, "full_mse_images": FULL_MSE_IMAGES, "rows": []}
    configs = [("plain loop (DataLoader, fp32)", None),
               ("salbench fp32", dict(precision="fp32")),
               ("salbench bf16", dict(precision="bf16")),
               ("salbench bf16 + compile", dict(precision="bf16", compile=True))]
    for variant in ("mse", "kl"):
        for label, recipe in configs:
            if time.time() > deadline:
                log("throughput: out of time, skipping", variant, label)
                continue
            try:
                if recipe is None:
                    ips, warm = plain_loop_ips(variant, x[: n // 2], y[: n // 2]), None
                else:
                    ips, warm = trainer_ips(variant, x, y, **recipe)
                row = {"variant": variant, "config": label, "img_per_s": round(ips, 1),
                       "warmup_s": None if warm is None else round(warm, 1),
                       "full_mse_recipe_min": round(FULL_MSE_IMAGES / ips / 60, 1)}
            except Exception as exc:  # record and go on: one failing config must not lose the rest
                row = {"variant": variant, "config": label, "error": f"{type(exc).__name__}: {exc}"[:500]}
                traceback.print_exc()
            res["rows"].append(row)
            log(row)
            (out / "throughput.json").write_text(json.dumps(res, indent=1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--osie", default=None)
    p.add_argument("--work", default="/tmp/salbench-gpu")
    p.add_argument("--n", type=int, default=16384, help="images per timed epoch")
    p.add_argument("--device", default="cuda")
    p.add_argument("--synthetic", type=int, default=0, help="train on the first N synthetic train images")
    p.add_argument("--synthetic-val", default=None, help="npz with the val split's x/y (uint8) as generated here")
    p.add_argument("--mse-epochs", type=int, default=100, help="epochs of the synthetic MSE run (0: no MSE run)")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs (smoke tests)")
    p.add_argument("--limit", type=int, default=None, help="use the first N OSIE images (smoke tests)")
    p.add_argument("--budget", type=float, default=420, help="seconds; later configs are skipped past it")
    a = p.parse_args(argv)
    import torch

    t0 = time.time()
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    log("torch", torch.__version__, "cuda", torch.cuda.is_available(),
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
    if a.osie:
        try:
            osie_stage(Path(a.osie), out, work, a.device, a.epochs, a.limit)
        except Exception:
            traceback.print_exc()
    log(f"osie stage done at {time.time() - t0:.0f}s")
    if a.synthetic:
        try:
            synthetic_stage(out, work, a.synthetic, Path(a.synthetic_val) if a.synthetic_val else None,
                            a.mse_epochs, a.device, a.epochs)
        except Exception:
            traceback.print_exc()
    if a.device == "cuda" and not a.skip_throughput:
        throughput_stage(out, a.n, t0 + a.budget)
    log(f"all done at {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
