"""Coursework and MIT protocols side by side with pysaliency and a plain NumPy script.

Run:  python -m pytest tests/benchmarks -p no:cacheprovider --benchmark-only -o addopts=""
``SALBENCH_BENCH_N`` (default 500) sets the number of 480x640 images; the slow peers
run on ``SALBENCH_BENCH_PEER_N`` (default 5) images and report per-image time, so
compare per-image means (``extra_info["per_image_s"]``).
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from salbench.data.record import Record
from salbench.protocols import get_protocol
from tests.naive_sampled import coursework_script

N = int(os.environ.get("SALBENCH_BENCH_N", "500"))
PEER_N = int(os.environ.get("SALBENCH_BENCH_PEER_N", "5"))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(20):  # 20 distinct SALICON-like ground truths, reused
        m = np.zeros((480, 640))
        m[rng.integers(40, 440, 25), rng.integers(40, 600, 25)] = 1
        g = gaussian_filter(m, 19)
        maps.append(np.round(255 * g / g.max()).astype(np.uint8))
    recs = [Record(name=f"im{i}", image=None, fixations=np.zeros((0, 2), np.int64), observers=None,
                   fixation_map=maps[i % 20] > 0, density=maps[i % 20] / 255.0, x96=None, y48=None,
                   y_original=maps[i % 20]) for i in range(N)]
    preds = np.clip(rng.random((N, 48, 48)) * 0.3 + gaussian_filter(rng.random((N, 48, 48)), 3), 0, 0.99)
    return recs, preds


def test_coursework_salbench(benchmark, data):
    recs, preds = data
    p = get_protocol("coursework")
    t = time.perf_counter()
    p.evaluate(preds[:2], recs[:2], seed=0)  # loads the cached kernels (or compiles them when cold)
    benchmark.extra_info["first_call_s"] = time.perf_counter() - t
    t = time.perf_counter()
    p.evaluate(preds, recs, seed=0)  # prepares the ground truth of these records (kept on the protocol)
    benchmark.extra_info["prepare_s"] = time.perf_counter() - t
    benchmark.extra_info["n_images"] = N
    cpu = time.process_time()
    result = benchmark.pedantic(p.evaluate, args=(preds, recs), kwargs={"seed": 0}, rounds=3, iterations=1)
    benchmark.extra_info["per_image_s"] = benchmark.stats.stats.mean / N
    # CPU seconds of all threads per image: less sensitive to other jobs on the machine
    benchmark.extra_info["cpu_per_image_s"] = (time.process_time() - cpu) / (3 * N)
    assert np.isfinite(result.scores["cc"]).all()


def test_coursework_plain_numpy(benchmark, data):
    recs, preds = data

    def run():
        rng = np.random.default_rng(0)
        return [coursework_script(preds[i], recs[i].y_original, [recs[(i + k) % N].y_original for k in range(10)],
                                  100, rng) for i in range(PEER_N)]

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["n_images"] = PEER_N
    benchmark.extra_info["per_image_s"] = benchmark.stats.stats.mean / PEER_N


def test_pysaliency_cc_exact_auc(benchmark, data):
    np.trapz = getattr(np, "trapz", np.trapezoid)
    pytest.importorskip("pysaliency", reason="pysaliency is the peer of this row (pip install -e '.[test]')")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pysaliency.metrics as pm
        from pysaliency.roc import general_roc
    recs, preds = data
    from PIL import Image

    def run():
        out = []
        for i in range(PEER_N):
            q = (preds[i] * 255).astype(np.uint8)
            s = gaussian_filter(np.asarray(Image.fromarray(q).resize((640, 480)), float) / 255, 2)
            g = gaussian_filter(recs[i].y_original, 19).astype(float)
            f = recs[i].y_original > 0
            other = np.zeros_like(f)
            for k in range(10):
                other |= recs[(i + k) % N].y_original > 0
            out.append((pm.CC(s, g), general_roc(s[f].astype(float), s.ravel().astype(float))[0],
                        general_roc(s[f].astype(float), s[other].astype(float))[0]))
        return out

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["n_images"] = PEER_N
    benchmark.extra_info["per_image_s"] = benchmark.stats.stats.mean / PEER_N


PUBLIC_N = int(os.environ.get("SALBENCH_BENCH_PUBLIC_N", "100"))


@pytest.fixture(scope="module")
def public_inputs():
    """``PUBLIC_N`` 480x640 (saliency, density, fixations, other) sets, the same arrays for both peers.

    Fixations as eye-tracking gives them: ~135 fixated pixels (15 observers x ~9) around
    three centres; density their sigma-19 blur; other the OR of 10 other images' fixations;
    saliency a smooth map.
    """
    rng = np.random.default_rng(1)
    fix = []
    for _ in range(PUBLIC_N):
        centres = rng.uniform([60, 80], [420, 560], (3, 2))
        pts = np.clip(np.round(centres[rng.integers(0, 3, 135)] + rng.normal(0, 40, (135, 2))), 0, [479, 639])
        f = np.zeros((480, 640), dtype=bool)
        f[pts[:, 0].astype(int), pts[:, 1].astype(int)] = True
        fix.append(f)
    out = []
    for i in range(PUBLIC_N):
        other = np.zeros((480, 640), dtype=bool)
        for k in range(1, 11):
            other |= fix[(i + k) % PUBLIC_N]
        g = gaussian_filter(fix[i].astype(float), 19)
        s = gaussian_filter(rng.random((480, 640)), 15) + 0.5 * g / g.max()
        out.append((s, g, fix[i], other))
    return out


def test_public_functions_salbench(benchmark, public_inputs):
    """Issue 17: the public per-image functions CC + AUC-Borji + sAUC (100 splits) on prepared 480x640 maps."""
    from salbench.metrics import auc_borji, auc_shuffled, cc

    def run():
        return [(cc(s, g), auc_borji(s, f, seed=i), auc_shuffled(s, f, o, seed=i))
                for i, (s, g, f, o) in enumerate(public_inputs)]

    run()  # Numba cache load
    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info.update(n_images=len(public_inputs),
                                per_image_s=benchmark.stats.stats.min / len(public_inputs))


def test_public_functions_pysaliency(benchmark, public_inputs):
    """pysaliency's CC and exact AUCs (uniform: every pixel a negative; shuffled) on the same arrays."""
    np.trapz = getattr(np, "trapz", np.trapezoid)
    pytest.importorskip("pysaliency", reason="pysaliency is the peer of this row (pip install -e '.[test]')")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pysaliency.metrics as pm
        from pysaliency.roc import general_roc

    def run():
        return [(pm.CC(s, g), general_roc(s[f], s.ravel())[0], general_roc(s[f], s[o])[0])
                for s, g, f, o in public_inputs]

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info.update(n_images=len(public_inputs),
                                per_image_s=benchmark.stats.stats.min / len(public_inputs))


