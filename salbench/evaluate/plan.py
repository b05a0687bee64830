"""Step 1 of an evaluation: resolve the dataset, split and protocol before any data is read."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from salbench.evaluate.request import EvaluationRequest

BUILTIN_DATASET = "synthetic"


@dataclass
class DatasetChoice:
    """Which dataset an evaluation uses and why (printed as the first output line)."""

    name: str
    data_dir: str | None
    options: dict
    reason: str


def choose_dataset(name: str | None, data_dir: str | None, options: Mapping[str, Any] | None = None) -> DatasetChoice:
    """Resolve the dataset: the one asked for, else configured SALICON, else synthetic.

    SALICON counts as configured when ``SALBENCH_DATA`` names an existing directory.
    """
    options = dict(options or {})
    if name:
        return DatasetChoice(name, data_dir, options, f"dataset {name} (as asked)")
    env = os.environ.get("SALBENCH_DATA")
    if data_dir or (env and Path(env).is_dir()):
        where = data_dir or env
        return DatasetChoice("salicon", where, options, f"dataset salicon from {where} (configured SALICON)")
    return DatasetChoice(BUILTIN_DATASET, None, options,
                         "dataset synthetic (built-in; no SALICON configured: set SALBENCH_DATA or --data-dir to use yours)")


def dataset_record(dataset, choice: DatasetChoice) -> dict[str, Any]:
    """Dataset identity plus what is needed to load it again (for ``salbench check``)."""
    identity = dict(dataset.identity())
    identity.setdefault("name", choice.name)
    identity.setdefault("split", dataset.split)
    identity["options"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in choice.options.items()}
    identity["data_dir"] = choice.data_dir
    return identity


@dataclass
class EvalPlan:
    """What an evaluation resolved from its request: the open dataset and the protocol."""

    request: EvaluationRequest
    choice: DatasetChoice
    dataset: Any
    protocol: Any
    results_dir: Path
    started: float = field(default_factory=time.perf_counter)
    #: the ``distributed.Client`` scoring the chunks (``--executor dask``); None: this process
    client: Any = None

    @property
    def split(self) -> str:
        return self.request.split

    @property
    def seed(self) -> int:
        return self.request.seed


def plan_evaluation(request: EvaluationRequest, *, log: Callable[[str], None] = print) -> EvalPlan:
    """Resolve the dataset, split and protocol of ``request``.

    Opening a dataset lists its images without decoding any (the split's names, for
    matching predictions and naming results).

    Raises
    ------
    ValueError, FileNotFoundError
        One message naming the argument or path at fault.
    """
    from salbench.data import get_dataset
    from salbench.protocols import default_protocol_for, get_protocol

    data_dir = None if request.data_dir is None else str(request.data_dir)
    choice = choose_dataset(request.dataset, data_dir, request.dataset_options)
    name = request.protocol or default_protocol_for(choice.name)
    proto = get_protocol(name, **request.protocol_overrides)
    if request.metrics is not None:
        try:
            proto = get_protocol(name, metrics=request.metrics, **request.protocol_overrides)
        except ValueError as exc:
            raise ValueError(f"--metrics {','.join(request.metrics)}: {exc}") from None
    log(f"salbench: {choice.reason}, split {request.split}")
    ds = get_dataset(choice.name, request.split, data_dir=choice.data_dir, **choice.options)
    if len(ds) == 0:
        raise ValueError(f"{choice.name}/{request.split} has no images")
    return EvalPlan(request=request, choice=choice, dataset=ds, protocol=proto, results_dir=Path(request.results_dir))
