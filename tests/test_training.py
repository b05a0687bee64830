"""Training: recipes, losses against NumPy, BatchNorm statistics, checkpoint selection and hashing,
bit-for-bit resume, clear errors, CLI."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from salbench.training import chosen_checkpoint, default_checkpoint_path, get_recipe, train
from salbench.training.loop import batchnorm_statistics, cc_rows, loss_function, make_trainer


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 3, 96, 96), dtype=np.float32), rng.random((n, 48, 48), dtype=np.float32)


def test_full_recipes_are_the_reports():
    r = get_recipe("shallow_mse", "full")
    assert (r.epochs, r.batch_size, r.lr_start, r.lr_end, r.nesterov, r.weight_decay) == (
        1000, 128, 0.05, 0.0001, True, 0.0005)
    assert r.momentum == 0.9  # our choice: the report names Nesterov momentum without a value
    assert (r.val_every, r.checkpoint_every, r.predict_every) == (2, 50, 200)
    assert (r.target, r.mirror, r.fc2_bias, r.select) == ("map", True, "report", "final")
    assert r.lr(0) == 0.05 and abs(r.lr(999) - 0.0001) < 1e-15
    assert abs(r.lr(500) - (0.05 + (0.0001 - 0.05) * 500 / 999)) < 1e-15
    kl = get_recipe("shallow_kl", "full")
    assert kl.epochs >= 45 and kl.select == "val_cc48" and kl.target == "softmax" and kl.fc2_bias == "report"
    assert (kl.batch_size, kl.lr_start, kl.mirror) == (128, 0.05, True)
    dist = get_recipe("shallow_kl", "distribution")
    assert (dist.target, dist.fc2_bias, dist.batch_size, dist.lr_start, dist.lr_end, dist.epochs, dist.mirror) == (
        "distribution", "mean_map", 16, 0.01, 0.0001, 10, True)
    assert get_recipe("shallow_kl", "quick").target == "distribution"
    from salbench.training import recipes

    assert "verbatim" not in recipes.__doc__ and "0.9 is our choice" in recipes.__doc__
    with pytest.raises(ValueError, match="no training recipe"):
        get_recipe("uniform", "full")
    with pytest.raises(ValueError, match="no training recipe.*presets of shallow_mse: full, quick"):
        get_recipe("shallow_mse", "distribution")
    with pytest.raises(ValueError, match="precision"):
        get_recipe("shallow_kl", "quick", precision="fp8")
    with pytest.raises(ValueError, match="target 'distribution' does not apply to shallow_mse"):
        get_recipe("shallow_mse", "full", target="distribution")
    with pytest.raises(ValueError, match="batch-size must be a positive integer, got 0"):
        get_recipe("shallow_kl", "quick", batch_size=0)
    with pytest.raises(ValueError, match="unknown recipe option"):
        get_recipe("shallow_kl", "quick", keep_best=True)


def test_losses_match_numpy():
    import torch

    rng = np.random.default_rng(1)
    out, y = rng.normal(size=(3, 2304)), rng.random((3, 2304))
    y[2] = 0  # an empty map: the distribution target is uniform
    t_out, t_y = torch.tensor(out, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    mse = float(loss_function("mse")(t_out, t_y))
    np.testing.assert_allclose(mse, np.mean((out - y) ** 2), rtol=1e-5)
    q = np.exp(out) / np.exp(out).sum(1, keepdims=True)  # softmax(pred)
    p = np.exp(y) / np.exp(y).sum(1, keepdims=True)  # softmax(target), the report's
    kl = float(loss_function("kl")(t_out, t_y))
    np.testing.assert_allclose(kl, np.sum(p * np.log(p / q)) / 3, rtol=1e-4)  # batchmean
    assert float(loss_function("kl", "softmax")(t_out, t_y)) == kl
    d = y / np.where(y.sum(1, keepdims=True) > 0, y.sum(1, keepdims=True), 1)
    d[2] = 1 / 2304
    terms = np.where(d > 0, d * np.log(np.where(d > 0, d, 1) / q), 0)
    np.testing.assert_allclose(float(loss_function("kl", "distribution")(t_out, t_y)), terms.sum() / 3, rtol=1e-4)
    with pytest.raises(ValueError, match="unknown loss"):
        loss_function("mse", "distribution")


def test_softmax_target_is_nearly_flat_distribution_target_is_not():
    """Why the distribution target exists: softmax of a map in [0, 1] has max/min <= e."""
    import torch

    y = torch.zeros(1, 2304)
    y[0, :100] = 1.0  # the most peaked map possible
    soft = torch.softmax(y, 1)
    assert float(soft.max() / soft.min()) == pytest.approx(np.e, rel=1e-6)
    from salbench.training.loop import target_distribution

    dist = target_distribution(y)
    assert float(dist.sum()) == pytest.approx(1.0) and float(dist.min()) == 0.0


def test_cc_rows_matches_numpy_and_constant_rows_score_zero():
    import torch

    rng = np.random.default_rng(3)
    a, b = rng.random((4, 50)), rng.random((4, 50))
    a[3] = 0.25
    got = cc_rows(torch.tensor(a), torch.tensor(b)).numpy()
    for i in range(3):
        np.testing.assert_allclose(got[i], np.corrcoef(a[i], b[i])[0, 1], rtol=1e-12)
    assert got[3] == 0.0


@pytest.mark.parametrize("variant", ["mse", "kl"])
def test_one_seeded_step_decreases_the_loss(variant):
    import torch

    x, y = data(8)
    recipe = get_recipe(f"shallow_{variant}", "quick", batch_size=8, fc2_bias="report")
    tr = make_trainer(variant, recipe, x, y, seed=0)
    loss = loss_function(variant, recipe.target)
    tr.net.train()
    with torch.no_grad():
        before = float(loss(tr.net(tr.X), tr.Y))
    logged = tr.train_epoch(0)
    assert len(logged) == 1 and abs(float(logged[0][1]) - before) < 1e-5 * max(1, before)
    with torch.no_grad():
        after = float(loss(tr.net(tr.X), tr.Y))
    assert np.isfinite(after) and after < before


def test_mean_map_bias_starts_at_the_best_constant_prediction():
    import torch

    x, y = data(6)
    tr = make_trainer("kl", get_recipe("shallow_kl", "distribution"), x, y, seed=0)
    mean = (y.reshape(6, -1) / y.reshape(6, -1).sum(1, keepdims=True)).mean(0)
    np.testing.assert_allclose(torch.softmax(tr.net.fc2.bias.detach().double(), 0).numpy(), mean, rtol=1e-5)
    mse = make_trainer("mse", get_recipe("shallow_mse", "quick", fc2_bias="mean_map"), x, y, seed=0)
    np.testing.assert_allclose(mse.net.fc2.bias.detach().numpy(), y.reshape(6, -1).mean(0), rtol=1e-6)


def _bn_inputs(net, X):
    """Every BatchNorm layer's input over X in eval mode, by hooks (independent of the code under test)."""
    import torch
    from torch import nn

    seen = {}
    hooks = [m.register_forward_pre_hook(lambda mod, inp, k=k: seen.setdefault(k, []).append(inp[0].detach().double()))
             for k, m in enumerate(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))]
    net.eval()
    with torch.no_grad():
        net(X)
    for h in hooks:
        h.remove()
    return [torch.cat(seen[k]) for k in sorted(seen)]


