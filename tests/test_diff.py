"""`fairproc diff`: the decisions two versions of a policy take differently, and only those.

The new version is the shipped policy with one retention period changed (cookie data kept 6
months, not 12) and one purpose removed (call recording for training and monitoring).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fairproc import Engine, load_policy
from fairproc.cli import main
from fairproc.decisions import Decision
from fairproc.diff import (
    PolicyDiff,
    _smaller_worlds,
    compare,
    diff_policies,
    generated_cases,
    questions,
    render_markdown,
)
from fairproc.errors import FairprocError
from fairproc.model import Policy

SHIPPED = Path(__file__).resolve().parent.parent / "rules" / "flexioffices"
SCENARIOS = SHIPPED / "scenarios"
REMOVED = "call_training_monitoring"
CHANGED = "retention.cookies"
WORLDS, SEED = 30, 7


@pytest.fixture(scope="module")
def new_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    folder = tmp_path_factory.mktemp("policy") / "flexioffices-1.1"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("scenarios"))
    retention = folder / "retention.toml"
    text = retention.read_text(encoding="utf-8")
    assert text.count('keep = "P12M"') == 1
    retention.write_text(text.replace('keep = "P12M"', 'keep = "P6M"'), encoding="utf-8")
    purposes = folder / "purposes.toml"
    text = purposes.read_text(encoding="utf-8")
    start = text.index(f"[purpose.{REMOVED}]")
    end = text.index("\n[purpose.", start) + 1  # the next purpose's own table
    purposes.write_text(text[:start] + text[end:], encoding="utf-8")
    policy = folder / "policy.toml"
    policy.write_text(policy.read_text().replace('version = "1.0"', 'version = "1.1"'), "utf-8")
    return load_policy(folder)


@pytest.fixture(scope="module")
def old_policy() -> Policy:
    return load_policy("flexioffices")


@pytest.fixture(scope="module")
def result(old_policy: Policy, new_policy: Policy) -> PolicyDiff:
    return diff_policies(old_policy, new_policy, scenarios=[SCENARIOS], worlds=WORLDS, seed=SEED)


def _said(decision: Decision) -> dict[str, Any]:
    """What a decision says, as its own JSON gives it, less the explanation."""
    out = decision.to_dict()
    for key in ("explanation", "rules"):
        out.pop(key)
    return out


def _answer(engine: Engine, ask: Any) -> tuple[dict[str, Any] | str, Decision | None]:
    try:
        decision = ask(engine)
    except FairprocError as exc:
        return f"error: {exc}", None
    return _said(decision), decision


def test_it_lists_exactly_the_generated_decisions_that_change(
    result: PolicyDiff, old_policy: Policy, new_policy: Policy
) -> None:
    # The worlds the diff generated, asked again here, compared by each decision's own JSON.
    cases = result.cases
    assert len(cases) == WORLDS
    half = (WORLDS + 1) // 2
    again = generated_cases(old_policy, SEED, half) + generated_cases(
        new_policy, SEED, WORLDS - half
    )
    assert [(repr(w), t) for w, t in again] == [(repr(w), t) for w, t in cases]
    expected = set()
    for n, (world, times) in enumerate(cases):
        old, new = Engine(old_policy, world), Engine(new_policy, world)
        for at in times:
            for ask in questions(old_policy, new_policy, world, at):
                before, d_old = _answer(old, ask)
                after, d_new = _answer(new, ask)
                if before == after:
                    continue
                expected.add((f"generated world {n}", ask))
                # nothing else: every change is about the removed purpose or cites the
                # changed retention rule
                cited = {*(d_old.rules if d_old else ()), *(d_new.rules if d_new else ())}
                assert ask.params.get("purpose") == REMOVED or CHANGED in cited, ask
    listed = {(c.origin, c.ask) for c in result.changes if c.origin.startswith("generated")}
    assert listed == expected
    assert len(expected) > 50
    assert {g.rule for g in result.groups} == {f"purpose.{REMOVED}", CHANGED}


def test_it_lists_exactly_the_scenario_decisions_that_change(result: PolicyDiff) -> None:
    listed = sorted(
        (c.origin.replace(str(SCENARIOS) + "/", ""), c.rules)
        for c in result.changes
        if not c.origin.startswith("generated")
    )
    removed, changed = (f"purpose.{REMOVED}",), (CHANGED,)
    cookies, february = "retention-cookies-12-months.toml", "retention-29-february.toml"
    assert listed == [
        # the scenario files that ask about the removed purpose no longer load
        ("li-window-not-interactions.toml", removed),
        ("objection-without-purpose.toml", removed),
        ("purpose-call-recording.toml", removed),
        ("purpose-multiquote-and-live-chat.toml", removed),
        # cookie data is due after 6 months: these retention answers and a sweep change
        (f"{february}: expect[0] Cookie data: 12 months from 29 Feb 2024 is 28 Feb 2025", changed),
        (f"{february}: expect[1] retention visit", changed),
        (f"{february}: expect[2] retention visit", changed),
        (f"{cookies}: expect[0] The day before the anniversary", changed),
        (f"{cookies}: expect[1] On the anniversary", changed),
        (f"{cookies}: expect[2] The day after", changed),
        (f"{cookies}: expect[3] 12:00 London time a year on is 11:00 UTC in summer time", changed),
        (f"{cookies}: expect[4] retention before-bst", changed),
        (f"{cookies}: expect[5] retention before-bst", changed),
        (
            "retention-letting-10-years.toml: expect[3] Before the letting, the cookie rule alone "
            "dates the visit data: January 2023",
            changed,
        ),
        (
            "retention-overdue-is-no-interaction.toml: expect[0] The cookie data fell due "
            "after 12 months",
            changed,
        ),
        ("retention-sweep.toml: expect[0] Early 2026: nothing due yet", changed),
    ]
    # each file that no longer loads names the removed purpose
    for change in result.changes:
        if change.ask is None:
            assert REMOVED in change.new["file"] and change.old == {"file": "loads"}


def test_each_group_has_a_minimal_example(
    result: PolicyDiff, old_policy: Policy, new_policy: Policy
) -> None:
    for group in result.groups:
        example = group.example
        assert example is not None and example.world is not None and example.ask is not None
        world, ask = example.world, example.ask
        # the example shows the change ...
        found = compare(Engine(old_policy, world), Engine(new_policy, world), [ask], "check")
        assert found and found[0].rules == example.rules == tuple(group.rule.split(", "))
        # ... and no smaller world does
        for smaller in _smaller_worlds(world, ask.params.get("record")):
            again = compare(Engine(old_policy, smaller), Engine(new_policy, smaller), [ask], "")
            assert not again or again[0].rules != example.rules
    by_rule = {g.rule: g.example for g in result.groups}
    retention = by_rule[CHANGED]
    assert retention is not None and retention.world is not None
    assert [r.source for r in retention.world.records] == ["website_visit"]


def test_the_same_policy_changes_nothing_and_a_run_is_repeatable(old_policy: Policy) -> None:
    same = diff_policies(old_policy, old_policy, scenarios=[SCENARIOS], worlds=10, seed=SEED)
    assert same.groups == () and same.checked["questions"] > 500
    assert "No decision changes" in render_markdown(same)


def test_a_run_is_repeatable_from_its_seed(new_policy: Policy) -> None:
    """Two fresh processes with the same seed list the same changes, examples and all."""
    command = [sys.executable, "-m", "fairproc.cli", "diff", "flexioffices", str(new_policy.path)]
    command += ["--worlds", "12", "--seed", "3", "--format", "json"]
    runs = [subprocess.run(command, capture_output=True, text=True, check=False) for _ in "ab"]
    assert [r.returncode for r in runs] == [1, 1], runs[0].stderr
    first, second = (json.loads(r.stdout) for r in runs)
    assert first == second and first["changed"] > 0


def test_cli_diff_markdown_and_json(tmp_path: Path, new_policy: Policy, result: PolicyDiff) -> None:
    runner = CliRunner()
    args = ["diff", "flexioffices", str(new_policy.path), "--worlds", str(WORLDS)]
    args += ["--seed", str(SEED)]
    as_json = runner.invoke(main, [*args, "--format", "json"])
    assert as_json.exit_code == 1, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["changed"] == len(result.changes)  # the shipped scenarios are OLD's, by default
    assert doc["old"]["version"] == "1.0" and doc["new"]["version"] == "1.1"
    assert [g["rule"] for g in doc["groups"]] == [f"purpose.{REMOVED}", CHANGED]
    assert all("example" in g and g["example"]["world"]["records"] for g in doc["groups"])
    out = tmp_path / "diff.md"
    as_md = runner.invoke(main, [*args, "-o", str(out)])
    assert as_md.exit_code == 1
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Policy diff: flexioffices 1.0 → flexioffices 1.1")
    assert f"## `{CHANGED}`:" in text and "Minimal example:" in text
    same = runner.invoke(main, ["diff", "flexioffices", "flexioffices", "--worlds", "3"])
    assert same.exit_code == 0 and "No decision changes" in same.output
    bad = runner.invoke(main, ["diff", "flexioffices", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2
