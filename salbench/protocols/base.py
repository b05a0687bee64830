"""Protocol base class and the result object every protocol returns."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from salbench.stats import mean_ci95


@dataclass
class ProtocolResult:
    """Per-image scores of one protocol run.

    Attributes
    ----------
    protocol : str
        Protocol name.
    params : dict
        The protocol's complete parameter set (JSON-serialisable).
    seed : int or None
        Seed of every random draw in the run.
    names : list of str
        Record names, in evaluation order.
    scores : dict of str -> ndarray
        Per-image score arrays (NaN where a metric is undefined for an image).
    timings : dict
        Seconds spent per stage (informational).
    """

    protocol: str
    params: dict
    seed: int | None
    names: list
    scores: dict
    timings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """``{metric: {"mean", "ci95", "n"}}`` (NaN images left out; Student-t 95% CI)."""
        out = {}
        for name, values in self.scores.items():
            mean, ci = mean_ci95(values)
            out[name] = {"mean": mean, "ci95": ci, "n": int(np.isfinite(values).sum())}
        return out


class Protocol:
    """A named recipe: how to preprocess a prediction and which metrics to compute.

    Subclasses set ``name``, ``metrics`` and ``defaults`` and implement
    :meth:`_evaluate`. Overrides passed to the constructor must name known
    parameters.
    """

    name: str = ""
    metrics: tuple = ()
    defaults: dict = {}
    description: str = ""

    def __init__(self, **overrides):
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for protocol {self.name!r}; known: {sorted(self.defaults)}"
            )
        self._params = {**copy.deepcopy(self.defaults), **overrides}

    @property
    def params(self) -> dict:
        """Complete parameter set (a copy), including the protocol name."""
        return {"name": self.name, **copy.deepcopy(self._params)}

    def evaluate(self, predictions, records, *, seed=0) -> ProtocolResult:
        """Score ``predictions`` (one 2-D map per record, any size) against ``records``."""
        records = list(records)
        if len(predictions) != len(records):
            raise ValueError(f"got {len(predictions)} predictions for {len(records)} records")
        if len(records) == 0:
            raise ValueError("no records to evaluate")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        scores, timings = self._evaluate(predictions, records, seed)
        return ProtocolResult(
            protocol=self.name,
            params=self.params,
            seed=None if seed is None else int(seed),
            names=[r.name for r in records],
            scores={k: np.asarray(scores[k], dtype=np.float64) for k in self.metrics},
            timings=timings,
        )

    def _evaluate(self, predictions, records, seed):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self._params})"


def as_prediction(p, index: int) -> np.ndarray:
    """One prediction as a finite float64 2-D map (a flat 2304-vector becomes 48x48)."""
    a = np.asarray(p)
    if a.ndim == 1:
        side = int(round(np.sqrt(a.size)))
        if side * side != a.size:
            raise ValueError(f"prediction {index} is a flat vector of {a.size} values, not a square map")
        a = a.reshape(side, side)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"prediction {index} must be a 2-D map, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"prediction {index} must be numeric, got dtype {a.dtype}")
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"prediction {index} contains NaN or inf")
    return a


def y_original_of(record) -> np.ndarray:
    """The record's SALICON-style uint8 map, or ``round(255 * density)`` when it has none."""
    if record.y_original is not None:
        return np.asarray(record.y_original)
    return np.round(255.0 * np.asarray(record.density, dtype=np.float64)).astype(np.uint8)
