"""What every salbench model is: records in, a stack of saliency maps out, plus a card.

A model also says what its maps are (:attr:`SaliencyModel.output`): ``"saliency"`` (a
plain map, only its ranking and scale mean something) or ``"density"`` (a fixation density:
a distribution over the pixels of each image). A density model provides
:meth:`SaliencyModel.predict_log_density`, from which metric-specific maps are derived
(:mod:`salbench.protocols.metric_maps`). An object that declares nothing is a saliency model.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np


OUTPUTS = ("saliency", "density")


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
    output : {"saliency", "density"}
        ``"density"``: :meth:`predict_log_density` returns, per image, a log-density over the
        model's output grid (``predict`` then returns the same density scaled to maximum 1).
        Default ``"saliency"``.
    """

    name: str = "model"
    card: dict[str, Any] = {}
    needs_training: bool = False
    output: str = "saliency"

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

    def predict_log_density(self, records: Sequence) -> np.ndarray:
        """Log fixation densities for ``records``: ``(N, h, w)`` float64, natural log.

        Each image's ``exp`` sums to 1 over the model's output grid (``output_size``, or each
        record's shape when None); every value is finite (no pixel has probability 0). The
        scorer brings it to the ground truth's size with
        :func:`salbench.protocols.metric_maps.resize_log_density`.

        Only for ``output == "density"``. The default takes :meth:`predict`'s maps as
        unnormalised densities (``log(m) - log(sum m)``); a model whose density is computed
        in the log domain (a softmax) should override it for precision.

        Raises
        ------
        TypeError
            The model is a saliency model.
        ValueError
            A map of :meth:`predict` has a non-positive value or is not finite.
        """
        if self.output != "density":
            raise TypeError(f"model {self.name!r} predicts saliency maps, not fixation densities "
                            "(its output is 'saliency')")
        maps = np.asarray(self.predict(records), dtype=np.float64)
        return log_densities_from_maps(maps, self.name)

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


def log_densities_from_maps(maps, who: str = "model") -> np.ndarray:
    """``log(m) - log(sum m)`` per map of a stack ``(N, h, w)`` of positive maps, float64."""
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3:
        raise ValueError(f"{who}: expected a stack (N, h, w) of density maps, got shape {m.shape}")
    ok = (np.isfinite(m) & (m > 0)).reshape(len(m), -1).all(axis=1)
    if not ok.all():
        bad = int(np.argmin(ok))
        raise ValueError(f"{who}: density map {bad} has a zero, negative or non-finite value; a density model "
                         "must give every pixel a positive probability")
    out = np.log(m)
    return out - np.log(m.sum(axis=(1, 2), keepdims=True))


def model_output(model) -> str:
    """What ``model`` predicts: ``"density"`` or ``"saliency"`` (``output`` attribute; absent: saliency).

    Raises
    ------
    ValueError
        ``output`` is set to something else, or a density model has no ``predict_log_density``.
    """
    out = getattr(model, "output", "saliency")
    name = getattr(model, "name", type(model).__name__)
    if out not in OUTPUTS:
        raise ValueError(f"model {name!r}: output must be one of {OUTPUTS}, got {out!r}")
    if out == "density" and not callable(getattr(model, "predict_log_density", None)):
        raise ValueError(f"model {name!r} declares output 'density' but has no predict_log_density method")
    return out


def is_density_model(model) -> bool:
    """Whether ``model`` predicts a fixation density (see :func:`model_output`)."""
    return model_output(model) == "density"
