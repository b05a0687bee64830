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
  away from zero); points outside the image are dropped (never clipped) and counted
  (``meta["n_dropped"]``, :meth:`~salbench.data.SaliencyDataset.dropped_fixations`).
* ``fixations.mat`` does not record the size the fixations were recorded at (OSIE's does
  not), so each stimulus' own size is taken; ``recorded_size="600x800"`` says it (for
  every image), and an image of another size is then an error naming it, or, with
  ``fixation_scale="rescale"``, its fixations are scaled to it.
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
from salbench.data.base import GT_VERSION, SaliencyDataset, hash_file, hash_json
from salbench.data.options import FIXATION_SCALE, choice_option, size_option
from salbench.data.record import Lazy, Record, x96_from_image, y48_from_y_original, y_original_from_density

SPLITS = ("all", "train", "val")


def parse_resolution(resolution, where: str = "nus", name: str = "resolution") -> tuple[int, int] | None:
    """``None``, ``(H, W)`` or ``"HxW"`` -> ``(H, W)`` or None (bounded: :func:`salbench.data.options.size_option`)."""
    return size_option(where, name, resolution)


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
    recorded_size : None, (H, W) or "HxW"
        The size of the images the fixations were recorded on (every image); None: each
        stimulus' own size (``fixations.mat`` does not say).
    fixation_scale : {"error", "rescale"}
        An image whose size differs from ``recorded_size``: an error naming it, or its
        fixations scaled to it.
    """

    name = "nus"

    def __init__(self, root, split: str = "all", *, resolution=None, recorded_size=None,
                 fixation_scale: str = "error"):
        super().__init__()
        where = f"nus/{split}"
        if split not in SPLITS:
            raise ValueError(f"nus has splits {list(SPLITS)}, not {split!r}")
        self.root = Path(root)
        self.split = split
        self.resolution = parse_resolution(resolution, where)
        self.recorded_size = size_option(where, "recorded_size", recorded_size)
        self.fixation_scale = choice_option(where, "fixation_scale", fixation_scale, FIXATION_SCALE)
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
        if self.recorded_size is not None:  # only when given: entries made without it keep their params
            self.params.update(recorded_size=list(self.recorded_size), fixation_scale=self.fixation_scale)

    @classmethod
    def available_splits(cls, root, **_options) -> list[str]:
        return list(SPLITS)

    def _content_hash(self) -> str:
        h = hash_file(self.mat_path)
        h.update("\n".join(self.names).encode())
        h.update(GT_VERSION.encode())  # how files become ground truth (e.g. the rounding rule)
        # Options that change the ground truth, mixed in only when set, so that the hash of the
        # default ground truth stays what results files recorded (before this, a 480x640 run and an
        # original-size run had one hash, and so shared one ground-truth cache entry).
        changed = {k: v for k, v in (("resolution", self.resolution), ("recorded_size", self.recorded_size))
                   if v is not None}
        if self.recorded_size is not None:
            changed["fixation_scale"] = self.fixation_scale
        if changed:
            h.update(hash_json(changed).encode())
        return h.hexdigest()

    def _geometry(self, name: str, original=None):
        """(original (H, W), evaluated (H, W), (row scale, col scale) from recorded to evaluated coordinates).

        ``original`` is the stimulus' size (read from its header when None). With
        ``recorded_size`` given, an image of another size is an error (or, with
        ``fixation_scale="rescale"``, the fixations are scaled from the recorded size).
        """
        h0, w0 = image_size(self.stimuli / name) if original is None else original
        recorded = self.recorded_size or (h0, w0)
        if recorded != (h0, w0) and self.fixation_scale == "error":
            raise ValueError(
                f"{self.stimuli / name}: the image is {h0}x{w0} but its fixations were recorded at "
                f"{recorded[0]}x{recorded[1]} (--option recorded_size): give --option fixation_scale=rescale to scale "
                "them to the image, or use the images they were recorded on")
        shape = self.resolution or (h0, w0)
        return (h0, w0), shape, (shape[0] / recorded[0], shape[1] / recorded[1])

    def _points(self, i: int, shape, scale):
        name = self.names[i]
        observers = self._fix[name]
        xs = [x for x, _ in observers]
        ys = [y for _, y in observers]
        obs = np.concatenate([np.full(len(x), j, np.int64) for j, x in enumerate(xs)]) if xs else np.zeros(0, np.int64)
        pts, keep = one_based_to_pixels(np.concatenate(ys) if ys else [], np.concatenate(xs) if xs else [],
                                        shape, scale)
        n_dropped = int(keep.size - keep.sum())
        self._note_dropped(i, n_dropped, keep.size)
        return pts, obs[keep], n_dropped, len(observers)

    def stats(self, i: int) -> dict:
        name = self.names[i]
        _, shape, scale = self._geometry(name)
        return {"shape": shape, "n_fixations": int(len(self._points(i, shape, scale)[0])),
                "n_observers": len(self._fix[name])}

    def _fixation_points(self, i: int) -> np.ndarray:
        _, shape, scale = self._geometry(self.names[i])
        return self._points(i, shape, scale)[0]

    def _ground_truth(self, i: int, original=None) -> Record:
        name = self.names[i]
        path = self.stimuli / name
        original, shape, scale = self._geometry(name, original)
        pts, obs, dropped, n_obs = self._points(i, shape, scale)
        sigma = salicon_sigma(shape)
        return Record(name=name, image=None, fixations=pts, observers=obs, fixation_map=fixation_map(pts, shape),
                      density=Lazy(blurred_density, sigma), x96=None, y48=Lazy(y48_from_y_original),
                      y_original=Lazy(y_original_from_density),
                      meta={"source": str(path), "original_shape": list(original), "blur_sigma": sigma,
                            "n_dropped": dropped, "n_recorded": dropped + len(pts), "n_observers": n_obs})

    def _load(self, i: int) -> Record:
        image = load_image(self.stimuli / self.names[i])
        rec = self._ground_truth(i, original=tuple(image.shape[:2]))
        return rec.replace(image=resize_image(image, rec.shape), x96=Lazy(x96_from_image))
