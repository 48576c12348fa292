"""The documentation runs: every ```python block of docs/*.md executes, every ```toml scenario
parses and passes, and the notice-as-rules page covers every sentence of the notice."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from fairproc import load_policy
from fairproc.scenarios import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
# Pages other people write; index.md links to them before they exist.
OWNED_ELSEWHERE = {"adapters.md", "testing.md"}

FENCE = re.compile(r"^```([A-Za-z0-9_-]*)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)


def blocks(page: Path, lang: str) -> list[tuple[int, str, str]]:
    """(line, info after the language, text) of each fenced block of ``lang``."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        if m.group(1) == lang:
            line = text.count("\n", 0, m.start()) + 1
            out.append((line, m.group(2).strip(), m.group(3)))
    return out


def test_the_documentation_pages_exist() -> None:
    names = {p.name for p in PAGES}
    wanted = {
        "index.md",
        "quickstart.md",
        "concepts.md",
        "rule-files.md",
        "conditions.md",
        "scenarios.md",
        "cli.md",
        "notice-as-rules.md",
    }
    assert wanted <= names


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocks of one page run in order in one namespace, in a scratch folder."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    ran = 0
    for line, info, code in blocks(page, "python"):
        if "no-run" in info.split():
            continue
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page.name}, the python block at line {line}: {exc!r}") from exc
        ran += 1
    assert ran


def test_the_quickstart_says_its_python_blocks_continue_one_script() -> None:
    """test_python_blocks_run runs a page's blocks in order in one namespace: the quickstart,
    whose blocks build on each other, says so to its readers (issue 16, item 5)."""
    text = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    said = text.index("The Python blocks on this page continue one script")
    assert said < text.index("```python")  # before the first of them


def test_the_quickstart_and_cli_pages_name_no_checkout_path() -> None:
    """Their commands work from a plain install (tests/test_wheel.py runs them): no
    rules/... or src/... path, no editable install as the way in."""
    for name in ("quickstart.md", "cli.md"):
        for line, _, text in blocks(DOCS / name, "sh"):
            assert not re.search(r"(^|\s)(rules|src|tests)/", text), f"{name}:{line}"
            assert "pip install -e" not in text, f"{name}:{line}"


def _toml_blocks() -> list[tuple[Path, int, str]]:
    return [(p, line, text) for p in PAGES for line, _, text in blocks(p, "toml")]


@pytest.mark.parametrize(
    ("page", "line", "text"), _toml_blocks(), ids=lambda v: v.name if isinstance(v, Path) else ""
)
def test_toml_blocks_parse_and_scenarios_pass(
    page: Path, line: int, text: str, tmp_path: Path
) -> None:
    doc = tomllib.loads(text)  # every block is valid TOML
    if "scenario" not in doc:
        return
    path = tmp_path / f"{page.stem}-{line}.toml"
    path.write_text(text, encoding="utf-8")
    result = run_scenario(load_scenario(path))
    assert result.passed, [
        (e.expectation.name, dict(e.expected), dict(e.actual), e.error)
        for e in result.expectations
        if not e.passed
    ]


def test_links_between_pages_resolve() -> None:
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text("utf-8")):
            if target in OWNED_ELSEWHERE:
                continue
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"


def test_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for name in [p.name for p in PAGES if p.name != "index.md"] + sorted(OWNED_ELSEWHERE):
        assert f"({name})" in index, name


# --- the notice as rules ---------------------------------------------------------------------


def notice_sentences() -> list[str]:
    text = (ROOT / "rules" / "flexioffices" / "notice.txt").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            body = line[2:] if line.startswith("- ") else line
            out.extend(s for s in re.split(r"(?<=[.?!])\s+", body) if s)
    return out


def test_every_sentence_of_the_notice_is_beside_its_rules() -> None:
    page = (DOCS / "notice-as-rules.md").read_text(encoding="utf-8")
    rows = [r for r in page.splitlines() if re.match(r"^\| \d+ \|", r)]
    sentences = notice_sentences()
    assert len(rows) == len(sentences)
    for number, (row, sentence) in enumerate(zip(rows, sentences, strict=True), start=1):
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        assert cells[0] == str(number)
        assert cells[1] == sentence
        encoded, reading = cells[2], cells[3] if len(cells) > 3 else ""
        assert encoded, sentence
        if encoded == "none":
            assert reading, f"row {number}: no rule, and no reason given"


def test_the_ids_named_beside_the_notice_exist() -> None:
    policy = load_policy("flexioffices")
    rules = set(policy.rule_index())
    declared = {
        "source": set(policy.sources),
        "category": set(policy.categories),
        "event": set(policy.events),
        "fact": set(policy.facts),
    }
    page = (DOCS / "notice-as-rules.md").read_text(encoding="utf-8")
    named = set()
    for row in page.splitlines():
        if re.match(r"^\| \d+ \|", row):
            named.update(re.findall(r"`([a-z_]+(?:\.[a-z_*]+)?)`", row.split(" | ")[2]))
    assert named
    for ident in named:
        kind, _, name = ident.partition(".")
        if ident in rules or name == "*":
            continue
        assert kind in declared and name in declared[kind], f"unknown id {ident!r}"
    # every rule of the policy is named beside some sentence
    assert rules - named == set()
