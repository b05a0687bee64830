"""The static leaderboard site without a browser: determinism, staleness, escaping, marks, ranks, CLI.

What the pages do in a browser (sorting, ranks after a click, no dialog, no request leaving
file://) is tested in Chromium by ``tests/test_site_browser.py``.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from salbench.cli import main
from salbench.leaderboard.site import build_site, render_site, site_is_stale
from salbench.leaderboard.site.model import Cell, Column, Row, Table, rank_rows, sort_rows
from salbench.leaderboard.site.render import render_table
from tests.sitefixtures import HOSTILE, HOSTILE_OPTION, LEADERBOARDS, copy_entry, hostile_results


@pytest.fixture()
def hostile(tmp_path):
    return hostile_results(tmp_path / "results")


class _Collect(HTMLParser):
    """Tags and text of a page, parsed as a browser's tokenizer would split them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: bytes) -> _Collect:
    p = _Collect()
    p.feed(html.decode("utf-8"))
    return p


def test_site_is_byte_identical_when_built_twice(hostile, tmp_path):
    a = render_site(hostile, tmp_path / "site")
    b = render_site(hostile, tmp_path / "site")
    assert a == b and "index.html" in a and "static/site.js" in a
    written = build_site(hostile, tmp_path / "site")
    assert sorted(p.relative_to(tmp_path / "site").as_posix() for p in written) == sorted(a)
    assert all((tmp_path / "site" / k).read_bytes() == v for k, v in a.items())


def test_hostile_names_are_escaped_never_markup(hostile, tmp_path):
    files = render_site(hostile, tmp_path / "site")
    page = next(v for k, v in files.items() if k.startswith("board-synthetic"))
    parsed = _parse(page)
    scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
    assert scripts == [{"src": "static/site.js", "defer": None}]  # only the site's own script
    assert not any(tag == "img" for tag, _ in parsed.tags)
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    text = "".join(parsed.text)
    assert HOSTILE in text and HOSTILE_OPTION in text  # shown as text, as written
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_unreadable_results_file_is_listed_not_dropped(hostile, tmp_path):
    index = render_site(hostile, tmp_path / "site")["index.html"].decode()
    assert "synthetic__val__broken__mit.json" in index and "not valid JSON" in index


def test_stale_site_names_what_changed(hostile, tmp_path):
    site = tmp_path / "site"
    assert site_is_stale(hostile, site) and "no site" in site_is_stale(hostile, site)[0]
    build_site(hostile, site)
    assert site_is_stale(hostile, site) == []
    entry = hostile / "synthetic" / "synthetic__val__center_bias__mit.json"
    rec = json.loads(entry.read_text())
    rec["created"] = "2030-01-01T00:00:00Z"
    entry.write_text(json.dumps(rec))
    reasons = site_is_stale(hostile, site)
    assert reasons and all("out of date" in r for r in reasons)
    assert any("board-synthetic-val-mit.html" in r for r in reasons)
    build_site(hostile, site)
    (site / "board-old.html").write_text("old")
    (site / "index.html").unlink()
    reasons = site_is_stale(hostile, site)
    assert any("index.html: missing" in r for r in reasons)
    assert any("board-old.html: left over" in r for r in reasons)
    build_site(hostile, site)  # a rebuild removes pages it no longer writes
    assert not (site / "board-old.html").exists() and site_is_stale(hostile, site) == []


