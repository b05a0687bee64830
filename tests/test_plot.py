"""``salbench plot``: panels, loss curves and filters are written as real PNG files."""

import json

import numpy as np
import pytest
from PIL import Image

from salbench.cli import main
from salbench.data import get_dataset
from salbench.results import build_result, result_filename, save_predictions, write_result
from salbench.plotting import first_conv_weights, pick_images, plot_filters, plot_loss_curves, read_loss_log
from salbench.protocols import get_protocol

OPTIONS = {"preset": "small", "n_images": 4}


def _png(path):
    """Open a PNG written by salbench and return it as an RGB array."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    """A results entry on four synthetic images whose best/worst images by CC are known."""
    root = tmp_path_factory.mktemp("results")
    ds = get_dataset("synthetic", "val", **OPTIONS)
    records = [ds[i] for i in range(len(ds))]
    rng = np.random.default_rng(0)
    # image 2 gets the (downscaled) truth, the others more and more noise
    noise = {0: 0.6, 1: 2.0, 2: 0.0, 3: 1.0}
    preds = np.stack([r.y48 + noise[i] * rng.random((48, 48)) for i, r in enumerate(records)])
    preds = (preds / preds.max(axis=(1, 2), keepdims=True)).astype(np.float32)
    proto = get_protocol("coursework")
    scored = proto.evaluate(list(preds), records, seed=0)
    stem = result_filename("center_bias", "synthetic", "val", "coursework")[:-5]
    info = save_predictions(root / f"{stem}.predictions.npz", preds, list(scored.names))
    result = build_result(model={"name": "center_bias", "checkpoint": None},
                          dataset={**ds.identity(), "options": OPTIONS, "data_dir": None},
                          protocol=proto.name, params=proto.params, seed=0, names=list(scored.names),
                          scores=scored.scores, predictions=info)
    return write_result(root / f"{stem}.json", result)


def test_pick_images_by_metric(entry):
    result = json.loads(entry.read_text())
    cc = np.array(result["metrics"]["cc"]["per_image"])
    best, worst = pick_images(result, "cc", 1)
    assert best == [int(np.argmax(cc))] == [2] and worst == [int(np.argmin(cc))]
    fake = {"metrics": {"kld": {"per_image": [0.5, None, 0.1, 0.9], "higher_is_better": False}}}
    assert pick_images(fake, "kld", 2) == ([2, 0], [3, 0])  # lower is better; undefined skipped
    with pytest.raises(ValueError, match="metric 'nss' not in results"):
        pick_images(result, "nss", 1)


def test_panels_cli_writes_best_and_worst(entry, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["plot", "panels", "--result", str(entry), "--metric", "cc", "--n", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    names = sorted(p.rsplit("/", 1)[-1] for p in printed)
    assert names == ["synthetic__val__center_bias__coursework.best-cc.png",
                     "synthetic__val__center_bias__coursework.worst-cc.png"]
    for name in names:
        px = _png(out / name)
        assert px.shape[0] > 300 and px.shape[1] > 600  # two rows of three panels
        assert px.std() > 20  # not a blank canvas


def test_loss_curves_from_a_training_log(tmp_path, capsys):
    # the format salbench.training.api writes: one JSON object per logged batch / validation
    rng = np.random.default_rng(0)
    lines = []
    for epoch in range(4):
        for batch in range(0, 40, 5):
            step = epoch * 40 + batch
            lines.append({"kind": "train", "epoch": epoch, "batch": batch, "step": step,
                          "loss": float(2.0 / (1 + step / 40) + 0.1 * rng.random()), "lr": 0.05})
        lines.append({"kind": "val", "epoch": epoch, "step": (epoch + 1) * 40, "loss": 2.0 / (1.5 + epoch)})
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert len(read_loss_log(log)) == len(lines)
    out = tmp_path / "loss.png"
    assert main(["plot", "loss", "--log", str(log), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    px = _png(out)
    # the curves are drawn in their colours: orange (training) and blue (validation)
    orange = (px[..., 0] > 200) & (px[..., 1] > 100) & (px[..., 1] < 160) & (px[..., 2] < 60)
    blue = (px[..., 2] > 150) & (px[..., 0] < 60)
    assert orange.sum() > 100 and blue.sum() > 100


def test_loss_curves_measured_like_validation_and_cc_panel(tmp_path, capsys):
    """A salbench.training log: batch losses (train mode) faint, the eval-mode training subset and
    validation as the compared curves, a CC48 panel; a multi-seed log is filtered to one seed."""
    lines = []
    for seed in (0, 1):
        for epoch in range(5):
            for batch in range(0, 40, 10):
                lines.append({"kind": "train", "epoch": epoch, "batch": batch, "step": epoch * 40 + batch,
                              "loss": 1.0 - 0.05 * epoch, "seed": seed})
            lines.append({"kind": "train_eval", "epoch": epoch, "step": (epoch + 1) * 40,
                          "loss": 0.9 - 0.1 * epoch, "cc48": 0.3 + 0.05 * epoch, "seed": seed})
            lines.append({"kind": "val", "epoch": epoch, "step": (epoch + 1) * 40,
                          "loss": 0.95 - 0.08 * epoch, "cc48": 0.3 + 0.04 * epoch - 0.02 * (epoch == 4),
                          "seed": seed})
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "loss.png"
    assert main(["plot", "loss", "--log", str(log), "--out", str(out), "--seed", "1"]) == 0
    px = _png(out)
    assert px.shape[1] > 1.3 * px.shape[0] * 2  # three panels side by side
    blue = (px[..., 2] > 150) & (px[..., 0] < 60)
    assert blue.sum() > 100
    from salbench.plotting import select_seed

    rows, seed = select_seed(read_loss_log(log))
    assert seed == 0 and len(rows) == len(lines) // 2
    with pytest.raises(ValueError, match="seed 7 is not in the log"):
        select_seed(read_loss_log(log), 7)
    assert main(["plot", "loss", "--log", str(log), "--out", str(out), "--seed", "7"]) == 2


def test_loss_log_errors(tmp_path):
    bad = tmp_path / "log.jsonl"
    bad.write_text('{"kind": "train", "loss": 1}\nnot json\n')
    with pytest.raises(ValueError, match="log.jsonl:2: not a JSON line"):
        read_loss_log(bad)
    with pytest.raises(ValueError, match="no 'train', 'train_eval' or 'val' entries"):
        plot_loss_curves([{"kind": "other", "loss": 1.0}], tmp_path / "x.png")
    assert main(["plot", "loss", "--log", str(tmp_path / "missing.jsonl")]) == 2


def test_filters_from_a_shallow_network_checkpoint(tmp_path, capsys):
    """The first layer of the real network, saved as salbench checkpoints store weights."""
    from safetensors.torch import save_file

    from salbench.models._weights import FORMAT, WEIGHTS_FILE
    from salbench.models.shallow import build_network

    state = build_network(batch_norm=True, seed=0).state_dict()
    # the full network is 300 MB; the convolutions are all that a filter plot reads
    small = {k: v.contiguous() for k, v in state.items() if k.startswith(("conv", "bn"))}
    ck = tmp_path / "run" / "checkpoints" / "final"
    ck.mkdir(parents=True)
    save_file(small, str(ck / WEIGHTS_FILE), metadata={"format": FORMAT, "model": "shallow_kl"})
    w = first_conv_weights(tmp_path / "run")  # a training run directory resolves to its final checkpoint
    assert w.shape == (32, 3, 5, 5) and np.array_equal(w, state["conv1.weight"].numpy().astype(np.float64))
    assert np.array_equal(first_conv_weights(state), w)  # a state dict works too
    out = tmp_path / "filters.png"
    assert main(["plot", "filters", "--checkpoint", str(ck), "--out", str(out)]) == 0
    px = _png(out)
    assert px.std() > 10
    with pytest.raises(ValueError, match="expected first-layer weights"):
        plot_filters(np.zeros((4, 1, 3, 3)), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="no convolution with 3 input channels"):
        first_conv_weights({"fc.weight": np.zeros((3, 3))})
