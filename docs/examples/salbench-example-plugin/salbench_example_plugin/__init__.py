"""An example salbench plugin: saliency = blurred image luminance contrast.

Install it (``pip install ./docs/examples/salbench-example-plugin``) and
``salbench models`` lists ``luminance``; ``create_model("luminance")`` and
``salbench eval --model luminance`` use it like a built-in model.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from salbench.models import SaliencyModel


class LuminanceModel(SaliencyModel):
    """Absolute deviation of each pixel's luminance from the image mean, blurred."""

    name = "luminance"

    def __init__(self, output_size=(48, 48), sigma: float = 2.0):
        self.sigma = float(sigma)
        self.card = {
            "name": "luminance",
            "input_size": None,
            "output_size": list(output_size),
            "trained_on": "nothing",
            "published_scores": [],
            "description": "Example plugin: blurred luminance contrast (salbench-example-plugin).",
        }

    def predict(self, records) -> np.ndarray:
        h, w = self.output_size
        out = []
        for rec in records:
            img = np.asarray(rec.image if rec.image is not None else np.moveaxis(rec.x96, 0, -1), np.float64)
            lum = img @ np.array([0.299, 0.587, 0.114])
            small = zoom(lum, (h / lum.shape[0], w / lum.shape[1]), order=1)[:h, :w]
            sal = gaussian_filter(np.abs(small - small.mean()), self.sigma) + 1e-6
            # Scaled to maximum 1 like the built-in models: a map summing to 1 (values ~1/2304)
            # would be quantised to zeros by the coursework protocol (uint8 of p * 255).
            out.append(sal / sal.max())
        return np.asarray(out, dtype=np.float32)


def luminance(**kwargs) -> LuminanceModel:
    """Blurred luminance contrast (example third-party model)."""
    return LuminanceModel(**kwargs)
