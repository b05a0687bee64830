"""Progress on stderr that shows in a terminal and in a log alike.

A tqdm bar redraws one line with carriage returns: in a CI log or behind ``| tee`` nothing
of it shows until it ends, so 40 s of scoring pass without a line. :func:`progress_bar`
gives a tqdm bar where stderr is a terminal (or in a notebook) and, elsewhere, an object
with the same ``update`` / ``close`` that prints a plain line every
:data:`PROGRESS_INTERVAL_S` seconds::

    salbench: mit: scored 128 of 500 images, 3.2 images/s
"""

from __future__ import annotations

import sys
import threading
import time

#: Seconds between progress lines where stderr is not a terminal (CI logs, ``| tee``).
PROGRESS_INTERVAL_S = 10.0


def progress_bar(total: int, desc: str, done: str, *, unit: str = "images"):
    """A tqdm bar on a terminal, else :class:`ProgressLines` (``salbench: {done} K of N {unit}, X {unit}/s``).

    Parameters
    ----------
    total : int
        Items to come.
    desc : str
        The bar's label (``"mit: scoring"``).
    done : str
        What a line says before the count (``"mit: scored"``).
    unit : str
        What is counted, plural (``"images"``).
    """
    if stderr_is_terminal() or "ipykernel" in sys.modules:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="img" if unit == "images" else unit, leave=False, smoothing=0.1)
    return ProgressLines(total, done, unit)


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (False for a closed or replaced stream)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressLines:
    """A progress bar's ``update`` / ``close`` as a line on stderr every :data:`PROGRESS_INTERVAL_S` seconds.

    A run shorter than the interval prints nothing; one that printed a line ends with a
    last line at ``close`` (unless the last one printed already said the final count). ``update`` may be called from several threads.
    """

    def __init__(self, total: int, done: str, unit: str = "images"):
        self.total, self.done, self.unit = total, done, unit
        self.n, self.printed, self.shown = 0, False, 0
        self.start = self.last = time.monotonic()
        self._lock = threading.Lock()

    def update(self, k: int = 1) -> None:
        with self._lock:
            self.n += k
            now = time.monotonic()
            if now - self.last >= PROGRESS_INTERVAL_S:
                self.last = now
                self._line(now)

    def close(self) -> None:
        with self._lock:
            if self.printed and self.n != self.shown:
                self._line(time.monotonic())
            self.printed = False

    def _line(self, now: float) -> None:
        rate = self.n / (now - self.start) if now > self.start else 0.0
        print(f"salbench: {self.done} {self.n} of {self.total} {self.unit}, {rate:.1f} {self.unit}/s",
              file=sys.stderr, flush=True)
        self.printed, self.shown = True, self.n
