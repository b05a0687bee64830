"""Read a predictions file: one saliency map per image, in evaluation order.

Formats
-------
- ``.pkl`` / ``.pickle``: the original coursework script's format, a list of
  flattened outputs (2304 values each -> 48x48) or of 2-D maps. Read with the
  restricted unpickler (plain containers, numbers, strings, numpy arrays only).
- ``.npy``: an array ``(N, H, W)`` (or ``(N, 2304)``, reshaped to 48x48 maps).
- ``.npz``: one array as above (the key ``predictions`` if there are several).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from salbench.io import UnsafePickleError, safe_load_pickle

__all__ = ["load_predictions", "as_maps"]


def as_maps(obj, source: str = "predictions") -> np.ndarray:
    """Convert a list of flat square vectors or 2-D maps (or an array) to ``(N, h, w)`` float64."""
    if isinstance(obj, np.ndarray):
        items = list(obj) if obj.ndim >= 2 else None
        if items is None:
            raise ValueError(f"{source}: expected an array (N, H, W) or (N, h*w), got shape {obj.shape}")
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    else:
        raise ValueError(f"{source}: expected a list of maps, got {type(obj).__name__}")
    if not items:
        raise ValueError(f"{source}: contains no predictions")
    maps = []
    for i, item in enumerate(items):
        try:
            a = np.asarray(item, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: prediction {i} is not numeric ({exc})") from None
        if a.ndim == 1:
            side = int(round(np.sqrt(a.size)))
            if side * side != a.size or a.size == 0:
                raise ValueError(f"{source}: prediction {i} has {a.size} values, not a square map (e.g. 2304 = 48x48)")
            a = a.reshape(side, side)
        if a.ndim != 2:
            raise ValueError(f"{source}: prediction {i} has shape {a.shape}; expected a 2-D map or a flat vector")
        maps.append(a)
    shapes = {m.shape for m in maps}
    if len(shapes) != 1:
        raise ValueError(f"{source}: predictions have different shapes {sorted(shapes)}")
    out = np.stack(maps)
    if not np.isfinite(out).all():
        raise ValueError(f"{source}: contains NaN or inf")
    return out


def load_predictions(path) -> np.ndarray:
    """Load predictions as a ``(N, h, w)`` float64 array; ValueError / FileNotFoundError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".pkl", ".pickle"):
            obj = safe_load_pickle(path)
        elif suffix == ".npy":
            obj = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.files)
                if not keys:
                    raise ValueError(f"{path}: empty .npz")
                key = "predictions" if "predictions" in keys else keys[0]
                if len(keys) > 1 and key != "predictions":
                    raise ValueError(f"{path}: several arrays {keys}; name the predictions 'predictions'")
                obj = z[key]
        else:
            raise ValueError(f"{path}: unknown predictions format {suffix!r} (use .pkl, .npy or .npz)")
    except (UnsafePickleError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"cannot read predictions file {path}: {exc}") from None
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if str(path) in msg else f"cannot read predictions file {path}: {msg}") from None
    return as_maps(obj, source=str(path))