def test_batchnorm_statistics_at_validation_are_the_training_datas():
    """After training steps, validation uses each BatchNorm layer's exact eval-mode input statistics
    on the fixed training subset (the momentum averages PyTorch keeps lag far behind)."""
    import torch

    x, y = data(12)
    recipe = get_recipe("shallow_kl", "quick", batch_size=4, monitor_images=6)
    tr = make_trainer("kl", recipe, x, y, x[:4], y[:4], seed=0)
    tr.train_epoch(0)
    stale = [m.running_var.clone() for m in (tr.net.bn1, tr.net.bn2, tr.net.bn3)]
    m = tr.validate()
    assert set(m) == {"train_loss", "train_cc48", "val_loss", "val_cc48"}
    assert list(tr.monitor) == [0, 2, 4, 6, 8, 10]  # evenly spaced, fixed
    inputs = _bn_inputs(tr.net, tr.X[torch.from_numpy(tr.monitor)])
    for bn, z, old in zip((tr.net.bn1, tr.net.bn2, tr.net.bn3), inputs, stale):
        mean, var = z.mean((0, 2, 3)), z.var((0, 2, 3), unbiased=False)
        np.testing.assert_allclose(bn.running_mean.double().numpy(), mean.numpy(), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(bn.running_var.double().numpy(), var.numpy(), rtol=1e-4, atol=1e-9)
        assert not torch.allclose(old, bn.running_var)  # the running averages were not these
    # Batching does not change them (the merge of per-batch summaries is exact).
    again = batchnorm_statistics(tr.net, tr.X[torch.from_numpy(tr.monitor)], batch_size=4)
    np.testing.assert_allclose(again[2][1].numpy(), inputs[2].var((0, 2, 3), unbiased=False).numpy(), rtol=1e-5)
    # "running" keeps PyTorch's averages: validation does not touch them.
    tr2 = make_trainer("kl", recipe.replace(bn_stats="running"), x, y, x[:4], y[:4], seed=0)
    tr2.train_epoch(0)
    before = tr2.net.bn1.running_var.clone()
    tr2.validate()
    assert torch.equal(before, tr2.net.bn1.running_var)


def test_train_loss_is_measured_like_validation(tmp_path):
    """Logged train_eval and val entries are the same measurement: on identical data they are equal."""
    x, y = data(8)
    res = train("shallow_kl", (x, y), val=(x, y), out=tmp_path / "r", preset="quick", epochs=1, batch_size=4,
                mirror=False, monitor_images=8, device="cpu", progress=False)
    log = [json.loads(ln) for ln in (res.out / "log.jsonl").read_text().splitlines()]
    (tr,) = [e for e in log if e["kind"] == "train_eval"]
    (va,) = [e for e in log if e["kind"] == "val"]
    assert tr["loss"] == pytest.approx(va["loss"], rel=1e-6) and tr["cc48"] == pytest.approx(va["cc48"], rel=1e-6)


def test_checkpoint_selected_by_recorded_validation_cc(tmp_path, monkeypatch):
    """best = the epoch with the highest recorded val CC48, not the lowest loss; the run directory,
    create_model and TrainResult all designate it; history and state.json record why."""
    from salbench.models import create_model
    from salbench.models._weights import resolve_checkpoint
    from salbench.training.loop import Trainer

    script = iter([(0.9, 0.10), (0.5, 0.40), (0.2, 0.30)])  # (val_loss, val_cc48) per epoch

    def fake_validate(self):
        self.refresh_batchnorm()
        loss, cc = next(script)
        return {"train_loss": 1.0, "train_cc48": 0.0, "val_loss": loss, "val_cc48": cc}

    monkeypatch.setattr(Trainer, "validate", fake_validate)
    x, y = data(4)
    periodic = {}  # the quick recipe keeps one periodic checkpoint, and none once the run completes

    def grab(epoch):
        periodic[epoch] = _tensors(tmp_path / "r" / "checkpoints" / f"epoch-{epoch:04d}" / "model.safetensors")

    res = train("shallow_kl", (x, y), val=data(2, seed=1), out=tmp_path / "r", preset="quick", epochs=3,
                batch_size=4, checkpoint_every=1, device="cpu", progress=False,
                on_epoch_end=lambda e: grab(e) if e < 3 else None)
    assert [h["val_cc48"] for h in res.summary["history"]] == [0.10, 0.40, 0.30]
    assert res.summary["best"]["epoch"] == 2  # the lowest loss (epoch 3) is not the pick
    assert res.checkpoint == res.best == tmp_path / "r" / "checkpoints" / "best"
    assert chosen_checkpoint(res.out) == res.best
    assert resolve_checkpoint(res.out) == res.best / "model.safetensors"
    state = json.loads((res.best / "state.json").read_text())
    assert state["epoch"] == 2 and state["checkpoint"] == {
        "name": "best", "epoch": 2, "rule": "highest validation CC at 48x48", "metric": "val_cc48", "value": 0.40}
    assert not (res.best / "optimizer.safetensors").exists()  # best is for evaluation, not resumption
    # The best weights are those of epoch 2's resumable checkpoint.
    a, b = _tensors(res.best / "model.safetensors"), periodic[2]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    model = create_model("shallow_kl", checkpoint=res.out)
    assert model.training["checkpoint"] == "best" and model.training["epoch"] == 2
    assert model.training["selection"] == {"rule": "highest validation CC at 48x48", "metric": "val_cc48", "value": 0.40}
    # A recipe that takes the last epoch designates final.
    script = iter([(0.9, 0.10), (0.5, 0.40)])
    res2 = train("shallow_kl", (x, y), val=data(2, seed=1), out=tmp_path / "f", preset="quick", epochs=2,
                 batch_size=4, select="final", device="cpu", progress=False)
    assert res2.best is None and res2.checkpoint == res2.final == tmp_path / "f" / "checkpoints" / "final"


def test_distribution_target_is_recorded_and_loads_back(tmp_path):
    from salbench.models import create_model

    x, y = data(4)
    res = train("shallow_kl", (x, y), val=data(2, seed=1), out=tmp_path / "r", preset="quick", epochs=1,
                batch_size=4, seed=3, device="cpu", progress=False)
    assert res.summary["config"]["recipe"]["target"] == "distribution"
    assert res.summary["config"]["train_data"]["n_used"] == 8 and res.summary["config"]["train_data"]["n_base"] == 4
    model = create_model("shallow_kl", checkpoint=res.checkpoint)
    t = model.training
    assert (t["model"], t["preset"], t["target"], t["seed"], t["epochs"]) == ("shallow_kl", "quick", "distribution", 3, 1)
    assert t["recipe"]["fc2_bias"] == "mean_map" and t["train_data"]["name"] == "arrays"
    assert "y/sum(y)" in t["label"] and "seed 3" in t["label"]
    assert model.card["training"] == t and "target / sum(target)" in model.card["loss"]
    # The weights header alone still says which target (a bare model.safetensors copied elsewhere).
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes((res.checkpoint / "model.safetensors").read_bytes())
    assert create_model("shallow_kl", checkpoint=bare).training["target"] == "distribution"
    soft = train("shallow_kl", (x, y), out=tmp_path / "s", preset="quick", epochs=1, batch_size=4,
                 target="softmax", device="cpu", progress=False, val_split=None)
    assert create_model("shallow_kl", checkpoint=soft.out).training["target"] == "softmax"


def _tensors(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_identical_weights_give_identical_checkpoint_files(tmp_path):
    """The weights file's hash identifies the model in results files: the header must not vary."""
    from salbench.training import save_checkpoint

    x, y = data(4)
    tr = make_trainer("kl", get_recipe("shallow_kl", "quick", batch_size=4), x, y, seed=0)
    meta = {"model": "shallow_kl", "trained_on": "t", "preset": "quick", "target": "distribution", "zz": "1", "aa": "2"}
    hashes = {_sha(save_checkpoint(tmp_path / f"c{i}", "final", tr.net, tr.optimizer, {"epoch": 1}, meta)
                   / "model.safetensors") for i in range(6)}
    assert len(hashes) == 1
    sd = {k: v.clone() for k, v in tr.net.state_dict().items()}  # an in-memory copy, as "best" is saved
    assert _sha(save_checkpoint(tmp_path / "d", "best", sd, None, {"epoch": 1}, meta) / "model.safetensors") in hashes


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
    # the full recipe (here 2 epochs) keeps final's weights beside best's, and every periodic checkpoint
    kw = dict(val=(xv, yv), preset="full", epochs=2, batch_size=4, checkpoint_every=1, log_every=1,
              device="cpu", seed=7, progress=False, monitor_images=4)
    straight = train("shallow_kl", (x, y), out=tmp_path / "a", **kw)

    def kill(epoch):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train("shallow_kl", (x, y), out=tmp_path / "b", on_epoch_end=kill, **kw)
    # A half-written checkpoint left by the kill must not matter, nor a best written after the
    # checkpoint resumed from (a kill between the two writes).
    (tmp_path / "b" / "checkpoints" / ".epoch-0002.partial").mkdir()
    stray = tmp_path / "b" / "checkpoints" / "best"
    shutil.copytree(tmp_path / "b" / "checkpoints" / "epoch-0001", stray, dirs_exist_ok=True)
    (stray / "state.json").write_text(json.dumps({"epoch": 99}))
    with pytest.raises(ValueError, match="already holds a training run"):
        train("shallow_kl", (x, y), out=tmp_path / "b", **kw)
    with pytest.raises(ValueError, match="recipe differ"):
        train("shallow_kl", (x, y), out=tmp_path / "b", resume=True, **{**kw, "epochs": 3})
    resumed = train("shallow_kl", (x, y), out=tmp_path / "b", resume=True, **kw)

    # Equal weights after an epoch trained from the resumed state: the momentum and RNG states were
    # restored too (a completed run keeps no optimizer state to compare).
    for ck in ("final", "best", "epoch-0001"):
        name = "model.safetensors"
        a, b = _tensors(straight.out / "checkpoints" / ck / name), _tensors(resumed.out / "checkpoints" / ck / name)
        assert a.keys() == b.keys()
        for k in a:
            assert np.array_equal(a[k], b[k]), f"{ck}/{name}:{k} differs after resume"
    assert _sha(straight.final / "model.safetensors") == _sha(resumed.final / "model.safetensors")
    log_a = [json.loads(ln) for ln in (straight.out / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(ln) for ln in (resumed.out / "log.jsonl").read_text().splitlines()]
    assert log_a == log_b and len(log_a) == 2 * (4 + 2)  # 4 batches (16 mirrored images / 4) + train_eval + val
    assert resumed.summary["images_seen"] == 32 and resumed.summary["train_images_per_s"] > 0
    assert resumed.summary["epoch"] == 2 and resumed.summary["history"] == straight.summary["history"]
    assert json.loads((resumed.best / "state.json").read_text())["epoch"] == straight.summary["best"]["epoch"]


def test_should_stop_leaves_a_resumable_labelled_partial_run(tmp_path):
    x, y = data(4)
    kw = dict(epochs=3, batch_size=4, device="cpu", progress=False, preset="quick", val_split=None)
    res = train("shallow_mse", (x, y), out=tmp_path / "r", should_stop=lambda e: e >= 1, **kw)
    assert not res.completed and res.final is None and res.summary["epoch"] == 1
    assert res.summary["planned_epochs"] == 3 and res.checkpoint.name == "epoch-0001"
    done = train("shallow_mse", (x, y), out=tmp_path / "r", resume=True, **kw)
    assert done.completed and done.summary["epoch"] == 3 and done.checkpoint == done.final


def test_truncated_state_or_optimizer_on_resume_names_the_file(tmp_path):
    x, y = data(4)
    kw = dict(epochs=2, batch_size=4, checkpoint_every=1, device="cpu", progress=False, val_split=None)

    def kill(epoch):
        raise Killed

    for broken in ("state.json", "optimizer.safetensors"):
        out = tmp_path / broken
        with pytest.raises(Killed):
            train("shallow_mse", (x, y), out=out, on_epoch_end=kill, **kw)
        f = out / "checkpoints" / "epoch-0001" / broken
        f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
        with pytest.raises(ValueError) as err:
            train("shallow_mse", (x, y), out=out, resume=True, **kw)
        msg = str(err.value)
        assert str(f) in msg and "truncated or corrupt" in msg and "\n" not in msg


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
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        train("shallow_mse", (x, y), out=tmp_path, seed=-1)
    with pytest.raises(ValueError, match="batch-size must be a positive integer"):
        train("shallow_mse", (x, y), out=tmp_path, batch_size=-5)


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "batch-size must be a positive integer, got 0"),
    (["--batch-size", "-5"], "batch-size must be a positive integer, got -5"),
    (["--seed", "-1"], "seed must be a non-negative integer, got -1"),
    (["--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["--lr-start", "-0.1"], "learning rates must be finite and > 0"),
])
def test_cli_train_refuses_bad_numbers_before_any_work(tmp_path, capsys, args, message):
    from salbench.cli import main

    # the dataset does not exist: a check that came after opening it would report that instead
    assert main(["train", "shallow_kl", "--dataset", "no-such-dataset", "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("salbench: error: ") and message in err, err
    assert not (tmp_path / "r").exists()


def test_cli_train_on_synthetic(tmp_path, monkeypatch, capsys):
    from salbench.cli import main

    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    rc = main(["train", "shallow_mse", "--dataset", "synthetic", "--option", "n_images=2", "--val-split", "none",
               "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--out", str(tmp_path / "run"),
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "img/s" in out and (tmp_path / "run" / "checkpoints" / "final" / "model.safetensors").is_file()
    assert out.startswith("recipe quick: MSE") and "checkpoint (final, epoch 1: last epoch)" in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    ident = summary["config"]["train_data"]
    assert ident["name"] == "synthetic" and ident["n_base"] == 2 and ident["n_used"] == 4
    assert "rendered mirrors" in ident["mirror"]
    rc = main(["train", "shallow_mse", "--dataset", "synthetic", "--out", str(tmp_path / "run"), "--no-progress"])
    assert rc == 2 and "already holds a training run" in capsys.readouterr().err


@pytest.mark.slow
def test_gpu_issue11_script_runs_on_cpu_and_writes_build_py_format(tmp_path):
    """The prepared GPU evidence script, at a tiny size on CPU: what it writes is what the lead reads."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "gpu_issue11", Path(__file__).parent / "benchmarks" / "gpu_issue11.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(0)
    arrays = {f"x_{s}": rng.integers(0, 256, (4, 3, 96, 96), dtype=np.uint8) for s in ("train", "val")}
    arrays.update({f"y_{s}": rng.integers(0, 256, (4, 48, 48), dtype=np.uint8) for s in ("train", "val")})
    arrays.update(names_train=np.array([f"t{i}.jpg" for i in range(4)]), names_val=np.array([f"v{i}.jpg" for i in range(4)]))
    np.savez(tmp_path / "osie.npz", **arrays)
    out = tmp_path / "out"
    assert mod.main(["--out", str(out), "--osie", str(tmp_path / "osie.npz"), "--device", "cpu", "--epochs", "1",
                     "--seeds", "0", "--work", str(tmp_path / "work"), "--budget", "600"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"osie-{n}{ext}" for n in ("shallow_mse", "shallow_kl", "shallow_kl-distribution")
         for ext in (".npz", "-log.jsonl")] + ["issue11-summary.json"])
    d = np.load(out / "osie-shallow_kl-distribution.npz")
    assert d["predictions"].shape == (4, 48, 48) and d["predictions_by_seed"].shape == (1, 4, 48, 48)
    assert list(d["names"]) == [f"v{i}.jpg" for i in range(4)] and list(d["seeds"]) == [0]
    s = json.loads(str(d["summary"]))
    for key in ("device", "torch", "precision", "seed", "epoch", "best", "train_images_per_s", "wall_time_s",
                "evaluated_checkpoint", "evaluated_weights_sha256"):
        assert key in s, key
    assert s["config"]["train_data"]["name"] == "nus" and s["config"]["preset"] == "distribution"
    assert s["config"]["recipe"]["target"] == "distribution" and s["training"]["target"] == "distribution"
    assert s["evaluated_checkpoint"] == "best" and s["chosen_checkpoint"]["metric"] == "val_cc48"
    log = [json.loads(ln) for ln in (out / "osie-shallow_mse-log.jsonl").read_text().splitlines()]
    assert {e["kind"] for e in log} == {"train", "train_eval", "val"} and {e["seed"] for e in log} == {0}
    doc = json.loads((out / "issue11-summary.json").read_text())
    assert len(doc["runs"]) == 3 and not doc["errors"] and not (tmp_path / "work").exists()
