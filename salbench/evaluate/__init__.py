"""Evaluate a model, or maps a user already has, on a dataset split, end to end, streaming.

What ``salbench eval`` runs, and the Python API::

    from salbench.evaluate import EvaluationRequest, evaluate
    record, path = evaluate(EvaluationRequest(model="center_bias", dataset="synthetic", split="val"))

An evaluation is one :class:`EvaluationRequest` (every argument checked when it is
built) run in four steps:

1. :func:`~salbench.evaluate.plan.plan_evaluation` resolves the dataset choice, split
   and protocol before any data is read (a mistake costs milliseconds, not a dataset load);
2. :func:`~salbench.evaluate.model.prepare_model` gives a model its weights (a cached
   quick checkpoint on the built-in dataset, a ``center_bias`` fit on the train split);
3. one streaming loop, :func:`salbench.scoring.score_stream`, scores the split chunk by
   chunk; the maps come from a prediction source (:mod:`~salbench.evaluate.feeds`: a
   model predicting a chunk in batches, maps in memory or in a file, a folder of maps)
   and go into the results entry as they come, so memory does not grow with the split;
4. the results JSON is committed last, with the predictions, as one unit
   (:class:`salbench.results.ResultWriter`).

Layer: above the results layer, models, training, data and protocols; nothing here
imports ``salbench.leaderboard``, ``salbench.check`` or the CLI.
"""

from salbench.evaluate.model import NeedsTrainingError, prepare_model
from salbench.evaluate.plan import BUILTIN_DATASET, DatasetChoice, EvalPlan, choose_dataset, plan_evaluation
from salbench.evaluate.request import (
    DEFAULT_CHUNK_FILES, DEFAULT_CHUNK_MODEL, DEFAULT_RESULTS_DIR, EvaluationRequest,
)
from salbench.evaluate.run import default_predictions_name, entry_stem, evaluate

__all__ = [
    "BUILTIN_DATASET",
    "DEFAULT_CHUNK_FILES",
    "DEFAULT_CHUNK_MODEL",
    "DEFAULT_RESULTS_DIR",
    "DatasetChoice",
    "EvalPlan",
    "EvaluationRequest",
    "NeedsTrainingError",
    "choose_dataset",
    "default_predictions_name",
    "entry_stem",
    "evaluate",
    "plan_evaluation",
    "prepare_model",
]
