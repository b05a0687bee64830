"""Training faults a user meets (issue 19): resuming a run that is not there, a diverged loss,
a completed run's disk footprint, a checkpoint with a wrongly shaped tensor, bad option values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salbench.training import train


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 3, 96, 96), dtype=np.float32), rng.random((n, 48, 48), dtype=np.float32)


def files(run):
    """Every file under ``run/checkpoints``, relative (hidden temporaries included)."""
    return sorted(str(p.relative_to(run / "checkpoints")) for p in (run / "checkpoints").rglob("*") if p.is_file())


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("salbench: error: "), err
    assert "Traceback" not in err and "JSON" not in err, err
    return err


# -- resume without a run -------------------------------------------------------------------------
def test_cli_resume_without_a_run_names_the_directory(tmp_path, capsys):
    from salbench.cli import main

    out = tmp_path / "no-such-run"
    rc = main(["train", "shallow_mse", "--dataset", "synthetic", "--option", "n_images=2", "--val-split", "none",
               "--epochs", "1", "--device", "cpu", "--resume", "--out", str(out), "--no-progress"])
    assert rc == 2
    err = _one_line_error(capsys)
    assert str(out) in err and "without --resume" in err
    assert not out.exists()  # nothing was trained into it


def test_resume_modes(tmp_path):
    x, y = data(4)
    kw = dict(epochs=1, batch_size=4, device="cpu", progress=False, val_split=None)
    with pytest.raises(ValueError, match=r"no training run in .*empty.*without --resume"):
        train("shallow_mse", (x, y), out=tmp_path / "empty", resume=True, **kw)
    (tmp_path / "started").mkdir()  # a directory without a checkpoint: nothing to resume either
    with pytest.raises(ValueError, match=r"started holds no checkpoint to resume"):
        train("shallow_mse", (x, y), out=tmp_path / "started", resume=True, **kw)
    with pytest.raises(ValueError, match="resume must be"):
        train("shallow_mse", (x, y), out=tmp_path / "x", resume="maybe", **kw)
    # "auto" (the quick demo's): continue a run if there is one, else start it
    res = train("shallow_mse", (x, y), out=tmp_path / "auto", resume="auto", **kw)
    assert res.completed and res.summary["epoch"] == 1
    again = train("shallow_mse", (x, y), out=tmp_path / "auto", resume="auto", **kw)
    assert res.trained and not again.trained  # complete: nothing left to train
    assert again.checkpoint == res.checkpoint and again.summary["history"] == res.summary["history"]


# -- a diverged loss -------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["shallow_mse", "shallow_kl"])
def test_diverged_loss_stops_naming_epoch_and_step_and_keeps_the_last_finite_checkpoint(tmp_path, model):
    from salbench.models import create_model
    from salbench.training import TrainingDiverged

    x, y = data(8)
    # epoch 1 at a sane learning rate, then 5e5 and 1e6: the loss leaves the floats in epoch 2 or 3
    kw = dict(val=data(4, seed=1), epochs=3, batch_size=4, checkpoint_every=1, keep_last=1, lr_start=0.001,
              lr_end=1e6, mirror=False, device="cpu", progress=False)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as err:
        train(model, (x, y), out=out, **kw)
    msg, epoch = str(err.value), err.value.epoch
    assert "\n" not in msg and "JSON" not in msg
    assert epoch in (2, 3) and 1 <= err.value.batch <= 2 and err.value.step == 2 * (epoch - 1) + err.value.batch
    assert f"epoch {epoch}, step {err.value.step}" in msg and "loss" in msg
    assert not np.isfinite(err.value.loss) or "weights" in msg
    kept = f"epoch-{epoch - 1:04d}"
    assert kept in msg and "--resume" in msg and err.value.kept == out / "checkpoints" / kept
    # The last finite checkpoint is kept, resumable, and loads as a model; nothing non-finite was written.
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["name"] == kept
    assert (out / "checkpoints" / kept / "optimizer.safetensors").is_file()
    assert not (out / "checkpoints" / "final").exists() and not (out / "summary.json").exists()
    model_obj = create_model(model, checkpoint=out / "checkpoints" / kept)
    assert model_obj.training["epoch"] == epoch - 1
    assert np.isfinite(model_obj.predict_arrays(x[:2])).all()
    assert np.isfinite(create_model(model, checkpoint=out).predict_arrays(x[:2])).all()  # the run's pick
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]  # strict JSON: no NaN
    assert all(np.isfinite(e["loss"]) for e in log)
    # --resume continues from there (and, the recipe being deterministic, diverges at the same step)
    with pytest.raises(TrainingDiverged) as again:
        train(model, (x, y), out=out, resume=True, **kw)
    assert str(again.value) == msg


def test_cli_diverged_loss_is_one_line_exit_2(tmp_path, capsys):
    from salbench.cli import main

    rc = main(["train", "shallow_kl", "--dataset", "synthetic", "--option", "n_images=4", "--val-split", "none",
               "--epochs", "2", "--batch-size", "4", "--lr-start", "1e6", "--device", "cpu",
               "--out", str(tmp_path / "run"), "--no-progress"])
    assert rc == 2
    err = _one_line_error(capsys)
    assert "diverged" in err and "epoch 1, step" in err and "no checkpoint" in err and "lr-start" in err, err
    assert " nan" in err or " inf" in err, err


# -- what a completed run keeps --------------------------------------------------------------------
def test_completed_run_keeps_the_designated_weights_and_no_optimizer_state(tmp_path):
    from salbench.models import create_model
    from salbench.models._weights import resolve_checkpoint, run_checkpoint

    x, y = data(8)
    # the quick recipe's shape: select by validation CC, one rolling resumable checkpoint
    kw = dict(val=data(4, seed=1), epochs=3, batch_size=4, checkpoint_every=1, keep_last=1, device="cpu",
              progress=False, seed=2)
    out = tmp_path / "run"
    stopped = train("shallow_kl", (x, y), out=out, should_stop=lambda e: e >= 2, **kw)
    assert not stopped.completed
    # interrupted: what resuming needs stays (the latest checkpoint with its optimizer state)
    assert "epoch-0002/optimizer.safetensors" in files(out)
    done = train("shallow_kl", (x, y), out=out, resume=True, **kw)
    assert done.completed and done.checkpoint == out / "checkpoints" / "best"
    assert files(out) == ["best/model.safetensors", "best/state.json", "final/state.json"]
    weights = (out / "checkpoints" / "best" / "model.safetensors").stat().st_size
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < 1.01 * weights
    # evaluate's rule for a completed cached run (checkpoints/final exists), the run directory's rule,
    # --checkpoint RUN_DIR and the result all designate best
    assert (out / "checkpoints" / "final").is_dir() and run_checkpoint(out) == done.best == done.checkpoint
    assert create_model("shallow_kl", checkpoint=out).training["checkpoint"] == "best"
    final_state = json.loads((out / "checkpoints" / "final" / "state.json").read_text())
    assert final_state["epoch"] == 3 and final_state["weights"] is False and final_state["resumable"] is False
    with pytest.raises(FileNotFoundError, match=r"final keeps no weights.*checkpoints/best"):
        resolve_checkpoint(out / "checkpoints" / "final")
    # A run completed by an earlier salbench (final with weights and optimizer state, a periodic
    # checkpoint, latest.json naming final) is tidied by resuming it, with nothing retrained.
    import shutil

    ck = out / "checkpoints"
    shutil.copy(ck / "best" / "model.safetensors", ck / "final" / "model.safetensors")
    (ck / "final" / "optimizer.safetensors").write_bytes(b"x" * 64)
    (ck / "final" / "state.json").write_text(json.dumps({**final_state, "resumable": True}))
    shutil.copytree(ck / "final", ck / "epoch-0002")
    (ck / "latest.json").write_text(json.dumps({"name": "final", "epoch": 3}))
    tidied = train("shallow_kl", (x, y), out=out, resume=True, **kw)
    assert not tidied.trained and tidied.checkpoint == done.checkpoint
    assert files(out) == ["best/model.safetensors", "best/state.json", "final/state.json"]
    # the straight run gives the same weights as the stopped-and-resumed one
    straight = train("shallow_kl", (x, y), out=tmp_path / "straight", **kw)
    assert (straight.best / "model.safetensors").read_bytes() == (done.best / "model.safetensors").read_bytes()
    assert files(straight.out) == files(out)


def test_completed_run_keeps_snapshots_when_the_recipe_keeps_all(tmp_path):
    from salbench.training import get_recipe

    x, y = data(4)
    assert get_recipe("shallow_mse", "full").keep_last is None  # (a None option keeps the preset's)
    kw = dict(preset="full", epochs=2, batch_size=4, checkpoint_every=1, device="cpu", progress=False,
              val_split=None)
    res = train("shallow_mse", (x, y), out=tmp_path / "mse", **kw)
    # select="final": final is the designated one and keeps its weights; the periodic snapshots
    # the recipe asks for (keep_last=None) stay, without optimizer state
    assert files(res.out) == ["epoch-0001/model.safetensors", "epoch-0001/state.json",
                              "final/model.safetensors", "final/state.json"]
    assert res.checkpoint == res.final
    assert json.loads((res.out / "checkpoints" / "epoch-0001" / "state.json").read_text())["resumable"] is False
    quick = train("shallow_mse", (x, y), out=tmp_path / "q", **{**kw, "keep_last": 1})
    assert files(quick.out) == ["final/model.safetensors", "final/state.json"]
    # a completed run is still refused without --resume, and resuming it trains nothing
    with pytest.raises(ValueError, match="already holds a training run"):
        train("shallow_mse", (x, y), out=tmp_path / "q", **{**kw, "keep_last": 1})
    again = train("shallow_mse", (x, y), out=tmp_path / "q", resume=True, **{**kw, "keep_last": 1})
    assert again.completed and not again.trained and again.checkpoint == quick.checkpoint
    assert files(again.out) == files(quick.out)
    with pytest.raises(ValueError, match="recipe differ"):
        train("shallow_mse", (x, y), out=tmp_path / "q", resume=True, **{**kw, "keep_last": 1, "epochs": 3})


# -- a wrongly shaped tensor -----------------------------------------------------------------------
def test_wrongly_shaped_tensor_is_named_with_both_shapes(tmp_path):
    import torch
    from safetensors.torch import save_file

    from salbench.models import create_model
    from salbench.models._weights import FORMAT
    from salbench.models.shallow import build_network

    state = {k: v.contiguous() for k, v in build_network(batch_norm=True, seed=0).state_dict().items()}
    state["conv2.weight"] = torch.zeros(64, 32, 5, 5)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata={"format": FORMAT, "model": "shallow_kl"})
    with pytest.raises(ValueError) as err:
        create_model("shallow_kl", checkpoint=bad)
    msg = str(err.value)
    assert "\n" not in msg and str(bad) in msg and "conv2.weight" in msg
    assert "(64, 32, 5, 5)" in msg and "(64, 32, 3, 3)" in msg and "shallow_kl" in msg


def test_cli_eval_wrongly_shaped_tensor_is_one_line(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    from salbench.cli import main
    from salbench.models._weights import FORMAT
    from salbench.models.shallow import build_network

    state = {k: v.contiguous() for k, v in build_network(batch_norm=False, seed=0).state_dict().items()}
    state["fc2.bias"] = torch.zeros(48, 48)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata={"format": FORMAT, "model": "shallow_mse"})
    rc = main(["eval", "--model", "shallow_mse", "--checkpoint", str(bad), "--dataset", "synthetic",
               "--option", "preset=small", "--results-dir", str(tmp_path / "res")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("salbench: error: ") and "fc2.bias" in err and "(48, 48)" in err and "(2304,)" in err


# -- bad option values -----------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--lr-start", "inf"], "learning rates must be finite and > 0"),
    (["--lr-end", "nan"], "learning rates must be finite and > 0"),
    (["--max-train", "0"], "max-train must be a positive integer or None, got 0"),
    (["--resume", "--seed", "-2"], "seed must be a non-negative integer, got -2"),
])
def test_cli_train_refuses_more_bad_values_in_one_line(tmp_path, capsys, args, message):
    from salbench.cli import main

    assert main(["train", "shallow_kl", "--dataset", "no-such-dataset", "--out", str(tmp_path / "r"), *args]) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "r").exists()
