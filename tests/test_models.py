"""Every registered model: output shape, no NaN; Table I layer shapes, parameter counts; baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from salbench.data.record import Record
from salbench.models import create_model, list_models

REPO = Path(__file__).resolve().parents[1]


def make_record(seed=0, shape=(60, 80), true_density=True, n_fix=30) -> Record:
    rng = np.random.default_rng(seed)
    h, w = shape
    fix = np.stack([rng.integers(0, h, n_fix), rng.integers(0, w, n_fix)], 1).astype(np.int64)
    fmap = np.zeros(shape, bool)
    fmap[fix[:, 0], fix[:, 1]] = True
    td = rng.random(shape)
    return Record(
        name=f"img{seed}.jpg", image=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), fixations=fix,
        observers=None, fixation_map=fmap, density=fmap.astype(float),
        x96=rng.random((3, 96, 96), dtype=np.float32), y48=rng.random((48, 48), dtype=np.float32),
        true_density=(td / td.sum()) if true_density else None,
    )


@pytest.fixture(scope="module")
def records():
    return [make_record(i) for i in range(3)]


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_forward_shape_and_finite(name, records):
    model = create_model(name)
    out = model.predict(records)
    h, w = model.output_size or records[0].shape
    assert out.shape == (3, h, w) and out.dtype == np.float32
    assert np.isfinite(out).all()
    for key in ("input_size", "output_size", "trained_on", "published_scores"):
        assert key in model.card, f"{name} card lacks {key}"
    assert model.needs_training is name.startswith("shallow_")


def test_repository_model_cards_match_the_code():
    from salbench.models.cards import builtin_cards

    for name, card in builtin_cards().items():
        path = REPO / "models" / f"{name}.json"
        assert path.is_file(), f"missing {path}; run python -m salbench.models.cards models"
        assert json.loads(path.read_text()) == json.loads(json.dumps(card)), f"{path} is stale"
    assert (REPO / "models" / "README.md").is_file()


def test_published_scores_are_the_reports():
    from salbench.models.cards import builtin_cards

    cards = builtin_cards()
    mse = cards["shallow_mse"]["published_scores"]
    rows = {(r["CC"], r["AUC_shuffled"], r["AUC_Borji"]) for r in mse}
    assert rows == {(0.58, 0.67, 0.83), (0.65, 0.55, 0.71), (0.67, 0.56, 0.72)}
    (kl,) = cards["shallow_kl"]["published_scores"]
    assert (kl["CC"], kl["AUC_shuffled"], kl["AUC_Borji"]) == (0.76, 0.60, 0.74)


# -- the shallow network -------------------------------------------------------------------


def _layer_shapes(net, x):
    """Output shape after each stage, hooked independently of forward()."""
    shapes = {}
    for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "fc1", "fc2"):
        getattr(net, name).register_forward_hook(lambda m, i, o, n=name: shapes.__setitem__(n, tuple(o.shape)))
    net(x)
    return shapes


def test_table_one_layer_sizes_and_parameter_count():
    import torch

    from salbench.models.shallow import build_network

    net = build_network(batch_norm=False)
    with torch.no_grad():
        shapes = _layer_shapes(net, torch.zeros(2, 3, 96, 96))
    assert shapes == {
        "conv1": (2, 32, 96, 96), "pool1": (2, 32, 48, 48), "conv2": (2, 64, 48, 48), "pool2": (2, 64, 23, 23),
        "conv3": (2, 128, 23, 23), "pool3": (2, 128, 11, 11), "fc1": (2, 4608), "fc2": (2, 2304),
    }
    # Independent arithmetic: (k*k*cin + 1) * cout per conv, (in + 1) * out per FC.
    expected = (5 * 5 * 3 + 1) * 32 + (3 * 3 * 32 + 1) * 64 + (3 * 3 * 64 + 1) * 128 \
        + (11 * 11 * 128 + 1) * 4608 + (2304 + 1) * 2304
    assert expected == 76_778_816
    assert sum(p.numel() for p in net.parameters()) == expected
    kl = build_network(batch_norm=True)
    assert sum(p.numel() for p in kl.parameters()) == expected + 2 * (32 + 64 + 128)
    assert [type(m).__name__ for m in (kl.bn1, kl.bn2, kl.bn3)] == ["BatchNorm2d"] * 3


def test_initialisation_is_the_reports():
    from salbench.models.shallow import build_network

    net = build_network(seed=3)
    w = net.fc1.weight.detach().numpy()
    assert abs(w.mean()) < 1e-4 and abs(w.std() - 0.01) < 1e-4
    for m in (net.conv1, net.conv2, net.conv3, net.fc1, net.fc2):
        assert np.all(m.bias.detach().numpy() == np.float32(0.1))
    again = build_network(seed=3)
    assert np.array_equal(again.conv1.weight.detach().numpy(), net.conv1.weight.detach().numpy())


def _literal_table_one(net, x):
    """Table I read literally, in NumPy-obvious torch ops: ReLU *before* pooling, maxout by pairs."""
    import torch.nn.functional as F

    x = F.max_pool2d(F.relu(F.conv2d(x, net.conv1.weight, net.conv1.bias, padding=2)), 2, 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, net.conv2.weight, net.conv2.bias, padding=1)), 3, 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, net.conv3.weight, net.conv3.bias, padding=1)), 3, 2)
    h = F.linear(x.reshape(len(x), -1), net.fc1.weight, net.fc1.bias)
    pairs = h.reshape(len(x), 2304, 2)
    h = pairs[..., 0].maximum(pairs[..., 1])  # maxout over adjacent entries (2i, 2i+1)
    return F.linear(h, net.fc2.weight, net.fc2.bias)


def test_forward_and_gradients_equal_the_literal_table_one_order():
    import torch

    from salbench.models.shallow import build_network

    net = build_network(seed=1)
    with torch.no_grad():  # a larger init so ReLUs are not all positive (bias 0.1 alone would be)
        for m in (net.conv1, net.conv2, net.conv3):
            m.weight.mul_(30)
            m.bias.normal_(0, 0.2)
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    a = net(x)
    b = _literal_table_one(net, x)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    ga = torch.autograd.grad(a.square().sum(), [net.conv1.weight, net.fc1.weight])
    gb = torch.autograd.grad(b.square().sum(), [net.conv1.weight, net.fc1.weight])
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-6)


def test_kl_prediction_is_a_distribution_and_mse_is_raw(records):
    import torch

    model = create_model("shallow_kl")
    kl = model.predict(records)
    with torch.no_grad():
        scores = model.net.eval()(torch.from_numpy(np.stack([r.x96 for r in records]))).numpy()
    e = np.exp(scores - scores.max(1, keepdims=True))
    np.testing.assert_allclose(kl.reshape(3, -1), e / e.max(1, keepdims=True), rtol=1e-5)
    assert (kl > 0).all() and np.allclose(kl.max(axis=(1, 2)), 1)


def test_shallow_rejects_bad_inputs():
    m = create_model("shallow_mse")
    with pytest.raises(ValueError, match=r"\(N, 3, 96, 96\)"):
        m.predict_arrays(np.zeros((2, 96, 96, 3), np.float32))
    with pytest.raises(ValueError, match="empty"):
        m.predict([])
    with pytest.raises(ValueError, match="variant"):
        from salbench.models.shallow import ShallowModel

        ShallowModel("l2")


def test_bad_checkpoint_paths_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        create_model("shallow_kl", checkpoint=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        create_model("shallow_kl", checkpoint=tmp_path)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        create_model("shallow_kl", checkpoint=junk)


# -- baselines -------------------------------------------------------------------------------


def test_uniform_is_constant_and_sums_to_one(records):
    out = create_model("uniform", output_size=(6, 8)).predict(records)
    assert out.shape == (3, 6, 8)
    np.testing.assert_array_equal(out, 1)


def test_center_bias_fit_recovers_fixation_moments():
    rng = np.random.default_rng(5)
    h, w = 300, 400
    recs = []
    for i in range(4):
        r = np.clip(rng.normal(0.3 * h, 0.1 * h, 500), 0, h - 1).astype(np.int64)
        c = np.clip(rng.normal(0.6 * w, 0.15 * w, 500), 0, w - 1).astype(np.int64)
        rec = make_record(i, shape=(h, w))
        rec.fixations = np.stack([r, c], 1)
        recs.append(rec)
    m = create_model("center_bias", output_size=(30, 40)).fit(recs)
    pts = np.concatenate([(rc.fixations + 0.5) / [h, w] for rc in recs])
    np.testing.assert_allclose(m.mean, pts.mean(0), rtol=1e-10)
    np.testing.assert_allclose(m.std, pts.std(0), rtol=1e-10)
    out = m.predict(recs[:1])[0]
    assert np.unravel_index(out.argmax(), out.shape) == (int(m.mean[0] * 30), int(m.mean[1] * 40))
    assert out.max() == 1


def test_center_bias_default_save_and_load(tmp_path, records):
    from salbench.models.baselines import OSIE_CENTER_MEAN

    m = create_model("center_bias")
    assert m.mean == OSIE_CENTER_MEAN
    m.fit(records)
    path = m.save(tmp_path / "cb.json")
    again = create_model("center_bias", checkpoint=path)
    np.testing.assert_array_equal(again.predict(records), m.predict(records))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a center_bias checkpoint"):
        create_model("center_bias", checkpoint=tmp_path / "bad.json")


def test_gold_returns_true_density_and_refuses_other_data(records):
    out = create_model("gold").predict(records)
    td = np.stack([r.true_density for r in records])
    np.testing.assert_allclose(out, td / td.max(axis=(1, 2), keepdims=True), rtol=1e-6)
    with pytest.raises(ValueError, match="no true_density.*synthetic"):
        create_model("gold").predict([make_record(9, true_density=False)])


def test_gold_output_size_is_the_block_mean(records):
    h, w = records[0].shape
    if h % 4 or w % 4:
        pytest.skip("fixture records not divisible by 4")
    out = create_model("gold", output_size=(h // 4, w // 4)).predict(records)
    for o, r in zip(out, records):
        td = np.asarray(r.true_density, dtype=np.float64)
        naive = np.array([[td[4 * i:4 * i + 4, 4 * j:4 * j + 4].mean() for j in range(w // 4)] for i in range(h // 4)])
        np.testing.assert_allclose(o, naive / naive.max(), rtol=1e-6)
