"""The scenario report as one self-contained HTML page, for an auditor to read and file.

Everything the page needs is inside it: styles inline, pictures as inline SVG, no fonts,
scripts or images fetched from anywhere, so it opens from a ``file://`` URL and prints to PDF
as it shows. Its parts: a summary (the same figures as the JSON report), the rule coverage,
each scenario's world with a timeline per subject, each expectation with its explanation, the
policy's lint findings, and the notice itself with the words behind each rule highlighted.

Every rule the page cites links to its words in the notice. A rule's words are found in the
notice text by its ``clause`` (whitespace and quote marks compared loosely); a clause the notice
does not hold verbatim links to the rule's row in the coverage table instead. Overlapping
clauses are cut into pieces, each piece marked with every rule it belongs to, so the link to
one rule lights up exactly that rule's words (CSS ``:target`` on an anchor and its siblings).
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from fairproc.convert import converter
from fairproc.decisions import Check, Decision
from fairproc.engine import Engine
from fairproc.errors import FairprocError
from fairproc.lint import LintFinding, lint
from fairproc.model import Policy, Reaction
from fairproc.reports import summary_line
from fairproc.scenarios import ExpectationResult, Scenario, ScenarioResult, coverage
from fairproc.values import Value

# The palette, one place: the browser test reads the colours the page computes from these and
# checks each text colour against its background (WCAG AA, 4.5:1).
PALETTE = {
    "fg": "#1a1a1a",
    "bg": "#ffffff",
    "muted": "#4d4d4d",
    "panel": "#f3f4f6",
    "line": "#9ca3af",
    "link": "#0b4fb3",
    "pass": "#17612a",
    "fail": "#a3001b",
    "mark": "#fff1a8",
    "target": "#ffc94d",
    "focus": "#7a3ff2",
}

_CSS = """
:root { %(vars)s }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 72rem; padding: 1rem 2rem; }
h1, h2, h3, h4 { line-height: 1.2; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { margin-top: 1.8rem; }
a { color: var(--link); }
a:focus-visible, a:focus { outline: 3px solid var(--focus); outline-offset: 2px; }
.muted { color: var(--muted); }
.pass { color: var(--pass); font-weight: 600; }
.fail { color: var(--fail); font-weight: 600; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%%; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left;
  vertical-align: top; }
th { background: var(--panel); }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: .92em; }
.summary { display: flex; flex-wrap: wrap; gap: .75rem; padding: 0; margin: 0; }
.summary div { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
  padding: .4rem .9rem; min-width: 8rem; }
.summary dt { font-size: .85em; color: var(--muted); }
.summary dd { margin: 0; font-size: 1.5em; font-weight: 700; }
.expectation { border-left: 5px solid var(--line); padding: .2rem 0 .2rem .8rem;
  margin: 1rem 0; }
.expectation.is-fail { border-left-color: var(--fail); }
.expectation.is-pass { border-left-color: var(--pass); }
.notice { white-space: pre-wrap; background: var(--panel); border: 1px solid var(--line);
  padding: 1rem; border-radius: 6px; }
