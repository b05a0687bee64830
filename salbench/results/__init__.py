"""Results entries: one JSON per (model, dataset, split, protocol), its predictions beside it.

A results file is the only source of a measured leaderboard row: tables are
rendered from these files and ``salbench check`` recomputes them from the
predictions they name. This layer sits below evaluation (which writes entries)
and below ``check`` and ``leaderboard`` (which read them); it imports only the
metric registry, the protocols (to migrate old records), ``salbench.io`` and
``salbench.stats``.

Modules
-------
- :mod:`~salbench.results.schema`: ``salbench.result/2``: :func:`build_result` from per-image
  scores, :func:`validate_result`;
- :mod:`~salbench.results.naming`: :func:`result_stem`, :func:`result_filename`;
- :mod:`~salbench.results.writer`: :class:`ResultWriter` (predictions + JSON as one unit),
  :func:`write_result`, :func:`rewrite_result`;
- :mod:`~salbench.results.reading`: :func:`load_result`, :func:`load_results`,
  :func:`scan_results`, :func:`resolve_data_dir`;
- :mod:`~salbench.results.maps`: :func:`quantise_map`, stand-alone predictions files;
- :mod:`~salbench.results.frame`: :func:`results_to_dataframe`;
- :mod:`~salbench.results.migrate`: older schemas to the current one (``check --update``).
"""

from salbench.results.frame import results_to_dataframe
from salbench.results.maps import (
    folder_digest, load_predictions_npz, quantise_map, quantise_predictions, save_predictions,
)
from salbench.results.naming import result_filename, result_stem
from salbench.results.reading import (
    ScannedEntry, load_result, load_results, resolve_data_dir, result_paths, scan_results,
)
from salbench.results.schema import (
    RESULT_SCHEMA, ResultsFileError, build_result, count_excluded, metrics_block, validate_result,
)
from salbench.results.writer import ResultWriter, rewrite_result, write_result

__all__ = [
    "RESULT_SCHEMA",
    "ResultWriter",
    "ResultsFileError",
    "ScannedEntry",
    "build_result",
    "count_excluded",
    "folder_digest",
    "load_predictions_npz",
    "load_result",
    "load_results",
    "metrics_block",
    "quantise_map",
    "quantise_predictions",
    "resolve_data_dir",
    "result_filename",
    "result_paths",
    "result_stem",
    "results_to_dataframe",
    "rewrite_result",
    "save_predictions",
    "scan_results",
    "validate_result",
    "write_result",
]
