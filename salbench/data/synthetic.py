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

Cost: one record takes ~15-20 ms of CPU (the image is painted by one compiled kernel,
fixations are sampled from the mixture's 1-D profiles, the blur is compiled); threads
generate the next records ahead of sequential access. Nothing is generated for ``len``,
``names``, ``identity()`` (the content hash covers the generator parameters, seed and
version) or :meth:`SyntheticDataset.stats` (fixation counts have their own random stream).
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PIL import Image

from salbench._numba import njit
from salbench.data._maps import (SALICON_SHAPE, SALICON_SIGMA, blurred_density, density_from_points, fixation_map,
                                 model_input, model_target, to_uint8_map)
from salbench.data.base import SaliencyDataset, hash_json
from salbench.data.options import MAX_IMAGES, MAX_SEED, MAX_WORKERS, int_option
from salbench.data.record import LAZY_FIELDS, Lazy, Record, x96_from_image, y48_from_y_original, y_original_from_density

GENERATOR_VERSION = 2  # bump when generated data change (2: compiled renderer, mixture sampling)

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


def _gauss_1d(n: int, mu, sigma) -> np.ndarray:
    """``exp(-(x - mu)^2 / 2 sigma^2)`` for x = 0..n-1; one row per (mu, sigma) if arrays."""
    x = np.arange(n, dtype=np.float64)
    mu, sigma = np.asarray(mu, dtype=np.float64)[..., None], np.asarray(sigma, dtype=np.float64)[..., None]
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    # Independent streams per image: 0 = scene, 1 = observers. Observer counts come first
    # in stream 1, so fixation statistics need no scene at all.
    return np.random.default_rng([GENERATOR_VERSION, int(seed), _SPLIT_CODE[split], int(index), stream])


def _fixation_counts(rng) -> np.ndarray:
    """Fixations per simulated observer (OSIE's mean and spread, at least one)."""
    per_obs = np.rint(rng.normal(*FIXATIONS_PER_OBSERVER, OBSERVERS_PER_IMAGE))
    return np.maximum(1, per_obs).astype(np.int64)


@functools.lru_cache(maxsize=1 << 16)
def _n_fixations(seed: int, split: str, index: int) -> int:
    """Fixations of one image without generating it (counts are the first draws of stream 1)."""
    return int(_fixation_counts(_rng(seed, split, index, 1)).sum())


def _background_lowres(rng, kind: str, shape) -> np.ndarray:
    """The background at 1/8 resolution, float64 ``(H/8, W/8, 3)`` in [0, 255].

    Base colour + large smooth variations (6x8 grid, bicubic) + mid-frequency texture;
    :func:`_render` upsamples it bilinearly, so the texture's grain is ~8 px.
    """
    h, w = shape
    lh, lw = h // 8, w // 8
    if kind == "bright":
        base, (coarse_amp, fine_amp) = rng.uniform(190, 240) + rng.uniform(-10, 10, 3), (12.0, 5.0)
    else:
        base, (coarse_amp, fine_amp) = rng.uniform(40, 200, 3), (30.0, 14.0)
    coarse = np.clip(128 + rng.normal(0.0, coarse_amp, (6, 8, 3)), 0, 255).astype(np.uint8)
    coarse = np.asarray(Image.fromarray(coarse).resize((lw, lh), Image.BICUBIC), dtype=np.float64) - 128.0
    return np.clip(base + coarse + rng.normal(0.0, fine_amp, (lh, lw, 3)), 0.0, 255.0)


@functools.lru_cache(maxsize=16)
def _bilinear_axis(n_out: int, n_in: int):
    """Source indices and weights of a half-pixel-centred bilinear upsampling along one axis."""
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1.0)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    out = i0, i1, pos - i0
    for a in out:
        a.flags.writeable = False  # shared by every caller (cached)
    return out


