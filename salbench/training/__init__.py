"""Training the shallow networks: recipes, a fast resumable loop, safetensors checkpoints.

Examples
--------
>>> from salbench.training import get_recipe
>>> get_recipe("shallow_mse", "full").epochs
1000
"""

from salbench.training.api import (TRAINABLE, TrainResult, cache_dir, checkpoint_summary, chosen_checkpoint,
                                  default_checkpoint_path, default_run_dir, stale_run, train)
from salbench.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from salbench.training.recipes import PRESETS, TARGETS, Recipe, get_recipe

__all__ = [
    "PRESETS",
    "Recipe",
    "TARGETS",
    "TRAINABLE",
    "TrainResult",
    "cache_dir",
    "checkpoint_summary",
    "chosen_checkpoint",
    "default_checkpoint_path",
    "default_run_dir",
    "get_recipe",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "stale_run",
    "train",
]
