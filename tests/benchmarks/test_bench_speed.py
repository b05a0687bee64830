"""Issue 17's end-to-end targets through pytest: ``speed_osie.py``'s rows side by side, once.

Run (``../shared/data/osie`` needed; ~3 minutes on 2 cores, most of it pysaliency)::

    python -m pytest tests/benchmarks/test_bench_speed.py -p no:cacheprovider --benchmark-only -o addopts=""

``SALBENCH_BENCH_SPEED_DIR`` keeps the generated maps (and the ground-truth cache) between runs;
``SALBENCH_BENCH_SPEED_ROWS`` picks rows (default: all; see ``speed_osie.py``). The ratios
land in ``extra_info``; the targets are not asserted (this machine is shared: see
docs/benchmarks.md for the measured figures and their load averages).
"""

from __future__ import annotations

import importlib.util
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
    if "pysaliency" in rows.split(",") and importlib.util.find_spec("pysaliency") is None:
        pytest.skip("the pysaliency row needs pysaliency (pip install -e '.[test]')")
    benchmark.pedantic(speed_osie.main, args=(["--out", str(out_dir), "--rows", rows],), rounds=1, iterations=1)
    import json

    report = json.loads((out_dir / "speed.json").read_text())
    benchmark.extra_info.update(speed_osie.ratios(report))


# --- per image, one thread, at 600x800 (what the end-to-end rows are made of) --------------------
STAGE_N = int(os.environ.get("SALBENCH_BENCH_STAGE_N", "20"))
SIX = ("cc", "nss", "auc_judd", "auc_shuffled", "kld", "sim")


@pytest.fixture(scope="module")
def osie_images(out_dir):
    """``STAGE_N`` OSIE images: the PNG map (path), its decoded map, fixations, other map, MIT density."""
    import numpy as np

    from salbench.data.registry import get_dataset
    from salbench.predictions import open_predictions
    from salbench.protocols.ground_truth import mit_fixation_density

    maps = speed_osie.make_maps(out_dir / "maps")
    ds = get_dataset("nus", "all", speed_osie.OSIE)
    match = open_predictions(maps).match(ds.names)
    out = []
    for i in range(STAGE_N):
        f = ds.ground_truth(i).fixation_map
        other = np.zeros_like(f)
        for k in range(1, 11):
            other |= ds.ground_truth((i + 37 * k) % len(ds)).fixation_map
        out.append({"load": lambda i=i: match.load(i), "s": match.load(i), "f": f, "other": other,
                    "g": mit_fixation_density(f)})
    return out


def _per_image(benchmark, fn, images):
    fn(images[0])  # Numba cache load, imports
    benchmark.pedantic(lambda: [fn(im) for im in images], rounds=3, iterations=1)
    benchmark.extra_info.update(n_images=len(images), per_image_s=benchmark.stats.stats.min / len(images))


@pytest.mark.parametrize("stage", ["decode_png", "mit_density", "emd"])
def test_stage_600x800(benchmark, osie_images, stage):
    from salbench.metrics import emd
    from salbench.protocols.ground_truth import mit_fixation_density

    fn = {"decode_png": lambda im: im["load"](), "mit_density": lambda im: mit_fixation_density(im["f"]),
          "emd": lambda im: emd(im["s"], im["g"])}[stage]
    with speed_osie_blas():
        _per_image(benchmark, fn, osie_images)


@pytest.mark.parametrize("columns", ["cc", "nss", "auc_judd", "auc_borji", "auc_shuffled", "kld", "sim", "info_gain",
                                     "six", "all"])
def test_fused_kernel_per_metric_600x800(benchmark, osie_images, columns):
    """``mit_image`` (the `mit` fused kernel, one image, one thread) computing one column, the six, or all eight."""
    import numpy as np

    from salbench.metrics.auc_sampled import log_factorials, thresholds_for
    from salbench.protocols._mit_kernel import MIT_KERNELS, baseline_distribution, mit_image
    from salbench.protocols.ground_truth import center_gaussian

    chosen = {"six": SIX, "all": tuple(MIT_KERNELS)}.get(columns, (columns,))
    want = np.array([c in chosen for c in MIT_KERNELS])
    base = baseline_distribution(center_gaussian((600, 800), 0.25).ravel())
    t, lf, seeds = thresholds_for(0.1), log_factorials(600 * 800 + 2), np.array([1, 2], dtype=np.int64)

    def fn(im):
        return mit_image(im["s"].ravel(), im["g"].ravel(), im["f"].ravel(), im["other"].ravel(), base, t, 100, seeds,
                         True, want, lf)

    _per_image(benchmark, fn, osie_images)


def speed_osie_blas():
    from salbench._parallel import one_blas_thread

    return one_blas_thread()
