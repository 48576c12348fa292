"""docs/testing.md runs: its plain ```python blocks execute in order in one namespace (a
```text output block after one must be what it prints), and its blocks marked ``file=PATH``
make a small host project that a plain ``pytest`` run passes."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PAGE = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
FENCE = re.compile(r"^```([A-Za-z0-9_-]*)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)


def fences() -> list[tuple[int, str, str, str]]:
    """(line, language, info after it, text) of every fenced block, in page order."""
    text = PAGE.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2).strip(), m.group(3))
        for m in FENCE.finditer(text)
    ]


def file_of(info: str) -> str | None:
    found = re.search(r"\bfile=(\S+)", info)
    return found.group(1) if found else None


def test_the_page_has_runnable_examples() -> None:
    blocks = fences()
    assert sum(1 for _, lang, info, _ in blocks if lang == "python" and not file_of(info)) >= 4
    assert {file_of(info) for _, _, info, _ in blocks} >= {
        "tests/test_newsletter.py",
        "pyproject.toml",
        "scenarios/weekend-quote.toml",
    }


def test_the_python_blocks_run_and_print_what_the_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_testing"}
    printed: str | None = None
    ran = 0
    for line, lang, info, text in fences():
        if lang == "text" and "output" in info.split():
            assert printed is not None, f"testing.md:{line}: output with no python block before"
            assert printed == text, f"testing.md:{line}: the block shows other output"
            printed = None
            continue
        if lang != "python" or file_of(info):
            continue
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(text, f"testing.md:{line}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"testing.md, the python block at line {line}: {exc!r}") from exc
        printed = out.getvalue()
        ran += 1
    assert ran >= 4


def test_the_example_project_on_the_page_passes_a_plain_pytest_run(
    pytester: pytest.Pytester,
) -> None:
    files = {file_of(info): text for _, _, info, text in fences() if file_of(info)}
    for name, text in files.items():
        assert name is not None
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "tests/test_newsletter.py::test_unsubscribing_stops_the_newsletter PASSED*",
            "scenarios/weekend-quote.toml::expect[[]0[]] route q1 PASSED*",
            "scenarios/weekend-quote.toml::expect[[]1[]] the details may go to office providers "
            "PASSED*",
        ]
    )


def test_the_failure_shown_on_the_page_is_what_pytest_prints(pytester: pytest.Pytester) -> None:
    """The page's sample failure: the scenario with the weekend route expected wrongly."""
    blocks = fences()
    scenario = next(
        text for _, _, info, text in blocks if file_of(info) == "scenarios/weekend-quote.toml"
    )
    shown = next(
        text for _, lang, info, text in blocks if lang == "text" and "expect[0] route q1" in text
    )
    wrong = scenario.replace('outcome = "pass_to_providers"', 'outcome = "staff_contact"', 1)
    pytester.path.joinpath("weekend-quote.toml").write_text(wrong, encoding="utf-8")
    result = pytester.runpytest("weekend-quote.toml")
    result.assert_outcomes(passed=1, failed=1)
    # Every line the page shows is printed (the page shortens the notice's words with "...").
    expected = [
        re.sub(r"[][?*]", lambda m: f"[{m.group()}]", line).replace("...", "*")
        for line in shown.splitlines()
    ]
    result.stdout.fnmatch_lines(expected)
