"""The built-in synthetic dataset: determinism, mirrors, calibration, learnability, caching."""

import numpy as np
import pytest

from salbench.cli import main
from salbench.data import get_dataset, list_datasets
from salbench.data import synthetic as syn


@pytest.fixture(scope="module")
def val():
    return get_dataset("synthetic", "val", preset="small")


def test_sizes_and_names():
    assert len(get_dataset("synthetic", "train")) == 20000 and len(get_dataset("synthetic", "val")) == 500
    tr = get_dataset("synthetic", "train", preset="small")
    assert len(tr) == 64 and tr.names[32] == "synthetic_train_00000_mirror.png"
    assert "synthetic" in list_datasets()


def test_deterministic_and_seeded(val):
    a, b = val[3], get_dataset("synthetic", "val", preset="small")[3]
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.fixations, b.fixations)
    c = get_dataset("synthetic", "val", preset="small", seed=1)[3]
    assert not np.array_equal(a.image, c.image)
    assert val.identity()["content_hash"] != get_dataset("synthetic", "val", preset="small", seed=1).identity()["content_hash"]
    assert val.identity() == get_dataset("synthetic", "val", preset="small").identity()


def test_record_contract(val):
    r = val[0]
    assert r.image.shape == (480, 640, 3) and r.image.dtype == np.uint8
    assert r.fixations.dtype == np.int64 and r.fixations.shape[1] == 2
    assert r.observers.shape == (len(r.fixations),) and set(r.observers) == set(range(syn.OBSERVERS_PER_IMAGE))
    assert r.fixation_map.dtype == bool and r.fixation_map[tuple(r.fixations.T)].all()
    assert r.density.max() == pytest.approx(1.0) and r.true_density.sum() == pytest.approx(1.0)
    assert r.x96.shape == (3, 96, 96) and r.y48.shape == (48, 48) and r.y_original.dtype == np.uint8


def test_mirrors():
    tr = get_dataset("synthetic", "train", preset="small", n_images=2)
    a, m = tr[1], tr[3]
    np.testing.assert_array_equal(m.image, a.image[:, ::-1])
    np.testing.assert_array_equal(m.true_density, a.true_density[:, ::-1])
    np.testing.assert_allclose(m.density, a.density[:, ::-1], atol=1e-12)
    assert sorted(map(tuple, m.fixations)) == sorted((r, 639 - c) for r, c in a.fixations)


def test_gold_beats_center_beats_uniform(val):
    from salbench.metrics import auc_judd, cc, nss

    h, w = 480, 640
    # A plain centred Gaussian (sigma = 0.24 of each side), independent of the generator's constants.
    center = np.outer(np.exp(-0.5 * ((np.arange(h) - (h - 1) / 2) / (0.24 * h)) ** 2),
                      np.exp(-0.5 * ((np.arange(w) - (w - 1) / 2) / (0.24 * w)) ** 2))
    uniform = np.random.default_rng(0).random((h, w)) * 1e-9 + 1.0  # constant up to noise
    scores = {k: [] for k in ("gold", "center", "uniform")}
    for r in val[:16]:
        for k, m in (("gold", r.true_density), ("center", center), ("uniform", uniform)):
            scores[k].append((cc(m, r.density), nss(m, r.fixation_map), auc_judd(m, r.fixation_map)))
    mean = {k: np.mean(v, 0) for k, v in scores.items()}
    print({k: v.round(3).tolist() for k, v in mean.items()})
    assert np.all(mean["gold"] > mean["center"] + 0.05)
    assert np.all(mean["center"] > mean["uniform"] + 0.05)


def test_saliency_follows_visible_contrast(val):
    """Density mass sits on high-contrast objects: what a CNN can learn beyond center bias."""
    for r in val[:8]:
        for ob in r.meta["objects"]:
            rr, cc = ob["center"]
            if ob["salience"] > 0.1:
                assert r.true_density[rr, cc] > 5 / r.true_density.size
            if ob["contrast"] < syn.MIN_SALIENT_CONTRAST:
                assert ob["salience"] == 0.0


