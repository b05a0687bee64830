"""``salbench check``: recompute results entries and compare everything that can be derived.

Each results file names its predictions (a stored file, or a folder of maps with
each map's hash), its dataset (with the options needed to reload it) and its
protocol with every parameter and the seed, so an entry can be recomputed from
scratch and compared value by value: :mod:`~salbench.check.audit` without the
data (what the leaderboard's :func:`verification_status` reports), then
:mod:`~salbench.check.recompute` with it.

Outcomes per entry: ``ok``; ``drift`` (a derived value differs: per-image
value, mean, CI, counts, metric set or direction, or a file of an older schema;
``--update`` rewrites these); ``error`` (the entry cannot be recomputed as
recorded, or is broken or contradicts itself, or its model is not what it records:
never rewritten); ``skipped`` (data absent here and the record is consistent; a
failure under ``--strict``). Besides, who produced the maps
(:mod:`~salbench.check.model`: the model re-run on a sample, "model not verified"
where its checkpoint is not available, or "predictions, no model"), and the entry's
verification word (:data:`VERIFICATION_WORDS`), which ``--record`` writes to
``verification.json`` (:mod:`~salbench.check.record`) for the tables and the site.

Layer: above evaluation (it rescores with :func:`salbench.scoring.score_stream`
and opens datasets, protocols and prediction folders) and below the leaderboard
(which shows :func:`verification_status`); it reads and rewrites entries through
:mod:`salbench.results`.
"""

from salbench.check.audit import (
    DEFAULT_TOLERANCE, MAX_CHECK_IMAGES, MAX_PROTOCOL_INT, check_tolerance, verification_status,
)
from salbench.check.model import DEFAULT_RERUN, RerunPolicy
from salbench.check.recompute import check_result, update_result
from salbench.check.record import RECORD_FILE, EntryVerification, entry_verification
from salbench.check.report import (
    AUDITED, MODEL_RERUN, NOT_VERIFIED, RECOMPUTED, VERIFICATION_WORDS, CheckReport, Drift, ModelCheck, Verification,
    broken_report, weakest_word,
)

__all__ = [
    "AUDITED",
    "DEFAULT_RERUN",
    "MODEL_RERUN",
    "NOT_VERIFIED",
    "RECOMPUTED",
    "RECORD_FILE",
    "VERIFICATION_WORDS",
    "EntryVerification",
    "ModelCheck",
    "RerunPolicy",
    "entry_verification",
    "weakest_word",
    "DEFAULT_TOLERANCE",
    "MAX_CHECK_IMAGES",
    "MAX_PROTOCOL_INT",
    "CheckReport",
    "Drift",
    "Verification",
    "broken_report",
    "check_tolerance",
    "check_result",
    "update_result",
    "verification_status",
]
