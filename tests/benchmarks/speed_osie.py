"""Issue 17's end-to-end targets on 700 OSIE maps at 600x800: salbench beside pysaliency.

Run everything in one go (one process per row, side by side, start-up included)::

    python tests/benchmarks/speed_osie.py --out /tmp/speed-osie [--maps DIR] [--rounds 1]

or through pytest (``tests/benchmarks/test_bench_speed.py``). The folder: one smooth 8-bit PNG
map per OSIE stimulus at its own 600x800 (``smooth_map`` of ``test_bench_folder.py``, seeded),
written once under ``--maps`` (default ``<out>/maps``). The dataset is ``nus`` split ``all``
on ``../shared/data/osie`` (700 stimuli, MIT's fixation maps at 600x800).

Rows (each a fresh process; wall time measured from outside, so interpreter start, imports,
dataset open, listing, decoding, ground truth and scoring all count):

- ``salbench_six``: the six metrics pysaliency offers (``auc_judd``, ``auc_shuffled``, ``nss``,
  ``cc``, ``sim``, ``kld``) under ``mit``. Until ``salbench eval --metrics`` exists this goes
  through the API (``get_protocol("mit", metrics=...)`` + ``salbench.scoring.score_stream`` over
  ``open_predictions(DIR).match(dataset.names)``); set ``USE_CLI_METRICS = True`` (or
  ``SALBENCH_BENCH_CLI_METRICS=1``) once the CLI option lands to run ``salbench eval --metrics``.
- ``salbench_all``: every ``mit`` metric (EMD, AUC-Borji and IG included), ``salbench eval
  --predictions DIR`` (the real command: it also hashes every map and writes a results entry).
- ``salbench_all_api``: the same through the API (to separate the CLI's own cost).
- ``salbench_all_workers1`` / ``_workers2``: API, every metric, ``workers=1`` and ``2``, and the
  same pinned to one core (``taskset -c 0``, ``workers=1``, one Numba thread) against two cores.
- ``pysaliency``: ``SaliencyMapModelFromDirectory(stimuli, DIR)`` with its defaults
  (``caching=True``) and ``FileStimuli`` on the OSIE images, the six metrics: ``AUC_per_image``
  (uniform and shuffled nonfixations), ``NSSs``, and ``CCs``, ``SIMs``,
  ``image_based_kl_divergences`` against ``FixationMap(kernel_size=19)`` (what
  ``test_bench_folder.py`` uses). The fixation points are salbench's (0-based), written to a
  ``.npz`` before the clock starts (pysaliency has no reader for OSIE's ``fixations.mat``).

Every row prints one JSON line with its means; the script checks that salbench's rows agree
with each other (same numbers for any workers) and writes ``<out>/speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OSIE = REPO.parent / "shared" / "data" / "osie"
SHAPE = (600, 800)
SIX = ("cc", "nss", "auc_judd", "auc_shuffled", "kld", "sim")
# Switch: True once `salbench eval --metrics` exists (the lead adds it after the layers work lands).
USE_CLI_METRICS = os.environ.get("SALBENCH_BENCH_CLI_METRICS", "") == "1"


def make_maps(maps_dir: Path) -> Path:
    """One 600x800 8-bit PNG per OSIE stimulus (idempotent: a marker records completion)."""
    sys.path.insert(0, str(REPO))
    from salbench.data.registry import get_dataset
    from salbench.predictions import save_maps
    from tests.benchmarks.test_bench_folder import smooth_map

    marker = maps_dir / ".complete"
    if marker.exists():
        return maps_dir
    ds = get_dataset("nus", "all", OSIE)
    rng = np.random.default_rng(17)
    maps_dir.mkdir(parents=True, exist_ok=True)
    save_maps(maps_dir, ds.names, (smooth_map(rng, SHAPE) for _ in ds.names))
    marker.write_text("ok\n")
    return maps_dir


def write_points(path: Path) -> Path:
    """salbench's fixation points of every OSIE stimulus (row, col, image), for the pysaliency row."""
    from salbench.data.registry import get_dataset

    if path.exists():
        return path
    ds = get_dataset("nus", "all", OSIE)
    pts = [ds.fixation_points(i) for i in range(len(ds))]
    np.savez(path, ys=np.concatenate([p[:, 0] for p in pts]).astype(float),
             xs=np.concatenate([p[:, 1] for p in pts]).astype(float),
             ns=np.concatenate([np.full(len(p), i) for i, p in enumerate(pts)]),
             files=np.array([str(OSIE / "stimuli" / n) for n in ds.names]))
    return path


