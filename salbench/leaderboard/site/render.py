"""Pages to bytes: Jinja2 templates with autoescaping, and the static files.

Model names, options and cards come from plugins and results files, which are
untrusted: every value is escaped by the template engine (``autoescape=True`` for every
template, whatever its name), so a model named ``<script>alert(1)</script>`` is text.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from typing import Any

import jinja2

from salbench.leaderboard.site.model import MARK_BEST, MARK_NOT_COMPARABLE, MARK_TIED, Cell, Column, Page, Table

STATIC_FILES = ("site.css", "site.js")
GENERATOR = "salbench leaderboard --html"


def _package_files():
    return resources.files("salbench.leaderboard.site")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The site's Jinja2 environment (one per process: templates compile once): package templates,
    autoescaping on, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt_number
    env.filters["full"] = full_number
    env.globals.update(cell_text=cell_text, cell_title=cell_title, sort_value=sort_value,
                       MARK_BEST=MARK_BEST, MARK_TIED=MARK_TIED, MARK_NOT_COMPARABLE=MARK_NOT_COMPARABLE,
                       GENERATOR=GENERATOR)
    return env


def _load_template(name: str) -> str:
    return (_package_files() / "templates" / name).read_text(encoding="utf-8")


def static_bytes(name: str) -> bytes:
    return (_package_files() / "static" / name).read_bytes()


# -- numbers -------------------------------------------------------------------------------------
def fmt_number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def full_number(value: float | None) -> str:
    """Full precision (``repr``), for titles and sort keys; ``""`` when undefined."""
    return "" if value is None else repr(float(value))


def sort_value(cell: Cell | None) -> str:
    return "" if cell is None else full_number(cell.mean)


def cell_text(cell: Cell | None, digits: int) -> str:
    """The value shown (the spread over seeds, when any, is shown beside it by the template)."""
    if cell is None or cell.mean is None:
        return "-"
    return fmt_number(cell.mean, digits)


def _ci(ci) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "no CI"
    return f"95% CI [{fmt_number(ci[0], 4)}, {fmt_number(ci[1], 4)}]"


def cell_title(cell: Cell | None, column: Column) -> str:
    """Hover text: the value in full, its 95% CI (or each seed's), the rank and the mark."""
    if cell is None or cell.mean is None:
        return f"{column.label}: not measured or undefined"
    parts = [f"{column.label} = {cell.mean:.6g}"]
    if cell.seeds:
        parts[0] += f" ± {cell.sd:.3g} (sd over {len(cell.seeds)} seeds)" if cell.sd is not None else ""
        for s in cell.seeds:
            parts.append(f"seed {s.seed}: {fmt_number(s.mean, 4)}, {_ci(s.ci95)}")
    elif cell.ci95 is not None:
        parts.append(_ci(cell.ci95) + (f" over {cell.n} images" if cell.n is not None else ""))
    if cell.rank is not None:
        parts.append(f"rank {cell.rank}")
    if cell.mark == MARK_BEST:
        parts.append("best row")
    elif cell.mark == MARK_TIED:
        parts.append("not significantly different from the best row")
    elif cell.mark == MARK_NOT_COMPARABLE:
        parts.append("cannot be compared with the best row")
    return "; ".join(parts)


# -- pages ---------------------------------------------------------------------------------------
def render_page(page: Page, nav: list[tuple[str, str]], **context: Any) -> bytes:
    """One page's HTML bytes (UTF-8, LF line ends)."""
    template = environment().get_template("page.html")
    return template.render(page=page, nav=nav, **context).encode("utf-8")


def render_index(index, nav: list[tuple[str, str]]) -> bytes:
    template = environment().get_template("index.html")
    return template.render(index=index, nav=nav, page=None).encode("utf-8")


def render_table(table: Table) -> str:
    """One table's HTML alone (tests render tables built by hand, e.g. with significance marks)."""
    env = environment()
    return env.get_template("table.html").module.table(table)
