"""What ``salbench check`` reports: drifts, per-entry reports, the cheap verification status."""

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
    new_map_derivation: dict | None = None  # recomputed ``map_derivation`` (metric-specific maps)


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