@pytest.mark.shared_data
def test_calibration_constants_match_osie(osie_dir):
    from salbench.data.nus import read_fixations_mat

    fix = read_fixations_mat(osie_dir / "fixations.mat")
    xs = np.concatenate([x for obs in fix.values() for x, _ in obs]) - 1
    ys = np.concatenate([y for obs in fix.values() for _, y in obs]) - 1
    per_obs = np.array([len(x) for obs in fix.values() for x, _ in obs])
    np.testing.assert_allclose([ys.mean() / 600, xs.mean() / 800], syn.CENTER_MEAN, atol=2e-3)
    np.testing.assert_allclose([ys.std() / 600, xs.std() / 800], syn.CENTER_STD, atol=2e-3)
    np.testing.assert_allclose([per_obs.mean(), per_obs.std()], syn.FIXATIONS_PER_OBSERVER, atol=2e-3)
    assert {len(v) for v in fix.values()} == {syn.OBSERVERS_PER_IMAGE}


def test_arrays_cached_atomically(monkeypatch, tmp_path):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path))
    ds = get_dataset("synthetic", "val", preset="small", n_images=3)
    x, y = ds.arrays(("x96", "y48"))
    assert x.shape == (3, 3, 96, 96) and y.shape == (3, 48, 48)
    np.testing.assert_array_equal(x[2], ds[2].x96)
    files = sorted(p.name for p in (tmp_path / "arrays").iterdir())
    assert len(files) == 2 and all(f.endswith(".npy") for f in files)
    x2, _ = ds.arrays(("x96", "y48"))
    assert isinstance(x2, np.memmap) and np.array_equal(x, x2)


def test_no_partial_cache_after_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path))
    ds = get_dataset("synthetic", "val", preset="small", n_images=3)
    real = ds._load

    def failing(i):
        if i == 2:
            raise ValueError("boom")
        return real(i)

    monkeypatch.setattr(ds, "_load", failing)
    with pytest.raises(ValueError, match="boom"):
        ds.arrays()
    assert not (tmp_path / "arrays").exists() or not list((tmp_path / "arrays").iterdir())


def test_bad_options():
    with pytest.raises(ValueError, match="preset"):
        get_dataset("synthetic", "val", preset="huge")
    with pytest.raises(ValueError, match="splits"):
        get_dataset("synthetic", "test")
    with pytest.raises(ValueError, match="synthetic"):
        get_dataset("synthetic", "val", resolution="480x640")
    with pytest.raises(ValueError, match="Did you mean 'synthetic'"):
        get_dataset("synthetc", "val")


