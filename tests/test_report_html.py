"""The HTML report page: built from the shipped scenarios and one that fails on purpose, read as
HTML, then opened in a real headless Chromium (console, figures, accessibility, links, print).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from browser import ARTIFACTS, Page, open_page
from fairproc import load_policy
from fairproc.cli import main
from fairproc.reports import render_json
from fairproc.reports_html import PALETTE, locate, notice_map, render_html
from fairproc.scenarios import ScenarioResult, coverage, run_paths

SCENARIOS = Path(__file__).resolve().parent.parent / "rules" / "flexioffices" / "scenarios"


@pytest.fixture(scope="module")
def failing_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shipped scenario with one expectation turned wrong: a Saturday quick quote does not
    go to staff, so expecting it to fails."""
    text = (SCENARIOS / "routing-saturday-quick-quote.toml").read_text(encoding="utf-8")
    assert 'outcome = "pass_to_providers"' in text
    wrong = text.replace('outcome = "pass_to_providers"', 'outcome = "staff_contact"', 1)
    path = tmp_path_factory.mktemp("failing") / "routing-saturday-wrong.toml"
    path.write_text(wrong, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def results(failing_copy: Path) -> list[ScenarioResult]:
    return run_paths([SCENARIOS, failing_copy])


@pytest.fixture(scope="module")
def page_file(results: list[ScenarioResult], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(results), encoding="utf-8")
    return path


# --- the notice's words ----------------------------------------------------------------------


def test_locate_finds_words_across_line_breaks_and_quote_marks() -> None:
    notice = "We use a ‘Contact Us\nForm.’ Then we call.  Later we write."
    form = notice.index("a ‘Contact")
    assert locate(notice, "a 'Contact Us Form.'") == ((form, notice.index(" Then")),)
    call = notice.index("we call")
    # a clause joining sentences: each found in order (here only the first is in the notice)
    assert locate(notice, "we call. We read.") == ((call, call + len("we call")),)
    assert locate(notice, "then WE CALL") == ((call - 5, call + len("we call")),)
    assert locate(notice, "nothing like it") == ()


def test_every_shipped_rule_is_found_in_the_notice() -> None:
    policy = load_policy("flexioffices")
    notice = notice_map(policy, 0)
    assert notice.text is not None
    assert set(notice.spans) == set(policy.rule_index())
    for rule, spans in notice.spans.items():
        marked = " ".join(" ".join(notice.text[a:b].split()) for a, b in spans)
        first_words = " ".join(policy.rule_index()[rule].clause.split()[:3])
        assert marked.lower().startswith(first_words.lower().replace("’", "'")) or (
            first_words.lower() in marked.lower()
        ), rule


# --- the page as HTML ------------------------------------------------------------------------


class _Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if named.get("id"):
            self.ids.add(str(named["id"]))
        for key in ("href", "src"):
            value = named.get(key)
            if value is None:
                continue
            if tag == "svg" or value.startswith("http://www.w3.org/2000/svg"):
                continue
            if value.startswith("#"):
                self.hrefs.append(value[1:])
            else:
                self.external.append(value)


def test_page_is_self_contained_and_every_link_lands(page_file: Path) -> None:
    text = page_file.read_text(encoding="utf-8")
    outline = _Outline()
    outline.feed(text)
    assert outline.external == []  # no network, no CDN: nothing outside the file
    assert not re.search(r"@import|url\(", text)
    missing = [h for h in outline.hrefs if h not in outline.ids]
    assert missing == []
    assert len(outline.hrefs) > 100


def test_cli_writes_the_html_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["scenarios", "run", str(SCENARIOS), "--format", "html", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    scenario_count = len(json.loads(render_json(run_paths([SCENARIOS])))["scenarios"])
    assert f'data-summary="scenarios">{scenario_count}<' in text


# --- the page in a browser -------------------------------------------------------------------


def _contrast(fg: list[float], bg: list[float]) -> float:
    def luminance(rgb: list[float]) -> float:
        def channel(c: float) -> float:
            c = c / 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        r, g, b = (channel(c) for c in rgb[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# Every visible element with text of its own: its colour, and the background it sits on (the
# nearest ancestor's that is not transparent), as the browser computed them.
_COLOURS_JS = r"""
(() => {
  const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    const isSvg = el instanceof SVGElement;
    out.push({tag: el.tagName, text: el.textContent.trim().slice(0, 40),
              fg: rgb(isSvg ? style.fill : style.color), bg: background(el)});
  }
  return out;
})()
"""


@pytest.fixture(scope="module")
def page(page_file: Path) -> Iterator[Page]:
    with open_page(page_file.as_uri()) as opened:
        yield opened


def test_page_loads_with_no_console_errors_and_is_captured(page: Page) -> None:
    assert page.evaluate("document.readyState") == "complete"
    assert page.evaluate("document.querySelectorAll('section.expectation').length") > 200
    assert page.problems() == []
    shot = page.screenshot(ARTIFACTS / "report-page.png")
    assert shot.stat().st_size > 10_000
    pdf = page.pdf()
    assert pdf.startswith(b"%PDF")
    (ARTIFACTS / "report-page.pdf").write_bytes(pdf)
    assert page.problems() == []


def test_summary_figures_equal_the_json_report(page: Page, results: list[ScenarioResult]) -> None:
    shown = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('[data-summary]')]"
        ".map(e => [e.dataset.summary, e.textContent.trim()]))"
    )
    doc = json.loads(render_json(results))
    summary: dict[str, Any] = doc["summary"]
    assert shown["scenarios"] == str(len(doc["scenarios"]))
    assert shown["expectations"] == str(sum(len(s["expectations"]) for s in doc["scenarios"]))
    assert shown["passed"] == str(summary["passed"])
    assert shown["failed"] == str(summary["failed"]) == "1"
    assert shown["file_errors"] == str(summary["file_errors"])
    table = coverage(results)["flexioffices"]
    assert shown["coverage:flexioffices"] == f"{sum(table.values())}/{len(table)}"


def test_a_failed_expectation_reaches_its_notice_words_in_one_click(page: Page) -> None:
    link = page.evaluate(
        "(() => { const a = document.querySelector('.expectation.is-fail a.to-notice');"
        " a.scrollIntoView({block: 'center'}); const r = a.getBoundingClientRect();"
        " return {href: a.getAttribute('href'), text: a.textContent,"
        " x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
    )
    page.click(link["x"], link["y"])
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert page.evaluate("location.hash") == link["href"]
    slug = link["href"][1:]
    lit = page.evaluate(
        f"[...document.querySelectorAll('.notice mark.w-{slug}')].map(m => "
        "[m.textContent, getComputedStyle(m).backgroundColor])"
    )
    assert lit, "the link lands on marked notice words"
    target = tuple(int(PALETTE["target"][i : i + 2], 16) for i in (1, 3, 5))
    assert {colour for _, colour in lit} == {f"rgb({target[0]}, {target[1]}, {target[2]})"}
    # the words lit are exactly the clause of the rule the link names
    rule = re.fullmatch(r".*\((.+)\)", link["text"]).group(1)  # type: ignore[union-attr]
    clause = load_policy("flexioffices").rule_index()[rule].clause

    def plain(text: str) -> str:
        return " ".join(text.replace("’", "'").split()).lower()

    assert plain("".join(text for text, _ in lit)) == plain(clause)
    in_view = page.evaluate(
        f"(() => {{ const r = document.getElementById('{slug}').getBoundingClientRect();"
        " return r.top > 0 && r.top < innerHeight / 2; })()"
    )
    assert in_view
    page.screenshot(ARTIFACTS / "report-page-notice-target.png")


def test_accessibility_basics(page: Page) -> None:
    assert page.evaluate("document.documentElement.lang") == "en"
    levels = page.evaluate(
        "[...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1])"
    )
    assert levels[0] == 1 and levels.count(1) == 1
    skips = [(a, b) for a, b in itertools.pairwise(levels) if b > a + 1]
    assert skips == []
    tables = page.evaluate(
        "[...document.querySelectorAll('table')].map(t => ({caption: !!t.caption,"
        " heads: [...t.querySelectorAll('thead th')].map(th => [th.scope, th.textContent.trim()]),"
        " cols: t.rows[0] ? t.rows[0].cells.length : 0}))"
    )
    assert tables
    for table in tables:
        assert table["caption"]
        assert len(table["heads"]) == table["cols"]
        assert all(scope == "col" and text for scope, text in table["heads"])
    pictures = page.evaluate(
        "[...document.querySelectorAll('svg[role=img]')].map(s =>"
        " (document.getElementById(s.getAttribute('aria-labelledby')) || {}).textContent)"
    )
    assert pictures and all(pictures)
    nameless = page.evaluate(
        "[...document.querySelectorAll('a')].filter(a => !a.textContent.trim()).length"
    )
    assert nameless == 0

    low = []
    texts = page.evaluate(_COLOURS_JS)
    assert len(texts) > 1000  # every text on the page, the timelines' SVG text too
    assert any(item["tag"] == "text" for item in texts)
    for item in texts:
        ratio = _contrast(item["fg"], item["bg"])
        if ratio < 4.5:
            low.append((item["tag"], item["text"], round(ratio, 2)))
    assert low == []

    # Keyboard: Tab reaches the links in order, and a focused link shows a visible outline.
    page.evaluate("window.scrollTo(0, 0); document.activeElement.blur(); location.hash = ''")
    focused = []
    for _ in range(3):
        page.key("Tab", "Tab", 9)
        focused.append(
            page.evaluate(
                "(() => { const a = document.activeElement, s = getComputedStyle(a);"
                " return [a.tagName, a.getAttribute('href'), s.outlineStyle,"
                " parseFloat(s.outlineWidth)]; })()"
            )
        )
    assert [f[1] for f in focused] == ["#summary", "#scenarios", "#lint"]
    assert all(tag == "A" and style != "none" and width >= 2 for tag, _, style, width in focused)
