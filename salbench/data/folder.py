"""Any folder layout, described by path templates: ``--dataset folder``.

A template is a path relative to the data directory with ``{field}`` placeholders:

* ``images`` (required) finds the stimuli, e.g. ``Stimuli/{category}/{name}.jpg``. It must
  contain ``{name}``; every field matches one path segment (no ``/``), ``{split}`` is
  replaced by the split asked for. Files whose name starts with ``.`` are ignored.
* ``fixations`` (required) names each image's fixation file from the image's fields, e.g.
  ``FIXATIONLOCS/{category}/{name}.mat``: a binary fixation-map image (PNG, JPEG, BMP, TIFF,
  ...) or a ``.mat`` file holding a binary map or point lists.
* ``density`` (optional) names each image's continuous map (8- or 16-bit image, or ``.npy``).

Presets fill the templates for the usual layouts (``layout=salicon``, ``mit1003``,
``cat2000``; see :data:`PRESETS`); a template given with the preset replaces the preset's.

Decisions (also in ``docs/datasets.md``):

* Names: the image's path relative to the fixed folder of the ``images`` template
  (``Action/001.jpg`` under ``Stimuli/{category}/{name}.jpg``), so they are unique; two
  images that would share one fixation or density file are refused.
* Splits: with ``{split}`` in the ``images`` template, the values it takes on disk for which
  fixation files exist; without, one split, ``all``.
* Fixation-map images: the fixated pixels are the nonzero ones for lossless formats; JPEG
  is lossy (a 0/255 map saved at quality 75 comes back with 0..37 around the fixations and
  235..255 on them), so a JPEG pixel is fixated when it exceeds half the map's maximum.
  ``threshold=T`` overrides both (fixated: value > T). Points = ``argwhere`` of that map.
* ``.mat`` fixations: a SALICON-style ``gaze`` struct (``mat_field``, default ``fixations``,
  ``[x y]`` 1-based per observer), a 2-D array of the image's size (binary map: nonzero),
  a ``(K, 2)`` array of 1-based ``[x y]`` points (``point_order=rowcol`` for ``[row col]``),
  or a cell array of such arrays (one per observer). ``mat_var`` picks the variable; by
  default the first present of :data:`MAT_VARS`, else the file's only variable.
  1-based points become pixels with MATLAB's ``round``; points outside the image are
  dropped (never clipped) and counted. Points were recorded at the size the file says (a
  ``resolution`` variable, as SALICON's ``.mat``), else ``recorded_size`` when given, else
  the image's own size; an image of another size is an error naming it, or with
  ``fixation_scale=rescale`` its points are scaled to it. Map files must have the image's size.
* Density: read from the file when ``density`` is given (divided by its maximum;
  ``y_original`` = the file's 8-bit values, or ``round(255 * density)`` for 16-bit and
  float files), else the fixated pixels blurred with sigma ``19 * H / 480`` (max 1). Both
  lazily: nothing but the fixation file is read until the attribute is used.
* Every ground-truth file must have the image's size (no resizing); the image size is read
  from its header.
* Content hash: sha256 of the options, the names, each image's byte size and the bytes of
  every fixation and density file (images are not hashed: the ground truth is what defines
  the benchmark, and hashing 10,000 stimuli each time would be slow). File digests are cached
  under the cache dir keyed by path, size and mtime, so re-opening a large folder only stats it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from salbench.data._maps import (LOSSY_EXT, MAP_IMAGE_EXT, blurred_density, fixation_map, image_size, load_image,
                                 one_based_to_pixels, read_map_image, salicon_sigma, to_uint8_map)
from salbench.data.base import GT_VERSION, SaliencyDataset, cache_dir, hash_file, hash_json
from salbench.data.options import FIXATION_SCALE, choice_option, float_option, size_option, text_option
from salbench.data.record import Lazy, Record, x96_from_image, y48_from_y_original
from salbench.io.array_limits import check_npy_file

#: Templates of the usual layouts (``--option layout=NAME``). ``density_optional``: the
#: density maps are used when their folder exists, else computed from the fixations.
PRESETS: dict[str, dict[str, Any]] = {
    "salicon": {"images": "images/{split}/{name}.jpg", "fixations": "fixations/{split}/{name}.mat",
                "density": "maps/{split}/{name}.png", "density_optional": True},
    "mit1003": {"images": "ALLSTIMULI/{name}.jpeg", "fixations": "ALLFIXATIONMAPS/{name}_fixPts.jpg",
                "density": "ALLFIXATIONMAPS/{name}_fixMap.jpg", "density_optional": False},
    "cat2000": {"images": "Stimuli/{category}/{name}.jpg", "fixations": "FIXATIONLOCS/{category}/{name}.mat",
                "density": "FIXATIONMAPS/{category}/{name}.jpg", "density_optional": False},
}

#: ``.mat`` variables tried, in order, when ``mat_var`` is not given (CAT2000: ``fixLocs``;
#: the MIT benchmark's demo: ``fixations``; SALICON: ``gaze``).
MAT_VARS = ("gaze", "fixLocs", "fixations", "fixationPts", "fixation_map", "fixmap", "points")

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_UNSET = object()  # density not given (None / "none" turn a preset's density off)


class Template:
    """A path template with ``{field}`` placeholders (see the module docstring)."""

    def __init__(self, text: str, option: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"folder: option {option!r} must be a path template such as 'images/{{name}}.jpg', "
                             f"got {text!r}")
        text = text.replace("\\", "/")
        if text.startswith("/") or ".." in text.split("/"):
            raise ValueError(f"folder: template {option}={text!r} must be relative to --data-dir, without '..'")
        self.text, self.option = text, option
        self.fields = _FIELD.findall(text)

    def fill(self, values: dict[str, str]) -> str:
        try:
            return _FIELD.sub(lambda m: values[m.group(1)], self.text)
        except KeyError as exc:
            raise ValueError(f"folder: template {self.option}={self.text!r} uses {{{exc.args[0]}}}, which the images "
                             "template does not define") from None

    def partial(self, values: dict[str, str]) -> "Template":
        """The template with the fields in ``values`` filled (others kept)."""
        out = Template.__new__(Template)
        out.text = _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), self.text)
        out.option, out.fields = self.option, _FIELD.findall(out.text)
        return out

    @staticmethod
    def _segment_regex(seg: str) -> re.Pattern:
        out, last, seen = [], 0, set()
        for m in _FIELD.finditer(seg):
            out.append(re.escape(seg[last:m.start()]))
            f = m.group(1)
            out.append(f"(?P={f})" if f in seen else f"(?P<{f}>[^/]+)")
            seen.add(f)
            last = m.end()
        out.append(re.escape(seg[last:]))
        return re.compile("".join(out))

    def prefix(self) -> str:
        """The fixed folder before the first field (``Stimuli/`` of ``Stimuli/{c}/{name}.jpg``)."""
        head = self.text.split("{", 1)[0]
        return head[: head.rfind("/") + 1]

    def matches(self, root: Path) -> list[tuple[str, dict[str, str]]]:
        """``(relative path, fields)`` of every file under ``root`` matching the template, sorted.

        Walks one directory level per path segment with ``os.scandir`` (file types come from
        the directory listing: no ``stat`` per file, which matters for 10,000-image folders).
        Names starting with ``.`` are skipped; a field repeated in the template must repeat
        its value.
        """
        segs = self.text.split("/")
        out: list[tuple[str, dict[str, str]]] = []

        def walk(folder: Path, k: int, rel: str, fields: dict[str, str]) -> None:
            seg, last = segs[k], k == len(segs) - 1
            if not _FIELD.search(seg):  # a literal segment: no listing needed
                path = folder / seg
                if (path.is_file() if last else path.is_dir()):
                    if last:
                        out.append((rel + seg, fields))
                    else:
                        walk(path, k + 1, rel + seg + "/", fields)
                return
            rx = self._segment_regex(seg)
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                return
            for e in entries:
                if e.name.startswith("."):
                    continue
                m = rx.fullmatch(e.name)
                if not m:
                    continue
                got = m.groupdict()
                if any(fields.get(f, v) != v for f, v in got.items()):
                    continue
                merged = {**fields, **got}
                if last:
                    if e.is_file():
                        out.append((rel + e.name, merged))
                elif e.is_dir():
                    walk(Path(e.path), k + 1, rel + e.name + "/", merged)

        walk(root, 0, "", {})
        return sorted(out)


def _options(layout, images, fixations, density) -> dict[str, Any]:
    """Resolve a preset and explicit templates into ``{images, fixations, density, density_optional}``."""
    opts: dict[str, Any] = {"images": None, "fixations": None, "density": None, "density_optional": False}
    if layout is not None:
        if layout not in PRESETS:
            raise ValueError(f"folder: unknown layout {layout!r}; presets: {', '.join(sorted(PRESETS))} "
                             "(or give images=, fixations= templates)")
        opts.update(PRESETS[layout])
    if images is not None:
        opts["images"] = images
    if fixations is not None:
        opts["fixations"] = fixations
    if density is not _UNSET:
        opts["density"], opts["density_optional"] = density, False
    if opts["density"] is None or (isinstance(opts["density"], str) and opts["density"].lower() in ("", "none", "null")):
        opts["density"] = None
    missing = [k for k in ("images", "fixations") if not opts[k]]
    if missing:
        raise ValueError(f"folder: give {' and '.join(f'--option {k}=TEMPLATE' for k in missing)} "
                         f"or --option layout=NAME ({', '.join(sorted(PRESETS))})")
    return opts


def folder_splits(root: Path, images: Template, fixations: Template) -> list[str]:
    """Splits of a folder dataset: ``all``, or the ``{split}`` values with images and fixation files."""
    if "split" not in images.fields:
        return ["all"]
    values = sorted({f["split"] for _, f in images.matches(root)})
    return [s for s in values if fixations.partial({"split": s}).matches(root)]


# -- ground-truth files ---------------------------------------------------------------------

def _loadmat(path: Path) -> dict:
    try:
        return scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError as exc:  # MATLAB v7.3 files are HDF5
        raise ValueError(f"{path}: cannot read MATLAB file ({exc}); save it with -v7") from None
    except Exception as exc:  # scipy raises several types for corrupt files
        raise ValueError(f"{path}: cannot read MATLAB file: {exc}") from None


def _points_xy(a, path: Path, what: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 2))
    if a.ndim == 1 and a.size == 2:  # squeeze_me turns a single point into a vector
        return a.reshape(1, 2)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{path}: {what} has shape {a.shape}; expected (K, 2) points")
    return a


def _recorded_size(mat: dict, path: Path):
    """``(H, W)`` a ``.mat`` says its points were recorded at (SALICON's ``resolution``), or None."""
    if "resolution" not in mat:
        return None
    try:
        res = np.atleast_1d(np.asarray(mat["resolution"], dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        return None
    if res.size != 2 or not np.all(np.isfinite(res)) or np.any(res < 1) or np.any(res != np.round(res)):
        raise ValueError(f"{path}: 'resolution' is {mat['resolution']!r}; expected [height width] in pixels")
    return int(res[0]), int(res[1])


def read_fixation_file(path: Path, shape, *, threshold=None, mat_var=None, mat_field="fixations",
                       point_order="xy", recorded_size=None, fixation_scale="error",
                       image: str | None = None) -> dict[str, Any]:
    """Fixations of one image from its file: ``{"points", "observers", "n_dropped", "n_recorded", "kind"}``.

    ``points`` are 0-based ``(row, col)`` int64 at ``shape``; ``kind`` is ``"map"`` (a binary
    map: points are its fixated pixels) or ``"points"``. Points outside the image are
    dropped (``n_dropped`` of ``n_recorded``). Points were recorded at the size the file
    says (a ``resolution`` variable, as SALICON's), else ``recorded_size``, else the image's
    own; a different size is an error naming ``image``, or with ``fixation_scale="rescale"``
    the points are scaled to ``shape``.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: fixation file not found")
    if ext in MAP_IMAGE_EXT:
        values = read_map_image(path)
        return _from_map(values, path, shape, threshold, lossy=ext in LOSSY_EXT)
    if ext != ".mat":
        raise ValueError(f"{path}: fixation files must be images (a binary map) or .mat, not {ext or 'no extension'}")
    mat = _loadmat(path)
    names = [k for k in mat if not k.startswith("__")]
    if mat_var is None:
        var = next((v for v in MAT_VARS if v in mat), names[0] if len(names) == 1 else None)
        if var is None:
            raise ValueError(f"{path}: which variable holds the fixations? found {names}; give --option mat_var=NAME")
    else:
        var = mat_var
        if var not in mat:
            raise ValueError(f"{path}: no variable {var!r} (found {names})")
    value = mat[var]
    observers_xy: list[np.ndarray] = []
    per_observer = hasattr(value, "_fieldnames") or (isinstance(value, np.ndarray) and value.dtype == object)
    if hasattr(value, "_fieldnames") or (isinstance(value, np.ndarray) and value.dtype == object and value.size
                                          and hasattr(value.flat[0], "_fieldnames")):
        for j, g in enumerate(np.atleast_1d(value)):  # SALICON: gaze(j).fixations = [x y] 1-based
            fields = getattr(g, "_fieldnames", None) or []
            if mat_field not in fields:
                raise ValueError(f"{path}: {var}[{j}] has no '{mat_field}' field (has {fields}); "
                                 "give --option mat_field=NAME")
            observers_xy.append(_points_xy(getattr(g, mat_field), path, f"{var}[{j}].{mat_field}"))
    elif isinstance(value, np.ndarray) and value.dtype == object:  # cell array: one (K, 2) per observer
        observers_xy = [_points_xy(v, path, f"{var}{{{j}}}") for j, v in enumerate(value.ravel())]
    else:
        a = np.asarray(value)
        if a.ndim == 2 and a.shape == tuple(shape):
            if not (a.dtype == bool or np.issubdtype(a.dtype, np.number)):
                raise ValueError(f"{path}: {var} is a {a.dtype} array, not a binary map")
            return _from_map(a, path, shape, threshold, lossy=False)
        if a.ndim == 2 and a.shape[1] != 2:
            raise ValueError(f"{path}: {var} is {a.shape[0]}x{a.shape[1]}, but the image is {shape[0]}x{shape[1]} "
                             "(a binary map must have the image's size; points are (K, 2))")
        observers_xy = [_points_xy(a, path, var)]
    if point_order not in ("xy", "rowcol"):
        raise ValueError(f"point_order must be 'xy' or 'rowcol', not {point_order!r}")
    col, row = (0, 1) if point_order == "xy" else (1, 0)
    rows = np.concatenate([p[:, row] for p in observers_xy]) if observers_xy else np.zeros(0)
    cols = np.concatenate([p[:, col] for p in observers_xy]) if observers_xy else np.zeros(0)
    recorded = _recorded_size(mat, path) or (tuple(recorded_size) if recorded_size else None)
    scale = (1.0, 1.0)
    if recorded is not None and tuple(recorded) != tuple(shape):
        if fixation_scale != "rescale":
            said = "its 'resolution'" if "resolution" in mat else "--option recorded_size"
            raise ValueError(f"{image or path}: the image is {shape[0]}x{shape[1]} but its fixations were recorded at "
                             f"{recorded[0]}x{recorded[1]} ({path}: {said}): give --option fixation_scale=rescale to "
                             "scale them to the image, or use the images they were recorded on")
        scale = (shape[0] / recorded[0], shape[1] / recorded[1])
    try:
        pts, keep = one_based_to_pixels(rows, cols, shape, scale)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    observers = (np.concatenate([np.full(len(p), j, np.int64) for j, p in enumerate(observers_xy)])[keep]
                 if per_observer and observers_xy else None)
    return {"points": pts, "observers": observers, "n_dropped": int(keep.size - keep.sum()),
            "n_recorded": int(keep.size), "kind": "points"}


def _from_map(values: np.ndarray, path: Path, shape, threshold, *, lossy: bool) -> dict[str, Any]:
    if values.shape != tuple(shape):
        raise ValueError(f"{path}: fixation map is {values.shape[0]}x{values.shape[1]}, its image is "
                         f"{shape[0]}x{shape[1]}")
    v = values.astype(np.float64) if values.dtype != bool else values
    if threshold is None:
        thr = 0.5 * float(np.max(v)) if (lossy and v.size) else 0.0
    else:
        thr = float(threshold)
    pts = np.argwhere(v > thr).astype(np.int64)
    return {"points": pts, "observers": None, "n_dropped": 0, "n_recorded": len(pts), "kind": "map"}


def read_density_values(path: Path) -> np.ndarray:
    """The stored values of a density file (image or ``.npy``), 2-D."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: density file not found")
        check_npy_file(path)  # declared size against the file and the memory limit, before allocating
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read .npy: {exc}") from None
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"{path}: density must be a 2-D numeric array, got {a.dtype} {a.shape}")
        return a
    return read_map_image(path)


def _checked(values: np.ndarray, record: Record, path: Path) -> np.ndarray:
    if values.shape != record.shape:
        raise ValueError(f"{path}: density map is {values.shape[0]}x{values.shape[1]}, its image is "
                         f"{record.shape[0]}x{record.shape[1]}")
    if not np.isfinite(values).all() or values.min() < 0:
        raise ValueError(f"{path}: density map has negative, NaN or inf values")
    return values


def density_from_file(record: Record, path: Path) -> np.ndarray:
    """Recipe: the density file divided by its maximum (all zeros stays zeros)."""
    v = _checked(read_density_values(path), record, path).astype(np.float64)
    peak = float(v.max()) if v.size else 0.0
    return v / peak if peak > 0 else v


def y_original_from_file(record: Record, path: Path) -> np.ndarray:
    """Recipe: the density file's 8-bit values, or ``round(255 * density)`` for other depths."""
    v = _checked(read_density_values(path), record, path)
    return v if v.dtype == np.uint8 else to_uint8_map(record.density)


# -- content hash ---------------------------------------------------------------------------

class _DigestCache:
    """sha256 of files, remembered by (size, mtime_ns) in ``cache_dir()/digests/``."""

    def __init__(self, root: Path) -> None:
        key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:20]
        self.path = cache_dir() / "digests" / f"folder-{key}.json"
        try:
            self.table = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.table = {}
        self.changed = False

    def digest(self, root: Path, rel: str) -> str:
        st = (root / rel).stat()
        hit = self.table.get(rel)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        d = hash_file(root / rel).hexdigest()
        self.table[rel] = [st.st_size, st.st_mtime_ns, d]
        self.changed = True
        return d

    def save(self) -> None:
        if not self.changed:
            return
        from salbench.io import atomic_path

        try:
            with atomic_path(self.path) as tmp:
                Path(tmp).write_text(json.dumps(self.table))
        except (OSError, ValueError):  # a read-only cache costs time, not correctness
            pass


