"""Mirror images: exact flips of records and training arrays; no double mirroring."""

from __future__ import annotations

import numpy as np
import pytest

from salbench.data.mirror import base_indices, find_mirror_pairs, mirror_arrays, mirror_record, mirrored_name
from salbench.data.record import Record


def make_record(seed=0, shape=(30, 41)):
    rng = np.random.default_rng(seed)
    h, w = shape
    fix = np.stack([rng.integers(0, h, 25), rng.integers(0, w, 25)], 1).astype(np.int64)
    fix[0] = (0, 0)
    fix[1] = (h - 1, w - 1)
    fmap = np.zeros(shape, bool)
    fmap[fix[:, 0], fix[:, 1]] = True
    td = rng.random(shape)
    return Record(
        name=f"dir/img{seed}.jpg", image=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), fixations=fix,
        observers=rng.integers(0, 5, 25), fixation_map=fmap, density=rng.random(shape),
        x96=rng.random((3, 96, 96), dtype=np.float32), y48=rng.random((48, 48), dtype=np.float32),
        y_original=rng.integers(0, 256, shape, dtype=np.uint8), true_density=td / td.sum(), meta={"k": 1},
    )


def test_mirror_record_is_the_exact_horizontal_flip():
    r = make_record()
    m = mirror_record(r)
    h, w = r.shape
    # pixel by pixel, written out rather than with the flip the code uses
    for row in (0, 7, h - 1):
        for col in (0, 5, w - 1):
            assert np.array_equal(m.image[row, col], r.image[row, w - 1 - col])
            assert m.density[row, col] == r.density[row, w - 1 - col]
            assert m.fixation_map[row, col] == r.fixation_map[row, w - 1 - col]
            assert m.y_original[row, col] == r.y_original[row, w - 1 - col]
            assert m.true_density[row, col] == r.true_density[row, w - 1 - col]
    for c in range(3):
        for j in (0, 40, 95):
            assert np.array_equal(m.x96[c, :, j], r.x96[c, :, 95 - j])
    for j in (0, 20, 47):
        assert np.array_equal(m.y48[:, j], r.y48[:, 47 - j])
    assert [tuple(p) for p in m.fixations] == [(row, w - 1 - col) for row, col in r.fixations]
    assert m.fixations[0].tolist() == [0, w - 1] and m.fixations[1].tolist() == [h - 1, 0]
    assert np.array_equal(m.observers, r.observers)
    # the fixation map is still the map of the fixation points
    fmap = np.zeros(r.shape, bool)
    fmap[m.fixations[:, 0], m.fixations[:, 1]] = True
    assert np.array_equal(fmap, m.fixation_map)
    assert m.name == "dir/img0_mirror.jpg" and m.meta == {"k": 1, "mirrored": True, "mirror_of": "dir/img0.jpg"}
    assert np.array_equal(r.fixations[0], [0, 0])  # the original is untouched
    twice = mirror_record(m)
    for key in ("image", "density", "fixation_map", "fixations", "x96", "y48", "y_original", "true_density"):
        assert np.array_equal(getattr(twice, key), getattr(r, key)), key


def test_mirror_record_keeps_missing_fields_missing():
    r = make_record()
    r = Record(name="a.png", image=None, fixations=np.zeros((0, 2), np.int64), observers=None,
               fixation_map=r.fixation_map, density=r.density, x96=r.x96, y48=r.y48)
    m = mirror_record(r)
    assert m.image is None and m.observers is None and m.y_original is None and m.true_density is None
    assert m.fixations.shape == (0, 2)
    assert mirrored_name("x") == "x_mirror"


def test_synthetic_rendered_mirror_matches_the_record_flip():
    """The built-in dataset renders its mirrors; they are the same image and fixations."""
    from salbench.data import get_dataset

    ds = get_dataset("synthetic", "train", preset="small", n_images=1)
    base, rendered = ds[0], ds[1]
    m = mirror_record(base)
    assert np.array_equal(m.image, rendered.image) and np.array_equal(m.fixations, rendered.fixations)
    assert np.array_equal(m.fixation_map, rendered.fixation_map)
    np.testing.assert_allclose(m.density, rendered.density, atol=1e-12)  # same blur, mirrored summation order
    assert np.abs(m.x96 - rendered.x96).max() <= 1 / 255 + 1e-7  # downscale then flip vs flip then downscale
    idx, note = base_indices(ds)
    assert list(idx) == [0] and "rendered mirrors" in note


def test_mirror_arrays_appends_exact_flips():
    rng = np.random.default_rng(0)
    x, y = rng.random((3, 3, 96, 96), dtype=np.float32), rng.random((3, 48, 48), dtype=np.float32)
    xm, ym = mirror_arrays(x, y)
    assert xm.shape == (6, 3, 96, 96) and ym.shape == (6, 48, 48)
    assert np.array_equal(xm[:3], x) and np.array_equal(ym[:3], y)
    for i in range(3):
        assert np.array_equal(xm[3 + i, :, :, 0], x[i, :, :, 95]) and np.array_equal(ym[3 + i, :, 0], y[i, :, 47])
    with pytest.raises(ValueError, match="mirror_arrays expects"):
        mirror_arrays(x[0], y)


