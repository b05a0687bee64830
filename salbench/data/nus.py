"""NUS eye-tracking layout (OSIE, MIT1003, EyeCrowd): ``stimuli/*.jpg`` + ``fixations.mat``.

Two layouts are read: the flattened one (``fixations.mat`` beside ``stimuli/``) and the NUS
repositories' own (``stimuli/`` + ``eye/fixations.mat``); when both files exist the
flattened one is used (``params["fixations_file"]`` says which).

``fixations.mat`` holds a struct array ``fixations``, one element per image, with ``img``
(file name) and ``subjects`` (one per observer: ``fix_x``, ``fix_y`` 1-based pixel
coordinates, ``fix_duration``). Loaded with ``squeeze_me=True, struct_as_record=False``;
an observer with one fixation comes back as scalars.

Decisions (recorded in ``params``):

* ``resolution=None`` evaluates at the original size; ``resolution=(480, 640)`` (or
  ``"480x640"``) resizes images (Pillow bilinear) and scales fixations with them.
* Fixations: 1-based -> 0-based ``round((v - 1) * scale)`` with MATLAB's ``round`` (halves
  away from zero), clipped, clipped count in meta.
* Density: the binary fixation map blurred with sigma ``19 * H / 480`` (SALICON's 19 px at 480x640,
  scaled with the evaluated height), max-normalised; ``y_original = round(255 * density)``.
* Splits: ``all``; ``val`` = the last ``round(2n/7)`` images sorted by name, ``train`` the
  rest (OSIE's 700 -> 500 train / 200 val).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import scipy.io

from salbench.data._maps import (SALICON_SIGMA, blurred_density, fixation_map, image_size, load_image,
                                 one_based_to_pixels, resize_image, salicon_sigma)
from salbench.data.base import GT_VERSION, SaliencyDataset, hash_file
from salbench.data.record import Lazy, Record, x96_from_image, y48_from_y_original, y_original_from_density

SPLITS = ("all", "train", "val")


def parse_resolution(resolution) -> tuple[int, int] | None:
    """``None``, ``(H, W)`` or ``"HxW"`` -> ``(H, W)`` or None."""
    if resolution is None or resolution == "original":
        return None
    if isinstance(resolution, str):
        try:
            h, w = (int(v) for v in resolution.lower().split("x"))
        except ValueError:
            raise ValueError(f"resolution must look like 480x640, got {resolution!r}") from None
    else:
        h, w = (int(v) for v in resolution)
    if h < 1 or w < 1:
        raise ValueError(f"resolution must be positive, got {h}x{w}")
    return h, w


@functools.lru_cache(maxsize=4)
def _read_fixations_mat(path: str, mtime_ns: int, size: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """``{image name: [(fix_x, fix_y) per observer]}`` (cached per file version)."""
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise ValueError(f"{path}: cannot read MATLAB file: {exc}") from None
    if "fixations" not in mat:
        raise ValueError(f"{path}: no 'fixations' variable (expected the NUS layout); found {sorted(k for k in mat if not k.startswith('__'))}")
    out: dict[str, list] = {}
    for k, entry in enumerate(np.atleast_1d(mat["fixations"])):
        fields = getattr(entry, "_fieldnames", None) or []
        if "img" not in fields or "subjects" not in fields:
            raise ValueError(f"{path}: fixations[{k}] lacks 'img'/'subjects' fields (has {fields})")
        observers = []
        for j, subj in enumerate(np.atleast_1d(entry.subjects)):
            sf = getattr(subj, "_fieldnames", None) or []
            if "fix_x" not in sf or "fix_y" not in sf:
                raise ValueError(f"{path}: fixations[{k}].subjects[{j}] lacks 'fix_x'/'fix_y' (has {sf})")
            x = np.atleast_1d(np.asarray(subj.fix_x, dtype=np.float64)).ravel()
            y = np.atleast_1d(np.asarray(subj.fix_y, dtype=np.float64)).ravel()
            if x.shape != y.shape:
                raise ValueError(f"{path}: fixations[{k}].subjects[{j}]: {x.size} fix_x but {y.size} fix_y")
            observers.append((x, y))
        out[str(entry.img)] = observers
    return out


#: Where the fixations file may sit under the dataset root, in order of preference.
FIXATION_FILES = ("fixations.mat", "eye/fixations.mat")


def find_fixations_mat(root: Path) -> Path:
    """``root/fixations.mat``, else ``root/eye/fixations.mat``; a clear error when neither exists."""
    for rel in FIXATION_FILES:
        if (root / rel).is_file():
            return root / rel
    raise FileNotFoundError(f"{root}: no fixations.mat or eye/fixations.mat (NUS layout: stimuli/ + fixations.mat, "
                            "or the NUS repositories' stimuli/ + eye/fixations.mat)")


def read_fixations_mat(path: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Parse a NUS ``fixations.mat`` (cached while the file is unchanged)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: fixations file not found (NUS layout: stimuli/ + fixations.mat)")
    st = path.stat()
    return _read_fixations_mat(str(path), st.st_mtime_ns, st.st_size)


def split_names(names: list[str], split: str) -> list[str]:
    """The documented fixed split: ``val`` = last ``round(2n/7)`` sorted names, ``train`` the rest."""
    names = sorted(names)
    n_val = int(round(len(names) * 2 / 7))
    if split == "all":
        return names
    if split == "train":
        return names[: len(names) - n_val]
    if split == "val":
        return names[len(names) - n_val:]
    raise ValueError(f"nus has splits {list(SPLITS)}, not {split!r}")


class NUSDataset(SaliencyDataset):
    """A NUS-layout eye-tracking set (see the module docstring for the decisions).

    Parameters
    ----------
    root : Path
        Directory holding ``stimuli/`` and ``fixations.mat`` (or ``eye/fixations.mat``).
    split : {"all", "train", "val"}
    resolution : None, (H, W) or "HxW"
        Evaluate at the original resolution (None) or resized.
    """

    name = "nus"

    def __init__(self, root, split: str = "all", *, resolution=None):
        super().__init__()
        self.root = Path(root)
        self.split = split
        self.resolution = parse_resolution(resolution)
        self.stimuli = self.root / "stimuli"
        if not self.stimuli.is_dir():
            raise FileNotFoundError(f"{self.stimuli}: stimuli directory not found (NUS layout: stimuli/ + fixations.mat)")
        self.mat_path = find_fixations_mat(self.root)
        self._fix = read_fixations_mat(self.mat_path)
        on_disk = {p.name for p in self.stimuli.iterdir() if p.is_file() and not p.name.startswith(".")}
        missing = sorted(set(self._fix) - on_disk)
        extra = sorted(on_disk - set(self._fix))
        if missing or extra:
            raise ValueError(
                f"{self.mat_path}: image/fixation count mismatch: {len(self._fix)} entries, "
                f"{len(on_disk)} files in {self.stimuli}"
                + (f"; no image for {missing[:3]}" if missing else "")
                + (f"; no fixations for {extra[:3]}" if extra else ""))
        self.location = str(self.root)
        self.names = split_names(list(self._fix), split)
        self.params = {"resolution": list(self.resolution) if self.resolution else None,
                       "split_rule": "val = last round(2n/7) names sorted, train = the rest",
                       "blur_sigma_at_480": SALICON_SIGMA, "rounding": "matlab",
                       "fixations_file": self.mat_path.relative_to(self.root).as_posix()}

    @classmethod
    def available_splits(cls, root, **_options) -> list[str]:
        return list(SPLITS)

    def _content_hash(self) -> str:
        h = hash_file(self.mat_path)
        h.update("\n".join(self.names).encode())
        h.update(GT_VERSION.encode())  # how files become ground truth (e.g. the rounding rule)
        return h.hexdigest()

    def _geometry(self, name: str):
        """(original (H, W), evaluated (H, W), (row scale, col scale)) from the image header."""
        h0, w0 = image_size(self.stimuli / name)
        shape = self.resolution or (h0, w0)
        return (h0, w0), shape, (shape[0] / h0, shape[1] / w0)

    def _points(self, name: str, shape, scale):
        observers = self._fix[name]
        xs = [x for x, _ in observers]
        ys = [y for _, y in observers]
        obs = np.concatenate([np.full(len(x), j, np.int64) for j, x in enumerate(xs)]) if xs else np.zeros(0, np.int64)
        pts, clipped = one_based_to_pixels(np.concatenate(ys) if ys else [], np.concatenate(xs) if xs else [],
                                           shape, scale)
        return pts, obs, clipped, len(observers)

    def stats(self, i: int) -> dict:
        name = self.names[i]
        _, shape, _ = self._geometry(name)
        return {"shape": shape, "n_fixations": int(sum(len(x) for x, _ in self._fix[name])),
                "n_observers": len(self._fix[name])}

    def _fixation_points(self, i: int) -> np.ndarray:
        name = self.names[i]
        _, shape, scale = self._geometry(name)
        return self._points(name, shape, scale)[0]

    def _ground_truth(self, i: int, original=None) -> Record:
        name = self.names[i]
        path = self.stimuli / name
        if original is None:
            original = image_size(path)
        shape = self.resolution or tuple(original)
        scale = (shape[0] / original[0], shape[1] / original[1])
        pts, obs, clipped, n_obs = self._points(name, shape, scale)
        sigma = salicon_sigma(shape)
        return Record(name=name, image=None, fixations=pts, observers=obs, fixation_map=fixation_map(pts, shape),
                      density=Lazy(blurred_density, sigma), x96=None, y48=Lazy(y48_from_y_original),
                      y_original=Lazy(y_original_from_density),
                      meta={"source": str(path), "original_shape": list(original), "blur_sigma": sigma,
                            "n_clipped": clipped, "n_observers": n_obs})

    def _load(self, i: int) -> Record:
        image = load_image(self.stimuli / self.names[i])
        rec = self._ground_truth(i, original=image.shape[:2])
        return rec.replace(image=resize_image(image, rec.shape), x96=Lazy(x96_from_image))
