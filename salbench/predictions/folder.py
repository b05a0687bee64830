"""A directory of saliency maps, one file per stimulus, matched by file name without extension."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
from collections import Counter

import numpy as np

from salbench.predictions.decode import MAP_SUFFIXES, decode_map
from salbench.predictions.matching import Matching, _few, match_keys
from salbench.predictions.source import PredictionSource

__all__ = ["FolderSource"]


class FolderSource(PredictionSource):
    """Maps in ``path``: ``<image name without extension>.<png|jpg|jpeg|tif|tiff|npy>``.

    Files whose names start with ``.`` (hidden files, the temporary files of an
    atomic write) and files with other extensions are ignored. Only the folder
    itself is listed, plus the subfolders that dataset names point into (an
    image ``Action/001.jpg`` is served by ``Action/001.png``); other subfolders
    are not looked at. Extensions are compared in any letter case; names exactly.
    """

    kind = "folder"

    def __init__(self, path) -> None:
        super().__init__(path)
        if not self.path.is_dir():
            raise ValueError(f"{self.path}: not a directory")

    def _listing(self, rel: str) -> tuple[list[tuple[str, str]], list[str], list[str], bool]:
        """``([(key, relative file)], ignored files, subfolders, exists)`` of one folder; names only."""
        here = self.path / rel if rel else self.path
        maps, ignored, subdirs = [], [], []
        try:
            it = os.scandir(here)
        except FileNotFoundError:
            return maps, ignored, subdirs, False
        except NotADirectoryError:
            return maps, ignored, subdirs, False
        except OSError as exc:
            raise ValueError(f"{here}: cannot list predictions folder ({exc.strerror or exc})") from None
        with it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    subdirs.append(entry.name)
                    continue
                stem, ext = os.path.splitext(entry.name)
                if ext.lower() in MAP_SUFFIXES and stem and entry.is_file():
                    maps.append((posixpath.join(rel, stem) if rel else stem,
                                 posixpath.join(rel, entry.name) if rel else entry.name))
                else:
                    ignored.append(entry.name)
        maps.sort()
        return maps, sorted(ignored), sorted(subdirs), True

    def _match(self, names, *, allow_missing, allow_extra) -> Matching:
        folders = {""}
        for n in names:
            parts = n.split("/")
            if n.startswith("/") or ".." in parts or "\\" in n:
                raise ValueError(f"image name {n!r} is not a relative path; cannot look up its map in {self.path}")
            folders.add(posixpath.dirname(n))
        keys, files, ignored, hints = [], [], [], []
        top_subdirs: list[str] = []
        subdir_names: list[tuple[str, list[str]]] = []
        for rel in sorted(folders):
            maps, ign, subdirs, exists = self._listing(rel)
            if not exists:
                hints.append(f"subfolder {rel!r} of {self.path} does not exist")
            if rel == "":
                top_subdirs = subdirs
            subdir_names.append((rel, subdirs))
            keys.extend(k for k, _ in maps)
            files.extend(f for _, f in maps)
            ignored.extend(posixpath.join(rel, i) if rel else i for i in ign)
        if not files:
            msg = f"no map files ({'/'.join(s.lstrip('.') for s in MAP_SUFFIXES)}) in {self.path}"
            if top_subdirs and folders == {""}:
                msg += f"; it has subfolders {', '.join(map(repr, top_subdirs[:5]))}: give the one holding the maps"
            hints.insert(0, msg)
        dir_maps = [posixpath.join(r, d) if r else d for r, ds in subdir_names for d in ds
                    if os.path.splitext(d)[1].lower() in MAP_SUFFIXES]
        if dir_maps:
            hints.append(f"{_few(dir_maps)} " + ("is a directory, not a map file" if len(dir_maps) == 1
                                                 else "are directories, not map files"))
        if ignored:
            exts = Counter(os.path.splitext(i)[1].lower() or "(none)" for i in ignored)
            hints.append(f"ignored {len(ignored)} file(s) with other extensions ("
                         + ", ".join(f"{e}: {c}" for e, c in exts.most_common(4)) + ")")
        matching = match_keys(names, keys, files, source=f"predictions folder {self.path}",
                              allow_missing=allow_missing, allow_extra=allow_extra, hints=hints)
        # Entries become the relative file names, so a match does not depend on this listing.
        return dataclasses.replace(matching, entries=tuple(files[e] for e in matching.entries))

    def _file(self, rel: str):
        return self.path / rel

    def _bytes(self, rel: str) -> bytes:
        path = self._file(rel)
        try:
            return path.read_bytes()
        except IsADirectoryError:
            raise ValueError(f"{path}: is a directory, expected a map file") from None
        except OSError as exc:
            raise ValueError(f"{path}: cannot read map ({exc.strerror or exc})") from None

    def _load(self, rel: str) -> np.ndarray:
        return decode_map(self._bytes(rel), str(self._file(rel)))

    def _read(self, rel: str) -> tuple[np.ndarray, str]:
        data = self._bytes(rel)
        return decode_map(data, str(self._file(rel))), hashlib.sha256(data).hexdigest()

    def _fingerprint(self, rel: str) -> str:
        path = self._file(rel)
        try:
            with open(path, "rb") as fh:
                return hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read map ({exc.strerror or exc})") from None

    def label(self, rel: str) -> str:
        return rel

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path),
                "match": "file name without extension = image name or image name without extension"}