def test_build_refuses_a_directory_that_is_not_a_site(hostile, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a salbench site"):
        build_site(hostile, mine)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_cli_html_writes_the_site_and_refuses_filters(hostile, tmp_path, capsys):
    site = tmp_path / "out"
    assert main(["leaderboard", "--results", str(hostile), "--html", str(site)]) == 0
    assert "open" in capsys.readouterr().out and (site / "index.html").is_file()
    assert main(["leaderboard", "--results", str(hostile), "--html", str(site), "--table", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("salbench: error: --html writes every page") and err.count("\n") == 1


def test_verification_is_never_claimed_when_not_recomputed(hostile, tmp_path):
    files = render_site(hostile, tmp_path / "site")
    page = next(v for k, v in files.items() if k.startswith("board-synthetic")).decode()
    words = re.findall(r'<td class="verification[^"]*"[^>]*>([^<]*)</td>', page)
    # copies whose files are present: audit only (no verification.json records a check); the entry
    # relabelled with a hostile model name is "not verified": no such model is registered
    assert sorted(words) == ["audited only"] * 3 + ["not verified"]
    assert "is not a registered model" in page
    # an entry whose predictions file is gone is "not verified", with the reason
    (hostile / "synthetic" / "5d7352ad5c257169.predictions.npz").unlink()
    page = next(v for k, v in render_site(hostile, tmp_path / "site").items() if k.startswith("board-synth")).decode()
    words = re.findall(r'<td class="verification[^"]*"[^>]*>([^<]*)</td>', page)
    assert "not verified" in words and "audited only" in words
    assert "5d7352ad5c257169.predictions.npz are missing" in page
    shown = re.findall(r'<(?:td|span) class="verification[^"]*"[^>]*>([^<]*)<', page)  # cells, each file's line
    assert set(shown) == {"audited only", "not verified"}


def test_metric_specific_rows_are_marked(hostile, tmp_path):
    page = next(v for k, v in render_site(hostile, tmp_path / "site").items()
                if k.startswith("board-synthetic")).decode()
    rows = re.findall(r'<tr class="main".*?</tr>', page, flags=re.S)
    marked = [r for r in rows if 'class="mark ms"' in r]
    assert len(marked) == 1 and "center_bias" in marked[0]
    assert "metric-specific maps" in page  # the legend under the table


def _table(marks=None, significance=None):
    cols = [Column("cc", "CC", True), Column("kld", "KLD", False)]
    rows = [Row(key=f"r{i}", label=f"m{i}", cells={"cc": Cell(cc), "kld": Cell(kld)})
            for i, (cc, kld) in enumerate([(0.5, 1.0), (0.7, 1.2), (0.5, None), (0.6, 0.9)])]
    for row, m in zip(rows, marks or []):
        row.cells["cc"].mark = m
    return Table(key="t", title="t", columns=cols, rows=rows, sort_key="cc", significance=significance)


def test_ranks_follow_each_metrics_direction_with_ties_and_undefined_values():
    t = _table()
    for c in t.columns:
        rank_rows(t.rows, c)
    assert [r.cells["cc"].rank for r in t.rows] == [3, 1, 3, 2]  # ties share a rank, then skip
    assert [r.cells["kld"].rank for r in t.rows] == [2, 3, None, 1]  # lower is better; undefined: none
    assert [r.label for r in sort_rows(t.rows, t.columns[1])] == ["m3", "m0", "m1", "m2"]


def test_significance_marks_render_only_when_present():
    plain = str(render_table(_table()))
    assert "≈" not in plain and "★" not in plain and "significantly" not in plain
    marked = str(render_table(_table(["best", "tied", "different", "not comparable"],
                                     significance="Wilcoxon signed-rank test, Holm-corrected, alpha 0.05")))
    rows = re.findall(r'<tr class="main".*?</tr>', marked, flags=re.S)
    assert "★" in rows[0] and "≈" in rows[1] and "≈" not in rows[2] + rows[3] and "★" not in rows[2] + rows[3]
    assert "not significantly different from the best row (Wilcoxon signed-rank test, Holm-corrected" in marked
    assert "cannot be compared with the best row" in rows[3]


def test_seed_rows_show_mean_and_spread_and_each_seeds_ci(tmp_path):
    osie = LEADERBOARDS / "osie"
    dst = tmp_path / "res" / "osie"
    for s in (0, 1, 2):
        copy_entry(osie / f"nus__val__shallow_kl-distribution-s{s}__mit.json", dst)
    page = next(v for k, v in render_site(tmp_path / "res", tmp_path / "site").items()
                if k.startswith("board-")).decode()
    means = [json.loads((dst / f"nus__val__shallow_kl-distribution-s{s}__mit.json").read_text())["metrics"]["cc"]
             for s in (0, 1, 2)]
    import numpy as np

    m = np.mean([b["mean"] for b in means])
    sd = np.std([b["mean"] for b in means], ddof=1)
    cell = re.search(r'<td class="num" data-metric="cc"[^>]*title="([^"]*)"><span class="v">([^<]*)</span>'
                     r'.*?<span class="sd">([^<]*)</span>', page, flags=re.S)
    assert cell.group(2) == f"{m:.3f}" and cell.group(3) == f"± {sd:.3f}"
    for s, b in enumerate(means):
        assert f"seed {s}: {b['mean']:.4f}, 95% CI [{b['ci95'][0]:.4f}, {b['ci95'][1]:.4f}]" in cell.group(1)


def test_figures_are_linked_relatively(tmp_path):
    site = tmp_path / "site"
    files = render_site(LEADERBOARDS, site)
    page = files["board-synthetic-val-mit.html"].decode()
    rel = Path("..") / Path(__import__("os").path.relpath(LEADERBOARDS, tmp_path))
    assert f'href="{(rel / "figures" / "synthetic__val__shallow_kl__mit.best-cc.png").as_posix()}"' in page
    assert "loss-synthetic-shallow_kl.png" in page


@pytest.mark.slow
def test_committed_site_is_current():
    """``leaderboards/site/`` is what ``python leaderboards/build.py`` writes from the committed entries."""
    assert site_is_stale(LEADERBOARDS, LEADERBOARDS / "site") == []


def test_results_links_point_at_the_files(hostile, tmp_path):
    site = tmp_path / "site"
    build_site(hostile, site)
    page = next(p for p in site.glob("board-synthetic*.html"))
    hrefs = re.findall(r'<a class="results-file" href="([^"]+)"', page.read_text())
    from urllib.parse import unquote

    targets = {(site / unquote(h)).resolve() for h in hrefs}
    expected = {p.resolve() for p in (hostile / "synthetic").glob("*__mit.json") if "broken" not in p.name}
    assert targets == expected


def test_a_site_inside_the_results_folder_is_not_read_as_results(tmp_path):
    res = hostile_results(tmp_path / "results")
    build_site(res, res / "site")
    assert site_is_stale(res, res / "site") == []


def test_marks_from_the_significance_hook_reach_the_page(hostile, tmp_path, monkeypatch):
    """Where ``source.significance`` (re-pointed at merge to the stats layer) gives marks, pages show them."""
    from salbench.leaderboard.site import source

    def fake(rows, metrics):
        return source.Significance("Wilcoxon signed-rank, Holm, alpha 0.05",
                                   [{"cc": "best" if i == 0 else "tied"} for i in range(len(rows))],
                                   "1 row not comparable")

    monkeypatch.setattr(source, "significance", fake)
    page = next(v for k, v in render_site(hostile, tmp_path / "site").items() if k.startswith("board-synth")).decode()
    assert page.count("★</span>") == 2 and "≈</span>" in page  # one best cell + the legend
    assert "(Wilcoxon signed-rank, Holm, alpha 0.05). 1 row not comparable" in page
    monkeypatch.setattr(source, "significance",
                        lambda rows, metrics: source.Significance("t", [{"cc": "wat"}] * len(rows)))
    with pytest.raises(ValueError, match="unknown significance mark"):
        render_site(hostile, tmp_path / "site")
