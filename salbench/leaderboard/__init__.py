"""Results files, leaderboard tables and metric-drift checks.

``results`` writes and reads one JSON per (model, dataset, split, protocol) with
its predictions beside it; ``tables`` renders leaderboards and the report's
Tables II and III from those files; ``check`` recomputes them (``salbench check``).
"""

from salbench.leaderboard.check import CheckReport, Drift, check_result, update_result
from salbench.leaderboard.results import (
    RESULT_SCHEMA,
    build_result,
    load_predictions_npz,
    load_result,
    load_results,
    quantize_predictions,
    result_filename,
    results_to_dataframe,
    save_predictions,
    write_result,
)

__all__ = [
    "RESULT_SCHEMA",
    "CheckReport",
    "Drift",
    "build_result",
    "check_result",
    "load_predictions_npz",
    "load_result",
    "load_results",
    "quantize_predictions",
    "result_filename",
    "results_to_dataframe",
    "save_predictions",
    "update_result",
    "write_result",
]
