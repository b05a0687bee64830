"""EMD per image before/after, side by side with POT's ``ot.emd2`` on the same cells; import; threads.

Run (``../shared/data/osie`` needed; ``SALBENCH_BENCH_EMD_N`` images per size, default 100):

    SALBENCH_BENCH_EMD_N=100 python -m pytest tests/benchmarks/test_bench_emd.py \\
        -p no:cacheprovider --benchmark-only -o addopts="" --benchmark-json=bench-emd.json

Inputs: OSIE val images at 600x800 (their own size) and resized to 480x640; ground truth
MIT's density of the fixation map (``mit_fixation_density``), prediction another image's
sigma-19 density mixed with a centred Gaussian (smooth, like a model's). Timed per image
(``extra_info["per_image_s"]``), each peer on the same inputs in one run:

- ``before``: the previous implementation (MATLAB resize as two BLAS products, negative
  cells clipped, ``ot.emd2`` on every cell to every cell);
- ``pot``: ``ot.emd2`` on the full problem of salbench's own cells (the reference solver);
- ``exact`` / ``mit``: ``salbench.metrics.emd`` with each variant (``exact`` is asserted
  equal to ``pot`` within 1e-12).

``test_import`` times ``import ot`` as POT does it and as salbench does it, in fresh
processes after salbench's own imports. ``test_threads`` scores ``SALBENCH_BENCH_EMD_THREADS_N``
(default 200) 600x800 images with 1 and 2 threads (meaningful only with 2 idle cores);
``test_solver_releases_the_gil`` counts a pure-Python loop in a second thread while POT
solves a large problem, and while ``emd`` scores 50 images (glue included): a thread that
held the GIL would stop the loop.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from salbench.metrics import emd
from salbench.metrics._imresize import matlab_resize_matrix, resize
from salbench.metrics._pot import pot
from salbench.metrics.transport import _ground_distance

N = int(os.environ.get("SALBENCH_BENCH_EMD_N", "100"))
THREADS_N = int(os.environ.get("SALBENCH_BENCH_EMD_THREADS_N", "200"))
OSIE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "osie"
SIZES = ("600x800", "480x640")


def _cases(resolution, n):
    if not OSIE.exists():
        pytest.skip(f"OSIE not found at {OSIE}")
    from salbench.data.registry import get_dataset
    from salbench.protocols.ground_truth import mit_fixation_density

    options = {} if resolution is None else {"resolution": resolution}
    ds = get_dataset("nus", "val", OSIE, **options)
    maps = []
    for k in range(n):
        rec, other = ds.ground_truth(k % len(ds)), ds.ground_truth((k + 7) % len(ds))
        h, w = rec.shape
        yy, xx = np.mgrid[0:h, 0:w]
        centre = np.exp(-((yy - h / 2) ** 2 / (2 * (h / 4) ** 2) + (xx - w / 2) ** 2 / (2 * (w / 4) ** 2)))
        maps.append((0.5 * other.density + 0.5 * centre, mit_fixation_density(rec.fixation_map)))
    return maps


@pytest.fixture(scope="module")
def cases():
    return {"600x800": _cases(None, max(N, THREADS_N)), "480x640": _cases((480, 640), N)}


def _cells(s, g):
    h, w = g.shape
    out = (math.ceil(h / 32), math.ceil(w / 32))
    p = np.maximum(resize(g, out, (1 / 32, 1 / 32)), 0)
    q = np.maximum(resize(s, out, (out[0] / h, out[1] / w)), 0)
    return p / p.sum(), q / q.sum(), out


def _before(s, g):
    """The implementation this replaced: BLAS resize, clip, ot.emd2 on every cell to every cell."""
    h, w = g.shape
    out = (math.ceil(h / 32), math.ceil(w / 32))

    def shrink(a, scales):
        rows = matlab_resize_matrix(a.shape[0], out[0], scales[0])
        cols = matlab_resize_matrix(a.shape[1], out[1], scales[1])
        d = np.maximum(rows @ a @ cols.T, 0).ravel()
        return d / d.sum()

    p, q = shrink(g, (1 / 32, 1 / 32)), shrink(s, (out[0] / h, out[1] / w))
    return float(pot().emd2(p, q, _ground_distance(*out), numItermax=10_000_000))


def _per_image(benchmark, fn, maps):
    fn(*maps[0])  # first call: Numba cache load, POT import
    values = benchmark.pedantic(lambda: [fn(s, g) for s, g in maps], rounds=3, iterations=1)
    benchmark.extra_info["n_images"] = len(maps)
    benchmark.extra_info["per_image_s"] = benchmark.stats.stats.mean / len(maps)
    benchmark.extra_info["per_image_min_s"] = benchmark.stats.stats.min / len(maps)
    return np.array(values)


@pytest.mark.parametrize("size", SIZES)
def test_before(benchmark, cases, size):
    _per_image(benchmark, _before, cases[size][:N])


@pytest.mark.parametrize("size", SIZES)
def test_pot_full_problem_on_the_same_cells(benchmark, cases, size):
    cells = [_cells(s, g) for s, g in cases[size][:N]]  # resize outside the timing: the solver alone
    solve = lambda p, q, out: float(pot().emd2(p.ravel(), q.ravel(), _ground_distance(*out),  # noqa: E731
                                               numItermax=10_000_000))
    solve(*cells[0])
    values = benchmark.pedantic(lambda: [solve(*c) for c in cells], rounds=3, iterations=1)
    benchmark.extra_info["n_images"] = len(cells)
    benchmark.extra_info["per_image_s"] = benchmark.stats.stats.mean / len(cells)
    ours = np.array([emd(s, g, variant="exact") for s, g in cases[size][:N]])
    np.testing.assert_allclose(ours, values, rtol=1e-12, atol=0)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("variant", ("exact", "mit"))
def test_salbench(benchmark, cases, size, variant):
    values = _per_image(benchmark, lambda s, g: emd(s, g, variant=variant), cases[size][:N])
    assert np.isfinite(values).all()


def _fresh_process_seconds(statement: str) -> float:
    code = ("import time, salbench.cli, salbench.evaluate, salbench.protocols, salbench.scoring, salbench.metrics\n"
            f"t = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POT_BACKEND")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def test_import(benchmark):
    # The seconds that importing POT adds after salbench's own imports, in fresh processes
    # (alternating, best of 3 each): POT as it imports itself, and salbench's pot().
    plain, ours = [], []
    for _ in range(3):
        plain.append(_fresh_process_seconds("import ot"))
        ours.append(_fresh_process_seconds("from salbench.metrics._pot import pot\npot()"))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(import_ot_s=min(plain), salbench_pot_s=min(ours), ratio=min(plain) / min(ours))
    assert min(ours) < min(plain)


def test_threads(benchmark, cases):
    maps = cases["600x800"][:THREADS_N]

    def run(threads):
        with ThreadPoolExecutor(threads) as ex:
            return list(ex.map(lambda m: emd(m[0], m[1], variant="mit"), maps))

    run(1)
    one, two = [], []
    for _ in range(3):  # interleaved, so that a change of load hits both
        t = time.perf_counter()
        a = run(1)
        one.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = run(2)
        two.append(time.perf_counter() - t)
        assert a == b  # bit-identical whatever the threads
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(n_images=len(maps), one_thread_s=min(one), two_threads_s=min(two),
                                speedup=min(one) / min(two), cpus=os.cpu_count(),
                                load_average=os.getloadavg()[0])


def test_solver_releases_the_gil(benchmark, cases):
    rng = np.random.default_rng(0)
    n = 1500
    a, b = rng.random(n), rng.random(n)
    a, b = a / a.sum(), b / b.sum()
    x, y = rng.random((n, 2)), rng.random((n, 2))
    cost = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
    ot = pot()

    def spin_during(work):
        stop, count = threading.Event(), []

        def spin():
            k = 0
            while not stop.is_set():
                k += 1
            count.append(k)

        th = threading.Thread(target=spin)
        th.start()
        t = time.perf_counter()
        work()
        dt = time.perf_counter() - t
        stop.set()
        th.join()
        return count[0] / dt

    idle = spin_during(lambda: time.sleep(1.0))
    solving = spin_during(lambda: ot.emd2(a, b, cost, numItermax=10**8))
    maps = cases["600x800"][:50]
    scoring = spin_during(lambda: [emd(s, g, variant="mit") for s, g in maps])  # whole calls, glue included
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(spin_idle_per_s=idle, spin_while_solving_per_s=solving, ratio=solving / idle,
                                spin_while_emd_per_s=scoring, ratio_emd=scoring / idle,
                                load_average=os.getloadavg()[0])
    assert solving > 0.1 * idle  # with the GIL held during the solve the loop would stand still
