"""Training: losses against NumPy, one step that learns, checkpoints, bit-for-bit resume, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salbench.training import default_checkpoint_path, get_recipe, train
from salbench.training.loop import loss_function, make_trainer


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 3, 96, 96), dtype=np.float32), rng.random((n, 48, 48), dtype=np.float32)


def test_full_recipes_are_the_reports():
    r = get_recipe("shallow_mse", "full")
    assert (r.epochs, r.batch_size, r.lr_start, r.lr_end, r.momentum, r.nesterov, r.weight_decay) == (
        1000, 128, 0.05, 0.0001, 0.9, True, 0.0005)
    assert (r.val_every, r.checkpoint_every, r.predict_every) == (2, 50, 200)
    assert r.lr(0) == 0.05 and abs(r.lr(999) - 0.0001) < 1e-15
    assert abs(r.lr(500) - (0.05 + (0.0001 - 0.05) * 500 / 999)) < 1e-15
    kl = get_recipe("shallow_kl", "full")
    assert kl.epochs >= 45 and kl.keep_best
    with pytest.raises(ValueError, match="no training recipe"):
        get_recipe("uniform", "full")
    with pytest.raises(ValueError, match="precision"):
        get_recipe("shallow_kl", "quick", precision="fp8")


def test_losses_match_numpy():
    import torch

    rng = np.random.default_rng(1)
    out, y = rng.normal(size=(3, 2304)), rng.random((3, 2304))
    t_out, t_y = torch.tensor(out, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    mse = float(loss_function("mse")(t_out, t_y))
    np.testing.assert_allclose(mse, np.mean((out - y) ** 2), rtol=1e-5)
    q = np.exp(out) / np.exp(out).sum(1, keepdims=True)  # softmax(pred)
    p = np.exp(y) / np.exp(y).sum(1, keepdims=True)  # softmax(target)
    kl = float(loss_function("kl")(t_out, t_y))
    np.testing.assert_allclose(kl, np.sum(p * np.log(p / q)) / 3, rtol=1e-4)  # batchmean


@pytest.mark.parametrize("variant", ["mse", "kl"])
def test_one_seeded_step_decreases_the_loss(variant):
    import torch

    x, y = data(8)
    recipe = get_recipe(f"shallow_{variant}", "quick", batch_size=8)
    tr = make_trainer(variant, recipe, x, y, seed=0)
    loss = loss_function(variant)
    tr.net.train()
    with torch.no_grad():
        before = float(loss(tr.net(tr.X), tr.Y))
    logged = tr.train_epoch(0)
    assert len(logged) == 1 and abs(float(logged[0][1]) - before) < 1e-5 * max(1, before)
    with torch.no_grad():
        after = float(loss(tr.net(tr.X), tr.Y))
    assert np.isfinite(after) and after < before


def _tensors(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


def test_checkpoint_round_trip_and_create_model(tmp_path):
    import torch

    from salbench.models import create_model
    from salbench.training import load_checkpoint, save_checkpoint

    x, y = data(4)
    recipe = get_recipe("shallow_kl", "quick", batch_size=4)
    tr = make_trainer("kl", recipe, x, y, seed=0)
    tr.train_epoch(0)
    ck = save_checkpoint(tmp_path, "epoch-0001", tr.net, tr.optimizer, {"epoch": 1}, {"model": "shallow_kl"})
    assert sorted(p.name for p in ck.iterdir()) == ["model.safetensors", "optimizer.safetensors", "state.json"]
    assert json.loads((tmp_path / "latest.json").read_text())["name"] == "epoch-0001"

    fresh = make_trainer("kl", recipe, x, y, seed=1)
    state = load_checkpoint(ck, fresh.net, fresh.optimizer)
    assert state["epoch"] == 1
    for (ka, a), (kb, b) in zip(tr.net.state_dict().items(), fresh.net.state_dict().items()):
        assert ka == kb and torch.equal(a, b)
    for p, q in zip(tr.net.parameters(), fresh.net.parameters()):
        assert torch.equal(tr.optimizer.state[p]["momentum_buffer"], fresh.optimizer.state[q]["momentum_buffer"])

    model = create_model("shallow_kl", checkpoint=ck)
    assert not model.needs_training
    sm = torch.softmax(tr.outputs(tr.X), 1)
    expected = (sm / sm.amax(1, keepdim=True)).numpy().reshape(-1, 48, 48)
    np.testing.assert_allclose(model.predict_arrays(x), expected, rtol=1e-5, atol=1e-9)
    with pytest.raises(ValueError, match="weights for model 'shallow_kl', not 'shallow_mse'"):
        create_model("shallow_mse", checkpoint=ck)


class Killed(Exception):
    pass


def test_resume_after_kill_is_bit_for_bit(tmp_path):
    x, y = data(8)
    xv, yv = data(4, seed=1)
    kw = dict(val=(xv, yv), epochs=2, batch_size=4, checkpoint_every=1, keep_best=False, keep_last=None,
              log_every=1, device="cpu", seed=7, progress=False)
    straight = train("shallow_kl", (x, y), out=tmp_path / "a", **kw)

    def kill(epoch):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train("shallow_kl", (x, y), out=tmp_path / "b", on_epoch_end=kill, **kw)
    # A half-written checkpoint left by the kill must not matter.
    (tmp_path / "b" / "checkpoints" / ".epoch-0002.partial").mkdir()
    with pytest.raises(ValueError, match="already holds a training run"):
        train("shallow_kl", (x, y), out=tmp_path / "b", **kw)
    with pytest.raises(ValueError, match="recipe differ"):
        train("shallow_kl", (x, y), out=tmp_path / "b", resume=True, **{**kw, "epochs": 3})
    resumed = train("shallow_kl", (x, y), out=tmp_path / "b", resume=True, **kw)

    for name in ("model.safetensors", "optimizer.safetensors"):
        a, b = _tensors(straight.checkpoint / name), _tensors(resumed.checkpoint / name)
        assert a.keys() == b.keys()
        for k in a:
            assert np.array_equal(a[k], b[k]), f"{name}:{k} differs after resume"
    log_a = [json.loads(ln) for ln in (straight.out / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(ln) for ln in (resumed.out / "log.jsonl").read_text().splitlines()]
    assert log_a == log_b and len(log_a) == 2 * (2 + 1)
    assert resumed.summary["images_seen"] == 16 and resumed.summary["train_images_per_s"] > 0
    assert resumed.summary["epoch"] == 2


def test_default_checkpoint_path_uses_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path))
    p = default_checkpoint_path("shallow_kl", "synthetic")
    assert p == tmp_path / "runs" / "shallow_kl" / "synthetic-quick" / "checkpoints" / "final"


def test_train_refuses_bad_input(tmp_path):
    x, y = data(4)
    with pytest.raises(ValueError, match="not trainable"):
        train("uniform", (x, y), out=tmp_path)
    with pytest.raises(ValueError, match=r"inputs must be \(N, 3, 96, 96\)"):
        train("shallow_mse", (x[:, :, :10], y), out=tmp_path, progress=False)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train("shallow_mse", (bad, y), out=tmp_path, progress=False)


def test_cli_train_on_synthetic(tmp_path, monkeypatch, capsys):
    from salbench.cli import main

    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    rc = main(["train", "shallow_mse", "--dataset", "synthetic", "--option", "n_images=4", "--val-split", "none",
               "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--out", str(tmp_path / "run"),
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "img/s" in out and (tmp_path / "run" / "checkpoints" / "final" / "model.safetensors").is_file()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["train_data"]["name"] == "synthetic"
    rc = main(["train", "shallow_mse", "--dataset", "synthetic", "--out", str(tmp_path / "run"), "--no-progress"])
    assert rc == 2 and "already holds a training run" in capsys.readouterr().err