# --- the child processes ------------------------------------------------------------------------
API_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from salbench.data.registry import get_dataset
from salbench.predictions import open_predictions
from salbench.protocols import get_protocol
from salbench.scoring import score_stream
maps, osie, metrics, workers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ds = get_dataset("nus", "all", osie)
m = open_predictions(maps).match(ds.names)
p = get_protocol("mit", metrics=None if metrics == "all" else metrics.split(","))
kw = {} if workers == "default" else {"workers": int(workers)}
r = score_stream(p, ds, m.load, seed=0, progress=False, **kw)
print(json.dumps({"means": {k: float(v["mean"]) for k, v in r.summary().items()},
                  "scores": {k: v.tolist() for k, v in r.scores.items()},
                  "inner_s": time.perf_counter() - t0, "timings": {k: v for k, v in r.timings.items()
                                                                    if isinstance(v, (int, float))}}))
"""

PYSAL_CHILD = r"""
import json, sys, time, warnings
import numpy as np
np.trapz = getattr(np, "trapz", np.trapezoid)  # pysaliency 0.2.22 calls np.trapz (removed in numpy 2.4)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pysaliency
maps, points = sys.argv[1], sys.argv[2]
d = np.load(points)
stimuli = pysaliency.FileStimuli(list(d["files"]))
fixations = pysaliency.Fixations.create_without_history(d["xs"], d["ys"], d["ns"])
model = pysaliency.SaliencyMapModelFromDirectory(stimuli, maps)
gold = pysaliency.FixationMap(stimuli, fixations, kernel_size=19)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    out = {"auc_uniform": np.nanmean(model.AUC_per_image(stimuli, fixations, nonfixations="uniform")),
           "auc_shuffled": np.nanmean(model.AUC_per_image(stimuli, fixations, nonfixations="shuffled")),
           "nss": float(np.mean(model.NSSs(stimuli, fixations))),
           "cc": float(np.mean(model.CCs(stimuli, gold))),
           "sim": float(np.mean(model.SIMs(stimuli, gold))),
           "kld": float(np.mean(model.image_based_kl_divergences(stimuli, gold)))}