def test_mit_protocol_eight_metrics(benchmark, data):
    recs, preds = data
    n = min(N, 20)
    p = get_protocol("mit")
    t = time.perf_counter()
    p.evaluate(preds[:2], recs[:2], seed=0)
    benchmark.extra_info["first_call_s"] = time.perf_counter() - t
    benchmark.pedantic(p.evaluate, args=(preds[:n], recs[:n]), kwargs={"seed": 0}, rounds=3, iterations=1)
    benchmark.extra_info["n_images"] = n
    benchmark.extra_info["per_image_s"] = benchmark.stats.stats.mean / n


def test_mit_public_functions_per_image(benchmark, data):
    """The MIT protocol as eight public metric calls per image (the scorer's per-image path): the fused path's reference."""
    recs, preds = data
    n = min(N, PEER_N)
    p = get_protocol("mit", metrics=("cc", "nss", "auc_judd", "auc_borji", "auc_shuffled", "kld", "sim", "info_gain"))

    def run(k):
        sc = p.scorer(recs[:k], seed=0, fused=False)
        sc.add(range(k), preds[:k], recs[:k])
        return sc.result()

    run(min(2, n))  # warm
    benchmark.pedantic(run, args=(n,), rounds=1, iterations=1)
    benchmark.extra_info["n_images"] = n
    benchmark.extra_info["per_image_s"] = benchmark.stats.stats.mean / n


