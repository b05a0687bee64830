"""Write ``osie.npz`` for ``gpu_training.py``: the ``nus`` split's x96/y48 as uint8 (exact).

Run where ``../shared/data/osie`` exists::

    python tests/benchmarks/gpu_prep_osie.py ../shared/data/osie .devdata/osie.npz
"""

from __future__ import annotations

import sys

import numpy as np

from salbench.data import get_dataset


def main(root: str, out: str) -> None:
    arrays = {}
    for split in ("train", "val"):
        ds = get_dataset("nus", split, data_dir=root)
        x, y = ds.arrays(("x96", "y48"))
        xu, yu = np.rint(x * 255).astype(np.uint8), np.rint(y * 255).astype(np.uint8)
        # x96 / y48 are uint8 images divided by 255, so uint8 storage loses nothing.
        assert np.array_equal(xu.astype(np.float32) / np.float32(255), x)
        assert np.array_equal(yu.astype(np.float32) / np.float32(255), y)
        arrays.update({f"x_{split}": xu, f"y_{split}": yu, f"names_{split}": np.array(ds.names)})
    np.savez_compressed(out, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:3])
