"""Training the shallow networks: recipes, a fast resumable loop, safetensors checkpoints.

A run is a :class:`TrainingRequest` carried out by :func:`run_training` as named
steps (:mod:`salbench.training.pipeline`); :func:`train` is its keyword form.

Examples
--------
>>> from salbench.training import get_recipe
>>> get_recipe("shallow_mse", "full").epochs
1000
>>> TrainingRequest("shallow_kl", "synthetic", recipe_options={"epochs": 2}).check().epochs
2
"""

from salbench.training.api import train
from salbench.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from salbench.training.pipeline import TrainingDiverged, TrainResult, run_training
from salbench.training.recipes import PRESETS, TARGETS, Recipe, get_recipe
from salbench.training.request import TRAINABLE, TrainingRequest
from salbench.training.runs import (cache_dir, checkpoint_summary, chosen_checkpoint, default_checkpoint_path,
                                    default_run_dir, is_completed, stale_run)

__all__ = [
    "PRESETS",
    "Recipe",
    "TARGETS",
    "TRAINABLE",
    "TrainResult",
    "TrainingDiverged",
    "TrainingRequest",
    "cache_dir",
    "checkpoint_summary",
    "chosen_checkpoint",
    "default_checkpoint_path",
    "default_run_dir",
    "get_recipe",
    "is_completed",
    "latest_checkpoint",
    "load_checkpoint",
    "run_training",
    "save_checkpoint",
    "stale_run",
    "train",
]