def _judd_numpy(s, f):
    """AUC-Judd in NumPy with sorting (tests/naive.py's one-scan-per-threshold twin takes minutes here)."""
    u = (s - s.min()) / (s.max() - s.min())
    thr = np.sort(u[f])[::-1]
    n_fix, n_pix = thr.size, u.size
    above = n_pix - np.searchsorted(np.sort(u.ravel()), thr, side="left")
    i = np.arange(1, n_fix + 1)
    tp = np.concatenate(([0.0], i / n_fix, [1.0]))
    fp = np.concatenate(([0.0], (above - i) / (n_pix - n_fix), [1.0]))
    return float(np.trapezoid(tp, fp))


def test_mit_plain_numpy(benchmark, data):
    """The MIT protocol in plain NumPy (tests/naive.py twins, per-pixel AUC draws, 100 splits)."""
    from salbench.protocols.ground_truth import center_gaussian
    from salbench.protocols._resize import matlab_bicubic
    from tests import naive
    from tests.naive_sampled import sampled_auc

    recs, preds = data
    n = min(N, PEER_N)

    def run():
        rng = np.random.default_rng(0)
        out = []
        for i in range(n):
            r = recs[i]
            s = matlab_bicubic(preds[i], r.shape)
            f, g = r.fixation_map, r.density
            other = np.zeros(r.shape, dtype=bool)
            for k in range(1, 11):
                other |= recs[(i + k) % N].fixation_map
            k_pos, cand = int(f.sum()), np.flatnonzero(other)
            m = min(k_pos, cand.size)
            out.append((naive.cc(s, g), naive.nss(s, f), _judd_numpy(s, f),
                        sampled_auc(s, f, lambda: rng.integers(0, s.size, k_pos), 100, 0.1, True),
                        sampled_auc(s, f, lambda: cand[rng.permutation(cand.size)[:m]], 100, 0.1, True),
                        naive.kld(s, g), naive.sim(s, g), naive.info_gain(s, f, center_gaussian(r.shape))))
        return out

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["n_images"] = n
    benchmark.extra_info["per_image_s"] = benchmark.stats.stats.mean / n


# ----------------------------------------------------------------------------- streaming
def _stream(protocol, ds, preds, workers, chunk_size=64):
    from salbench.scoring import score_stream

    return score_stream(protocol, ds, lambda i: preds[i], seed=0, workers=workers, chunk_size=chunk_size,
                        progress=False)


def test_coursework_stream_ground_truth_cache(benchmark, data, tmp_path, monkeypatch):
    """score_stream under coursework: ground-truth time of a first run (cache built) and a second (read)."""
    from tests.test_protocols_fixtures import ListDataset

    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path))
    recs, preds = data
    ds = ListDataset(recs)
    first = _stream(get_protocol("coursework"), ds, preds, 2)
    result = benchmark.pedantic(_stream, args=(get_protocol("coursework"), ds, preds, 2), rounds=1, iterations=1)
    assert first.timings["cache_hit"] is False and result.timings["cache_hit"] is True
    benchmark.extra_info.update(n_images=N, first_ground_truth_s=first.timings["ground_truth_s"],
                                second_ground_truth_s=result.timings["ground_truth_s"],
                                first_total_s=first.timings["total_s"], second_total_s=result.timings["total_s"],
                                per_image_s=result.timings["total_s"] / N)


@pytest.mark.parametrize("workers", [0, 2])
def test_mit_stream(benchmark, data, tmp_path, monkeypatch, workers):
    """score_stream under mit (48x48 predictions resized in the workers, MIT ground truth per image)."""
    from tests.test_protocols_fixtures import ListDataset

    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path))
    recs, preds = data
    n = min(N, 64)
    ds = ListDataset(recs[:n])
    _stream(get_protocol("mit"), ListDataset(recs[:2]), preds, workers)  # warm the kernels
    result = benchmark.pedantic(_stream, args=(get_protocol("mit"), ds, preds, workers), kwargs={"chunk_size": 32},
                                rounds=1, iterations=1)
    benchmark.extra_info.update(n_images=n, per_image_s=result.timings["total_s"] / n,
                                wait_s=result.timings["wait_s"], score_s=result.timings["score_s"])
