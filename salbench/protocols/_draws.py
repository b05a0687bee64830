"""The random draws of a protocol run, as tables fixed before any image is scored.

A protocol run draws, per image, which other images form its sAUC "other" map and the
seeds of its sampled metrics. These tables are built once per run from
``(seed, n)`` by the same sequential generator calls the protocols always made, so
image ``i``'s draws are a function of ``(seed, n, i)`` only: whatever order or chunking
the images are scored in, and on whichever worker, they get the same draws. A
distributed engine rebuilds the tables on every worker (O(n * n_other) memory, ~50 ms
per 10,000 images) and scores any chunk.

The ``salicon`` protocol's legacy RNG is different (one ``RandomState`` stream over the
images in order, as the server): see :class:`SequentialDraws`.
"""

from __future__ import annotations

import numpy as np


def others_excluding_self(n: int, k: int, rng) -> np.ndarray:
    """For each image ``i``, ``min(k, n - 1)`` distinct other indices (mit's sAUC other images).

    Equal, draw for draw, to ``rng.choice(pool_i, size=kk, replace=False)`` with
    ``pool_i = [j for j in range(n) if j != i]`` (what the protocol did, in O(n^2)):
    ``Generator.choice`` draws positions in ``range(len(pool))`` and indexes the pool,
    so drawing positions in ``range(n - 1)`` and skipping ``i`` is the same stream.
    """
    kk = min(int(k), max(n - 1, 0))
    out = np.zeros((n, kk), dtype=np.int64)
    if kk == 0:
        return out
    for i in range(n):
        pos = rng.choice(n - 1, size=kk, replace=False)
        out[i] = pos + (pos >= i)
    return out


def others_with_self(n: int, k: int, rng) -> np.ndarray:
    """For each image, ``min(k, n)`` distinct indices of ``range(n)`` (coursework: self may be drawn)."""
    kk = min(int(k), n)
    return np.stack([rng.choice(n, size=kk, replace=False) for _ in range(n)]).astype(np.int64)


def seed_table(rng, n: int, columns: int) -> np.ndarray:
    """``(n, columns)`` integer seeds in ``[0, 2**32 - 1)``, as the protocols draw them."""
    return rng.integers(0, 2**32 - 1, size=(n, columns))


class SequentialDraws:
    """The SALICON server's stream: ``RandomState(seed)``, one ``randint`` draw per image in order.

    Image ``p``'s draw depends on every earlier image's size (``randint`` consumes a
    variable number of words), so the stream is replayed: scoring chunks in order costs
    nothing extra; a chunk that starts past the cursor first discards the skipped
    images' draws; one that starts before it replays from the seed. A distributed
    engine would do one sequential pass over the image sizes that records the
    ``RandomState`` state at each chunk start (2.5 KB per state, ~0.5 ms of draws per
    image, no prediction needed) and hand each worker its chunk's state.
    """

    def __init__(self, seed, sizes, n_draw: int):
        self.seed = None if seed is None else int(seed) % 2**32
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.n_draw = int(n_draw)
        self._rng = np.random.RandomState(self.seed)
        self._next = 0
        self._cur = None  # (position, state before its draw) of the image last asked for

    def stream_at(self, pos: int) -> np.random.RandomState:
        """The stream positioned at image ``pos``'s draw; the caller makes that one draw.

        Asking again for the same image rewinds to the same draw; asking for a later
        image discards the skipped images' draws; an earlier one replays from the seed.
        """
        if self._cur is not None and self._cur[0] == pos:
            self._rng.set_state(self._cur[1])
        else:
            if pos < self._next:
                self._rng = np.random.RandomState(self.seed)
                self._next = 0
            while self._next < pos:
                self._rng.randint(int(self.sizes[self._next]), size=self.n_draw)
                self._next += 1
            self._cur = (pos, self._rng.get_state())
        self._next = pos + 1
        return self._rng
