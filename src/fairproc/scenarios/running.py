"""Running scenarios: each expectation asked of the engine (:data:`fairproc.scenarios.asks.ASKS`)
in file order, its outcome and checks compared, the results collected for reports and the
CLI's exit status.

Imports the engine, the asks, the reader and the store set-up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from fairproc.decisions import Decision
from fairproc.engine import DecisionLogger, Engine
from fairproc.errors import FairprocError, InputError, Problem, ProblemsError
from fairproc.model import Policy, Reaction
from fairproc.scenarios.asks import ASKS
from fairproc.scenarios.reading import (
    Expectation,
    Scenario,
    find_files,
    load_scenario,
    plain_value,
)
from fairproc.scenarios.stores import ReleasingFactory, StoreFactory, memory_store
from fairproc.values import Value
from fairproc.world import HistorySource


@attrs.frozen(repr=False)
class ExpectationResult(Value):
    expectation: Expectation
    passed: bool
    expected: Mapping[str, Any]
    actual: Mapping[str, Any]
    decision: Decision | None = None
    error: str | None = None

    @property
    def explanation(self) -> str:
        if self.decision is not None:
            return self.decision.explain()
        return self.error or ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ask": self.expectation.ask,
            "name": self.expectation.name,
            "line": self.expectation.line,
            "passed": self.passed,
            "expected": dict(self.expected),
            "actual": dict(self.actual),
            "explanation": self.decision.to_dict()["explanation"] if self.decision else [],
        }
        if self.error:
            out["error"] = self.error
        return out


@attrs.frozen(repr=False)
class ScenarioResult(Value):
    file: str
    title: str
    expectations: tuple[ExpectationResult, ...] = ()
    problems: tuple[Problem, ...] = ()  # the file could not be read
    policy: Policy | None = attrs.field(default=None, eq=False, repr=False)
    # the scenario as read (its world before any expectation ran), for reports that show it
    scenario: Scenario | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def passed(self) -> bool:
        return not self.problems and all(e.passed for e in self.expectations)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "title": self.title,
            "passed": self.passed,
            "expectations": [e.to_dict() for e in self.expectations],
        }
        if self.problems:
            out["errors"] = [str(p) for p in self.problems]
        return out


def run_scenario(
    scenario: Scenario,
    store_factory: StoreFactory = memory_store,
    log: DecisionLogger | None = None,
) -> ScenarioResult:
    return ScenarioResult(
        scenario.file,
        scenario.title,
        tuple(iter_results(scenario, store_factory, log)),
        policy=scenario.policy,
        scenario=scenario,
    )


def iter_results(
    scenario: Scenario,
    store_factory: StoreFactory = memory_store,
    log: DecisionLogger | None = None,
) -> Iterator[ExpectationResult]:
    """Run the expectations in file order (a request changes the world for those after it);
    ``log``: where the engine logs its decisions (:mod:`fairproc.decision_log`)."""
    store = store_factory(scenario)
    engine = Engine(scenario.policy, store, log=log, law=scenario.law)
    try:
        for exp in scenario.expectations:
            yield run_expectation(engine, engine.store, exp)
    finally:
        if isinstance(store_factory, ReleasingFactory):
            store_factory.release(store)


def run_expectation(engine: Engine, store: HistorySource, exp: Expectation) -> ExpectationResult:
    expected = exp.expected()
    try:
        decision, actual_extra = _ask(engine, exp)
    except FairprocError as exc:
        return ExpectationResult(exp, False, expected, {}, None, str(exc))
    actual: dict[str, Any] = {}
    passed = True
    if exp.outcome is not None:
        actual["outcome"] = decision.outcome if decision else None
        passed = passed and actual["outcome"] == exp.outcome
    for key, want in exp.checks.items():
        got = actual_extra[key] if key in actual_extra else _actual(decision, key)
        actual[key] = plain_value(got)
        passed = passed and _matches(key, want, got)
    return ExpectationResult(exp, passed, expected, actual, decision)


def _ask(engine: Engine, exp: Expectation) -> tuple[Decision | None, dict[str, Any]]:
    ask = ASKS.get(exp.ask)
    if ask is None:  # pragma: no cover - checked on read
        raise InputError.one(f"unknown ask {exp.ask!r}")
    return ask.ask(engine, exp.params, exp.at)


def _actual(decision: Decision | None, key: str) -> Any:
    if decision is None:
        return None
    if key == "rules":
        return decision.rules
    if key == "findings":
        return tuple(f.code for f in decision.findings)
    return getattr(decision, key, None)


def _matches(key: str, want: Any, got: Any) -> bool:
    if key in ("rules", "reasons", "findings"):
        return got is not None and set(want) <= set(got)
    if isinstance(want, tuple):
        return got is not None and set(want) == set(got)
    if isinstance(want, dt.datetime):
        return isinstance(got, dt.datetime) and got == want
    return bool(want == got)


def run_paths(
    paths: Iterable[str | Path],
    store_factory: StoreFactory = memory_store,
    log: DecisionLogger | None = None,
    law: str | None = None,
) -> list[ScenarioResult]:
    """Run every scenario file under ``paths``; unreadable files become results with problems.

    ``law``: run every scenario beneath this law layer, whatever its file says."""
    results = []
    for path in find_files(paths):
        try:
            scenario = load_scenario(path)
        except ProblemsError as exc:
            results.append(ScenarioResult(str(path), "(not run)", problems=exc.problems))
            continue
        except FairprocError as exc:
            results.append(
                ScenarioResult(
                    str(path), "(not run)", problems=(Problem(str(exc), file=str(path)),)
                )
            )
            continue
        if law is not None:
            scenario = attrs.evolve(scenario, law=law)
        try:
            results.append(run_scenario(scenario, store_factory, log))
        except ProblemsError as exc:
            # Data the store cannot keep (NaN or infinity on a SQL or CSV store): this file
            # fails, named, and the run goes on to the next.
            results.append(
                ScenarioResult(
                    str(path),
                    scenario.title,
                    problems=tuple(
                        attrs.evolve(
                            p, file=str(path), message=f"cannot be put in the store: {p.message}"
                        )
                        if p.file is None
                        else p
                        for p in exc.problems
                    ),
                )
            )
    return results


def exit_status(results: Sequence[ScenarioResult]) -> int:
    """0 every expectation passed; 1 some failed; 2 a file could not be read."""
    if any(r.problems for r in results):
        return 2
    return 0 if all(r.passed for r in results) else 1


def coverage(results: Sequence[ScenarioResult]) -> dict[str, dict[str, bool]]:
    """For each policy run: every rule id, and whether some passing expectation cited it."""
    out: dict[str, dict[str, bool]] = {}
    for result in results:
        if result.policy is None:
            continue
        # Reactions answer arrivals, not questions: the reactive engine's tests cover them.
        questions = [
            r for r, rule in result.policy.rule_index().items() if not isinstance(rule, Reaction)
        ]
        table = out.setdefault(result.policy.id, dict.fromkeys(questions, False))
        for e in result.expectations:
            if e.passed and e.decision is not None:
                for rule in e.decision.rules:
                    if rule in table:
                        table[rule] = True
    return out