@pytest.mark.parametrize("layout", ["appended", "interleaved", "shuffled", "appended-near"])
def test_sets_that_already_hold_mirrors_are_not_mirrored_twice(layout):
    """salicon-pkl's train.pkl is said to hold 10000 images and their mirrors."""
    rng = np.random.default_rng(1)
    base = (rng.integers(0, 256, (5, 3, 96, 96)) / 255).astype(np.float32)
    flips = base[..., ::-1].copy()
    if layout == "appended-near":  # mirrors made at full resolution and downscaled again
        flips = np.clip(flips + rng.choice([-1, 0, 1], flips.shape) / 255, 0, 1).astype(np.float32)
    if layout.startswith("appended"):
        x = np.concatenate([base, flips])
    elif layout == "interleaved":
        x = np.stack([base, flips], 1).reshape(10, 3, 96, 96)
    else:
        order = rng.permutation(10)
        x = np.concatenate([base, flips])[order]
    partner = find_mirror_pairs(x)
    assert (partner >= 0).all() and all(partner[partner[i]] == i for i in range(10))
    keep, note = base_indices(x=x)
    assert len(keep) == 5 and "5 of 10 images are mirrors" in note
    if layout != "appended-near":  # the kept images and their flips are exactly the set given
        kept = x[keep]
        again = {k.tobytes() for k in np.concatenate([kept, np.ascontiguousarray(kept[..., ::-1])])}
        assert again == {k.tobytes() for k in x}


def test_sets_without_mirrors_are_all_flipped():
    rng = np.random.default_rng(2)
    x = rng.random((4, 3, 96, 96), dtype=np.float32)
    x[3] = x[3] + x[3][..., ::-1]  # a symmetric image is its own mirror, not a pair
    keep, note = base_indices(x=x)
    assert list(keep) == [0, 1, 2, 3] and "no mirror pairs" in note
    with pytest.raises(ValueError, match="needs a dataset"):
        base_indices()


def test_training_mirrors_the_data_once(tmp_path):
    """train() with the default recipe trains on images + flips; data holding mirrors are not doubled."""
    from salbench.training import train

    rng = np.random.default_rng(3)
    x, y = rng.random((3, 3, 96, 96), dtype=np.float32), rng.random((3, 48, 48), dtype=np.float32)
    res = train("shallow_mse", (x, y), out=tmp_path / "a", preset="quick", epochs=1, batch_size=6, device="cpu",
                progress=False)
    ident = res.summary["config"]["train_data"]
    assert (ident["n_base"], ident["n_used"]) == (3, 6) and "all are flipped" in ident["mirror"]
    xm, ym = mirror_arrays(x, y)
    res = train("shallow_mse", (xm, ym), out=tmp_path / "b", preset="quick", epochs=1, batch_size=6, device="cpu",
                progress=False)
    ident = res.summary["config"]["train_data"]
    assert (ident["n_base"], ident["n_used"]) == (3, 6) and "not mirrored twice" in ident["mirror"]
    res = train("shallow_mse", (x, y), out=tmp_path / "c", preset="quick", epochs=1, batch_size=6, device="cpu",
                progress=False, mirror=False)
    assert res.summary["config"]["train_data"]["n_used"] == 3


def test_salicon_pkl_train_with_mirrors_is_not_mirrored_twice(tmp_path, monkeypatch):
    """The coursework train.pkl: 10000 images then their mirrors (here 3 + 3, as uint8)."""
    import pickle

    from salbench.training import train

    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(4)
    base = [{"X": rng.integers(0, 256, (3, 96, 96), dtype=np.uint8), "y": rng.integers(0, 256, (48, 48), dtype=np.uint8),
             "file_name": f"COCO_{i}.jpg"} for i in range(3)]
    mirrors = [{"X": np.ascontiguousarray(it["X"][..., ::-1]), "y": np.ascontiguousarray(it["y"][..., ::-1]),
                "file_name": f"COCO_{i}_mirror.jpg"} for i, it in enumerate(base)]
    (tmp_path / "train.pkl").write_bytes(pickle.dumps(base + mirrors))
    res = train("shallow_mse", "salicon-pkl", data_dir=tmp_path, val_split=None, out=tmp_path / "run",
                preset="quick", epochs=1, batch_size=6, device="cpu", progress=False)
    ident = res.summary["config"]["train_data"]
    assert ident["name"] == "salicon-pkl" and ident["n_files"] == 6
    assert (ident["n_base"], ident["n_used"]) == (3, 6) and "3 of 6 images are mirrors" in ident["mirror"]


def test_mirror_record_keeps_lazy_fields_lazy():
    from salbench.data.record import Lazy

    r = make_record()
    density = r.density

    def make_density(record):
        return density

    lazy = r.replace(density=Lazy(make_density))
    m = mirror_record(lazy)
    assert not m.is_computed("density") and not lazy.is_computed("density")
    assert np.array_equal(m.density, density[:, ::-1])
    assert m.is_computed("density")
