"""The one per-image record that every dataset yields and every protocol and model reads.

Derived arrays (``density``, ``y_original``, ``x96``, ``y48``, ``true_density``) may be
*lazy*: a loader stores a :class:`Lazy` recipe instead of the array, and the array is
computed on the first read of the attribute and then kept. Consumers just read the
attribute; ``Record(...)`` with arrays and ``dataclasses.replace`` work as before
(``dataclasses.replace`` reads every field, so it computes the lazy ones; use
:meth:`Record.replace` to keep them lazy).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

#: Fields that may hold a :class:`Lazy` recipe.
LAZY_FIELDS = ("density", "y_original", "x96", "y48", "true_density")


class Lazy:
    """A deferred field value: ``func(record, *args, **kwargs)``, computed on first read.

    ``func`` should be a module-level function (records then pickle with the recipe,
    uncomputed). It receives the record, so a recipe can build on other fields (e.g.
    ``y_original`` from ``density``), which may themselves be lazy.
    """

    __slots__ = ("func", "args", "kwargs")

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.func, self.args, self.kwargs = func, args, kwargs

    def compute(self, record: "Record") -> Any:
        return self.func(record, *self.args, **self.kwargs)

    def __reduce__(self):
        return _make_lazy, (self.func, self.args, self.kwargs)

    def __repr__(self) -> str:
        return f"Lazy({getattr(self.func, '__name__', self.func)})"


def _make_lazy(func, args, kwargs) -> Lazy:
    return Lazy(func, *args, **kwargs)


class _LazyField:
    """Data descriptor behind a lazy-capable dataclass field.

    The value lives in the instance ``__dict__`` under the field's name; a :class:`Lazy`
    there is replaced by its result on the first read. ``__get__`` on the class raises
    AttributeError for a required field (dataclasses then gives the field no default) and
    returns the default otherwise (the documented descriptor-typed field protocol).
    """

    _MISSING = object()

    def __init__(self, default: Any = _MISSING) -> None:
        self.default = default

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            if self.default is self._MISSING:
                raise AttributeError(self.name)
            return self.default
        try:
            value = obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None
        if isinstance(value, Lazy):
            value = value.compute(obj)
            obj.__dict__[self.name] = value
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = value


@dataclass(repr=False)
class Record:
    """Everything salbench knows about one image, at the image's own resolution.

    Attributes
    ----------
    name : str
        File name of the image (e.g. ``COCO_val2014_000000000042.jpg``); for datasets
        whose images sit in sub-folders, the path relative to the images root
        (``Action/001.jpg``).
    image : ndarray or None
        ``(H, W, 3)`` uint8 image at the evaluated resolution; None if the dataset lacks
        it or the record is ground truth only (:meth:`SaliencyDataset.ground_truth`).
    fixations : ndarray
        ``(K, 2)`` int64 fixation points, 0-based ``(row, col)`` in ``(H, W)``;
        shape ``(0, 2)`` when the dataset has only maps.
    observers : ndarray or None
        ``(K,)`` observer index of each fixation, None if unknown.
    fixation_map : ndarray
        ``(H, W)`` bool, True at fixated pixels.
    density : ndarray
        ``(H, W)`` float64 continuous ground-truth density, maximum 1 (may be lazy).
    x96 : ndarray or None
        ``(3, 96, 96)`` float32 model input in [0, 1] (lazy; None without an image).
    y48 : ndarray or None
        ``(48, 48)`` float32 training target in [0, 1] (may be lazy).
    y_original : ndarray or None
        ``(H, W)`` uint8 SALICON-style density map (the coursework ``y_original``; may be lazy).
    true_density : ndarray or None
        Synthetic data only: the density fixations were drawn from (sums to 1; may be lazy).
    meta : dict
        Anything else worth recording (source file, clipped fixation count, ...).
    """

    name: str
    image: np.ndarray | None
    fixations: np.ndarray
    observers: np.ndarray | None
    fixation_map: np.ndarray
    density: np.ndarray = _LazyField()
    x96: np.ndarray | None = _LazyField()
    y48: np.ndarray | None = _LazyField()
    y_original: np.ndarray | None = _LazyField(default=None)
    true_density: np.ndarray | None = _LazyField(default=None)
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the ground truth, the resolution metrics are computed at."""
        return tuple(self.fixation_map.shape)

    def is_computed(self, name: str) -> bool:
        """False while field ``name`` still holds a :class:`Lazy` recipe."""
        return not isinstance(self.__dict__.get(name), Lazy)

    def replace(self, **changes: Any) -> "Record":
        """A shallow copy with ``changes`` applied; lazy fields not changed stay lazy."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise TypeError(f"Record has no field(s) {sorted(unknown)}")
        out = copy.copy(self)
        out.__dict__.update(changes)
        return out

    def __repr__(self) -> str:  # never computes a lazy field
        def show(k):
            v = self.__dict__.get(k)
            if isinstance(v, Lazy):
                return "<lazy>"
            if isinstance(v, np.ndarray):
                return f"array{v.shape} {v.dtype}"
            return repr(v)

        body = ", ".join(f"{k}={show(k)}" for k in self.__dataclass_fields__ if k != "meta")
        return f"Record({body})"


# -- recipes shared by the loaders ------------------------------------------------------

def y_original_from_density(record: Record):
    """``round(255 * density)`` as uint8 (the SALICON-style map of a [0, 1] density)."""
    from salbench.data._maps import to_uint8_map

    return to_uint8_map(record.density)


def x96_from_image(record: Record):
    """The ``(3, 96, 96)`` model input of the record's image (None without an image)."""
    from salbench.data._maps import model_input

    return None if record.image is None else model_input(record.image)


def y48_from_y_original(record: Record):
    """The ``(48, 48)`` training target from ``y_original`` (None when there is none)."""
    from salbench.data._maps import model_target

    y = record.y_original
    return None if y is None else model_target(y)
