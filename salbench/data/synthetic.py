"""The built-in synthetic dataset: SALICON-shaped scenes with a known fixation density.

Each image is a pure function of ``(seed, split, index)`` (generator version
:data:`GENERATOR_VERSION`): a textured background (sometimes bright, sometimes cluttered
with low-contrast shapes), one to five salient objects of varying size, colour and contrast,
and a ground-truth density mixing a center bias, the objects and a small uniform floor.
Simulated observers fixate points drawn from that density; the density map is their
fixations blurred as SALICON's (sigma 19), and ``x96`` / ``y48`` are the usual downscales.

Saliency depends on what is visible: an object attracts fixations in proportion to
``contrast**2 * sqrt(area / area_ref)`` (contrast = RGB distance to the background it sits
on, scaled to [0, 1]), and shapes below :data:`MIN_SALIENT_CONTRAST` attract none, so a
model that sees the image can beat the center bias; ``true_density`` is exposed for the
``gold`` model.

Splits: ``train`` holds ``n`` base images followed by their horizontal mirrors (20000 =
10000 + 10000 by default, as the coursework ``train.pkl``); ``val`` holds 500. The
``small`` preset (32 + 32 train, 32 val) is for tests and CPU demos.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from salbench.data._maps import (SALICON_SHAPE, SALICON_SIGMA, density_from_points, model_input,
                                 model_target, to_uint8_map)
from salbench.data.base import SaliencyDataset, hash_json
from salbench.data.record import Record

GENERATOR_VERSION = 1  # bump when generated images change

# --- Calibration against OSIE (shared/data/osie/fixations.mat: 700 images 800x600,
# 15 observers, 98,321 fixations). Measured by pooling every fixation of every observer,
# coordinates made 0-based, divided by the image size:
#   mean (row, col) / (H, W) = (0.4726, 0.5018); std = (0.1962, 0.2141);
#   fixations per observer: mean 9.364, std 1.876 (min 1, max 22); observers per image: 15.
# The center-bias component uses the pooled spread (it is an upper bound of the pure
# center component, since object positions add to it).
CENTER_MEAN = (0.4726, 0.5018)
CENTER_STD = (0.1962, 0.2141)
FIXATIONS_PER_OBSERVER = (9.364, 1.876)
OBSERVERS_PER_IMAGE = 15

# --- Scene and density parameters (salbench's choices, recorded in identity()).
CENTER_WEIGHT = 0.08          # salience of the center bias, in object-salience units
UNIFORM_FRACTION = 0.05       # density mass spread uniformly (stray fixations)
MIN_SALIENT_CONTRAST = 0.12   # shapes below this contrast attract no fixations
AREA_REF = 50.0 ** 2 * np.pi  # an object of radius 50 px has size factor 1
OBJECTS_PER_IMAGE = (1, 5)
SCENE_KINDS = ("textured", "bright", "cluttered")
SCENE_PROBS = (0.5, 0.2, 0.3)

PRESETS = {"default": {"train": 10000, "val": 500}, "small": {"train": 32, "val": 32}}
_SPLIT_CODE = {"train": 0, "val": 1}


def generator_params() -> dict:
    """Every constant that shapes the generated data (part of the content hash)."""
    return {
        "version": GENERATOR_VERSION, "shape": list(SALICON_SHAPE), "blur_sigma": SALICON_SIGMA,
        "center_mean": list(CENTER_MEAN), "center_std": list(CENTER_STD),
        "fixations_per_observer": list(FIXATIONS_PER_OBSERVER), "observers_per_image": OBSERVERS_PER_IMAGE,
        "center_weight": CENTER_WEIGHT, "uniform_fraction": UNIFORM_FRACTION,
        "min_salient_contrast": MIN_SALIENT_CONTRAST, "objects_per_image": list(OBJECTS_PER_IMAGE),
        "scene_kinds": dict(zip(SCENE_KINDS, SCENE_PROBS)),
    }


def _gauss_1d(n: int, mu: float, sigma: float) -> np.ndarray:
    x = np.arange(n, dtype=np.float64)
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _background(rng, kind: str, shape) -> np.ndarray:
    """Base colour + large smooth variations + mid-frequency texture, uint8 HxWx3.

    Built at 1/8 resolution and upsampled once (bicubic): the texture's grain is ~8 px.
    """
    h, w = shape
    lh, lw = h // 8, w // 8
    if kind == "bright":
        base, (coarse_amp, fine_amp) = rng.uniform(190, 240) + rng.uniform(-10, 10, 3), (12.0, 5.0)
    else:
        base, (coarse_amp, fine_amp) = rng.uniform(40, 200, 3), (30.0, 14.0)
    coarse = np.clip(128 + rng.normal(0.0, coarse_amp, (6, 8, 3)), 0, 255).astype(np.uint8)
    coarse = np.asarray(Image.fromarray(coarse).resize((lw, lh), Image.BICUBIC), dtype=np.float32) - 128.0
    low = base + coarse + rng.normal(0.0, fine_amp, (lh, lw, 3))
    low = np.clip(np.rint(low), 0, 255).astype(np.uint8)
    return np.array(Image.fromarray(low).resize((w, h), Image.BICUBIC))


def _shape_mask(kind: str, hr: int, wr: int, angle: float) -> np.ndarray:
    """Boolean mask of an ellipse or a rotated rectangle with half-sizes (hr, wr)."""
    ext = int(np.ceil(np.hypot(hr, wr)))
    y, x = np.ogrid[-ext:ext + 1, -ext:ext + 1]
    ca, sa = np.cos(angle), np.sin(angle)
    u = (x * ca + y * sa) / wr
    v = (-x * sa + y * ca) / hr
    if kind == "ellipse":
        return u * u + v * v <= 1.0
    return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)


def _paste(image, mask, r, c, colour) -> None:
    """Paint ``colour`` where ``mask`` (centred at (r, c)) falls inside ``image``."""
    h, w = image.shape[:2]
    ext = mask.shape[0] // 2
    r0, c0 = r - ext, c - ext
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + mask.shape[0], h), min(c0 + mask.shape[1], w)
    if rs >= re or cs >= ce:
        return
    m = mask[rs - r0:re - r0, cs - c0:ce - c0]
    image[rs:re, cs:ce][m] = np.rint(colour).astype(image.dtype)


def _colour_at_contrast(rng, base: np.ndarray, contrast: float) -> tuple[np.ndarray, float]:
    """A colour ~``contrast`` (RGB distance / (255 sqrt 3)) away from ``base``; actual contrast."""
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction) + 1e-12
    colour = np.clip(base + direction * contrast * 255.0 * np.sqrt(3.0), 0, 255)
    return colour, float(np.linalg.norm(colour - base) / (255.0 * np.sqrt(3.0)))


def generate_scene(seed: int, split: str, index: int, shape=SALICON_SHAPE) -> dict:
    """Generate one scene: image, true density, fixations, observers and a description.

    Deterministic in ``(seed, split, index)`` and :data:`GENERATOR_VERSION`.

    Returns
    -------
    dict
        ``image`` (H, W, 3) uint8, ``true_density`` (H, W) float64 summing to 1,
        ``fixations`` (K, 2) int64 0-based (row, col), ``observers`` (K,) int64,
        ``meta`` (scene kind, objects with centre, size, contrast and salience).
    """
    rng = np.random.default_rng([GENERATOR_VERSION, int(seed), _SPLIT_CODE[split], int(index)])
    h, w = shape
    kind = SCENE_KINDS[rng.choice(len(SCENE_KINDS), p=SCENE_PROBS)]

    image = _background(rng, kind, shape)

    # Clutter: many small low-contrast shapes (below the salience threshold).
    if kind == "cluttered":
        for _ in range(int(rng.integers(30, 80))):
            r, c = int(rng.integers(0, h)), int(rng.integers(0, w))
            colour, _ = _colour_at_contrast(rng, image[r, c].astype(np.float64), rng.uniform(0.03, 0.09))
            hr, wr = rng.integers(4, 22, 2)
            _paste(image, _shape_mask(("ellipse", "rect")[rng.integers(2)], int(hr), int(wr),
                                      rng.uniform(0, np.pi)), r, c, colour)

    # Salient objects, placed with a photographer's center bias.
    objects = []
    for _ in range(int(rng.integers(OBJECTS_PER_IMAGE[0], OBJECTS_PER_IMAGE[1] + 1))):
        hr, wr = (int(v) for v in rng.integers(14, 80, 2))
        r = int(np.clip(rng.normal(0.5 * h, 0.22 * h), hr * 0.5, h - 1 - hr * 0.5))
        c = int(np.clip(rng.normal(0.5 * w, 0.22 * w), wr * 0.5, w - 1 - wr * 0.5))
        colour, contrast = _colour_at_contrast(rng, image[r, c].astype(np.float64), rng.uniform(0.1, 0.7))
        shape_kind = ("ellipse", "rect")[rng.integers(2)]
        angle = rng.uniform(0, np.pi)
        _paste(image, _shape_mask(shape_kind, hr, wr, angle), r, c, colour)
        area = np.pi * hr * wr if shape_kind == "ellipse" else 4.0 * hr * wr
        salience = contrast ** 2 * np.sqrt(area / AREA_REF) if contrast >= MIN_SALIENT_CONTRAST else 0.0
        objects.append({"center": [r, c], "half_size": [hr, wr], "shape": shape_kind,
                        "contrast": round(contrast, 4), "salience": float(salience)})

    noise = rng.integers(-6, 7, (h, w, 1), dtype=np.int16)  # sensor noise (grey, uniform)
    image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    # True density: mixture of separable Gaussians plus a uniform floor.
    comps = [(CENTER_WEIGHT, CENTER_MEAN[0] * h, CENTER_STD[0] * h, CENTER_MEAN[1] * w, CENTER_STD[1] * w)]
    for ob in objects:
        if ob["salience"] > 0:
            # Isotropic (objects are rotated), about half the object's radius.
            sigma = max(0.5 * np.sqrt(ob["half_size"][0] * ob["half_size"][1]), 8.0)
            comps.append((ob["salience"], ob["center"][0], sigma, ob["center"][1], sigma))
    total = sum(cw for cw, *_ in comps)
    rows = np.stack([_gauss_1d(h, mr, sr) for _, mr, sr, _, _ in comps])
    cols = np.stack([_gauss_1d(w, mc, sc) for _, _, _, mc, sc in comps])
    weights = np.array([cw for cw, *_ in comps]) / total
    rows *= (weights * (1.0 - UNIFORM_FRACTION) / (rows.sum(1) * cols.sum(1)))[:, None]
    # Sum of separable components, each normalised to its weight (einsum, not BLAS: BLAS
    # threads thrash on busy machines for a product this small).
    density = np.einsum("ki,kj->ij", rows, cols)
    density += UNIFORM_FRACTION / density.size
    density /= density.sum()

    # Simulated observers: fixation counts as OSIE, points drawn from the density.
    per_obs = np.maximum(1, np.rint(rng.normal(*FIXATIONS_PER_OBSERVER, OBSERVERS_PER_IMAGE))).astype(np.int64)
    cdf = np.cumsum(density.ravel())
    flat = np.minimum(np.searchsorted(cdf, rng.random(int(per_obs.sum())) * cdf[-1], side="right"), cdf.size - 1)
    fixations = np.stack(np.unravel_index(flat, shape), axis=1).astype(np.int64)
    observers = np.repeat(np.arange(OBSERVERS_PER_IMAGE), per_obs).astype(np.int64)
    return {"image": image, "true_density": density, "fixations": fixations, "observers": observers,
            "meta": {"scene": kind, "objects": objects, "center_weight_share": CENTER_WEIGHT / total}}


def record_from_scene(name: str, scene: dict, meta: dict) -> Record:
    """Build the Record of a generated scene (density blurred as SALICON's)."""
    image, fix = scene["image"], scene["fixations"]
    shape = image.shape[:2]
    density = density_from_points(fix, shape, SALICON_SIGMA)
    y_original = to_uint8_map(density)
    fmap = np.zeros(shape, dtype=bool)
    fmap[fix[:, 0], fix[:, 1]] = True
    return Record(name=name, image=image, fixations=fix, observers=scene["observers"], fixation_map=fmap,
                  density=density, x96=model_input(image), y48=model_target(y_original),
                  y_original=y_original, true_density=scene["true_density"], meta={**scene["meta"], **meta})


def mirror_scene(scene: dict) -> dict:
    """The horizontal mirror image of a scene (fixations and density mirrored with it)."""
    w = scene["image"].shape[1]
    fix = scene["fixations"].copy()
    fix[:, 1] = w - 1 - fix[:, 1]
    return {**scene, "image": np.ascontiguousarray(scene["image"][:, ::-1]),
            "true_density": np.ascontiguousarray(scene["true_density"][:, ::-1]), "fixations": fix}


class SyntheticDataset(SaliencyDataset):
    """The built-in synthetic dataset (see the module docstring).

    Parameters
    ----------
    split : {"train", "val"}
    preset : {"default", "small"}
        Sizes: default 10000 (+10000 mirrors) train / 500 val; small 32 (+32) / 32.
    seed : int
        Generator seed; every image is a pure function of ``(seed, split, index)``.
    n_images : int, optional
        Override the number of base images of the split.
    """

    name = "synthetic"

    def __init__(self, split: str = "val", *, preset: str = "default", seed: int = 0, n_images: int | None = None):
        super().__init__()
        if split not in _SPLIT_CODE:
            raise ValueError(f"synthetic has splits {sorted(_SPLIT_CODE)}, not {split!r}")
        if preset not in PRESETS:
            raise ValueError(f"unknown synthetic preset {preset!r}; choose from {sorted(PRESETS)}")
        n = int(n_images) if n_images is not None else PRESETS[preset][split]
        if n < 1:
            raise ValueError(f"n_images must be >= 1, got {n}")
        self.split, self.seed, self.n_base = split, int(seed), n
        self.mirrored = split == "train"
        self.names = [f"synthetic_{split}_{i:05d}.png" for i in range(n)]
        if self.mirrored:
            self.names += [f"synthetic_{split}_{i:05d}_mirror.png" for i in range(n)]
        self.params = {"preset": preset, "seed": self.seed, "n_images": n, "mirrored": self.mirrored,
                       "generator": generator_params()}

    @classmethod
    def available_splits(cls, root=None) -> list[str]:
        return list(_SPLIT_CODE)

    def stats(self, i: int) -> dict:
        scene = generate_scene(self.seed, self.split, i % self.n_base)
        return {"shape": scene["image"].shape[:2], "n_fixations": len(scene["fixations"]),
                "n_observers": OBSERVERS_PER_IMAGE}

    def _content_hash(self) -> str:
        return hash_json({"split": self.split, "names": self.names, **self.params})

    def _load(self, i: int) -> Record:
        base = i % self.n_base
        scene = generate_scene(self.seed, self.split, base)
        mirrored = i >= self.n_base
        if mirrored:
            scene = mirror_scene(scene)
        return record_from_scene(self.names[i], scene, {"source": "synthetic", "seed": self.seed,
                                                        "index": base, "mirrored": mirrored})