# -- the dataset ----------------------------------------------------------------------------

class FolderDataset(SaliencyDataset):
    """Images, fixations and optional densities found by path templates (module docstring).

    Parameters
    ----------
    root : Path
        The data directory the templates are relative to.
    split : str
        ``all`` when the images template has no ``{split}``, else a value of ``{split}``.
    layout : {"salicon", "mit1003", "cat2000"}, optional
        Preset templates (:data:`PRESETS`); explicit templates override them.
    images, fixations, density : str, optional
        Path templates; ``density=none`` ignores a preset's density maps.
    threshold : float, optional
        Fixation-map images: a pixel is fixated when its value exceeds this (default:
        nonzero for lossless files, half the map's maximum for JPEG).
    mat_var, mat_field, point_order : str, optional
        How ``.mat`` fixation files are read (module docstring).
    recorded_size : None, (H, W) or "HxW"
        Size the point files' fixations were recorded at, when the files do not say.
    fixation_scale : {"error", "rescale"}
        An image whose size differs from the recorded one: an error naming it, or its points
        scaled to it.
    """

    name = "folder"

    def __init__(self, root, split: str = "all", *, layout: str | None = None, images: str | None = None,
                 fixations: str | None = None, density: Any = _UNSET, threshold: float | str | None = None,
                 mat_var: str | None = None, mat_field: str = "fixations", point_order: str = "xy",
                 recorded_size=None, fixation_scale: str = "error"):
        super().__init__()
        self.root = Path(root)
        where = f"folder/{split}"
        opts = _options(layout, images, fixations, density)
        threshold = None if threshold in ("auto", None) else float_option(where, "threshold", threshold)
        if mat_var is not None:
            text_option(where, "mat_var", mat_var)
        text_option(where, "mat_field", mat_field)
        choice_option(where, "point_order", point_order, ("xy", "rowcol"))
        # Kept out of read_opts: those are hashed as they are, and these join the hash only when set.
        self.recorded_size = size_option(where, "recorded_size", recorded_size)
        self.fixation_scale = choice_option(where, "fixation_scale", fixation_scale, FIXATION_SCALE)
        self.read_opts = {"threshold": threshold, "mat_var": mat_var, "mat_field": mat_field,
                          "point_order": point_order}
        img_t = Template(opts["images"], "images")
        fix_t = Template(opts["fixations"], "fixations")
        den_t = Template(opts["density"], "density") if opts["density"] else None
        if "name" not in img_t.fields:
            raise ValueError(f"folder: the images template {img_t.text!r} must contain {{name}}")
        for t in (fix_t, den_t):
            if t is not None and set(t.fields) - set(img_t.fields):
                t.fill({f: "" for f in img_t.fields})  # raises naming the unknown field
        has_split = "split" in img_t.fields
        if not has_split and split != "all":
            raise ValueError(f"folder: the images template {img_t.text!r} has no {{split}}, so the only split is "
                             f"'all' (give --split all), not {split!r}")
        if has_split and (not split or "/" in split or split.startswith(".")):
            raise ValueError(f"folder: bad split {split!r}")
        self.split = split
        self.location = str(self.root)
        fixed = {"split": split} if has_split else {}
        img_t, fix_t = img_t.partial(fixed), fix_t.partial(fixed)
        den_t = den_t.partial(fixed) if den_t else None

        found = img_t.matches(self.root)
        if not found:
            hint = ""
            if has_split:
                avail = folder_splits(self.root, Template(opts["images"], "images"), Template(opts["fixations"], "fixations"))
                hint = f"; splits with images and fixations: {avail or 'none'}"
            raise FileNotFoundError(f"{self.root}: no image matches {img_t.text!r}{hint}")
        prefix = img_t.prefix()
        fix_files = {rel for rel, _ in fix_t.matches(self.root)}
        den_files = {rel for rel, _ in den_t.matches(self.root)} if den_t else set()
        if den_t and not den_files and opts["density_optional"]:
            den_t = None  # the preset's density folder is absent: densities are computed
        entries, missing_fix, missing_den, users = [], [], [], {}
        for rel, fields in found:
            f_rel = fix_t.fill(fields)
            d_rel = den_t.fill(fields) if den_t else None
            if f_rel not in fix_files:
                missing_fix.append(f_rel)
            if d_rel is not None and d_rel not in den_files:
                missing_den.append(d_rel)
            for gt in (f_rel, d_rel):
                if gt is not None:
                    users.setdefault(gt, []).append(rel)
            entries.append((rel[len(prefix):], rel, f_rel, d_rel))
        for what, miss, t in (("fixation", missing_fix, fix_t), ("density", missing_den, den_t)):
            if miss:
                raise FileNotFoundError(
                    f"{self.root / miss[0]}: {what} file not found ({len(miss)} of {len(found)} images lack one under "
                    f"{t.option}={t.text!r}; first: {miss[:3]})")
        shared = {gt: imgs for gt, imgs in users.items() if len(imgs) > 1}
        if shared:
            gt, imgs = next(iter(shared.items()))
            raise ValueError(f"{self.root / gt}: {len(imgs)} images share this ground-truth file ({imgs[:3]}); "
                             f"{len(shared)} such file(s): add the distinguishing field to the templates")
        self._entries = entries
        self.names = [e[0] for e in entries]
        self.templates = {"images": img_t.text, "fixations": fix_t.text, "density": den_t.text if den_t else None}
        self.params = {"layout": layout, **self.templates, **self.read_opts, "rounding": "matlab",
                       "density_rule": "file / max" if den_t else "fixated pixels blurred, sigma 19 * H / 480, max 1",
                       "n_unused_fixation_files": len(fix_files - {e[2] for e in entries}),
                       "hash": "options, names, image byte sizes, fixation and density file bytes"}
        self.params.update(self._scale_opts())

    @classmethod
    def available_splits(cls, root, layout=None, images=None, fixations=None, density=_UNSET, **_) -> list[str]:
        opts = _options(layout, images, fixations, density)
        return folder_splits(Path(root), Template(opts["images"], "images"), Template(opts["fixations"], "fixations"))

    def _scale_opts(self) -> dict[str, Any]:
        """``recorded_size`` / ``fixation_scale`` when not the defaults (they change the ground truth)."""
        out: dict[str, Any] = {}
        if self.recorded_size is not None:
            out["recorded_size"] = list(self.recorded_size)
        if self.fixation_scale != "error":
            out["fixation_scale"] = self.fixation_scale
        return out

    # -- identity -------------------------------------------------------------------------
    def _content_hash(self) -> str:
        cache = _DigestCache(self.root)
        h = hashlib.sha256()
        h.update(hash_json({"folder": 1, "gt": GT_VERSION, "split": self.split, **self.templates,
                            **self.read_opts, **self._scale_opts()}).encode())
        for name, img, f_rel, d_rel in self._entries:
            size = (self.root / img).stat().st_size
            row = [name, size, cache.digest(self.root, f_rel), cache.digest(self.root, d_rel) if d_rel else "-"]
            h.update(json.dumps(row).encode())
        cache.save()
        return h.hexdigest()

    # -- records --------------------------------------------------------------------------
    def _read_fixations(self, i: int, shape):
        _, img, f_rel, _ = self._entries[i]
        fx = read_fixation_file(self.root / f_rel, shape, **self.read_opts, recorded_size=self.recorded_size,
                                fixation_scale=self.fixation_scale, image=str(self.root / img))
        self._note_dropped(i, fx["n_dropped"], fx["n_recorded"])
        return fx

    def stats(self, i: int) -> dict:
        shape = image_size(self.root / self._entries[i][1])
        fx = self._read_fixations(i, shape)
        obs = fx["observers"]
        return {"shape": shape, "n_fixations": int(len(fx["points"])),
                "n_observers": None if obs is None else int(len(np.unique(obs)))}

    def _fixation_points(self, i: int) -> np.ndarray:
        return self._read_fixations(i, image_size(self.root / self._entries[i][1]))["points"]

    def _ground_truth(self, i: int, shape=None) -> Record:
        name, img, f_rel, d_rel = self._entries[i]
        if shape is None:
            shape = image_size(self.root / img)
        fx = self._read_fixations(i, shape)
        pts = fx["points"]
        if d_rel is not None:
            density, y_original = Lazy(density_from_file, self.root / d_rel), Lazy(y_original_from_file, self.root / d_rel)
        else:
            from salbench.data.record import y_original_from_density

            density, y_original = Lazy(blurred_density, salicon_sigma(shape)), Lazy(y_original_from_density)
        return Record(name=name, image=None, fixations=pts, observers=fx["observers"],
                      fixation_map=fixation_map(pts, shape), density=density, x96=None, y48=Lazy(y48_from_y_original),
                      y_original=y_original,
                      meta={"source": str(self.root / img), "fixations_file": str(self.root / f_rel),
                            "fixations_from": fx["kind"], "n_dropped": fx["n_dropped"],
                            "n_recorded": fx["n_recorded"],
                            "density_from": str(self.root / d_rel) if d_rel else "fixations"})

    def _load(self, i: int) -> Record:
        image = load_image(self.root / self._entries[i][1])
        rec = self._ground_truth(i, shape=tuple(image.shape[:2]))
        return rec.replace(image=image, x96=Lazy(x96_from_image))
