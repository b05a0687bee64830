"""Leaderboard tables rendered from results files (and, later, the HTML site).

``tables`` renders per-dataset rankings, protocol comparisons and the report's
Tables II and III from results files (:mod:`salbench.results`), with each row's
verification word (:func:`salbench.check.entry_verification`).
"""

from salbench.leaderboard.tables import (
    leaderboard_table, leaderboards, protocol_comparison_table, published_rows_from_cards, report_table,
)

__all__ = [
    "leaderboard_table",
    "leaderboards",
    "protocol_comparison_table",
    "published_rows_from_cards",
    "report_table",
]