.notice mark { background: var(--mark); color: var(--fg); }
.notice .anchor { scroll-margin-top: 6rem; }
.timeline { max-width: 100%%; height: auto; border: 1px solid var(--line); background: var(--bg); }
.problems li { color: var(--fail); }
%(targets)s
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  a { color: var(--fg); }
  .expectation, table, svg { break-inside: avoid; }
  h2, h3, h4 { break-after: avoid; }
}
"""

# Printing shows details closed unless they are opened first.
_SCRIPT = (
    "window.addEventListener('beforeprint', function () {"
    " document.querySelectorAll('details').forEach(function (d) { d.open = true; }); });"
)

_QUOTES = "'\u2018\u2019`"
_DQUOTES = '"\u201c\u201d'


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _instant(value: dt.datetime) -> str:
    return str(converter.unstructure(value))


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if value is None:
        return "(none)"
    return str(value)


# --- the notice's words ----------------------------------------------------------------------


def _pattern(clause: str) -> re.Pattern[str] | None:
    words = clause.split()
    if not words:
        return None
    parts = []
    for word in words:
        piece = re.escape(word)
        piece = re.sub("[" + re.escape(_QUOTES) + "]", "[" + _QUOTES + "]", piece)
        piece = re.sub("[" + re.escape(_DQUOTES) + "]", "[" + _DQUOTES + "]", piece)
        parts.append(piece)
    return re.compile(r"\s+".join(parts))


def _find(notice: str, clause: str, start: int = 0) -> tuple[int, int] | None:
    pattern = _pattern(clause)
    if pattern is None:
        return None
    found = pattern.search(notice, start) or re.compile(pattern.pattern, re.IGNORECASE).search(
        notice, start
    )
    return (found.start(), found.end()) if found else None


def locate(notice: str, clause: str) -> tuple[tuple[int, int], ...]:
    """Where the notice holds ``clause``: the whole of it (exactly, then ignoring case), else
    each of its sentences found in order (a clause may join sentences the notice keeps apart);
    empty when the notice holds none of it."""
    whole = _find(notice, clause)
    if whole is not None:
        return (whole,)
    spans = []
    start = 0
    for sentence in re.split(r"(?<=[.;:])\s+", clause):
        span = _find(notice, sentence.rstrip(".;: "), start)
        if span is not None:
            spans.append(span)
            start = span[1]
    return tuple(spans)


@attrs.frozen(repr=False)
class NoticeMap(Value):
    """The notice text with the spans of the rules quoting it, and each rule's link target."""

    policy: str
    text: str | None
    spans: Mapping[str, tuple[tuple[int, int], ...]]  # rule id -> its words in the notice
    slugs: Mapping[str, str]  # rule id -> a short id safe in HTML and CSS

    def href(self, rule: str) -> str:
        slug = self.slugs.get(rule)
        if slug is None:
            return ""
        return f"#{slug}" if rule in self.spans else f"#rule-{slug}"


def notice_map(policy: Policy, index: int) -> NoticeMap:
    text = None
    if policy.path and policy.info.notice:
        path = Path(policy.path) / policy.info.notice
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            text = None
    rules = policy.rule_index()
    slugs = {rule: f"p{index}n{k}" for k, rule in enumerate(sorted(rules))}
    spans: dict[str, tuple[tuple[int, int], ...]] = {}
    if text is not None:
        for rule_id, rule in rules.items():
            found = locate(text, rule.clause)
            if found:
                spans[rule_id] = found
    return NoticeMap(policy.id, text, spans, slugs)


def _notice_html(notice: NoticeMap) -> str:
    """The notice with each rule's anchor before its words and every piece of its words marked
    with the rules it belongs to (pieces, because clauses overlap)."""
    assert notice.text is not None
    text = notice.text
    cuts = sorted(
        {0, len(text), *(p for spans in notice.spans.values() for span in spans for p in span)}
    )
    starts: dict[int, list[str]] = {}
    for rule, spans in notice.spans.items():
        starts.setdefault(spans[0][0], []).append(rule)
    out: list[str] = []
    for left, right in itertools.pairwise(cuts):
        for rule in sorted(starts.get(left, [])):
            out.append(f'<span id="{notice.slugs[rule]}" class="anchor"></span>')
        piece = _e(text[left:right])
        owners = sorted(
            r
            for r, spans in notice.spans.items()
            if any(s <= left and right <= t for s, t in spans)
        )
        if owners:
            classes = " ".join(f"w-{notice.slugs[r]}" for r in owners)
            out.append(f'<mark class="{classes}" title="{_e(", ".join(owners))}">{piece}</mark>')
        else:
            out.append(piece)
    return "".join(out)


def _target_css(notices: Iterable[NoticeMap]) -> str:
    rules = []
    for notice in notices:
        for rule in sorted(notice.spans):
            slug = notice.slugs[rule]
            rules.append(
                f"#{slug}:target ~ mark.w-{slug} {{ background: var(--target); "
                "outline: 2px solid var(--fg); }"
            )
    return "\n".join(rules)


def _rule_link(rule: str, notice: NoticeMap | None) -> str:
    href = notice.href(rule) if notice else ""
    if not href:
        return f"<code>{_e(rule)}</code>"
    return f'<a href="{href}"><code>{_e(rule)}</code></a>'


# --- the timeline ----------------------------------------------------------------------------


