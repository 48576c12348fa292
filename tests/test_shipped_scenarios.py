"""The documented auditor scenarios shipped beside the reference policy.

They are the policy's worked examples: every one must pass, together they must cite every rule
of the policy, and each must say in plain words what it shows.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from fairproc import load_policy
from fairproc.model import Reaction
from fairproc.scenarios import ScenarioResult, coverage, exit_status, find_files, run_paths

SCENARIOS = Path(__file__).resolve().parent.parent / "rules" / "flexioffices" / "scenarios"

# Rules no scenario may leave uncited: none. (Reactions are left out of coverage: they answer
# arrivals, not questions, and the reactive engine's tests exercise them.)
PENDING: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def results() -> list[ScenarioResult]:
    return run_paths([SCENARIOS])


def _failures(results: list[ScenarioResult]) -> list[str]:
    out = []
    for r in results:
        out.extend(f"{r.file}: {p}" for p in r.problems)
        for e in r.expectations:
            if not e.passed:
                out.append(
                    f"{r.file}: {e.expectation.name} (line {e.expectation.line}): expected "
                    f"{dict(e.expected)}, actual {dict(e.actual)}\n{e.explanation}"
                )
    return out


def test_every_shipped_scenario_passes(results: list[ScenarioResult]) -> None:
    assert results, f"no scenario files under {SCENARIOS}"
    assert _failures(results) == []
    assert exit_status(results) == 0
    assert all(r.expectations for r in results), "a scenario file with no expectation"


def test_scenarios_cite_every_rule_of_the_policy(results: list[ScenarioResult]) -> None:
    policy = load_policy("flexioffices")
    table = coverage(results)[policy.id]
    # Reactions answer arrivals, not questions: no expectation can cite them, and coverage
    # leaves them out. Every other rule of the policy is in the table.
    questions = {r for r, rule in policy.rule_index().items() if not isinstance(rule, Reaction)}
    assert set(table) == questions
    uncovered = {rule for rule, cited in table.items() if not cited}
    assert uncovered - PENDING == set()


def test_at_least_forty_documented_scenario_files() -> None:
    files = find_files([SCENARIOS])
    assert len(files) >= 40
    for path in files:
        head = tomllib.loads(path.read_text(encoding="utf-8"))["scenario"]
        assert isinstance(head.get("title"), str) and head["title"].strip(), path.name
        assert isinstance(head.get("documents"), str) and head["documents"].strip(), path.name
        assert head["policy"] == "flexioffices", path.name


def test_scenario_files_are_one_topic_each_with_distinct_titles() -> None:
    titles = [
        tomllib.loads(p.read_text(encoding="utf-8"))["scenario"]["title"]
        for p in find_files([SCENARIOS])
    ]
    assert len(titles) == len(set(titles))


def test_a_wrong_expectation_in_a_shipped_world_fails(tmp_path: Path) -> None:
    """The shipped scenarios can fail: the same world with the opposite outcome does."""
    source = (SCENARIOS / "routing-friday-1729.toml").read_text(encoding="utf-8")
    broken = source.replace('outcome = "staff_contact"', 'outcome = "pass_to_providers"')
    assert broken != source
    path = tmp_path / "routing-friday-1729-wrong.toml"
    path.write_text(broken, encoding="utf-8")
    [result] = run_paths([path])
    assert not result.passed
    assert exit_status([result]) == 1


@pytest.mark.parametrize("kind", ["sqlite", "csv"])
def test_every_shipped_scenario_passes_on_other_stores(kind: str, tmp_path: Path) -> None:
    from fairproc.scenarios import UrlStores

    url = {"sqlite": f"sqlite:///{tmp_path}/scenarios.db", "csv": f"csv://{tmp_path}/csv"}[kind]
    results = run_paths([SCENARIOS], UrlStores(url))
    assert _failures(results) == []
    assert sum(len(r.expectations) for r in results) >= 200
