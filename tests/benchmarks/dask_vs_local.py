"""One evaluation in this process and on a ``LocalCluster``: the same entry, and the wall times.

    SALBENCH_CACHE=/tmp/evalx_cache .venv/bin/python tests/benchmarks/dask_vs_local.py \
        --data-dir ../shared/data/osie --dataset nus --split val --model center_bias --protocol mit

A first local run fills the ground-truth cache (not timed); then, ``--repeats`` times, a local
run and a run on a ``LocalCluster`` of ``--workers`` single-threaded worker processes, each
into its own results folder. Every pair must be the same entry (every key but ``created`` and
``wall_time_s``, the predictions file byte for byte): the script stops with an error otherwise.
Printed: the load average before each run, each run's wall time, the cluster's start time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

VOLATILE = ("created", "wall_time_s")


def _entry(folder: Path) -> tuple[dict, dict]:
    """The folder's entries (but their time stamps) and the bytes of its predictions files."""
    records = {p.name: {k: v for k, v in json.loads(p.read_text()).items() if k not in VOLATILE}
               for p in folder.glob("*.json") if "__" in p.name}
    return records, {p.name: p.read_bytes() for p in folder.glob("*.npz")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--split", default="val")
    parser.add_argument("--model", default="center_bias")
    parser.add_argument("--protocol", default="mit")
    parser.add_argument("--metrics", default=None)
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from distributed import Client

    from salbench.evaluate import EvaluationRequest, evaluate
    from salbench.evaluate import cluster as dask_chunks
    from salbench.evaluate.executor import local_cluster

    runs = []  # the DaskChunks of each cluster run: where the workers' time went
    init = dask_chunks.DaskChunks.__init__

    def keep(self, *a, **k):
        init(self, *a, **k)
        runs.append(self)

    dask_chunks.DaskChunks.__init__ = keep

    def run(folder, executor="local"):
        request = EvaluationRequest(model=args.model, dataset=args.dataset, split=args.split, data_dir=args.data_dir,
                                    protocol=args.protocol, metrics=args.metrics, results_dir=folder,
                                    executor=executor)
        t = time.perf_counter()
        record, _ = evaluate(request, progress=False, log=lambda msg: None)
        return time.perf_counter() - t, record["n_images"]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, n = run(tmp / "warm")  # fills the ground-truth cache, imports, Numba's cache: not timed
        print(f"{args.dataset}/{args.split}: {n} images, model {args.model}, protocol {args.protocol}, "
              f"metrics {args.metrics or 'all'}; {os.cpu_count()} cores")
        t = time.perf_counter()
        with local_cluster(n_workers=args.workers) as cluster, Client(cluster) as client:
            client.wait_for_workers(args.workers)
            print(f"LocalCluster of {args.workers} workers started in {time.perf_counter() - t:.1f} s")
            for k in range(args.repeats):
                load = os.getloadavg()[0]
                local_s, _ = run(tmp / f"local{k}")
                load_d = os.getloadavg()[0]
                dask_s, _ = run(tmp / f"dask{k}", executor=client)
                same = _entry(tmp / f"local{k}") == _entry(tmp / f"dask{k}")
                print(f"repeat {k}: local {local_s:.1f} s (load {load:.1f}), dask {dask_s:.1f} s (load {load_d:.1f}), "
                      f"ratio local/dask {local_s / dask_s:.2f}, same entry: {same}")
                spent = ", ".join(f"{k} {v:.1f}" for k, v in runs[-1].seconds.items())
                setup = ", ".join(f"{w['ground_truth_s']:.1f}" for w in runs[-1].workers.values())
                print(f"  workers' seconds summed over the chunks: {spent}; set-up per worker: {setup}")
                if not same:
                    raise SystemExit("the entries differ")


if __name__ == "__main__":
    main()
