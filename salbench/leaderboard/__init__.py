"""Results files, leaderboard tables and metric-drift checks."""

from salbench.leaderboard.results import (
    RESULT_SCHEMA,
    build_result,
    load_result,
    load_results,
    result_filename,
    results_to_dataframe,
    write_result,
)

__all__ = [
    "RESULT_SCHEMA",
    "build_result",
    "load_result",
    "load_results",
    "result_filename",
    "results_to_dataframe",
    "write_result",
]