def _background_at(low: np.ndarray, shape, rows, cols) -> np.ndarray:
    """The rendered (pre-noise) background colour at pixels ``(rows, cols)``, float64 ``(n, 3)``."""
    h, w = shape
    r0, r1, fr = (a[rows] for a in _bilinear_axis(h, low.shape[0]))
    c0, c1, fc = (a[cols] for a in _bilinear_axis(w, low.shape[1]))
    fr, fc = fr[:, None], fc[:, None]
    top = low[r0, c0] * (1 - fc) + low[r0, c1] * fc
    bottom = low[r1, c0] * (1 - fc) + low[r1, c1] * fc
    return np.rint(top * (1 - fr) + bottom * fr)


@njit
def _render(low, r0, r1, fr, c0, c1, fc, shapes, colours, noise, out):  # pragma: no cover - compiled
    """Background, shapes painted in order, grey sensor noise, into ``out`` (H, W, 3) uint8.

    The background is ``low`` upsampled bilinearly (columns, then rows; index and weight
    arrays from :func:`_bilinear_axis`). ``shapes`` rows: centre row, centre col, half-height,
    half-width, cos, sin, kind (0 ellipse, 1 rectangle); ``colours`` rows: RGB;
    ``noise`` (H*W,) int8 is added to every channel of each pixel and the sum clipped.
    """
    h, w = out.shape[0], out.shape[1]
    horiz = np.empty((low.shape[0], w * 3))
    for a in range(low.shape[0]):
        for j in range(w):
            for ch in range(3):
                horiz[a, 3 * j + ch] = low[a, c0[j], ch] * (1 - fc[j]) + low[a, c1[j], ch] * fc[j]
    flat = out.reshape(h, w * 3)
    for i in range(h):
        top, bottom, f = horiz[r0[i]], horiz[r1[i]], fr[i]
        g = 1 - f
        row = flat[i]
        for k in range(w * 3):
            row[k] = np.uint8(np.rint(top[k] * g + bottom[k] * f))
    for s in range(shapes.shape[0]):
        rc, cc = int(shapes[s, 0]), int(shapes[s, 1])
        hr, wr, ca, sa = shapes[s, 2], shapes[s, 3], shapes[s, 4], shapes[s, 5]
        ellipse = shapes[s, 6] == 0
        ext = int(np.ceil(np.hypot(hr, wr)))
        for y in range(max(-ext, -rc), min(ext, h - 1 - rc) + 1):
            for x in range(max(-ext, -cc), min(ext, w - 1 - cc) + 1):
                u = (x * ca + y * sa) / wr
                v = (-x * sa + y * ca) / hr
                inside = (u * u + v * v <= 1.0) if ellipse else (abs(u) <= 1.0 and abs(v) <= 1.0)
                if inside:
                    for ch in range(3):
                        out[rc + y, cc + x, ch] = np.uint8(colours[s, ch])
    for i in range(h):
        row = flat[i]
        for j in range(w):
            n = np.int16(noise[i * w + j])
            for ch in range(3):
                v = np.int16(row[3 * j + ch]) + n
                row[3 * j + ch] = np.uint8(min(max(v, 0), 255))


@functools.lru_cache(maxsize=4)
def _noise_table(shape) -> np.ndarray:
    """Fixed grey sensor noise, uniform in -6..6, twice the image size: an image uses a
    window at a random offset (no per-pixel random draws per image)."""
    h, w = shape
    table = np.random.default_rng([GENERATOR_VERSION, h, w]).integers(-6, 7, 2 * h * w, dtype=np.int8)
    table.flags.writeable = False
    return table


def _inside(shapes: np.ndarray, rows, cols) -> np.ndarray:
    """``(n_shapes, n_points)`` bool: which shapes cover which pixels (the mask of :func:`_render`)."""
    y = np.asarray(rows, dtype=np.float64)[None, :] - shapes[:, :1]
    x = np.asarray(cols, dtype=np.float64)[None, :] - shapes[:, 1:2]
    hr, wr, ca, sa = (shapes[:, k:k + 1] for k in (2, 3, 4, 5))
    u = (x * ca + y * sa) / wr
    v = (-x * sa + y * ca) / hr
    ext = np.ceil(np.hypot(hr, wr))
    ell = np.where(shapes[:, 6:7] == 0, u * u + v * v <= 1.0, (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0))
    return ell & (np.abs(y) <= ext) & (np.abs(x) <= ext)


