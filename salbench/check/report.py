"""What ``salbench check`` reports: drifts, per-entry reports, verification words, the cheap status.

Verification words, strongest first (:data:`VERIFICATION_WORDS`; the leaderboard tables and
the site show the same words):

``model re-run``
    every score recomputed from the stored maps, and the model itself re-run on a sample of
    the images reproduced those maps exactly;
``recomputed``
    every score recomputed from the stored maps; who produced the maps is not verified (the
    model's checkpoint is not available here: "model not verified"), or there is no model
    (maps a user brought: "predictions, no model");
``audited only``
    the record, its hashes and its files are consistent, nothing was recomputed (the data is
    not on the machine that checked it, or no check recorded it);
``not verified``
    drift, an error, or a failed audit (the detail says which).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Drift:
    """One derived value that differs from its recomputation."""

    entry: str
    metric: str
    where: str  # "mean", "ci95 low", "n", "image <name>", "metric set", "direction", "schema", ...
    old: Any
    new: Any
    tolerance: float = 0.0
    note: str = ""

    @property
    def detail(self) -> str:
        """``metric (where) was OLD, now NEW (tolerance TOL)``, or ``metric: note``."""
        if self.note:
            return f"{self.metric}: {self.note}"
        tol = f" (tolerance {self.tolerance:g})" if self.tolerance else ""
        return f"{self.metric} ({self.where}) was {_num(self.old)}, now {_num(self.new)}{tol}"

    def __str__(self) -> str:
        return f"{self.entry}: {self.detail}"


def _num(x) -> str:
    if isinstance(x, (bool, str)) or (isinstance(x, int) and not isinstance(x, bool)):
        return str(x).lower() if isinstance(x, bool) else str(x)
    return "undefined" if x is None or not np.isfinite(x) else repr(float(x))


MODEL_RERUN = "model re-run"
RECOMPUTED = "recomputed"
AUDITED = "audited only"
NOT_VERIFIED = "not verified"
#: Strongest first: a leaderboard row is only as verified as its weakest entry.
VERIFICATION_WORDS = (MODEL_RERUN, RECOMPUTED, AUDITED, NOT_VERIFIED)


def weakest_word(words) -> str:
    """The weakest of several verification words (an unknown word counts as :data:`NOT_VERIFIED`)."""
    rank = {w: i for i, w in enumerate(VERIFICATION_WORDS)}
    return max(words, key=lambda w: rank.get(w, len(VERIFICATION_WORDS)), default=NOT_VERIFIED)


@dataclass(frozen=True)
class ModelCheck:
    """What ``check`` verified of who produced an entry's maps (:mod:`salbench.check.model`).

    ``outcome`` is one of ``"re-run"`` (the model re-run on ``images``, sampled with ``seed``,
    reproduced the stored maps), ``"not verified"`` (its checkpoint is not available here),
    ``"predictions"`` (a user's maps: no model) or ``"not checked"`` (the data is absent).
    """

    outcome: str
    detail: str
    images: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def verified(self) -> bool:
        """Whether nothing about the maps' origin is left unverified (re-run, or no model to re-run)."""
        return self.outcome in ("re-run", "predictions")


@dataclass
class CheckReport:
    """Outcome of checking one results file.

    ``errors`` lists every problem that makes the entry unusable (one line each),
    ``drifts`` every derived value that differs; ``message`` is the one-line
    summary (the skip reason for ``skipped``).
    """

    entry: str
    status: str  # "ok", "drift", "skipped", "error"
    message: str = ""
    drifts: list[Drift] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    new_scores: dict[str, np.ndarray] = field(default_factory=dict)
    new_names: list[str] = field(default_factory=list)
    #: who produced the maps (None: not looked at, e.g. an unreadable file)
    model: ModelCheck | None = None
    #: recomputed counts of the data side (``ground_truth``, ``n_aspect_mismatch``) for ``--update``
    new_counts: dict[str, Any] = field(default_factory=dict)
    new_map_derivation: dict | None = None  # recomputed ``map_derivation`` (metric-specific maps)

    @property
    def verification(self) -> str:
        """The entry's verification word (module docstring)."""
        if self.status == "skipped":
            return AUDITED
        if self.status != "ok":
            return NOT_VERIFIED
        return MODEL_RERUN if self.model is not None and self.model.outcome == "re-run" else RECOMPUTED

    @property
    def verification_detail(self) -> str:
        """One line backing :attr:`verification` (what was recomputed, re-run, or why not)."""
        if self.status in ("drift", "error"):
            return (self.errors or [d.detail for d in self.drifts] or [self.message])[0]
        if self.status == "skipped":
            return f"not recomputed: {self.message}"
        model = self.model.detail if self.model is not None else "model not checked"
        return f"every score recomputed from the stored maps; {model}"

    def as_json(self) -> dict[str, Any]:
        """The report as plain data (``salbench check --json``)."""
        model = None if self.model is None else {
            "outcome": self.model.outcome, "detail": self.model.detail, "images": list(self.model.images),
            "seed": self.model.seed}
        return {"entry": self.entry, "status": self.status, "verification": self.verification,
                "detail": self.verification_detail, "model": model, "errors": list(self.errors),
                "drifts": [d.detail for d in self.drifts]}


@dataclass(frozen=True)
class Verification:
    """What :func:`~salbench.check.verification_status` found: ``ok`` and the problems, one line each."""

    ok: bool
    problems: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok

    @property
    def summary(self) -> str:
        """``"verified"`` or the first problem (with how many more)."""
        if self.ok:
            return "verified"
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return self.problems[0] + more


def broken_report(path: str | os.PathLike, error: str) -> CheckReport:
    """The report of a results file that could not be read (always an error)."""
    return CheckReport(Path(path).name, "error", error, errors=[error])
