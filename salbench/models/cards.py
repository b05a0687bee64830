"""Model cards of the built-in models, the source of the repository's ``models/<name>.json``.

Regenerate the JSON files after changing a card with ``python -m salbench.models.cards models``;
``tests/test_models.py`` fails when they drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path


def builtin_cards() -> dict[str, dict]:
    """``name -> card`` for every built-in model (plain JSON-serialisable dicts)."""
    from salbench.models.baselines import DEFAULT_CARDS as BASE
    from salbench.models.shallow import DEFAULT_CARDS as SHALLOW

    return {**BASE, **SHALLOW}


def write_cards(directory) -> list[Path]:
    """Write ``<directory>/<name>.json`` for every built-in card (atomically)."""
    from salbench.io import atomic_write_json

    return [atomic_write_json(Path(directory) / f"{n}.json", c) for n, c in sorted(builtin_cards().items())]


if __name__ == "__main__":  # pragma: no cover
    for p in write_cards(sys.argv[1] if len(sys.argv) > 1 else "models"):
        print(p)
