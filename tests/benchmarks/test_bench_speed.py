"""Issue 17's end-to-end targets through pytest: ``speed_osie.py``'s rows side by side, once.

Run (``../shared/data/osie`` needed; ~3 minutes on 2 cores, most of it pysaliency)::

    python -m pytest tests/benchmarks/test_bench_speed.py -p no:cacheprovider --benchmark-only -o addopts=""

``SALBENCH_BENCH_SPEED_DIR`` keeps the generated maps (and the ground-truth cache) between runs;
``SALBENCH_BENCH_SPEED_ROWS`` picks rows (default: all; see ``speed_osie.py``). The ratios
land in ``extra_info``; the targets are not asserted (this machine is shared: see
docs/benchmarks.md for the measured figures and their load averages).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed_osie  # noqa: E402


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    if not speed_osie.OSIE.exists():
        pytest.skip(f"OSIE not found at {speed_osie.OSIE}")
    keep = os.environ.get("SALBENCH_BENCH_SPEED_DIR")
    return Path(keep) if keep else tmp_path_factory.mktemp("speed")


def test_issue17_targets(benchmark, out_dir):
    rows = os.environ.get("SALBENCH_BENCH_SPEED_ROWS", "six,all,all_api,workers,pin,pysaliency")
    benchmark.pedantic(speed_osie.main, args=(["--out", str(out_dir), "--rows", rows],), rounds=1, iterations=1)
    import json

    report = json.loads((out_dir / "speed.json").read_text())
    benchmark.extra_info.update(speed_osie.ratios(report))
