"""Peak RSS and wall time of ``salbench eval --model center_bias`` as the split grows (issue 9 evidence).

Run from anywhere (not collected by pytest)::

    python tests/benchmarks/rss_eval.py --out /tmp/rss [--sizes 500,2000,8000] [--protocols coursework,mit]

One ``salbench eval`` subprocess per (protocol, N, run) on the built-in synthetic dataset
(``--option n_images=N``); each protocol gets a fresh ``SALBENCH_CACHE`` so the first run of
each size builds the ground truth and the second (coursework) reads it from the cache. Peak RSS
is the child's ``ru_maxrss``. Prints one JSON line per run and appends them to ``OUT/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def one_run(out: Path, protocol: str, n: int, run: str) -> dict:
    env = {**os.environ, "SALBENCH_CACHE": str(out / f"cache-{protocol}")}
    res_dir = out / f"res-{protocol}-{n}"
    t = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run(["salbench", "eval", "--model", "center_bias", "--split", "val", "--option", f"n_images={n}",
                        "--protocol", protocol, "--results-dir", str(res_dir), "--format", "json"],
                       capture_output=True, text=True, env=env)
    wall = time.time() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    row = {"protocol": protocol, "n_images": n, "run": run, "rc": r.returncode, "wall_s": round(wall, 1),
           # ru_maxrss of children is the largest child so far: only trust rows where it grew
           "peak_rss_mb": round(peak / 1024, 1), "peak_is_this_run": peak > before}
    if r.returncode == 0:
        result = json.loads((res_dir / f"synthetic__val__center_bias__{protocol}.json").read_text())
        row["wall_time_s"] = result["wall_time_s"]
        row["cc"] = result["metrics"]["cc"]["mean"]
    else:
        row["error"] = r.stderr[-300:]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sizes", default="500,2000,8000")
    p.add_argument("--protocols", default="coursework,mit")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    for protocol in a.protocols.split(","):
        for n in (int(s) for s in a.sizes.split(",")):
            for run in ("first", "second") if protocol == "coursework" else ("first",):
                # one Python process per run, so ru_maxrss of its only child is that run's peak
                code = ("import json, sys; sys.path.insert(0, %r); import rss_eval; "
                        "print(json.dumps(rss_eval.one_run(rss_eval.Path(%r), %r, %d, %r)))"
                        % (str(Path(__file__).parent), str(a.out), protocol, n, run))
                line = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
                print(line, flush=True)
                with open(a.out / "results.jsonl", "a") as fh:
                    fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
