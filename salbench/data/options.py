"""Validation of dataset options: type and range, checked before anything is allocated.

Options come from ``--option KEY=VALUE`` (parsed as JSON when it is JSON) or from Python
keywords, so a value may arrive as an int, a float, a string, a bool or a list. Every loader
checks its options here, and a bad one is one line naming the dataset, the option, the value
and what is allowed (the CLI prints it as ``salbench: error: ...``, exit 2).

Limits on options with a size meaning (documented in ``docs/datasets.md``):

* :data:`MAX_IMAGES` base images for the synthetic set (its default is 10,000): images are
  generated on demand, but the names, per-image results and statistics grow with the count.
* :data:`MAX_SIDE` pixels per side and :data:`MAX_PIXELS` pixels per image for a resolution
  (evaluation size or recorded size): one 480x640 record takes ~30 bytes per pixel (image,
  density, maps), so 50 megapixels is ~1.5 GB per record in flight.
* :data:`MAX_WORKERS` prefetching threads.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

import numpy as np

MAX_IMAGES = 1_000_000
MAX_SIDE = 16_384
MAX_PIXELS = 50_000_000
MAX_WORKERS = 64
MAX_SEED = 2**63 - 1

#: ``fixation_scale``: what to do when an image's size differs from the size its fixations were
#: recorded at (where the layout records it).
FIXATION_SCALE = ("error", "rescale")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def int_option(where: str, name: str, value: Any, *, lo: int, hi: int, why: str = "") -> int:
    """``value`` as an int in ``lo..hi``; ValueError naming ``where``, the option and the range.

    Accepts ints (not bools) and strings of digits; a float is refused even when integral
    (``n_images=1e3`` is more likely a typo than a count).
    """
    if isinstance(value, (bool, np.bool_)):
        ok = False
    elif isinstance(value, (int, np.integer)):
        ok = True
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        ok, value = True, int(value)
    else:
        ok = False
    if not ok:
        raise ValueError(f"{where}: option {name}={_show(value)} must be an integer from {lo:,} to {hi:,}")
    value = int(value)
    if value < lo:
        raise ValueError(f"{where}: option {name}={value:,} is too small: the least is {lo:,}")
    if value > hi:
        raise ValueError(f"{where}: option {name}={value:,} is too large: at most {hi:,}{why}")
    return value


def float_option(where: str, name: str, value: Any) -> float:
    """``value`` as a finite float; ValueError naming the option otherwise."""
    if isinstance(value, (bool, np.bool_)):
        value = None
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out):
        raise ValueError(f"{where}: option {name}={_show(value)} must be a finite number")
    return out


def choice_option(where: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``; ValueError listing them otherwise."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{where}: option {name}={_show(value)} must be one of {', '.join(choices)}")
    return value


def text_option(where: str, name: str, value: Any) -> str:
    """``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: option {name}={_show(value)} must be a non-empty name")
    return value


def size_option(where: str, name: str, value: Any) -> tuple[int, int] | None:
    """``None``/``"original"``, ``(H, W)`` or ``"HxW"`` as ``(H, W)`` within :data:`MAX_SIDE` and :data:`MAX_PIXELS`."""
    if value is None or value == "original":
        return None
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        if not m:
            raise ValueError(f"{where}: option {name}={_show(value)} must look like 480x640 (height x width)")
        h, w = int(m.group(1)), int(m.group(2))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        h, w = (int_option(where, f"{name}[{k}]", v, lo=1, hi=MAX_SIDE) for k, v in enumerate(value))
    else:
        raise ValueError(f"{where}: option {name}={_show(value)} must look like 480x640 (height x width)")
    if h < 1 or w < 1:
        raise ValueError(f"{where}: option {name}={h}x{w} must be at least 1x1")
    if h > MAX_SIDE or w > MAX_SIDE or h * w > MAX_PIXELS:
        raise ValueError(f"{where}: option {name}={h}x{w} is too large: at most {MAX_SIDE:,} pixels per side and "
                         f"{MAX_PIXELS:,} per image ({h * w:,} asked)")
    return h, w
