"""Datasets: one lazy interface over SALICON (official and pickles), NUS sets, any folder and synthetic.

>>> from salbench.data import get_dataset
>>> ds = get_dataset("synthetic", "val", preset="small")
>>> len(ds), ds[0].shape
(32, (480, 640))
"""

from salbench.data.base import DroppedFixationsWarning, SaliencyDataset, cache_dir
from salbench.data.record import Lazy, Record
from salbench.data.registry import DATASETS, dataset_splits, describe, get_dataset, list_datasets

__all__ = [
    "DATASETS",
    "DroppedFixationsWarning",
    "Lazy",
    "Record",
    "SaliencyDataset",
    "cache_dir",
    "dataset_splits",
    "describe",
    "get_dataset",
    "list_datasets",
]
