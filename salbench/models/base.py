"""What every salbench model is: records in, a stack of saliency maps out, plus a card."""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np


class SaliencyModel:
    """Base class: subclasses set :attr:`name`, :attr:`card` and implement :meth:`predict`.

    Attributes
    ----------
    name : str
        Registry name.
    card : dict
        Model card: ``input_size``, ``output_size``, ``trained_on``, ``published_scores``, ...
        (the same content as ``models/<name>.json`` in the repository).
    needs_training : bool
        True when the model has no weights yet (a shallow network without checkpoint).
    """

    name: str = "model"
    card: dict[str, Any] = {}
    needs_training: bool = False

    @property
    def input_size(self):
        """``(h, w)`` the model reads, or None if it ignores the image."""
        return self.card.get("input_size")

    @property
    def output_size(self):
        """``(h, w)`` of the maps :meth:`predict` returns, or None for each record's own shape."""
        return self.card.get("output_size")

    def predict(self, records: Sequence) -> np.ndarray:
        """Saliency maps for ``records``: ``(N, h, w)`` float32."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def card_copy(card: dict[str, Any], **updates: Any) -> dict[str, Any]:
    """A deep copy of a default card with ``updates`` applied (cards are never shared mutably)."""
    out = copy.deepcopy(card)
    out.update(updates)
    return out


def check_records(records: Sequence, what: str = "records") -> list:
    """Materialise ``records`` as a list and refuse an empty input with a clear error."""
    recs = list(records)
    if not recs:
        raise ValueError(f"no {what} to predict on (got an empty sequence)")
    return recs


def scale_to_max1(maps) -> np.ndarray:
    """Divide each map by its maximum (float32): same ranking, coursework-safe scale.

    Exact metrics do not care about a positive per-image scale, but the coursework
    protocol quantises ``p * 255`` to uint8, which turns a probability map
    (values ~1/2304) into zeros; so salbench's distribution-valued models return
    maps whose maximum is 1.
    """
    m = np.asarray(maps, dtype=np.float64)
    peak = m.max(axis=(-2, -1), keepdims=True)
    return (m / np.where(peak > 0, peak, 1.0)).astype(np.float32)
