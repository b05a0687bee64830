"""POT (Python Optimal Transport), imported on first use without array backends nobody loaded.

``import ot`` imports POT's backends for every array library it finds: with torch installed
(salbench needs it for training) that alone costs ~1.5 s, although EMD only needs POT's C++
network simplex on NumPy arrays. POT reads ``POT_BACKEND_DISABLE_<LIB>`` when ``ot.backend``
is first imported; :func:`pot` sets those variables for the duration of that import only,
and only for libraries the process has not loaded yet (a process that already imported
torch keeps POT's torch backend: it costs little then). The variables are restored
afterwards, so nothing leaks into ``os.environ`` or child processes; the one lasting effect
is that a process that imports torch *after* salbench's first EMD gets POT without its torch
backend (``ot.emd2`` on torch tensors then fails): import torch (or ``ot``) first.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

# POT backend switch -> the module whose import it would trigger
_BACKENDS = {
    "POT_BACKEND_DISABLE_PYTORCH": "torch",
    "POT_BACKEND_DISABLE_JAX": "jax",
    "POT_BACKEND_DISABLE_CUPY": "cupy",
    "POT_BACKEND_DISABLE_TENSORFLOW": "tensorflow",
}
_LOCK = threading.Lock()


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    """Set ``values`` in ``os.environ`` for the block, then restore what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pot():
    """The ``ot`` module, imported (once) without the backends of libraries not yet loaded."""
    mod = sys.modules.get("ot")
    if mod is not None and hasattr(mod, "emd"):
        return mod
    with _LOCK:
        disable = {key: "1" for key, lib in _BACKENDS.items() if lib not in sys.modules}
        with _environ(disable):
            import ot
    return ot
