"""Predictions to score: a folder of saliency-map images, or an array file (docs/predictions.md).

Examples
--------
>>> src = open_predictions("results/maps")                     # doctest: +SKIP
>>> m = src.match(dataset.names)                                # names only: fails fast  # doctest: +SKIP
>>> s = m.load(m.indices[0])                                    # float64; 8-bit PNG: k / 255  # doctest: +SKIP
>>> save_maps("out", dataset.names, maps)                       # 8-bit PNG per stimulus  # doctest: +SKIP

Reading an array file eagerly, in file order (the original interface), is
:func:`load_predictions`.
"""

from salbench.predictions.arrays import ArraySource, as_maps, load_predictions
from salbench.predictions.decode import IMAGE_SUFFIXES, MAP_SUFFIXES, decode_map, read_map
from salbench.predictions.folder import FolderSource
from salbench.predictions.matching import aggregate_fingerprint, array_fingerprint, image_keys
from salbench.predictions.save import map_filename, save_map, save_maps, saved_values
from salbench.predictions.opening import open_predictions
from salbench.predictions.source import PredictionMatch, PredictionSource

__all__ = [
    "ArraySource",
    "FolderSource",
    "IMAGE_SUFFIXES",
    "MAP_SUFFIXES",
    "PredictionMatch",
    "PredictionSource",
    "aggregate_fingerprint",
    "array_fingerprint",
    "as_maps",
    "decode_map",
    "image_keys",
    "load_predictions",
    "map_filename",
    "open_predictions",
    "read_map",
    "save_map",
    "save_maps",
    "saved_values",
]
