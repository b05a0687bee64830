"""Dataset names -> loaders, ``get_dataset``, ``list_datasets``, ``dataset_splits``, ``describe``."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from salbench.data.base import SaliencyDataset


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: its loader (``"module:Class"``, imported lazily) and a summary."""

    name: str
    loader: str
    description: str
    needs_data_dir: bool


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("synthetic", "salbench.data.synthetic:SyntheticDataset",
                    "built-in SALICON-shaped scenes with known density (generated, seeded; preset=small for demos)",
                    False),
        DatasetInfo("salicon", "salbench.data.salicon:SaliconDataset",
                    "SALICON official release (images/, maps/, fixations/*.mat or 2015 JSON); --data-dir or SALBENCH_DATA",
                    True),
        DatasetInfo("salicon-pkl", "salbench.data.salicon_pkl:SaliconPickleDataset",
                    "coursework train.pkl / val.pkl (96x96 inputs, 48x48 targets; val at 480x640)", True),
        DatasetInfo("nus", "salbench.data.nus:NUSDataset",
                    "NUS eye-tracking layout: stimuli/ + fixations.mat or eye/fixations.mat (OSIE, MIT1003, EyeCrowd)",
                    True),
        DatasetInfo("folder", "salbench.data.folder:FolderDataset",
                    "any folder by path templates (--option images=... fixations=... [density=...]) or "
                    "--option layout=salicon|mit1003|cat2000", True),
    )
}


def list_datasets() -> list[str]:
    """Names of the known datasets, sorted."""
    return sorted(DATASETS)


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}.{hint}")
    return DATASETS[name]


def _loader(name: str):
    module, cls = _info(name).loader.split(":")
    return getattr(importlib.import_module(module), cls)


def resolve_data_dir(name: str, data_dir: str | os.PathLike | None) -> Path | None:
    """``data_dir``, else ``$SALBENCH_DATA``; a clear error when a file-based dataset has neither."""
    info = _info(name)
    if not info.needs_data_dir:
        return None
    if data_dir is None:
        env = os.environ.get("SALBENCH_DATA")
        if not env:
            raise ValueError(f"dataset {name!r} reads files: give --data-dir DIR or set SALBENCH_DATA")
        data_dir = env
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: dataset directory for {name!r} not found")
    return path


def get_dataset(name: str, split: str, data_dir: str | os.PathLike | None = None, **options: Any) -> SaliencyDataset:
    """Open a dataset split lazily.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    split : str
        A split of that dataset (see :func:`dataset_splits`).
    data_dir : path, optional
        Root of the files (file-based datasets); defaults to ``$SALBENCH_DATA``.
    **options
        Loader options, e.g. ``preset="small"`` (synthetic), ``resolution=(480, 640)`` (nus),
        ``fixations="location"`` (salicon).

    Raises
    ------
    ValueError
        Unknown dataset, split or option.
    FileNotFoundError
        Missing directory or files (the message names them).
    """
    cls = _loader(name)
    _check_option_names(name, cls, options)
    root = resolve_data_dir(name, data_dir)
    try:
        return cls(split, **options) if root is None else cls(root, split, **options)
    except TypeError as exc:  # an unknown keyword option
        raise ValueError(f"dataset {name!r}: {exc}") from None


def option_names(cls) -> list[str]:
    """The keyword options a loader takes (its keyword-only parameters)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _check_option_names(name: str, cls, options: dict) -> None:
    known = option_names(cls)
    unknown = [k for k in options if k not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"dataset {name!r} has no option {unknown[0]!r}; its options: {', '.join(known)}.{hint}")


def dataset_splits(name: str, data_dir: str | os.PathLike | None = None, **options: Any) -> list[str]:
    """The splits ``name`` offers (for file-based datasets: those present in ``data_dir``).

    ``options`` are the loader options that decide the splits (the ``folder`` templates);
    other loaders ignore them.
    """
    cls = _loader(name)
    try:
        return list(cls.available_splits(resolve_data_dir(name, data_dir), **options))
    except TypeError as exc:  # an unknown keyword option
        raise ValueError(f"dataset {name!r}: {exc}") from None


def describe(name: str, data_dir: str | os.PathLike | None = None, *, max_images: int | None = None,
             **options: Any) -> dict[str, Any]:
    """Summary for ``salbench data info``: per split image count, resolution, observers, fixations.

    Parameters
    ----------
    max_images : int, optional
        Scan at most this many images per split for the fixation statistics (the image
        count is always complete); None scans all.

    Each split also reports ``dropped_fixations`` over the scanned images: fixations
    outside their image, dropped (:meth:`SaliencyDataset.dropped_fixations_total`).
    """
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 0):
        raise ValueError(f"max_images must be a non-negative integer, not {max_images!r}")
    out: dict[str, Any] = {"dataset": name, "description": _info(name).description, "splits": {}}
    for split in dataset_splits(name, data_dir, **options):
        ds = get_dataset(name, split, data_dir=data_dir, **options)
        out["location"] = ds.location
        n = len(ds) if max_images is None else min(len(ds), max_images)
        shapes, n_fix, observers = set(), [], set()
        for i in range(n):
            stats = ds.stats(i)
            shapes.add(tuple(stats["shape"]))
            n_fix.append(stats["n_fixations"])
            if stats.get("n_observers") is not None:
                observers.add(stats["n_observers"])
        out["splits"][split] = {
            "images": len(ds),
            "scanned": n,
            "resolution": sorted({f"{h}x{w}" for h, w in shapes}),
            "observers": sorted(observers) or None,
            "total_fixations": int(np.sum(n_fix)) if n_fix else 0,
            "fixations_per_image": float(np.mean(n_fix)) if n_fix else 0.0,
            "dropped_fixations": ds.dropped_fixations_total(range(n), warn=False)["n_dropped"],
            "params": ds.params,
        }
    return out
