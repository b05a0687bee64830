"""How many threads scoring uses, and keeping BLAS to one thread while it does.

Scoring parallelises over images: ``workers`` threads each prepare and score whole images
(decoding, resize, ground truth, the fused kernels; every kernel releases the GIL). A
multithreaded BLAS inside those threads (MIT's ground-truth density is two small matrix
products) would only add threads that spin and wait on each other's locks, so
:func:`one_blas_thread` limits BLAS to one thread for the duration, and restores it after.
"""

from __future__ import annotations

import os

__all__ = ["available_cores", "one_blas_thread"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under ``taskset`` or a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def one_blas_thread():
    """Limit the BLAS libraries loaded in the process to one thread each, until restored.

    Returns threadpoolctl's limiter: a context manager, or call its
    ``restore_original_limits()``. The limit is process-wide (BLAS keeps one setting per
    library). MIT's density of a real fixation map (one product over a few hundred fixated
    pixels) is bit-identical either way; the dense path (thousands of fixated pixels) may
    differ in the last bit, as it does between machines with different core counts.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
