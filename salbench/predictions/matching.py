"""Match prediction entries (files of a folder, names of an array file) to a dataset's images.

The rule, shared by folders and named arrays (docs/predictions.md):

- Every image has two keys: its name (``COCO_val2014_000000000042.jpg``) and its
  name without the extension (``COCO_val2014_000000000042``). A name with a
  folder part (``Action/001.jpg``) keeps it (``Action/001``).
- A prediction entry has one key: for a file in a folder, its path relative to
  the folder minus the map's own extension (``x.png`` -> ``x``,
  ``x.jpg.png`` -> ``x.jpg``); for an array file, the name it carries.
- An entry matches the image whose name equals its key, else the image whose
  name-without-extension equals it. Comparison is exact (case-sensitive).

Problems that no option can resolve raise at once: one image matched by two
entries (``x.png`` and ``x.tif``), one entry matching two images (``x.png`` when
the dataset holds ``x.jpg`` and ``x.bmp``). Missing maps and extra maps raise
unless ``allow_missing`` / ``allow_extra``. Everything here works on names only:
nothing is opened or decoded.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = ["image_keys", "Matching", "match_keys", "aggregate_fingerprint", "array_fingerprint"]

# How many names an error message lists before "... and N more".
FIRST_FEW = 5


def image_keys(name: str) -> tuple[str, str | None]:
    """``(name, name without its extension)`` of a dataset image; the second is None without one."""
    stem, ext = posixpath.splitext(name)
    return name, (stem if ext and stem and not stem.endswith("/") else None)


def _few(items: Sequence[str], n: int = FIRST_FEW) -> str:
    shown = ", ".join(repr(str(x)) for x in items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


@dataclass(frozen=True)
class Matching:
    """Which entry serves which dataset image (names only; nothing decoded).

    Attributes
    ----------
    indices : ndarray of int64
        Dataset indices that have a prediction, ascending.
    entries : tuple of int
        ``entries[j]`` is the entry (file or array position) of image ``indices[j]``.
    missing : tuple of str
        Dataset names without a prediction.
    extra : tuple of str
        Entry labels that match no dataset image.
    """

    indices: np.ndarray
    entries: tuple
    missing: tuple
    extra: tuple


def match_keys(
    dataset_names: Sequence[str],
    entry_keys: Sequence[str],
    entry_labels: Sequence[str],
    *,
    source: str,
    allow_missing: bool = False,
    allow_extra: bool = False,
    hints: Iterable[str] = (),
    by: str = "file",
) -> Matching:
    """Match entries to images by the module's rule; one ValueError listing every problem.

    Parameters
    ----------
    dataset_names : sequence of str
        The dataset's image names, in dataset order.
    entry_keys : sequence of str
        One key per prediction entry (see the module docstring).
    entry_labels : sequence of str
        What an error message calls each entry (a file name, ``names[3]``).
    source : str
        What an error message calls the predictions (the folder or file path).
    allow_missing, allow_extra : bool
        Score the intersection instead of refusing images without a map / maps
        without an image.
    hints : iterable of str
        Extra sentences for a mismatch message (e.g. "the folder has subfolders ...").
    by : {"file", "name"}
        How the message explains the rule: entries are files of a folder, or
        names carried by an array file.

    Raises
    ------
    ValueError
        Naming the first few names and the count of each kind of problem.
    """
    full: dict[str, int] = {}
    stems: dict[str, list[int]] = {}
    for i, name in enumerate(dataset_names):
        name = str(name)
        if name in full:
            raise ValueError(f"{source}: the dataset lists the image name {name!r} twice; cannot match by name")
        full[name] = i
        stem = image_keys(name)[1]
        if stem is not None:
            stems.setdefault(stem, []).append(i)

    per_image: dict[int, list[int]] = {}
    extra: list[str] = []
    ambiguous: list[str] = []
    for e, key in enumerate(entry_keys):
        if key in full:
            per_image.setdefault(full[key], []).append(e)
        elif key in stems:
            hits = stems[key]
            if len(hits) > 1:
                ambiguous.append(f"{entry_labels[e]!r} matches {_few([dataset_names[i] for i in hits], 3)}")
            else:
                per_image.setdefault(hits[0], []).append(e)
        else:
            extra.append(entry_labels[e])

    doubled = [f"{dataset_names[i]!r} has {len(es)} maps ({_few([entry_labels[e] for e in es], 3)})"
               for i, es in sorted(per_image.items()) if len(es) > 1]
    missing = [str(dataset_names[i]) for i in range(len(dataset_names)) if i not in per_image]

    problems = []
    if doubled:
        problems.append(f"{len(doubled)} image(s) with more than one map: " + "; ".join(doubled[:FIRST_FEW])
                        + (f"; ... ({len(doubled) - FIRST_FEW} more)" if len(doubled) > FIRST_FEW else ""))
    if ambiguous:
        problems.append(f"{len(ambiguous)} map(s) matching several images by name without extension: "
                        + "; ".join(ambiguous[:FIRST_FEW])
                        + (f"; ... ({len(ambiguous) - FIRST_FEW} more)" if len(ambiguous) > FIRST_FEW else ""))
    if missing and not allow_missing:
        problems.append(f"{len(missing)} of {len(dataset_names)} image(s) have no map (first: {_few(missing)})")
    if extra and not allow_extra:
        problems.append(f"{len(extra)} map(s) match no image of the dataset (first: {_few(extra)})")
    if problems:
        advice = []
        if (missing and not allow_missing) or (extra and not allow_extra):
            if len(dataset_names) and by == "file":
                first = str(dataset_names[0])
                advice.append("Maps are matched to images by name without extension (image "
                              f"{first!r} -> map {(image_keys(first)[1] or first)!r} + .png/.jpg/.tif/.npy, "
                              "case-sensitive)")
            elif len(dataset_names):
                advice.append("The names the file carries are matched to image names, or to image names "
                              "without extension (case-sensitive)")
            lower_hit = _case_hint(missing, extra, entry_keys, entry_labels)
            if lower_hit:
                advice.append(lower_hit)
            advice.extend(h[:1].upper() + h[1:] for h in hints)
            opts = [] if allow_missing or not missing else ["allow_missing (--allow-missing) scores only the "
                                                            "images that have a map"]
            opts += [] if allow_extra or not extra else ["allow_extra (--allow-extra) ignores maps without an image"]
            if opts:
                advice.append("Options: " + "; ".join(opts))
        raise ValueError(f"{source} does not match the dataset ({len(dataset_names)} images, {len(entry_keys)} maps): "
                         + "; ".join(problems) + "".join(f". {a}" for a in advice))

    order = sorted((i, es[0]) for i, es in per_image.items())
    return Matching(
        indices=np.array([i for i, _ in order], dtype=np.int64),
        entries=tuple(e for _, e in order),
        missing=tuple(missing),
        extra=tuple(extra),
    )


def _case_hint(missing, extra, entry_keys, entry_labels) -> str | None:
    """Say so when the unmatched names differ from the images' only by letter case."""
    if not missing or not extra:
        return None
    lowered = set()
    for name in missing:
        full, stem = image_keys(name)
        lowered.update(k.lower() for k in (full, stem) if k)
    label_to_key = dict(zip(entry_labels, entry_keys))
    hits = [lab for lab in extra if label_to_key.get(lab, "").lower() in lowered]
    if hits:
        return (f"{len(hits)} unmatched map name(s) differ from an image name only in letter case "
                f"(e.g. {hits[0]!r}); matching is case-sensitive")
    return None


def aggregate_fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    """One sha256 over ``(dataset image name, map sha256)`` pairs, in the order given (scoring order).

    ``sha256("".join(f"{name}\\t{sha}\\n" for name, sha in pairs))``, the formula of
    ``salbench.results.folder_digest``: it changes when any map's
    bytes change or a map serves another image, and it is computed from hashes
    collected while streaming (no second read of the folder).
    """
    h = hashlib.sha256()
    for name, sha in pairs:
        name = str(name)
        if "\t" in name or "\n" in name:
            raise ValueError(f"image name {name!r} contains a tab or newline")
        h.update(f"{name}\t{sha}\n".encode("utf-8"))
    return h.hexdigest()


def array_fingerprint(a: np.ndarray) -> str:
    """sha256 of one map of an array file, as scored: ``b"<f8 (H, W)\\n"`` then its float64 little-endian bytes.

    The values are hashed, not the storage: a float16 file and its float32 copy
    hold the same maps and have the same fingerprints (the byte order of the
    file does not matter either).
    """
    a = np.ascontiguousarray(np.asarray(a), dtype="<f8")
    head = f"{a.dtype.str} {tuple(int(s) for s in a.shape)}\n".encode()
    return hashlib.sha256(head + a.tobytes()).hexdigest()
