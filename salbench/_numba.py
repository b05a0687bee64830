"""Numba settings shared by every kernel, in one place.

``cache=True`` keeps compiled kernels on disk between runs; ``fastmath`` is off
everywhere because AUC thresholds, ties and NaN checks depend on exact IEEE
comparisons.
"""

from numba import njit as _njit

NJIT_OPTIONS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def njit(*args, **kwargs):
    """``numba.njit`` with salbench's defaults (``cache=True``, no fastmath)."""
    options = {**NJIT_OPTIONS, **kwargs}
    if args and callable(args[0]) and len(args) == 1:
        return _njit(**options)(args[0])
    return _njit(*args, **options)
