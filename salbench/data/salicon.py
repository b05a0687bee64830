"""SALICON official release: ``images/``, ``maps/``, ``fixations/*.mat`` or the 2015 JSON.

Layout under ``root`` (split ``s`` in train / val / test)::

    images/{s}/ or images/{s}2014/      COCO_{s}2014_000000XXXXXX.jpg
    maps/{s}/<stem>.png                 8-bit density maps (optional)
    fixations/{s}/<stem>.mat            2015/2017 .mat: image, resolution, gaze(location, timestamp, fixations)
    annotations/fixations_{s}2014*.json or fixations_{s}2014*.json   (2015 JSON edition, instead of .mat)

Fixations: the ``.mat`` ``fixations`` field (``[x y]`` 1-based) by default,
``fixations="location"`` for the raw mouse samples. JSON: integer pairs are 1-based
``[row, col]`` (train examples), float pairs are 0-based ``[x, y]`` raw mouse samples (val
examples: x in -0.67..639.5, y in 0..479); override with ``json_order="rowcol"|"xy"``.
1-based coordinates become pixels with MATLAB's ``round`` (halves away from zero); points
outside the image are dropped (never clipped) and counted (``meta["n_dropped"]``).
Both editions record the size the fixations were recorded at (``.mat`` ``resolution``,
JSON ``height``/``width``): an image of another size is an error naming it, or, with
``fixation_scale="rescale"``, its fixations are scaled to it.
Density: ``maps/*.png`` when present (``y_original`` = that uint8 map), else the
fixations blurred with sigma 19 (``y_original = round(255 * density)``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import scipy.io

from salbench.data._maps import (SALICON_SIGMA, blurred_density, density_of_map, fixation_map, image_size,
                                 load_gray, load_image, one_based_to_pixels)
from salbench.data.base import GT_VERSION, SaliencyDataset, hash_file, hash_json
from salbench.data.options import FIXATION_SCALE, choice_option
from salbench.data.record import Lazy, Record, x96_from_image, y48_from_y_original, y_original_from_density

SPLITS = ("train", "val", "test")
_IMAGE_EXT = (".jpg", ".jpeg", ".png")


def _image_dir(root: Path, split: str) -> Path | None:
    for cand in (root / "images" / split, root / "images" / f"{split}2014", root / f"{split}2014"):
        if cand.is_dir():
            return cand
    return None


def _json_file(root: Path, split: str) -> Path | None:
    for folder in (root / "annotations", root):
        hits = sorted(folder.glob(f"fixations_{split}2014*.json")) if folder.is_dir() else []
        if hits:
            return hits[0]
    return None


@functools.lru_cache(maxsize=4)
def _read_json(path: str, mtime_ns: int) -> dict:
    """``{file_name: {"shape", "workers": [...], "pairs": [(K, 2) float arrays], "ints": bool}}``."""
    try:
        data = json.loads(Path(path).read_text())
        images = {im["id"]: im for im in data["images"]}
        anns = data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a SALICON 2015 fixations JSON (need images and annotations): {exc}") from None
    out: dict[str, dict] = {}
    for im in images.values():
        out[im["file_name"]] = {"shape": (int(im["height"]), int(im["width"])), "workers": [], "pairs": [],
                                "ints": True}
    for k, ann in enumerate(anns):
        try:
            entry = out[images[ann["image_id"]]["file_name"]]
            pairs = ann["fixations"]
        except KeyError as exc:
            raise ValueError(f"{path}: annotation {k} lacks or names an unknown {exc}") from None
        entry["workers"].append(ann.get("worker_id", k))
        entry["pairs"].append(np.asarray(pairs, dtype=np.float64).reshape(-1, 2))
        entry["ints"] &= all(isinstance(v, int) for p in pairs for v in p)
    return out


def _mat_points(path: Path, field: str):
    """``(shape or None, [(x, y) per observer])`` from a SALICON ``.mat``, 1-based coordinates."""
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # corrupt or not a .mat
        raise ValueError(f"{path}: cannot read MATLAB file: {exc}") from None
    if "gaze" not in mat:
        raise ValueError(f"{path}: no 'gaze' struct (expected SALICON .mat fields image, resolution, gaze)")
    shape = None
    if "resolution" in mat:
        res = np.atleast_1d(mat["resolution"]).astype(int).ravel()
        if res.size == 2:
            shape = (int(res[0]), int(res[1]))
    observers = []
    for j, g in enumerate(np.atleast_1d(mat["gaze"])):
        fields = getattr(g, "_fieldnames", None) or []
        if field not in fields:
            raise ValueError(f"{path}: gaze[{j}] has no '{field}' field (has {fields})")
        xy = np.asarray(getattr(g, field), dtype=np.float64)
        xy = xy.reshape(-1, 2) if xy.size else np.zeros((0, 2))
        observers.append((xy[:, 0], xy[:, 1]))
    return shape, observers


def read_map_png(record: Record, path: Path) -> np.ndarray:
    """Recipe: the 8-bit ``maps/*.png`` of a record, which must have the image's size."""
    y = load_gray(path)
    if y.shape != record.shape:
        raise ValueError(f"{path}: map is {y.shape[0]}x{y.shape[1]}, its image is {record.shape[0]}x{record.shape[1]}")
    return y


class SaliconDataset(SaliencyDataset):
    """SALICON in its official layout (see the module docstring).

    Parameters
    ----------
    root : Path
    split : {"train", "val", "test"}
    fixations : {"fixations", "location"}
        ``.mat`` field to read: detected fixations (default) or raw mouse samples.
    json_order : {"auto", "rowcol", "xy"}
        How to read the pairs of the 2015 JSON edition.
    fixation_scale : {"error", "rescale"}
        An image whose size differs from the size its fixations were recorded at (``.mat``
        ``resolution``, JSON ``height``/``width``): an error naming it, or its fixations
        scaled to it.
    """

    name = "salicon"

    def __init__(self, root, split: str = "val", *, fixations: str = "fixations", json_order: str = "auto",
                 fixation_scale: str = "error"):
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"salicon has splits {list(SPLITS)}, not {split!r}")
        where = f"salicon/{split}"
        choice_option(where, "fixations", fixations, ("fixations", "location"))
        choice_option(where, "json_order", json_order, ("auto", "rowcol", "xy"))
        self.fixation_scale = choice_option(where, "fixation_scale", fixation_scale, FIXATION_SCALE)
        self.root, self.split, self.field, self.json_order = Path(root), split, fixations, json_order
        self.image_dir = _image_dir(self.root, split)
        if self.image_dir is None:
            raise FileNotFoundError(f"{self.root}: no images/{split}/ directory (SALICON layout)")
        self.map_dir = self.root / "maps" / split
        self.mat_dir = self.root / "fixations" / split
        self.json_path = None if self.mat_dir.is_dir() else _json_file(self.root, split)
        images = sorted(p.name for p in self.image_dir.iterdir() if p.suffix.lower() in _IMAGE_EXT)
        if self.json_path is not None:
            st = self.json_path.stat()
            self._json = _read_json(str(self.json_path), st.st_mtime_ns)
            missing = sorted(set(self._json) - set(images))
            if missing:
                raise ValueError(f"{self.json_path}: image/fixation count mismatch: {len(self._json)} annotated "
                                 f"images, {len(images)} in {self.image_dir}; no image for {missing[:3]}")
            images = sorted(self._json)
        elif self.mat_dir.is_dir():
            mats = {p.stem for p in self.mat_dir.glob("*.mat")}
            lacking = [n for n in images if Path(n).stem not in mats]
            if lacking or len(mats) != len(images):
                raise ValueError(f"{self.mat_dir}: image/fixation count mismatch: {len(images)} images in "
                                 f"{self.image_dir}, {len(mats)} .mat files" +
                                 (f"; no .mat for {lacking[:3]}" if lacking else ""))
        elif not self.map_dir.is_dir() and split != "test":
            raise FileNotFoundError(f"{self.root}: no fixations/{split}/, maps/{split}/ or fixations_{split}2014*.json")
        self.location = str(self.root)
        self.names = images
        self.params = {"fixations": fixations, "json_order": json_order, "rounding": "matlab",
                       "source": "json" if self.json_path else ("mat" if self.mat_dir.is_dir() else "maps")}
        if fixation_scale != "error":
            self.params["fixation_scale"] = fixation_scale

    @classmethod
    def available_splits(cls, root, **_options) -> list[str]:
        root = Path(root)
        return [s for s in SPLITS if _image_dir(root, s) is not None
                and ((root / "fixations" / s).is_dir() or (root / "maps" / s).is_dir() or _json_file(root, s))]

    def _content_hash(self) -> str:
        h = hash_file(self.json_path) if self.json_path else None
        if h is None:
            import hashlib

            h = hashlib.sha256()
            for folder, ext in ((self.mat_dir, ".mat"), (self.map_dir, ".png")):
                for n in self.names:
                    p = folder / (Path(n).stem + ext)
                    if p.is_file():
                        hash_file(p, h)
        h.update("\n".join(self.names).encode())
        h.update(GT_VERSION.encode())  # how files become ground truth (e.g. the rounding rule)
        # Options that change the ground truth, mixed in only when not the default, so that the
        # default's hash stays what results files recorded (before, fixations="location" and the
        # default shared one hash, and so one ground-truth cache entry).
        changed = {k: v for k, v, default in (("fixations", self.field, "fixations"),
                                               ("json_order", self.json_order, "auto"),
                                               ("fixation_scale", self.fixation_scale, "error")) if v != default}
        if changed:
            h.update(hash_json(changed).encode())
        return h.hexdigest()

    def _observers(self, name: str):
        """``(shape or None, [(rows_1based, cols_1based)], order)`` for one image."""
        if self.json_path is not None:
            entry = self._json[name]
            order = self.json_order if self.json_order != "auto" else ("rowcol" if entry["ints"] else "xy")
            if order == "rowcol":
                obs = [(p[:, 0], p[:, 1]) for p in entry["pairs"]]
            else:  # 0-based [x, y] -> 1-based (row, col)
                obs = [(p[:, 1] + 1.0, p[:, 0] + 1.0) for p in entry["pairs"]]
            return entry["shape"], obs, order
        path = self.mat_dir / (Path(name).stem + ".mat")
        if not path.is_file():
            return None, [], None
        shape, xy = _mat_points(path, self.field)
        return shape, [(y, x) for x, y in xy], "xy"

    def stats(self, i: int) -> dict:
        name = self.names[i]
        shape = image_size(self.image_dir / name)
        pts, _, _, n_obs, _ = self._points(i, shape)
        return {"shape": shape, "n_fixations": int(len(pts)), "n_observers": n_obs or None}

    def _scale(self, name: str, recorded, shape) -> tuple[float, float]:
        """Scale from the recorded to the image's coordinates; an error when they differ, unless rescaling."""
        if recorded is None or tuple(recorded) == tuple(shape):
            return (1.0, 1.0)
        if self.fixation_scale == "error":
            where = self.json_path if self.json_path is not None else self.mat_dir / (Path(name).stem + ".mat")
            raise ValueError(
                f"{self.image_dir / name}: the image is {shape[0]}x{shape[1]} but its fixations were recorded at "
                f"{recorded[0]}x{recorded[1]} ({where}): give --option fixation_scale=rescale to scale them to the "
                "image, or use the images they were recorded on")
        return (shape[0] / recorded[0], shape[1] / recorded[1])

    def _points(self, i: int, shape):
        name = self.names[i]
        recorded, obs, order = self._observers(name)
        rows = np.concatenate([r for r, _ in obs]) if obs else np.zeros(0)
        cols = np.concatenate([c for _, c in obs]) if obs else np.zeros(0)
        pts, keep = one_based_to_pixels(rows, cols, shape, self._scale(name, recorded, shape))
        observers = np.concatenate([np.full(len(r), j, np.int64) for j, (r, _) in enumerate(obs)]) if obs else None
        n_dropped = int(keep.size - keep.sum())
        self._note_dropped(i, n_dropped, keep.size)
        return pts, (None if observers is None else observers[keep]), n_dropped, len(obs), order

    def _fixation_points(self, i: int) -> np.ndarray:
        return self._points(i, image_size(self.image_dir / self.names[i]))[0]

    def _ground_truth(self, i: int, shape=None) -> Record:
        name = self.names[i]
        if shape is None:
            shape = image_size(self.image_dir / name)
        pts, observers, dropped, n_obs, order = self._points(i, shape)
        map_path = self.map_dir / (Path(name).stem + ".png")
        from_png = map_path.is_file()
        if from_png:
            y_original, density = Lazy(read_map_png, map_path), Lazy(density_of_map)
        else:
            y_original, density = Lazy(y_original_from_density), Lazy(blurred_density, SALICON_SIGMA)
        return Record(name=name, image=None, fixations=pts, observers=observers, fixation_map=fixation_map(pts, shape),
                      density=density, x96=None, y48=Lazy(y48_from_y_original), y_original=y_original,
                      meta={"source": str(self.image_dir / name), "n_dropped": dropped,
                            "n_recorded": dropped + len(pts), "n_observers": n_obs,
                            "pair_order": order, "field": self.field if self.json_path is None else "json",
                            "density_from": "png" if from_png else "fixations"})

    def _load(self, i: int) -> Record:
        image = load_image(self.image_dir / self.names[i])
        rec = self._ground_truth(i, shape=tuple(image.shape[:2]))
        return rec.replace(image=image, x96=Lazy(x96_from_image))