@attrs.frozen(repr=False)
class _Row(Value):
    label: str
    start: dt.datetime
    end: dt.datetime | None = None  # a bar from start to end; a point when None
    note: str = ""
    kind: str = "event"  # record, event, request
    open_ended: bool = False  # kept with no date: drawn on to the right edge


def _timeline_rows(scenario: Scenario, result: ScenarioResult, subject: str) -> list[_Row]:
    rows: list[_Row] = []
    engine = Engine(scenario.policy, scenario.world())
    for record in scenario.records:
        if record.subject != subject:
            continue
        end = None
        open_ended = False
        note = f"collected {_instant(record.collected_at)}"
        try:
            kept = engine.retention(record.id, scenario.now)
        except FairprocError as exc:
            note += f"; retention could not be decided: {exc}"
        else:
            if kept.until is not None:
                end = kept.until
                note += f"; retention {kept.outcome} {_instant(kept.until)}"
            else:
                note += f"; retention {kept.outcome}, no date"
                open_ended = kept.outcome == "keep"
        rows.append(
            _Row(
                f"record {record.id} ({record.source})",
                record.collected_at,
                end,
                note,
                "record",
                open_ended,
            )
        )
    for event in scenario.events:
        if event.subject == subject:
            about = f" {event.record or ''}{event.purpose or ''}".rstrip()
            rows.append(
                _Row(f"event {event.kind}{about}", event.at, None, _instant(event.at), "event")
            )
    for e in result.expectations:
        params = e.expectation.params
        if e.expectation.ask != "request" or params.get("subject") != subject:
            continue
        due = e.decision.due if e.decision is not None else None
        note = f"received {_instant(e.expectation.at)}"
        if due is not None:
            note += f"; due {_instant(due)}"
        rows.append(_Row(f"request {params.get('right')}", e.expectation.at, due, note, "request"))
    return rows


_COLOURS = {"record": "link", "event": "fg", "request": "fail"}