print(json.dumps({"means": {k: float(v) for k, v in out.items()}}))
"""


def _env(cache: Path, numba_threads: int | None = None, source: Path = REPO) -> dict:
    env = dict(os.environ)
    env["SALBENCH_CACHE"] = str(cache)
    env.pop("SALBENCH_DATA", None)
    env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if numba_threads is not None:
        env["NUMBA_NUM_THREADS"] = str(numba_threads)
    return env


def _run(cmd, env, cwd=None, parse=True) -> tuple[float, dict, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")] if parse else []
    return wall, (json.loads(last[-1]) if last else {}), proc.stderr


def run_api(maps: Path, cache: Path, metrics="all", workers="default", *, pin_one_core=False,
            source: Path = REPO) -> dict:
    cmd = [sys.executable, "-c", API_CHILD, str(maps), str(OSIE), metrics, str(workers)]
    if pin_one_core:
        cmd = ["taskset", "-c", "0", *cmd]
    wall, doc, _ = _run(cmd, _env(cache, 1 if pin_one_core else None, source))
    return {"wall_s": wall, **doc}


def run_cli(maps: Path, cache: Path, out: Path, metrics: str | None = None, workers=None) -> dict:
    cmd = [sys.executable, "-m", "salbench", "eval", "--predictions", str(maps), "--dataset", "nus",
           "--data-dir", str(OSIE), "--split", "all", "--protocol", "mit", "--seed", "0", "--format", "json",
           "--output", str(out), "--results-dir", str(out.parent / "results")]
    if metrics is not None:
        cmd += ["--metrics", metrics]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    wall, _, _ = _run(cmd, _env(cache), cwd=out.parent, parse=False)
    doc = json.loads(out.read_text())
    return {"wall_s": wall, "means": {k: v["mean"] for k, v in doc["metrics"].items()}}


def run_pysaliency(maps: Path, points: Path, cache: Path) -> dict:
    wall, doc, _ = _run([sys.executable, "-c", PYSAL_CHILD, str(maps), str(points)], _env(cache))
    return {"wall_s": wall, **doc}


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--maps", type=Path, default=None)
    ap.add_argument("--rows", default="six,all,all_api,workers,pin,pysaliency",
                    help="comma-separated subset of: six, all, all_api, workers, pin, pysaliency")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--base", type=Path, default=None,
                    help="a salbench source tree to time as 'before' (e.g. `git archive 7aa628e salbench | tar -x -C DIR`); "
                         "rows base_six and base_all, API, workers=2")
    args = ap.parse_args(argv)
    if not OSIE.is_dir():
        ap.error(f"OSIE not found at {OSIE} (this benchmark reads ../shared/data/osie)")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    maps = make_maps((args.maps or out / "maps").resolve())
    points = write_points(out / "points.npz")
    cache = out / "cache"
    rows = args.rows.split(",")
    # Warm-up (not timed): the ground-truth cache and the Numba cache are what a second run of a user has.
    run_api(maps, cache, ",".join(SIX), 2)
    if args.base is not None:
        run_api(maps, out / "cache-base", ",".join(SIX), 2, source=args.base.resolve())
    report: dict = {"n_images": 700, "shape": SHAPE, "rounds": []}
    for r in range(args.rounds):
        res: dict = {"loadavg_before": loadavg()}

        def row(name, fn):
            res[name] = fn()
            res[name]["loadavg_after"] = loadavg()
            print(f"round {r} {name}: {res[name]['wall_s']:.2f} s  load {res[name]['loadavg_after']}", flush=True)

        if "six" in rows:
            if USE_CLI_METRICS:
                row("salbench_six", lambda: run_cli(maps, cache, out / "six.json", ",".join(SIX)))
            else:
                row("salbench_six", lambda: run_api(maps, cache, ",".join(SIX)))
        if "all" in rows:
            row("salbench_all", lambda: run_cli(maps, cache, out / "all.json"))
        if "all_api" in rows:
            row("salbench_all_api", lambda: run_api(maps, cache))
        if "workers" in rows:
            row("salbench_all_workers1", lambda: run_api(maps, cache, "all", 1))
            row("salbench_all_workers2", lambda: run_api(maps, cache, "all", 2))
        if "pin" in rows:
            row("salbench_all_one_core", lambda: run_api(maps, cache, "all", 1, pin_one_core=True))
        if args.base is not None:
            base = args.base.resolve()
            row("base_six", lambda: run_api(maps, out / "cache-base", ",".join(SIX), 2, source=base))
            row("base_all", lambda: run_api(maps, out / "cache-base", "all", 2, source=base))
        if "pysaliency" in rows:
            row("pysaliency", lambda: run_pysaliency(maps, points, cache))
        report["rounds"].append(res)
        # numbers do not depend on workers or cores
        base = res.get("salbench_all_api", {}).get("scores")
        for k in ("salbench_all_workers1", "salbench_all_workers2", "salbench_all_one_core"):
            if base is not None and k in res:
                assert res[k]["scores"] == base, f"{k} differs from salbench_all_api"
        for k in list(res):
            if isinstance(res[k], dict):
                res[k].pop("scores", None)
    report["ratios"] = ratios(report)
    (out / "speed.json").write_text(json.dumps(report, indent=1))
    summarise(report)
    return 0


def ratios(report: dict) -> dict:
    """Best wall time per row over the rounds, and the issue's four end-to-end ratios."""
    best = {}
    for r in report["rounds"]:
        for name, row in r.items():
            if isinstance(row, dict) and "wall_s" in row:
                best[name] = min(best.get(name, float("inf")), row["wall_s"])
    out = {f"{k}_s": v for k, v in best.items()}
    py = best.get("pysaliency")
    for k in ("salbench_six", "salbench_all", "salbench_all_api", "base_six", "base_all"):
        if py and k in best:
            out[f"{k}_vs_pysaliency"] = py / best[k]
    if "salbench_all_workers1" in best and "salbench_all_workers2" in best:
        out["workers2_vs_workers1"] = best["salbench_all_workers1"] / best["salbench_all_workers2"]
    if "salbench_all_one_core" in best and "salbench_all_workers2" in best:
        out["two_cores_vs_one_core"] = best["salbench_all_one_core"] / best["salbench_all_workers2"]
    out["loadavg"] = [r.get("loadavg_before") for r in report["rounds"]]
    return out


def summarise(report: dict) -> None:
    for k, v in ratios(report).items():
        print(f"{k:34s} {v:.2f}" if isinstance(v, float) else f"{k:34s} {v}")


if __name__ == "__main__":
    sys.exit(main())
