"""CPU training speed: salbench's loop vs the report's plain PyTorch loop, side by side.

Run: python -m pytest tests/benchmarks/test_bench_training.py -p no:cacheprovider --benchmark-only -o addopts=""

Each benchmark trains one epoch of 256 images (2 batches of 128, the report's batch size) of
the same Table I network, fp32, from the same initial weights; the rounds continue training
(weights change, cost does not). The last benchmark checks salbench >= 1.5x the plain loop.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from salbench.training import get_recipe  # noqa: E402
from salbench.training.loop import make_trainer  # noqa: E402

N, BATCH, ROUNDS = 256, 128, 3
MEDIANS: dict[str, float] = {}


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    return rng.random((N, 3, 96, 96), dtype=np.float32), rng.random((N, 48, 48), dtype=np.float32)


class ReportNet(nn.Module):
    """Table I written the plain way (ReLU then pool, maxout via a reshape), as the report did."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        )
        self.fc1 = nn.Linear(15488, 4608)
        self.fc2 = nn.Linear(2304, 2304)

    def forward(self, x):
        x = self.fc1(torch.flatten(self.features(x), 1))
        x = torch.max(x[:, 0::2], x[:, 1::2])  # maxout over adjacent pairs
        return self.fc2(x)


def plain_epoch(model, loader, optimizer, criterion):
    model.train()
    for batch in loader:
        x, y = batch["X"], batch["y"].view(-1, 2304)
        out = model(x)
        loss = criterion(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        _ = loss.item()  # the report logged the batch loss


def _plain_setup(net, arrays):
    x, y = arrays
    samples = [{"X": x[i], "y": y[i], "file_name": f"{i}.jpg"} for i in range(N)]
    loader = DataLoader(samples, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.0005)
    return loader, opt


def _record(benchmark, key, fn):
    benchmark.extra_info["images_per_round"] = N
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    med = benchmark.stats.stats.median
    MEDIANS[key] = med
    benchmark.extra_info["img_per_s"] = round(N / med, 1)
    benchmark.extra_info["threads"] = torch.get_num_threads()


@pytest.mark.benchmark(group="train-epoch-256-cpu")
def test_plain_loop_report_net(benchmark, arrays):
    torch.manual_seed(0)
    net = ReportNet()
    loader, opt = _plain_setup(net, arrays)
    _record(benchmark, "plain", lambda: plain_epoch(net, loader, opt, nn.MSELoss()))


@pytest.mark.benchmark(group="train-epoch-256-cpu")
def test_plain_loop_salbench_net(benchmark, arrays):
    from salbench.models.shallow import build_network

    net = build_network(seed=0)
    loader, opt = _plain_setup(net, arrays)
    _record(benchmark, "plain_salbench_net", lambda: plain_epoch(net, loader, opt, nn.MSELoss()))


@pytest.mark.benchmark(group="train-epoch-256-cpu")
def test_salbench_trainer_bf16(benchmark, arrays):
    """Extra: bf16 autocast on CPU (fast only on CPUs with AMX / AVX512-BF16); not the default."""
    tr = make_trainer("mse", get_recipe("shallow_mse", "full", precision="bf16"), *arrays, seed=0)
    _record(benchmark, "salbench_bf16", lambda: tr.train_epoch(0))


@pytest.mark.benchmark(group="train-epoch-256-cpu")
def test_salbench_trainer_fp32(benchmark, arrays):
    tr = make_trainer("mse", get_recipe("shallow_mse", "full"), *arrays, seed=0)
    _record(benchmark, "salbench", lambda: tr.train_epoch(0))
    benchmark.extra_info["speedup_vs_plain"] = round(MEDIANS["plain"] / MEDIANS["salbench"], 2)
    print("\nimg/s:", {k: round(N / v, 1) for k, v in MEDIANS.items()},
          f"speedup fp32 vs plain: {MEDIANS['plain'] / MEDIANS['salbench']:.2f}x")
    assert MEDIANS["plain"] / MEDIANS["salbench"] >= 1.5