def test_cli_datasets_and_info(capsys, tmp_path):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in ("synthetic", "salicon", "salicon-pkl", "nus"))
    assert main(["data", "info", "--dataset", "synthetic", "--preset", "small", "--max-images", "2"]) == 0
    out = capsys.readouterr().out
    assert "val: 32 images, resolution 480x640, observers 15" in out
    assert main(["data", "info", "--dataset", "nus", "--data-dir", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def test_stats_match_records_without_generating(monkeypatch):
    tr = get_dataset("synthetic", "train", preset="small", n_images=3)
    expected = [len(tr[i].fixations) for i in (0, 2, 4)]

    def boom(*args, **kwargs):
        raise AssertionError("generated a scene")

    monkeypatch.setattr(syn, "generate_scene", boom)
    assert [tr.stats(i)["n_fixations"] for i in (0, 2, 4)] == expected  # 4 = mirror of 1? no: of 1
    # len, names, identity and describe of the full default splits never generate an image.
    from salbench.data import describe

    ds = get_dataset("synthetic", "train")
    assert len(ds) == 20000 and ds.names[-1] == "synthetic_train_09999_mirror.png"
    assert len(ds.identity()["content_hash"]) == 64
    summary = describe("synthetic", max_images=50)
    assert summary["splits"]["train"]["images"] == 20000 and summary["splits"]["val"]["observers"] == [15]


def test_prefetch_threads_change_nothing():
    plain = get_dataset("synthetic", "train", preset="small", n_images=4, workers=0)
    threaded = get_dataset("synthetic", "train", preset="small", n_images=4, workers=2)
    order = [0, 1, 2, 3, 4, 5, 6, 7, 2, 3, 0]  # sequential, then jumps back
    for i in order:
        a, b = plain[i], threaded[i]
        assert a.name == b.name
        for k in ("image", "fixations", "observers", "fixation_map", "density", "x96", "y48", "y_original",
                  "true_density"):
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=f"{i} {k}")
    import pickle

    assert len(pickle.loads(pickle.dumps(threaded))) == 8


def test_fixations_are_drawn_from_the_true_density():
    """Many draws land in 16x16 blocks as often as the true density says (binomial bounds)."""
    shape = (480, 640)
    plan = syn._scene_plan(0, "val", 5, shape)
    density = syn._true_density(plan["components"], shape)
    n = 200_000
    pts = syn._sample_fixations(np.random.default_rng(1), np.array([n]), plan["components"], shape)
    counts = np.zeros((30, 40))
    np.add.at(counts, (pts[:, 0] // 16, pts[:, 1] // 16), 1)
    p = density.reshape(30, 16, 40, 16).sum(axis=(1, 3))
    assert np.all(np.abs(counts - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 3)


def _naive_render(plan, shape):
    """The renderer as plain NumPy: bilinear background, shape masks painted in order, noise."""
    h, w = shape
    low = plan["low"]

    def axis(n_out, n_in):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(pos).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), pos - i0

    r0, r1, fr = axis(h, low.shape[0])
    c0, c1, fc = axis(w, low.shape[1])
    fc = fc[None, :, None]
    horiz = low[:, c0] * (1 - fc) + low[:, c1] * fc
    img = np.rint(horiz[r0] * (1 - fr)[:, None, None] + horiz[r1] * fr[:, None, None])
    yy, xx = np.mgrid[0:h, 0:w]
    for (r, c, hr, wr, ca, sa, kind), colour in zip(plan["shapes"], plan["colours"]):
        x, y = xx - int(c), yy - int(r)
        u, v = (x * ca + y * sa) / wr, (-x * sa + y * ca) / hr
        ext = np.ceil(np.hypot(hr, wr))
        inside = (u * u + v * v <= 1) if kind == 0 else ((np.abs(u) <= 1) & (np.abs(v) <= 1))
        img[inside & (np.abs(x) <= ext) & (np.abs(y) <= ext)] = colour
    off = plan["noise_offset"]
    noise = syn._noise_table(shape)[off:off + h * w].reshape(h, w, 1).astype(int)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_renderer_matches_numpy_twin(index):
    shape = (120, 160)
    plan = syn._scene_plan(7, "val", index, shape)
    np.testing.assert_array_equal(syn._render_image(plan, shape), _naive_render(plan, shape))


def test_ground_truth_and_points_without_painting(monkeypatch):
    """fixation_points / ground_truth draw the scene plan and the observers, never the image."""
    tr = get_dataset("synthetic", "train", preset="small", n_images=2, workers=0)
    full = [tr[i] for i in (1, 3)]  # 3 = mirror of 1

    def boom(*args, **kwargs):
        raise AssertionError("painted an image")

    monkeypatch.setattr(syn, "_render_image", boom)
    for k, i in enumerate((1, 3)):
        gt = tr.ground_truth(i)
        assert gt.image is None and not gt.is_computed("density") and not gt.is_computed("true_density")
        np.testing.assert_array_equal(tr.fixation_points(i), full[k].fixations)
        np.testing.assert_array_equal(gt.fixation_map, full[k].fixation_map)
        np.testing.assert_array_equal(gt.density, full[k].density)
        np.testing.assert_array_equal(gt.true_density, full[k].true_density)
        np.testing.assert_array_equal(gt.y48, full[k].y48)
        assert gt.meta == full[k].meta
