"""Scenario reports for people and machines: text, JSON, JUnit XML and Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree as ET

from fairproc.scenarios import ExpectationResult, ScenarioResult, coverage


def _counts(results: Sequence[ScenarioResult]) -> tuple[int, int, int]:
    passed = sum(1 for r in results for e in r.expectations if e.passed)
    failed = sum(1 for r in results for e in r.expectations if not e.passed)
    errors = sum(1 for r in results if r.problems)
    return passed, failed, errors


def summary_line(results: Sequence[ScenarioResult]) -> str:
    passed, failed, errors = _counts(results)
    line = f"{passed} passed, {failed} failed"
    if errors:
        line += f", {errors} file error{'s' if errors != 1 else ''}"
    return line


def _fmt(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _diff(e: ExpectationResult) -> list[str]:
    lines = []
    for key, want in e.expected.items():
        got = e.actual.get(key)
        mark = "" if key in e.actual and _same(key, want, got) else "   <-- differs"
        lines.append(f"      {key}: expected {_fmt(want)}, actual {_fmt(got)}{mark}")
    return lines


def _same(key: str, want: Any, got: Any) -> bool:
    if key in ("rules", "reasons", "findings"):
        return isinstance(got, list) and set(want) <= set(got)
    if isinstance(want, list):
        return isinstance(got, list) and set(want) == set(got)
    return bool(want == got)


def render_text(
    results: Sequence[ScenarioResult], verbose: bool = False, color: bool = False
) -> str:
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    out: list[str] = []
    for r in results:
        status = paint("PASS", "32") if r.passed else paint("ERROR" if r.problems else "FAIL", "31")
        out.append(f"{status} {r.file}: {r.title}")
        for p in r.problems:
            out.append(f"  {p}")
        for e in r.expectations:
            mark = paint("pass", "32") if e.passed else paint("FAIL", "31")
            where = f" (line {e.expectation.line})" if e.expectation.line else ""
            out.append(f"  [{mark}] {e.expectation.name}{where}")
            if not e.passed or verbose:
                out.extend(_diff(e))
                if e.error:
                    out.append(f"      error: {e.error}")
                if e.decision is not None:
                    out.extend("      " + line for line in e.decision.explain().splitlines())
    out.append(summary_line(results))
    return "\n".join(out)


def render_json(results: Sequence[ScenarioResult]) -> str:
    passed, failed, errors = _counts(results)
    doc = {
        "scenarios": [r.to_dict() for r in results],
        "summary": {"passed": passed, "failed": failed, "file_errors": errors},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def render_junit(results: Sequence[ScenarioResult]) -> str:
    suites = ET.Element("testsuites", name="fairproc scenarios")
    for r in results:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{r.file}: {r.title}",
            tests=str(len(r.expectations) or 1),
            failures=str(sum(1 for e in r.expectations if not e.passed)),
            errors=str(1 if r.problems else 0),
        )
        if r.problems:
            case = ET.SubElement(suite, "testcase", classname=r.file, name="(file)")
            err = ET.SubElement(case, "error", message="scenario file could not be read")
            err.text = "\n".join(str(p) for p in r.problems)
        for e in r.expectations:
            case = ET.SubElement(suite, "testcase", classname=r.file, name=e.expectation.name)
            if not e.passed:
                fail = ET.SubElement(case, "failure", message="expectation not met")
                fail.text = "\n".join([*_diff(e), "", e.explanation])
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def render_markdown(results: Sequence[ScenarioResult]) -> str:
    out = ["# Scenario report", "", f"**{summary_line(results)}**", ""]
    for r in results:
        badge = "✅" if r.passed else "❌"
        out += [f"## {badge} {r.title}", "", f"`{r.file}`", ""]
        for p in r.problems:
            out.append(f"- **error**: {p}")
        if r.expectations:
            out += ["| | expectation | expected | actual |", "|---|---|---|---|"]
            for e in r.expectations:
                exp = "; ".join(f"{k}: {_fmt(v)}" for k, v in e.expected.items())
                act = "; ".join(f"{k}: {_fmt(v)}" for k, v in e.actual.items())
                out.append(
                    f"| {'pass' if e.passed else '**FAIL**'} | {e.expectation.name} | "
                    f"{exp} | {act or e.error or ''} |".replace("\n", " ")
                )
            out.append("")
            for e in r.expectations:
                if e.decision is None:
                    continue
                out += [
                    f"<details><summary>{e.expectation.name}: why</summary>",
                    "",
                    "```",
                    e.decision.explain(),
                    "```",
                    "",
                    "</details>",
                    "",
                ]
    return "\n".join(out)


def render_coverage(results: Sequence[ScenarioResult]) -> str:
    out = []
    for policy, table in coverage(results).items():
        covered = sum(table.values())
        out.append(
            f"rule coverage for {policy}: {covered}/{len(table)} rules cited by a passing "
            "expectation"
        )
        for rule, hit in sorted(table.items()):
            if not hit:
                out.append(f"  not covered: {rule}")
    return "\n".join(out)


RENDERERS = {"json": render_json, "junit": render_junit, "markdown": render_markdown}
