"""A static leaderboard site built from results files (``salbench leaderboard --html DIR``).

Self-contained: HTML pages, one stylesheet and one small hand-written script for sorting,
no CDN, fonts or requests beyond the folder (it works from a ``file://`` path and behind
closed networks). Results files and figures are linked relatively, not copied: publish the
site folder together with the results folder it was built from (``leaderboards/site/`` inside
``leaderboards/``). Deterministic: the same results, cards and salbench give byte-identical
files (no build date), so a committed site can be checked for staleness
(:func:`site_is_stale`).

``source`` is the one module that reads results, table grouping, cards and verification;
``pages`` builds the pages as data (``model``); ``render`` turns them into HTML with
Jinja2 (autoescaping: names and cards from results files and plugins are untrusted).
"""

from __future__ import annotations

import os
from pathlib import Path

from salbench.io import atomic_write_bytes
from salbench.io.atomic import ensure_directory

__all__ = ["build_site", "render_site", "site_is_stale", "SiteError"]

_OWNED_SUFFIXES = (".html", ".css", ".js")


class SiteError(ValueError):
    """The site cannot be written where asked (the message says why)."""


def render_site(results_root: str | os.PathLike, site_dir: str | os.PathLike) -> dict[str, bytes]:
    """Every file of the site for the results under ``results_root``: ``{relative path: bytes}``.

    ``site_dir`` is where the site will lie: links to results files and figures are made
    relative to it. Nothing is written.

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        ``results_root`` is missing or not a directory.
    """
    from salbench.leaderboard.site import source
    from salbench.leaderboard.site.pages import build_pages
    from salbench.leaderboard.site.render import STATIC_FILES, render_index, render_page, static_bytes

    root = Path(results_root)
    entries, unreadable = source.load_entries(root)
    index, pages = build_pages(entries, unreadable, root, Path(site_dir))
    nav = [(href, title.split(":")[0]) for href, title in index.reports]
    nav += [(href, "Protocols " + title.split(":")[0]) for href, title in index.comparisons]
    files = {"index.html": render_index(index, nav)}
    for page in pages:
        files[page.filename] = render_page(page, nav)
    for name in STATIC_FILES:
        files[f"static/{name}"] = static_bytes(name)
    return dict(sorted(files.items()))


def _is_site(site_dir: Path) -> bool:
    """Whether ``site_dir`` holds a page this module wrote (its generator tag)."""
    from salbench.leaderboard.site.render import GENERATOR

    tag = f'<meta name="generator" content="{GENERATOR}">'
    for page in sorted(site_dir.glob("*.html")):
        try:
            if tag in page.read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False


def _owned_files(site_dir: Path) -> list[str]:
    """Files in ``site_dir`` a previous build may have written (pages and static files)."""
    found = [p.name for p in site_dir.glob("*.html") if p.is_file()]
    static = site_dir / "static"
    if static.is_dir():
        found += [f"static/{p.name}" for p in static.iterdir() if p.is_file() and p.suffix in _OWNED_SUFFIXES]
    return sorted(found)


def build_site(results_root: str | os.PathLike, site_dir: str | os.PathLike) -> list[Path]:
    """Write the site for ``results_root`` into ``site_dir``; return the files written.

    Each file is written atomically; pages a previous build wrote that no longer exist are
    removed. ``site_dir`` must be new, empty, or a site this function wrote (so a mistyped
    directory never loses files).

    Raises
    ------
    SiteError
        ``site_dir`` is a file, or a non-empty directory that is not a salbench site.
    """
    site = Path(site_dir)
    if site.exists() and not site.is_dir():
        raise SiteError(f"{site}: is a file, not a directory for the site")
    if site.is_dir() and any(site.iterdir()) and not _is_site(site):
        raise SiteError(f"{site}: not empty and not a salbench site (no page written by salbench "
                        "leaderboard --html); choose a new or empty directory")
    files = render_site(results_root, site)
    ensure_directory(site, "site directory")
    stale = [name for name in _owned_files(site) if name not in files] if site.is_dir() else []
    written = []
    for name, data in files.items():
        path = site / name
        ensure_directory(path.parent, "site directory")
        try:
            same = path.read_bytes() == data
        except OSError:
            same = False
        if not same:
            atomic_write_bytes(path, data, what="site page")
        written.append(path)
    for name in stale:
        (site / name).unlink(missing_ok=True)
    return written


def site_is_stale(results_root: str | os.PathLike, site_dir: str | os.PathLike) -> list[str]:
    """Why the site in ``site_dir`` is not what the results under ``results_root`` give (empty: current).

    One reason per file: missing, different, or left over from an older build. For
    ``salbench check leaderboards --strict``: rebuild with ``python leaderboards/build.py``
    or ``salbench leaderboard --results ROOT --html DIR``.
    """
    site = Path(site_dir)
    if not site.is_dir():
        return [f"{site}: no site (build it with salbench leaderboard --results {results_root} --html {site})"]
    expected = render_site(results_root, site)
    reasons = []
    for name, data in expected.items():
        path = site / name
        if not path.is_file():
            reasons.append(f"{path}: missing")
        elif path.read_bytes() != data:
            reasons.append(f"{path}: out of date with the results files")
    for name in _owned_files(site):
        if name not in expected:
            reasons.append(f"{site / name}: left over from an older build (no longer generated)")
    return reasons
