"""Cost of SIM's metric-specific map (the expected-SIM optimum) on 480x640 images, and what it scores.

For the ``gold`` densities of the first ``--n`` synthetic val images (480x640) under ``mit``, times
:func:`salbench.protocols.metric_maps.sim_map` (default parameters: 100 draws of 100 fixations,
100 validation draws) and, with ``--compare``, also ``grid=0`` (every pixel: the slow definition,
the exact optimum of the sampled objective at full resolution). For each map it prints the
expected MIT SIM on 400 fresh draws (seed 99, full resolution) so that the grid's optimum can be
compared with the full-resolution one. Runs against any salbench checkout on ``PYTHONPATH``
(the older ``sim_map`` has no ``grid``: it is the full-resolution definition)::

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python tests/benchmarks/sim_map_speed.py --n 3 --compare
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np

from salbench.data import get_dataset
from salbench.metrics.expected_sim import expected_sim
from salbench.models import create_model
from salbench.protocols import metric_maps as mm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--compare", action="store_true", help="also the full-resolution optimum (grid=0)")
    ap.add_argument("--eval-samples", type=int, default=400)
    args = ap.parse_args()
    ds = get_dataset("synthetic", "val", preset="small")
    gold = create_model("gold")
    has_grid = "grid" in inspect.signature(mm.sim_map).parameters
    variants = {"default": {}}
    if args.compare and has_grid:
        variants["full (grid=0)"] = {"grid": 0}
    maps = mm.empirical_maps("mit", None, (480, 640))
    mm.sim_map(np.full((48, 64), 1 / (48 * 64)), "mit", seed=0, samples=4)  # compile / warm caches
    times = {k: [] for k in variants}
    esim = {k: [] for k in variants}
    for i in range(args.n):
        rec = ds[i]
        p = np.exp(mm.resize_log_density(gold.predict_log_density([rec])[0], rec.shape))
        for name, kw in variants.items():
            t0 = time.perf_counter()
            s, info = mm.sim_map(p, "mit", seed=mm.image_seed(0, i), **kw)
            times[name].append(time.perf_counter() - t0)
            esim[name].append(expected_sim(s, p, maps, fixation_count=100, samples=args.eval_samples, seed=99)[0])
            print(f"image {i} {name}: {times[name][-1]:.2f} s, weight {info.get('mix_weight')}, "
                  f"expected SIM {esim[name][-1]:.5f}", flush=True)
    print(f"\nsim_map at 480x640 ({'grid available' if has_grid else 'no grid: full resolution'}), {args.n} images")
    print("| variant | s per image (mean) | expected MIT SIM (400 fresh draws, mean) |\n|---|---|---|")
    for name in variants:
        print(f"| {name} | {np.mean(times[name]):.2f} | {np.mean(esim[name]):.5f} |")
    if len(variants) == 2:
        d = np.array(esim["default"]) - np.array(esim["full (grid=0)"])
        print(f"\ndefault - full expected SIM per image: {', '.join(f'{x:+.5f}' for x in d)}")


if __name__ == "__main__":
    main()