def _colours_at_contrast(rng, base: np.ndarray, contrast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colours ~``contrast`` (RGB distance / (255 sqrt 3)) away from ``base`` rows; actual contrasts.

    Colours are rounded to integers (they are painted as uint8), and the contrast is measured
    after rounding.
    """
    direction = rng.normal(size=base.shape)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-12
    colour = np.rint(np.clip(base + direction * (contrast * 255.0 * np.sqrt(3.0))[:, None], 0, 255))
    return colour, np.linalg.norm(colour - base, axis=1) / (255.0 * np.sqrt(3.0))


def _shape_rows(r, c, hr, wr, angle, kind) -> np.ndarray:
    return np.stack([r, c, hr, wr, np.cos(angle), np.sin(angle), kind], axis=1).astype(np.float64)


def _scene_plan(seed: int, split: str, index: int, shape) -> dict:
    """Every random choice of a scene (no pixels): background, shapes, colours, objects, density components."""
    rng = _rng(seed, split, index, 0)
    h, w = shape
    kind = SCENE_KINDS[rng.choice(len(SCENE_KINDS), p=SCENE_PROBS)]
    low = _background_lowres(rng, kind, shape)

    # Clutter: many small low-contrast shapes (below the salience threshold); their colour
    # is set against the background under their centre.
    n_clutter = int(rng.integers(30, 80)) if kind == "cluttered" else 0
    cr, cc = rng.integers(0, h, n_clutter), rng.integers(0, w, n_clutter)
    c_contrast = rng.uniform(0.03, 0.09, n_clutter)
    c_half = rng.integers(4, 22, (n_clutter, 2))
    c_kind, c_angle = rng.integers(0, 2, n_clutter), rng.uniform(0, np.pi, n_clutter)
    c_colour, _ = _colours_at_contrast(rng, _background_at(low, shape, cr, cc), c_contrast)
    clutter = _shape_rows(cr, cc, c_half[:, 0], c_half[:, 1], c_angle, c_kind)

    # Salient objects, placed with a photographer's center bias; each one's contrast is
    # measured against what is painted under its centre (background, clutter, earlier objects).
    n_obj = int(rng.integers(OBJECTS_PER_IMAGE[0], OBJECTS_PER_IMAGE[1] + 1))
    half = rng.integers(14, 80, (n_obj, 2))
    o_r = np.clip(rng.normal(0.5 * h, 0.22 * h, n_obj), half[:, 0] * 0.5, h - 1 - half[:, 0] * 0.5).astype(np.int64)
    o_c = np.clip(rng.normal(0.5 * w, 0.22 * w, n_obj), half[:, 1] * 0.5, w - 1 - half[:, 1] * 0.5).astype(np.int64)
    o_target = rng.uniform(0.1, 0.7, n_obj)
    o_kind, o_angle = rng.integers(0, 2, n_obj), rng.uniform(0, np.pi, n_obj)
    shapes, colours = clutter, c_colour
    objects = []
    for k in range(n_obj):
        base = _background_at(low, shape, o_r[k:k + 1], o_c[k:k + 1])[0]
        if len(shapes):
            cover = np.flatnonzero(_inside(shapes, o_r[k:k + 1], o_c[k:k + 1])[:, 0])
            if cover.size:
                base = colours[cover[-1]]
        colour, contrast = _colours_at_contrast(rng, base[None], o_target[k:k + 1])
        hr, wr = int(half[k, 0]), int(half[k, 1])
        shapes = np.concatenate([shapes, _shape_rows(o_r[k:k + 1], o_c[k:k + 1], half[k:k + 1, 0],
                                                     half[k:k + 1, 1], o_angle[k:k + 1], o_kind[k:k + 1])])
        colours = np.concatenate([colours, colour])
        contrast = float(contrast[0])
        area = np.pi * hr * wr if o_kind[k] == 0 else 4.0 * hr * wr
        salience = contrast ** 2 * np.sqrt(area / AREA_REF) if contrast >= MIN_SALIENT_CONTRAST else 0.0
        objects.append({"center": [int(o_r[k]), int(o_c[k])], "half_size": [hr, wr],
                        "shape": ("ellipse", "rect")[int(o_kind[k])], "contrast": round(contrast, 4),
                        "salience": float(salience)})
    noise_offset = int(rng.integers(0, h * w))

    # Density components: (weight, row mean, row sigma, col mean, col sigma); the center
    # bias, then each salient object (isotropic: objects are rotated; ~half its radius).
    comps = [(CENTER_WEIGHT, CENTER_MEAN[0] * h, CENTER_STD[0] * h, CENTER_MEAN[1] * w, CENTER_STD[1] * w)]
    for ob in objects:
        if ob["salience"] > 0:
            sigma = max(0.5 * np.sqrt(ob["half_size"][0] * ob["half_size"][1]), 8.0)
            comps.append((ob["salience"], ob["center"][0], sigma, ob["center"][1], sigma))
    total = sum(cw for cw, *_ in comps)
    return {"kind": kind, "low": low, "shapes": shapes, "colours": colours, "noise_offset": noise_offset,
            "objects": objects, "components": np.array(comps), "center_weight_share": CENTER_WEIGHT / total}


def _render_image(plan: dict, shape) -> np.ndarray:
    h, w = shape
    low = plan["low"]
    off = plan["noise_offset"]
    out = np.empty((h, w, 3), dtype=np.uint8)
    _render(low, *_bilinear_axis(h, low.shape[0]), *_bilinear_axis(w, low.shape[1]), np.ascontiguousarray(plan["shapes"].reshape(-1, 7)),
            np.ascontiguousarray(plan["colours"].reshape(-1, 3)), _noise_table(tuple(shape))[off:off + h * w], out)
    return out


def _component_profiles(components: np.ndarray, shape):
    """Per component, its row and column profiles, each normalised to sum 1 over the image."""
    h, w = shape
    rows = _gauss_1d(h, components[:, 1], components[:, 2])
    cols = _gauss_1d(w, components[:, 3], components[:, 4])
    return rows / rows.sum(1, keepdims=True), cols / cols.sum(1, keepdims=True)


@njit
def _mixture(rows, cols, floor):  # pragma: no cover - compiled
    """``floor + sum_k rows[k] (outer) cols[k]``, normalised to sum 1."""
    h, w = rows.shape[1], cols.shape[1]
    out = np.empty((h, w))
    total = 0.0
    for i in range(h):
        line = out[i]
        line[:] = floor
        for k in range(rows.shape[0]):
            a = rows[k, i]
            ck = cols[k]
            for j in range(w):
                line[j] += a * ck[j]
        total += line.sum()
    out /= total
    return out


def _true_density(components: np.ndarray, shape) -> np.ndarray:
    """Mixture of the separable components (mass = weight in the image) plus a uniform floor."""
    rows, cols = _component_profiles(components, shape)
    weights = components[:, 0] / components[:, 0].sum()
    rows *= (weights * (1.0 - UNIFORM_FRACTION))[:, None]
    return _mixture(rows, cols, UNIFORM_FRACTION / (shape[0] * shape[1]))


def _sample_fixations(rng, per_obs: np.ndarray, components: np.ndarray, shape) -> np.ndarray:
    """Draw ``per_obs.sum()`` pixels from the true density, exactly, without its 2-D CDF.

    The density is a mixture of separable components (each with its mass inside the image)
    and a uniform floor: pick a component by mass, then its row and column independently
    from their 1-D profiles.
    """
    h, w = shape
    n = int(per_obs.sum())
    rows, cols = _component_profiles(components, shape)
    weights = components[:, 0] / components[:, 0].sum() * (1.0 - UNIFORM_FRACTION)
    which = rng.choice(len(weights) + 1, size=n, p=np.append(weights, UNIFORM_FRACTION))
    u = rng.random((n, 2))
    out = np.empty((n, 2), dtype=np.int64)
    uniform = which == len(weights)
    out[uniform] = np.floor(u[uniform] * (h, w)).astype(np.int64)
    for k in range(len(weights)):
        sel = which == k
        for axis, prof in ((0, rows[k]), (1, cols[k])):
            cdf = np.cumsum(prof)
            out[sel, axis] = np.searchsorted(cdf, u[sel, axis] * cdf[-1], side="right")
    return np.minimum(out, np.array([h - 1, w - 1]))


def scene_fixations(seed: int, split: str, index: int, shape=SALICON_SHAPE):
    """``(plan, fixations, observers)`` of one scene without painting it.

    The fixations need the scene plan (object positions and their contrast against the
    background, hence the 1/8-resolution background) but not the rendered image.
    """
    plan = _scene_plan(seed, split, index, shape)
    obs_rng = _rng(seed, split, index, 1)
    per_obs = _fixation_counts(obs_rng)
    fixations = _sample_fixations(obs_rng, per_obs, plan["components"], shape)
    observers = np.repeat(np.arange(OBSERVERS_PER_IMAGE), per_obs).astype(np.int64)
    return plan, fixations, observers


def true_density_of(record: Record, components: np.ndarray, shape, mirrored: bool = False) -> np.ndarray:
    """Recipe: the generating density of a scene (mirrored for a mirror record)."""
    d = _true_density(components, tuple(shape))
    return np.ascontiguousarray(d[:, ::-1]) if mirrored else d


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
    plan, fixations, observers = scene_fixations(seed, split, index, shape)
    return {"image": _render_image(plan, shape), "true_density": _true_density(plan["components"], shape),
            "fixations": fixations, "observers": observers,
            "meta": {"scene": plan["kind"], "objects": plan["objects"],
                     "center_weight_share": plan["center_weight_share"]}}


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
        Override the number of base images of the split (1 to
        :data:`salbench.data.options.MAX_IMAGES`).
    workers : int, optional
        Threads that generate the next records ahead of sequential access (default: up to
        4, one per CPU; 0 or 1 generates on demand only; at most
        :data:`salbench.data.options.MAX_WORKERS`). Does not change any record.

    Every option is checked (type and range) before anything is allocated: a bad one is a
    ValueError of one line naming it and what is allowed.
    """

    name = "synthetic"
    points_rule = ""  # no point can fall outside: the array cache key is what it was

    def __init__(self, split: str = "val", *, preset: str = "default", seed: int = 0, n_images: int | None = None,
                 workers: int | None = None):
        super().__init__()
        if split not in _SPLIT_CODE:
            raise ValueError(f"synthetic has splits {sorted(_SPLIT_CODE)}, not {split!r}")
        if not isinstance(preset, str) or preset not in PRESETS:
            raise ValueError(f"unknown synthetic preset {preset!r}; choose from {sorted(PRESETS)}")
        where = f"synthetic/{split}"
        # Bounded before anything is allocated: the names list alone of n_images=10**12 is terabytes.
        seed = int_option(where, "seed", seed, lo=0, hi=MAX_SEED)
        n = PRESETS[preset][split] if n_images is None else int_option(
            where, "n_images", n_images, lo=1, hi=MAX_IMAGES,
            why=f" base images per split (the default set has {PRESETS['default']['train']:,} train and "
                f"{PRESETS['default']['val']:,} val; names, statistics and per-image results grow with the count)")
        if workers is not None:
            workers = int_option(where, "workers", workers, lo=0, hi=MAX_WORKERS, why=" threads")
        self.split, self.seed, self.n_base = split, seed, n
        self.mirrored = split == "train"
        self.names = [f"synthetic_{split}_{i:05d}.png" for i in range(n)]
        if self.mirrored:
            self.names += [f"synthetic_{split}_{i:05d}_mirror.png" for i in range(n)]
        self.params = {"preset": preset, "seed": self.seed, "n_images": n, "mirrored": self.mirrored,
                       "generator": generator_params()}
        self.workers = min(4, os.cpu_count() or 1) if workers is None else workers
        self._ahead: dict[int, Future] = {}
        self._last = -2
        self._lock = threading.Lock()

    def __getstate__(self):  # futures and locks do not pickle (e.g. to DataLoader workers)
        state = dict(self.__dict__)
        state.update(_ahead={}, _last=-2, _lock=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @classmethod
    def available_splits(cls, root=None, **_options) -> list[str]:
        return list(_SPLIT_CODE)

    def stats(self, i: int) -> dict:
        return {"shape": SALICON_SHAPE, "n_fixations": _n_fixations(self.seed, self.split, i % self.n_base),
                "n_observers": OBSERVERS_PER_IMAGE}

    def _dropped_counts(self, i: int) -> tuple[int, int]:
        # Fixations are drawn inside the image: nothing is ever dropped, and nothing is generated to say so.
        return 0, _n_fixations(self.seed, self.split, i % self.n_base)

    def _content_hash(self) -> str:
        return hash_json({"split": self.split, "names": self.names, **self.params})

    def _scene(self, i: int):
        """``(plan, ground-truth Record)`` of record ``i`` (no image painted)."""
        base = i % self.n_base
        mirrored = i >= self.n_base
        shape = SALICON_SHAPE
        plan, fix, observers = scene_fixations(self.seed, self.split, base, shape)
        if mirrored:
            fix = fix.copy()
            fix[:, 1] = shape[1] - 1 - fix[:, 1]
        meta = {"scene": plan["kind"], "objects": plan["objects"], "center_weight_share": plan["center_weight_share"],
                "source": "synthetic", "seed": self.seed, "index": base, "mirrored": mirrored}
        rec = Record(name=self.names[i], image=None, fixations=fix, observers=observers,
                     fixation_map=fixation_map(fix, shape), density=Lazy(blurred_density, SALICON_SIGMA), x96=None,
                     y48=Lazy(y48_from_y_original), y_original=Lazy(y_original_from_density),
                     true_density=Lazy(true_density_of, plan["components"], shape, mirrored), meta=meta)
        return plan, rec

    def _ground_truth(self, i: int) -> Record:
        return self._scene(i)[1]

    def _fixation_points(self, i: int) -> np.ndarray:
        return self._scene(i)[1].fixations

    def _make(self, i: int) -> Record:
        plan, rec = self._scene(i)
        image = _render_image(plan, SALICON_SHAPE)
        if rec.meta["mirrored"]:
            image = np.ascontiguousarray(image[:, ::-1])
        rec = rec.replace(image=image, x96=Lazy(x96_from_image))
        for k in LAZY_FIELDS:  # computed here, in the prefetching thread, as before
            getattr(rec, k)
        return rec

    def _load(self, i: int) -> Record:
        # Sequential access (iteration, evaluation, training arrays) is served by threads
        # generating the next records ahead; the compiled kernels and Pillow release the GIL.
        if self.workers <= 1:
            return self._make(i)
        with self._lock:
            fut = self._ahead.pop(i, None)
            if i == self._last + 1 or fut is not None:
                window = range(i + 1, min(i + 1 + 2 * self.workers, len(self)))
                for j in list(self._ahead):
                    if j not in window:
                        self._ahead.pop(j).cancel()
                pool = _pool(self.workers)
                for j in window:
                    if j not in self._ahead:
                        self._ahead[j] = pool.submit(self._make, j)
            self._last = i
        return fut.result() if fut is not None else self._make(i)


_POOL: ThreadPoolExecutor | None = None


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers < workers:
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="salbench-synthetic")
    return _POOL
