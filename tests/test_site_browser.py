"""The leaderboard site in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and Playwright for Python
(in the ``[test]`` extra; never ``playwright install``: its own browser download is not
used). Elsewhere every test here skips with one line saying what is missing; ``.ci/run``
installs chromium.

``SALBENCH_SCREENSHOTS=update`` makes the screenshot test write the docs' images
(``docs/images/site-*.png``) instead of a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from salbench.leaderboard.site import build_site
from tests.sitefixtures import HOSTILE, HOSTILE_OPTION, LEADERBOARDS, REPO, hostile_results

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def _playwright():
    if not CHROMIUM.is_file():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright for Python (in the [test] extra: pip install -e .[test]; no browser download)")
    return sync_playwright


class Browser:
    """One Chromium for the module, a fresh page per visit recording console errors, dialogs and requests."""

    def __init__(self, context):
        self.context = context
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []

    def open(self, path: Path):
        page = self.context.new_page()
        page.on("console", lambda m: self.errors.append(f"{path.name}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"{path.name}: {e}"))
        page.on("dialog", self._dialog)
        page.on("request", lambda r: self.requests.append(r.url))
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        return page

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _playwright()
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="salbench-chromium-") as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 900})
        try:
            yield Browser(context)
        finally:
            context.close()


@pytest.fixture(scope="module")
def committed_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site") / "site"
    build_site(LEADERBOARDS, site)
    return site


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    results = hostile_results(root / "results")
    build_site(results, root / "site")
    return root / "site"


def _committed_entries() -> list[tuple[Path, dict]]:
    """Every committed results file, read with the json module alone (not salbench's reader)."""
    out = []
    for path in sorted(LEADERBOARDS.rglob("*.json")):
        if "__" in path.name and not path.name.endswith(".fit.json"):
            out.append((path, json.loads(path.read_text())))
    return out


def _rows(page, table="table.sortable"):
    """Each row of the first sortable table: ``{"pos", "label", metric: (value or None, rank or None)}``."""
    return page.eval_on_selector(table, """t => Array.from(t.tBodies).map(b => {
        const main = b.querySelector('tr.main');
        const row = {pos: (main.querySelector('td.pos') || {}).textContent || null,
                     label: main.querySelector('th .name').textContent,
                     files: Array.from(b.querySelectorAll('a.results-file')).map(a => a.href)};
        for (const td of main.querySelectorAll('td[data-metric]')) {
            const v = td.getAttribute('data-value'), r = td.getAttribute('data-rank');
            row[td.getAttribute('data-metric')] = [v === '' ? null : parseFloat(v), r === '' ? null : parseInt(r)];
        }
        return row;
    })""")


def _metrics(page) -> list[tuple[str, str]]:
    found = page.eval_on_selector_all("table.sortable thead th[data-metric]",
                                      "hs => hs.map(h => [h.dataset.metric, h.dataset.better])")
    return [tuple(x) for x in found]


def test_clicking_a_metric_sorts_in_its_direction_and_again_reverses(browser, committed_site):
    page = browser.open(committed_site / "board-nus-val-mit.html")
    metrics = _metrics(page)
    assert ("kld", "lower") in metrics and ("emd", "lower") in metrics and ("cc", "higher") in metrics
    best = {"lower": "ascending", "higher": "descending"}
    for metric, better in metrics:
        th = f'table.sortable thead th[data-metric="{metric}"]'
        for click in (1, 2, 3):
            # best first, unless the table is already sorted best first by this metric: then reversed
            was = page.get_attribute(th, "aria-sort")
            expect = best[better] if was != best[better] else ({"ascending", "descending"} - {was}).pop()
            page.locator(th + " button").click()
            values = [r[metric][0] for r in _rows(page)]
            defined = [v for v in values if v is not None]
            assert values[:len(defined)] == defined, "undefined values sort last"
            assert defined == sorted(defined, reverse=expect == "descending"), (metric, click)
            assert page.get_attribute(th, "aria-sort") == expect
    page.close()


def test_ranks_match_the_results_files(browser, committed_site):
    """Each cell's rank, and "#" after sorting, equal ranks computed here from the JSON files alone."""
    page = browser.open(committed_site / "board-nus-val-mit.html")
    rows = _rows(page)
    records = {}
    for row in rows:
        for href in row["files"]:
            records[href] = json.loads(Path(unquote(urlparse(href).path)).read_text())
    for metric, better in _metrics(page):
        means = []
        for row in rows:
            vals = [records[h]["metrics"][metric]["mean"] for h in row["files"]]
            vals = [v for v in vals if v is not None]
            means.append(float(np.mean(vals)) if vals else None)
        sign = -1 if better == "higher" else 1
        expected = [None if m is None else 1 + sum(sign * o < sign * m for o in means if o is not None)
                    for m in means]
        assert [r[metric][1] for r in rows] == expected, metric
        assert [r[metric][0] for r in rows] == pytest.approx(means), metric
        page.locator(f'th[data-metric="{metric}"] button').click()
        after = _rows(page)
        assert [r["pos"] for r in after] == [str(r[metric][1]) if r[metric][1] else "" for r in after]
    page.close()


def test_every_committed_entry_appears_on_its_page(browser, committed_site):
    entries = _committed_entries()
    assert len(entries) >= 30
    by_page: dict[str, set[str]] = {}
    for path, rec in entries:
        name = f"board-{rec['dataset']['name']}-{rec['dataset']['split']}-{rec['protocol']['name']}.html"
        by_page.setdefault(name, set()).add(path.resolve().as_uri())
    for name, expected in sorted(by_page.items()):
        page = browser.open(committed_site / name)
        shown = set(page.eval_on_selector_all("a.results-file", "as => as.map(a => a.href)"))
        assert expected <= shown, (name, sorted(expected - shown))
        page.close()


def test_details_open_and_say_what_check_recorded(browser, committed_site):
    from salbench.check import VERIFICATION_WORDS, entry_verification
    from salbench.results import load_results

    page = browser.open(committed_site / "board-synthetic-val-mit.html")
    detail = page.locator("tr.detail").first
    assert detail.is_hidden()
    page.locator("button.toggle").first.click()
    assert detail.is_visible()
    text = detail.inner_text()
    assert any(w in text for w in VERIFICATION_WORDS) and "Model card" in text and "scored 2026-" in text
    words = set(page.eval_on_selector_all("td.verification", "ts => ts.map(t => t.textContent)"))
    # exactly what salbench check --record recorded for these bytes (verification.json), nothing stronger
    recorded = {entry_verification(r).word for r in load_results(LEADERBOARDS / "synthetic")
                if r["protocol"]["name"] == "mit"}
    assert words == recorded
    page.locator("button.toggle").first.click()
    assert detail.is_hidden()
    page.close()


def test_hostile_model_name_is_text_and_opens_no_dialog(browser, hostile_site):
    before = len(browser.dialogs)
    for path in sorted(hostile_site.glob("*.html")):
        page = browser.open(path)
        for button in page.locator("button.toggle").all():
            button.click()
        if path.name.startswith("board-"):
            labels = page.eval_on_selector_all("th .name", "ns => ns.map(n => n.textContent)")
            assert f'{HOSTILE} [target={HOSTILE_OPTION}]' in labels  # model name and training target, as text
            assert page.locator("script").count() == 1  # the site's own file, nothing injected
            assert page.locator("tr.detail img").count() == 0
        page.close()
    assert browser.dialogs[before:] == []


def test_no_console_errors_and_no_request_leaves_file(browser, committed_site, hostile_site):
    start_e, start_r = len(browser.errors), len(browser.requests)
    for site in (committed_site, hostile_site):
        for path in sorted(site.glob("*.html")):
            page = browser.open(path)
            for header in page.locator("th[data-metric] button").all()[:3]:
                header.click()
            page.close()
    assert browser.errors[start_e:] == []
    requests = browser.requests[start_r:]
    assert requests and all(u.startswith("file://") for u in requests), [u for u in requests
                                                                         if not u.startswith("file://")]


def test_screenshots(browser, committed_site, tmp_path):
    """The docs' screenshots, taken here (``SALBENCH_SCREENSHOTS=update`` writes them into docs/images/)."""
    out = REPO / "docs" / "images" if os.environ.get("SALBENCH_SCREENSHOTS") == "update" else tmp_path
    page = browser.open(committed_site / "board-nus-val-mit.html")
    page.set_viewport_size({"width": 1400, "height": 760})
    page.locator('th[data-metric="kld"] button').click()
    page.screenshot(path=str(out / "site-board-nus-val-mit.png"))
    page.locator("button.toggle").first.click()
    page.locator("tr.detail:visible").first.scroll_into_view_if_needed()
    page.locator("tbody.entry").first.screenshot(path=str(out / "site-row-details.png"))
    page.close()
    for name in ("site-board-nus-val-mit.png", "site-row-details.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if out == tmp_path:
        shutil.rmtree(tmp_path, ignore_errors=True)
