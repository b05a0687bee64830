"""The shallow convnet of Pan et al. (2016), Table I of the report, in two variants.

``shallow_mse`` is the replication (MSE on raw 48x48 outputs); ``shallow_kl``
is the report's improvement (section X): batch normalisation, a softmax on the
output, and ``KLDivLoss(log_softmax(pred), T)`` with the report's target
``T = softmax(y)`` or, as a recorded recipe option, the distribution target
``T = y / sum(y)`` (:mod:`salbench.training.recipes`). A loaded checkpoint says
which in :attr:`ShallowModel.training` (and the card's ``training``).

Layer sizes (Table I; the 5x5 convolution needs padding 2, not the table's 1x1,
for its 96x96 output)::

    input 3x96x96 -> conv5x5/32 p2 -> 32x96x96 -> pool2/2 -> 32x48x48
    -> conv3x3/64 p1 -> 64x48x48 -> pool3/2 -> 64x23x23
    -> conv3x3/128 p1 -> 128x23x23 -> pool3/2 -> 128x11x11 -> flatten 15488
    -> FC 4608 -> maxout over adjacent pairs -> 2304 -> FC 2304 (= 48x48)

ReLU is applied after each max-pool rather than before: ``max`` and ``ReLU``
commute exactly (ReLU is monotone), so outputs and gradients are those of
Table I's order while the ReLU touches 4x fewer values. The KL variant puts
``BatchNorm2d`` between each convolution and its pool.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from salbench.models.base import SaliencyModel, card_copy, check_records

INPUT_SIZE = (96, 96)
OUTPUT_SIZE = (48, 48)
MSE_PARAMS = 76_778_816  # conv 2432 + 18496 + 73856, FC1 71373312, FC2 5310720

_PROTOCOL_NOTE = "SALICON val (500 images), coursework evaluation protocol"
_PAN = {"source": "Pan et al. 2016, as quoted in report Table II", "dataset": "SALICON val",
        "protocol": "the paper's own evaluation (not the coursework script)", "CC": 0.58, "AUC_shuffled": 0.67, "AUC_Borji": 0.83}
_BENCH = {"source": "report Table II: benchmark replicated results", "dataset": "SALICON val",
          "protocol": "coursework", "CC": 0.65, "AUC_shuffled": 0.55, "AUC_Borji": 0.71}
_OURS = {"source": "report Table II: our replication", "dataset": "SALICON val",
         "protocol": "coursework", "CC": 0.67, "AUC_shuffled": 0.56, "AUC_Borji": 0.72}
_KL = {"source": "report Table III: our improved replication", "dataset": "SALICON val",
       "protocol": "coursework", "CC": 0.76, "AUC_shuffled": 0.60, "AUC_Borji": 0.74}

_BASE_CARD = {
    "input_size": list(INPUT_SIZE),
    "output_size": list(OUTPUT_SIZE),
    "architecture": "Pan et al. 2016 shallow convnet (report Table I)",
    "trained_on": None,
    "training_data_reported": "SALICON train, 20000 images (10000 and their mirror images), 96x96 -> 48x48",
    "scores_protocol": _PROTOCOL_NOTE,
}

DEFAULT_CARDS = {
    "shallow_mse": card_copy(
        _BASE_CARD,
        name="shallow_mse",
        description="Shallow convnet trained with MSE on raw outputs (the report's replication).",
        parameters=MSE_PARAMS,
        loss="MSELoss(pred, target)",
        published_scores=[_PAN, _BENCH, _OURS],
        output="saliency",
    ),
    "shallow_kl": card_copy(
        _BASE_CARD,
        name="shallow_kl",
        description=(
            "Shallow convnet with batch normalisation after each convolution, softmax output "
            "(predict() returns it divided by its per-image maximum), "
            "trained with KLDivLoss(log_softmax(pred), T, reduction='batchmean') where T is the report's "
            "softmax(target) (section X; recipe target 'softmax', preset full) or the target normalised as a "
            "distribution, target / sum(target) (recipe target 'distribution', presets distribution and quick: "
            "a documented deviation); a checkpoint records which (card field training)."
        ),
        parameters=MSE_PARAMS + 2 * (32 + 64 + 128),
        loss="KLDivLoss(log_softmax(pred), softmax(target), reduction='batchmean') (report); "
             "recipe target 'distribution': KLDivLoss(log_softmax(pred), target / sum(target))",
        published_scores=[_KL],
        output="density",
    ),
}


_LOSSES = {
    "map": "MSELoss(pred, target)",
    "softmax": "KLDivLoss(log_softmax(pred), softmax(target), reduction='batchmean') (report, section X)",
    "distribution": "KLDivLoss(log_softmax(pred), target / sum(target), reduction='batchmean') "
                    "(distribution target: a deviation from the report)",
}


def build_network(batch_norm: bool = False, seed: int | None | bool = 0):
    """The Table I network as a ``torch.nn.Module``, initialised by :func:`init_weights`.

    ``seed=False`` leaves the tensors uninitialised, for a checkpoint to fill.

    Built on the ``meta`` device and materialised once, so that torch's default
    initialisation of 76M parameters is not paid before ours replaces it.
    """
    import torch
    from torch import nn

    class ShallowNet(nn.Module):
        """Table I; ``forward`` returns raw ``(N, 2304)`` scores (row-major 48x48)."""

        def __init__(self, batch_norm: bool):
            super().__init__()
            self.batch_norm = batch_norm
            self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
            self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
            self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
            norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
            self.bn1, self.bn2, self.bn3 = norm(32), norm(64), norm(128)
            self.pool1 = nn.MaxPool2d(2, 2)
            self.pool2 = nn.MaxPool2d(3, 2)
            self.pool3 = nn.MaxPool2d(3, 2)
            self.fc1 = nn.Linear(128 * 11 * 11, 4608)
            self.fc2 = nn.Linear(2304, 2304)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.pool1(self.bn1(self.conv1(x))))
            x = torch.relu(self.pool2(self.bn2(self.conv2(x))))
            x = torch.relu(self.pool3(self.bn3(self.conv3(x))))
            x = self.fc1(x.flatten(1))
            x = x.view(x.shape[0], 2304, 2).amax(dim=2)  # maxout over adjacent pairs (2i, 2i+1)
            return self.fc2(x)

    with torch.device("meta"):
        net = ShallowNet(batch_norm)
    net = net.to_empty(device="cpu")
    if seed is not False:  # False: the caller loads every tensor from a checkpoint next
        init_weights(net, seed)
    return net


def init_weights(net, seed: int | None = None) -> None:
    """The report's initialisation: weights ~ N(0, 0.01), biases 0.1; BatchNorm weight 1, bias 0.

    ``seed`` makes it reproducible (a private generator; the global RNG is untouched).
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0.0, 0.01, generator=gen)
                m.bias.fill_(0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # weight 1, bias 0, running mean 0 / var 1, count 0


class ShallowModel(SaliencyModel):
    """A shallow network (``variant`` ``"mse"`` or ``"kl"``) behind the model API.

    Parameters
    ----------
    variant : {"mse", "kl"}
    checkpoint : path, optional
        Trained weights (see :func:`salbench.models._weights.resolve_checkpoint`);
        without one the network is freshly initialised and ``needs_training`` is True.
    seed : int
        Seed of the initialisation (ignored with a checkpoint).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"`` for prediction.
    batch_size : int
        Images per forward pass in :meth:`predict`.

    Attributes
    ----------
    training : dict or None
        With a checkpoint: how it was trained (preset, loss ``target``, seed,
        recipe, data, epochs, which checkpoint and why, a row ``label``; see
        :func:`salbench.models._weights.training_record`), also the card's
        ``training``. None for a fresh network.
    """

    def __init__(self, variant: str, checkpoint=None, seed: int = 0, device: str = "cpu", batch_size: int = 256):
        if variant not in ("mse", "kl"):
            raise ValueError(f"shallow variant must be 'mse' or 'kl', got {variant!r}")
        self.variant = variant
        self.name = f"shallow_{variant}"
        self.output = "density" if variant == "kl" else "saliency"  # KL: a softmax over the 48x48 pixels
        self.card = card_copy(DEFAULT_CARDS[self.name])
        self.batch_size = int(batch_size)
        self.device = _pick_device(device)
        self.checkpoint = None
        self.training = None  # how the loaded weights were trained (see load)
        if checkpoint is None:
            self.net = build_network(batch_norm=variant == "kl", seed=seed)
            self.needs_training = True
        else:
            self.net = build_network(batch_norm=variant == "kl", seed=False)
            self.load(checkpoint)
        self.net.to(self.device)

    def load(self, checkpoint) -> None:
        """Load weights from ``checkpoint`` (strict: every tensor must match)."""
        from salbench.models._weights import load_state, read_weights, resolve_checkpoint, training_record

        state, meta = read_weights(checkpoint, expect_model=self.name)
        load_state(self.net, state, resolve_checkpoint(checkpoint), self.name)
        self.checkpoint = str(resolve_checkpoint(checkpoint))
        self.needs_training = False
        self.card["trained_on"] = meta.get("trained_on", "unknown (checkpoint without metadata)")
        self.card["checkpoint"] = self.checkpoint
        # preset, loss target, seed, recipe, data, epochs, which checkpoint and why (state.json)
        self.training = training_record(self.checkpoint, meta)
        if self.training is not None:
            self.card["training"] = self.training
            target = self.training.get("target")
            if target in _LOSSES:
                self.card["loss"] = _LOSSES[target]

    def output_transform(self, scores):
        """Raw FC2 scores -> saliency maps (see :func:`scores_to_maps`)."""
        return scores_to_maps(self.variant, scores)

    def predict_arrays(self, x96: np.ndarray) -> np.ndarray:
        """Predict from stacked inputs ``(N, 3, 96, 96)`` in [0, 1]: ``(N, 48, 48)`` float32."""
        return self._run(x96, self.output_transform, np.float32)

    def predict_log_density_arrays(self, x96: np.ndarray) -> np.ndarray:
        """``log_softmax`` of the raw scores in float64, ``(N, 48, 48)``: the KL variant's log-density."""
        import torch

        if self.output != "density":
            raise TypeError(f"model {self.name!r} predicts saliency maps, not fixation densities "
                            "(its output is 'saliency')")
        return self._run(x96, lambda s: torch.log_softmax(s.double(), dim=1), np.float64)

    def _run(self, x96, transform, dtype) -> np.ndarray:
        import torch

        x96 = np.asarray(x96)
        if x96.ndim != 4 or x96.shape[1:] != (3, *INPUT_SIZE):
            raise ValueError(f"{self.name} expects inputs of shape (N, 3, 96, 96), got {x96.shape}")
        self.net.eval()
        out = np.empty((len(x96), *OUTPUT_SIZE), dtype=dtype)
        with torch.inference_mode():
            for i in range(0, len(x96), self.batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x96[i : i + self.batch_size], dtype=np.float32))
                scores = self.net(xb.to(self.device))
                out[i : i + len(xb)] = transform(scores).cpu().numpy().reshape(-1, *OUTPUT_SIZE)
        return out

    def predict(self, records: Sequence) -> np.ndarray:
        recs = check_records(records)
        return self.predict_arrays(np.stack([np.asarray(r.x96, dtype=np.float32) for r in recs]))

    def predict_log_density(self, records: Sequence) -> np.ndarray:
        """The KL variant's softmax as a log-density over the 48x48 output (float64); TypeError for MSE."""
        recs = check_records(records)
        return self.predict_log_density_arrays(np.stack([np.asarray(r.x96, dtype=np.float32) for r in recs]))


def scores_to_maps(variant: str, scores):
    """Raw FC2 scores ``(N, 2304)`` -> saliency maps: MSE as is; KL the softmax divided by its maximum.

    The softmax is a distribution (values ~1/2304) that the coursework protocol's
    ``(p * 255).astype(uint8)`` would zero; dividing by the per-image maximum keeps
    the map's ranking and ratios (the distribution is ``map / map.sum()``).
    """
    import torch

    if variant == "mse":
        return scores.float()
    p = torch.softmax(scores.float(), dim=1)
    return p / p.amax(dim=1, keepdim=True)


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return device


def shallow_mse(**kwargs: Any) -> ShallowModel:
    """Table I network trained with MSE (report sections V-VII)."""
    return ShallowModel("mse", **kwargs)


def shallow_kl(**kwargs: Any) -> ShallowModel:
    """Table I network + batch norm + softmax, trained with KL divergence (report section X)."""
    return ShallowModel("kl", **kwargs)
