"""Shared fixtures: where ../shared lives, the reference vectors, skip reasons."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# CI runs a fixed set of generated examples (derandomize): a red build then means a change, not
# a lucky draw. SALBENCH_HYPOTHESIS=explore draws fresh examples to hunt for new failures.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("SALBENCH_HYPOTHESIS", "ci"))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFS = SHARED / "refs"
DATA = SHARED / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Every test writes salbench's caches (ground truth, arrays, quick runs) under a session
    temporary directory, never into the user's ``~/.cache/salbench``; tests that need a cache of
    their own still set ``SALBENCH_CACHE`` themselves."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SALBENCH_CACHE", str(tmp_path_factory.mktemp("salbench-cache")))
        yield


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (../shared is only present on the team's machines and CI)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED, "shared data directory")


@pytest.fixture(scope="session")
def osie_dir() -> Path:
    return _need(DATA / "osie", "OSIE data")


@pytest.fixture(scope="session")
def salicon_examples_dir() -> Path:
    return _need(DATA / "salicon-examples", "SALICON examples")


@pytest.fixture(scope="session")
def ref_vectors():
    """``(arrays, expected)``: the npz inputs (as a dict) and the JSON expected values."""
    npz = _need(REFS / "osie_vectors.npz", "reference vectors")
    js = _need(REFS / "osie_vectors.json", "reference values")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(js.read_text())


def u16(a: np.ndarray) -> np.ndarray:
    """Convert a reference uint16 map to the float64 values the references saw."""
    return a.astype(np.float64) / 65535.0