def _timeline_svg(rows: Sequence[_Row], now: dt.datetime, title: str, ident: str) -> str:
    instants = [now, *(r.start for r in rows), *(r.end for r in rows if r.end is not None)]
    low = min(i.timestamp() for i in instants)
    high = max(i.timestamp() for i in instants)
    span = (high - low) or 1.0
    label_w, plot_w, row_h, top = 300, 560, 26, 34
    width = label_w + plot_w + 20
    height = top + row_h * len(rows) + 16

    def x(value: dt.datetime) -> float:
        return round(label_w + plot_w * (value.timestamp() - low) / span, 1)

    out = [
        f'<svg class="timeline" role="img" aria-labelledby="{ident}-t" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-t">{_e(title)}</title>',
        f'<text x="{label_w}" y="14" font-size="11" fill="{PALETTE["fg"]}">'
        f"{_e(_instant(dt.datetime.fromtimestamp(low, dt.UTC)))}</text>",
        f'<text x="{label_w + plot_w}" y="14" font-size="11" text-anchor="end" '
        f'fill="{PALETTE["fg"]}">{_e(_instant(dt.datetime.fromtimestamp(high, dt.UTC)))}</text>',
        f'<line x1="{label_w}" y1="22" x2="{label_w + plot_w}" y2="22" '
        f'stroke="{PALETTE["line"]}"/>',
        f'<line x1="{x(now)}" y1="20" x2="{x(now)}" y2="{height - 6}" '
        f'stroke="{PALETTE["focus"]}" stroke-dasharray="4 3"><title>now: '
        f"{_e(_instant(now))}</title></line>",
        f'<text x="{x(now) + 3}" y="{height - 4}" font-size="10" fill="{PALETTE["fg"]}">now</text>',
    ]
    for n, row in enumerate(rows):
        y = top + n * row_h
        colour = PALETTE[_COLOURS[row.kind]]
        out.append(
            f'<text x="4" y="{y + 13}" font-size="12" fill="{PALETTE["fg"]}">{_e(row.label)}</text>'
        )
        if row.end is not None:
            x1, x2 = sorted((x(row.start), x(row.end)))
            out.append(
                f'<rect x="{x1}" y="{y + 3}" width="{max(x2 - x1, 3)}" height="12" rx="3" '
                f'fill="{colour}" fill-opacity="0.75"><title>{_e(row.label)}: {_e(row.note)}'
                "</title></rect>"
            )
            out.append(
                f'<line x1="{x2}" y1="{y}" x2="{x2}" y2="{y + 18}" stroke="{colour}" '
                'stroke-width="2"/>'
            )
        else:
            if row.open_ended:
                out.append(
                    f'<line x1="{x(row.start)}" y1="{y + 9}" x2="{label_w + plot_w}" '
                    f'y2="{y + 9}" stroke="{colour}" stroke-width="3" stroke-dasharray="6 4"/>'
                )
            out.append(
                f'<circle cx="{x(row.start)}" cy="{y + 9}" r="5" fill="{colour}">'
                f"<title>{_e(row.label)}: {_e(row.note)}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)


def _timelines(scenario: Scenario, result: ScenarioResult, ident: str) -> str:
    subjects = list(
        dict.fromkeys(
            [*(r.subject for r in scenario.records), *(e.subject for e in scenario.events)]
        )
    )
    out = []
    for k, subject in enumerate(subjects):
        rows = _timeline_rows(scenario, result, subject)
        if not rows:
            continue
        out.append(f"<h5>Timeline of subject <code>{_e(subject)}</code></h5>")
        out.append(
            _timeline_svg(
                rows,
                scenario.now,
                f"Timeline of subject {subject}: records with their retention, events and "
                "request deadlines",
                f"{ident}-tl{k}",
            )
        )
        out.append('<ul class="muted">')
        out.extend(f"<li>{_e(row.label)}: {_e(row.note)}</li>" for row in rows)
        out.append("</ul>")
    return "\n".join(out)


# --- the page --------------------------------------------------------------------------------


def _table(caption: str, head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cols = "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{cols}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _world(scenario: Scenario) -> str:
    out = []
    if scenario.records:
        out.append(
            _table(
                "Records",
                ["id", "subject", "source", "collected at", "data"],
                (
                    [
                        f"<code>{_e(r.id)}</code>",
                        _e(r.subject),
                        _e(r.source),
                        _e(_instant(r.collected_at)),
                        _e(_plain(dict(r.data))) if r.data else '<span class="muted">none</span>',
                    ]
                    for r in scenario.records
                ),
            )
        )
    if scenario.events:
        out.append(
            _table(
                "Events",
                ["subject", "kind", "at", "record", "purpose"],
                (
                    [
                        _e(e.subject),
                        _e(e.kind),
                        _e(_instant(e.at)),
                        _e(e.record or ""),
                        _e(e.purpose or ""),
                    ]
                    for e in scenario.events
                ),
            )
        )
    if scenario.suppression:
        out.append(
            _table(
                "Suppression list",
                ["email", "at", "reason"],
                ([_e(s.email), _e(_instant(s.at)), _e(s.reason)] for s in scenario.suppression),
            )
        )
    if not out:
        out.append('<p class="muted">The world is empty.</p>')
    return "\n".join(out)


def _checks(decision: Decision, notice: NoticeMap | None) -> str:
    def row(check: Check) -> list[str]:
        mark = {
            True: '<span class="pass">pass</span>',
            False: '<span class="fail">FAIL</span>',
            None: '<span class="muted">info</span>',
        }[check.passed]
        what = " ".join(
            _e(part)
            for part in (
                f"({check.scope})" if check.scope else "",
                f"→ {check.reason}" if check.reason and check.passed is False else "",
                check.detail or "",
            )
            if part
        )
        facts = "<br>".join(
            f"<code>{_e(k)}</code> = {_e(_plain(converter.unstructure(v)))}"
            for k, v in check.facts.items()
        )
        # a law layer's check quotes the law (its cite and words), not the notice
        words = f"law: {_e(check.clause)}" if check.layer == "law" else f"“{_e(check.clause)}”"
        if check.note:
            words += f'<br><span class="muted">reading: {_e(check.note)}</span>'
        return [mark, _rule_link(check.rule, notice), what, facts, words]

    return _table(
        "Explanation: every rule that took part",
        ["result", "rule", "detail", "facts read", "the notice's words"],
        (row(c) for c in decision.checks),
    )


def _first_cited(e: ExpectationResult) -> str | None:
    """The rule a failed expectation turns on: a rule that failed, else the first one cited."""
    if e.decision is None:
        return None
    for check in e.decision.checks:
        if check.passed is False:
            return check.rule
    rules = e.decision.rules
    return rules[0] if rules else None


def _expectation(e: ExpectationResult, notice: NoticeMap | None, ident: str) -> str:
    exp = e.expectation
    status = "pass" if e.passed else "fail"
    where = f", line {exp.line}" if exp.line else ""
    out = [
        f'<section class="expectation is-{status}" id="{ident}" aria-labelledby="{ident}-h">',
        f'<h5 id="{ident}-h"><span class="{status}">{status.upper()}</span> {_e(exp.name)}'
        f'<span class="muted"> ({_e(exp.ask)} at {_e(_instant(exp.at))}{where})</span></h5>',
    ]
    if not e.passed:
        rule = _first_cited(e)
        if rule is not None and notice is not None and notice.href(rule):
            out.append(
                f'<p><a class="to-notice" href="{notice.href(rule)}">The notice\'s words behind '
                f"this ({_e(rule)})</a></p>"
            )
    keys = list(dict.fromkeys([*e.expected, *e.actual]))
    out.append(
        _table(
            "Expected and actual",
            ["check", "expected", "actual"],
            (
                [
                    f"<code>{_e(k)}</code>",
                    _e(_plain(e.expected.get(k))) if k in e.expected else "",
                    _e(_plain(e.actual.get(k))) if k in e.actual else "",
                ]
                for k in keys
            ),
        )
    )
    if e.error:
        out.append(f'<p class="fail">error: {_e(e.error)}</p>')
    if e.decision is not None:
        checks = _checks(e.decision, notice)
        if e.passed:
            out.append(f"<details><summary>Why: the explanation</summary>{checks}</details>")
        else:
            out.append(checks)
    out.append("</section>")
    return "\n".join(out)


def _lint_section(policy: Policy, findings: Sequence[LintFinding], notice: NoticeMap) -> str:
    if not findings:
        return f"<p>No findings about <code>{_e(policy.id)}</code>.</p>"
    return _table(
        f"Lint findings about {policy.id}",
        ["severity", "code", "rule", "message", "the notice's words"],
        (
            [
                _e(f.severity),
                f"<code>{_e(f.code)}</code>",
                _rule_link(f.rule, notice) if f.rule else "",
                _e(f.message),
                f"“{_e(f.clause)}”" if f.clause else "",
            ]
            for f in findings
        ),
    )


def _coverage_section(policy: Policy, table: Mapping[str, bool], notice: NoticeMap) -> str:
    rules = policy.rule_index()
    rows = []
    for rule_id in sorted(rules):
        if isinstance(rules[rule_id], Reaction):
            continue
        slug = notice.slugs[rule_id]
        covered = table.get(rule_id, False)
        where = (
            f'<a href="#{slug}">in the notice</a>'
            if rule_id in notice.spans
            else '<span class="muted">not verbatim in the notice</span>'
        )
        rows.append(
            [
                f'<code id="rule-{slug}">{_e(rule_id)}</code>',
                '<span class="pass">covered</span>'
                if covered
                else '<span class="fail">not covered</span>',
                f"“{_e(rules[rule_id].clause)}” ({where})",
            ]
        )
    return _table(
        f"Rules of {policy.id} and whether a passing expectation cites them",
        ["rule", "coverage", "the notice's words"],
        rows,
    )


def render_html(results: Sequence[ScenarioResult], title: str = "Scenario report") -> str:
    """The report page for ``results`` (a scenario result carries its scenario and policy)."""
    policies: dict[str, Policy] = {}
    for r in results:
        if r.policy is not None:
            policies.setdefault(r.policy.id, r.policy)
    notices = {pid: notice_map(p, k) for k, (pid, p) in enumerate(policies.items())}
    cover = coverage(results)
    passed = sum(1 for r in results for e in r.expectations if e.passed)
    failed = sum(1 for r in results for e in r.expectations if not e.passed)
    errors = sum(1 for r in results if r.problems)
    expectations = sum(len(r.expectations) for r in results)

    def figure(key: str, label: str, value: Any, css: str = "") -> str:
        return (
            f'<div><dt>{_e(label)}</dt><dd class="{css}" data-summary="{key}">{_e(value)}</dd>'
            "</div>"
        )

    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{_e(summary_line(results))}</p>',
        '<nav aria-label="Contents"><ul>'
        '<li><a href="#summary">Summary</a></li><li><a href="#scenarios">Scenarios</a></li>'
        '<li><a href="#lint">Lint findings</a></li><li><a href="#coverage">Rule coverage</a></li>'
        '<li><a href="#notice">The notice</a></li></ul></nav>',
        '<h2 id="summary">Summary</h2>',
        '<dl class="summary">',
        figure("scenarios", "scenarios", len(results)),
        figure("expectations", "expectations", expectations),
        figure("passed", "passed", passed, "pass"),
        figure("failed", "failed", failed, "fail" if failed else ""),
        figure("file_errors", "file errors", errors, "fail" if errors else ""),
    ]
    for pid, table in cover.items():
        body.append(
            figure(
                f"coverage:{pid}",
                f"rules of {pid} covered",
                f"{sum(table.values())}/{len(table)}",
            )
        )
    body.append("</dl>")
    body.append(
        _table(
            "Scenarios",
            ["scenario", "file", "expectations", "result"],
            (
                [
                    f'<a href="#s{k}">{_e(r.title)}</a>',
                    f"<code>{_e(r.file)}</code>",
                    f"{sum(1 for e in r.expectations if e.passed)}/{len(r.expectations)} passed",
                    '<span class="pass">pass</span>'
                    if r.passed
                    else f'<span class="fail">{"error" if r.problems else "FAIL"}</span>',
                ]
                for k, r in enumerate(results)
            ),
        )
    )
    body.append('<h2 id="scenarios">Scenarios</h2>')
    for k, r in enumerate(results):
        notice = notices.get(r.policy.id) if r.policy is not None else None
        status = "pass" if r.passed else "fail"
        body.append(f'<section id="s{k}" aria-labelledby="s{k}-h">')
        body.append(
            f'<h3 id="s{k}-h"><span class="{status}">{"PASS" if r.passed else "FAIL"}</span> '
            f"{_e(r.title)}</h3>"
        )
        body.append(f'<p class="muted"><code>{_e(r.file)}</code></p>')
        if r.problems:
            body.append('<ul class="problems">')
            body.extend(f"<li>{_e(p)}</li>" for p in r.problems)
            body.append("</ul>")
        scenario = r.scenario
        if scenario is not None:
            body.append(
                f"<p>Policy <code>{_e(scenario.policy.id)}</code>, now "
                f"{_e(_instant(scenario.now))}"
                + (f"; documents: {_e(scenario.documents)}" if scenario.documents else "")
                + "</p>"
            )
            body.append("<h4>The world</h4>")
            body.append(_world(scenario))
            body.append(_timelines(scenario, r, f"s{k}"))
        if r.expectations:
            body.append("<h4>Expectations</h4>")
            body.extend(_expectation(e, notice, f"s{k}e{j}") for j, e in enumerate(r.expectations))
        body.append("</section>")
    body.append('<h2 id="lint">Lint findings</h2>')
    for pid, policy in policies.items():
        body.append(f"<h3>Policy <code>{_e(pid)}</code></h3>")
        body.append(_lint_section(policy, lint(policy), notices[pid]))
    body.append('<h2 id="coverage">Rule coverage</h2>')
    for pid, policy in policies.items():
        body.append(f"<h3>Policy <code>{_e(pid)}</code></h3>")
        body.append(_coverage_section(policy, cover.get(pid, {}), notices[pid]))
    body.append('<h2 id="notice">The notice</h2>')
    for pid, policy in policies.items():
        notice = notices[pid]
        body.append(f"<h3>{_e(policy.info.title)}</h3>")
        if notice.text is None:
            body.append('<p class="muted">The policy names no notice text.</p>')
            continue
        body.append(
            f'<p class="muted">Highlighted: the words of the {len(notice.spans)} rules found '
            "verbatim in the notice; following a rule's link lights up its own words.</p>"
        )
        body.append(f'<div class="notice">{_notice_html(notice)}</div>')
    css = _CSS % {
        "vars": " ".join(f"--{k}: {v};" for k, v in PALETTE.items()),
        "targets": _target_css(notices.values()),
    }
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{css}</style>\n"
        f"<script>{_SCRIPT}</script>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>"
    )
