"""What a training run is asked to do: one :class:`TrainingRequest`, checked before any work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from salbench.training.recipes import Recipe, get_recipe

TRAINABLE = ("shallow_mse", "shallow_kl")
RESUME_MODES = ("never", "require", "auto")


def check_seed(seed) -> int:
    """``seed`` as an int; ``ValueError`` (one line) unless it is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


@dataclass(frozen=True)
class TrainingRequest:
    """One training run: the model, its data, the recipe and where the run lives.

    Built by ``salbench train``, by :func:`salbench.training.train` (its keyword
    form) and by ``salbench eval``'s implicit quick checkpoint; carried out by
    :func:`salbench.training.pipeline.run_training`.

    Parameters
    ----------
    model : {"shallow_mse", "shallow_kl"}
    dataset : str, dataset, (x, y) arrays or sequence of Records
        A name opens ``get_dataset(dataset, split, data_dir, **dataset_options)``
        and, for validation, its ``val_split`` split (``None``: no validation).
        Arrays and Records are the images to mirror (recipe ``mirror``).
    val : same kinds as ``dataset``, optional
        Validation data when ``dataset`` is not a name (never mirrored).
    split, val_split : str
    data_dir : path, optional
    dataset_options : mapping
        Dataset options (``{"preset": "small"}``).
    preset : {"quick", "full", "distribution"}
        Recipe (:mod:`salbench.training.recipes`).
    recipe_options : mapping
        Fields of the recipe to replace (``{"epochs": 3, "batch_size": 16}``); ``None``
        values keep the preset's. Recorded in the run's configuration.
    seed : int
        Non-negative; seeds the initialisation and every epoch's shuffle.
    device : {"auto", "cpu", "cuda"}
    out : path, optional
        Run directory; default :func:`salbench.training.default_run_dir`.
    resume : {"never", "require", "auto"} or bool
        ``never`` (False): a directory that already holds a run is refused.
        ``require`` (True, ``--resume``): continue the run in ``out`` bit-for-bit
        from its latest checkpoint; no run there is an error. ``auto``: continue
        it if there is one, else start it (``salbench eval``'s quick checkpoint).
        Resuming a completed run trains nothing and returns its result.
    progress : bool
        A tqdm progress bar on stderr.
    on_epoch_end, should_stop : callable, optional
        Called with the number of completed epochs after each epoch (``on_epoch_end``
        after that epoch's checkpoint). ``should_stop`` returning True ends the run
        early: a resumable ``epoch-NNNN`` checkpoint (and the best so far) is written,
        no ``final``, and the result says ``completed=False``.
    """

    model: str
    dataset: Any
    val: Any = None
    split: str = "train"
    val_split: str | None = "val"
    data_dir: Any = None
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    preset: str = "quick"
    recipe_options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    out: Path | None = None
    resume: str = "never"
    progress: bool = True
    on_epoch_end: Callable[[int], None] | None = None
    should_stop: Callable[[int], bool] | None = None

    def __post_init__(self):
        # bools are the keyword API's spelling of never / require
        resume = {False: "never", True: "require"}.get(self.resume, self.resume) if isinstance(
            self.resume, bool) else self.resume
        object.__setattr__(self, "resume", resume)
        object.__setattr__(self, "dataset_options", dict(self.dataset_options or {}))
        object.__setattr__(self, "recipe_options",
                           {k: v for k, v in (self.recipe_options or {}).items() if v is not None})
        if self.out is not None:
            object.__setattr__(self, "out", Path(self.out).expanduser())

    @property
    def variant(self) -> str:
        """``"mse"`` or ``"kl"``."""
        return self.model.split("_", 1)[1]

    def replace(self, **changes) -> "TrainingRequest":
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def check(self) -> Recipe:
        """Validate everything that needs no data; return the recipe the run follows.

        Raises
        ------
        ValueError
            One line: an untrainable model, a bad seed or resume mode, an unknown
            preset, an invalid recipe value.
        """
        if self.model not in TRAINABLE:
            raise ValueError(f"model {self.model!r} is not trainable here; trainable: {', '.join(TRAINABLE)}")
        check_seed(self.seed)
        if self.resume not in RESUME_MODES:
            raise ValueError(f"resume must be {', '.join(RESUME_MODES)} (or a bool), got {self.resume!r}")
        return get_recipe(self.model, self.preset, **self.recipe_options)
