"""Assertions about decisions whose failure message is the decision's explanation.

A failed ``assert decision.outcome == "allowed"`` says ``'denied' != 'allowed'`` and nothing
about why. These helpers raise :class:`DecisionAssertionError` (an ``AssertionError``) whose
message says what was expected and then gives :meth:`fairproc.Decision.explain`: the outcome,
every rule that took part, the facts it read and the notice's words behind it.

>>> import datetime as dt
>>> from fairproc import Engine, Record, World, load_policy
>>> from fairproc.testing import assert_denied
>>> at = dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC)
>>> engine = Engine(load_policy("flexioffices"), World([Record("r1", "ada", "phone_call", at)]))
>>> decision = engine.may_process("r1", "marketing_updates", at)
>>> assert_denied(decision, reasons=["purpose_not_declared"]) is decision
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from fairproc.clock import parse_instant
from fairproc.decisions import Decision
from fairproc.model import Policy

__all__ = [
    "DecisionAssertionError",
    "assert_allowed",
    "assert_cites_known_rules",
    "assert_denial_explained",
    "assert_denied",
    "assert_outcome",
]


class DecisionAssertionError(AssertionError):
    """A decision was not what a test expected. ``str(error)`` ends with its explanation."""

    def __init__(self, problems: Iterable[str], decision: Decision):
        self.problems = tuple(problems)
        self.decision = decision
        head = "\n".join(self.problems)
        super().__init__(f"{head}\n\n{decision.explain()}")


_UNSET: Any = object()


def _instant(value: dt.datetime | str, what: str) -> dt.datetime:
    return parse_instant(value, what)


def _codes(values: str | Iterable[str]) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "none"
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _check(
    decision: Decision,
    outcome: str | None,
    *,
    basis: str | None = _UNSET,
    until: dt.datetime | str | None = _UNSET,
    due: dt.datetime | str | None = _UNSET,
    categories: Iterable[str] | None = _UNSET,
    reasons: str | Iterable[str] = (),
    findings: str | Iterable[str] = (),
    rules: str | Iterable[str] = (),
    failed: str | Iterable[str] = (),
) -> list[str]:
    problems: list[str] = []
    name = decision.question
    if outcome is not None and decision.outcome != outcome:
        problems.append(
            f"expected {name} to be {outcome.upper()}, but it is {decision.outcome.upper()}"
        )
    if basis is not _UNSET and decision.basis != basis:
        problems.append(f"expected basis {basis}, got {decision.basis}")
    for key, want in (("until", until), ("due", due)):
        if want is _UNSET:
            continue
        got: dt.datetime | None = getattr(decision, key)
        expected = None if want is None else _instant(want, key)
        # Instants compare as instants: the same moment written with another offset is equal.
        same = (
            got is None
            if expected is None
            else (got is not None and got.timestamp() == expected.timestamp())
        )
        if not same:
            problems.append(f"expected {key} {_when(expected)}, got {_when(got)}")
    if categories is not _UNSET:
        want_set = None if categories is None else set(categories)
        got_set = None if decision.categories is None else set(decision.categories)
        if want_set != got_set:
            problems.append(
                f"expected categories {sorted(want_set) if want_set is not None else None}, "
                f"got {sorted(got_set) if got_set is not None else None}"
            )
    for key, wanted, present in (
        ("reason", _codes(reasons), set(decision.reasons)),
        ("finding", _codes(findings), {f.code for f in decision.findings}),
        ("rule", _codes(rules), set(decision.rules)),
        ("failed rule", _codes(failed), {c.rule for c in decision.failed}),
    ):
        missing = [w for w in wanted if w not in present]
        if missing:
            problems.append(
                f"expected {key}{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"among: {', '.join(sorted(present)) or 'none'}"
            )
    return problems


def assert_outcome(
    decision: Decision,
    outcome: str | None = None,
    *,
    basis: str | None = _UNSET,
    until: dt.datetime | str | None = _UNSET,
    due: dt.datetime | str | None = _UNSET,
    categories: Iterable[str] | None = _UNSET,
    reasons: str | Iterable[str] = (),
    findings: str | Iterable[str] = (),
    rules: str | Iterable[str] = (),
    failed: str | Iterable[str] = (),
) -> Decision:
    """Check ``decision`` the way a scenario expectation does, and return it.

    Only what is given is checked: ``outcome`` exactly; ``basis``, ``until``, ``due`` (an aware
    datetime or an ISO 8601 string with an offset; compared as instants) and ``categories``
    (as a set) exactly; ``reasons``, ``findings``, ``rules`` (took part) and ``failed`` (took
    part and failed) pass when each code listed is present.
    """
    __tracebackhide__ = True
    problems = _check(
        decision,
        outcome,
        basis=basis,
        until=until,
        due=due,
        categories=categories,
        reasons=reasons,
        findings=findings,
        rules=rules,
        failed=failed,
    )
    if problems:
        raise DecisionAssertionError(problems, decision)
    return decision


def assert_allowed(
    decision: Decision,
    *,
    basis: str | None = _UNSET,
    categories: Iterable[str] | None = _UNSET,
    rules: str | Iterable[str] = (),
) -> Decision:
    """``decision`` is ``allowed`` (with ``basis``, ``categories`` and ``rules`` if given)."""
    __tracebackhide__ = True
    return assert_outcome(decision, "allowed", basis=basis, categories=categories, rules=rules)


def assert_denied(
    decision: Decision,
    *,
    reasons: str | Iterable[str] = (),
    rules: str | Iterable[str] = (),
    findings: str | Iterable[str] = (),
) -> Decision:
    """``decision`` is ``denied``; each of ``reasons`` is among its reasons, and each of
    ``rules`` is among the rules that failed."""
    __tracebackhide__ = True
    return assert_outcome(decision, "denied", reasons=reasons, failed=rules, findings=findings)


def assert_denial_explained(decision: Decision) -> Decision:
    """A ``denied`` decision names at least one rule that failed (any other passes)."""
    __tracebackhide__ = True
    if decision.outcome == "denied" and not decision.failed:
        raise DecisionAssertionError(
            [f"{decision.question} is DENIED but names no rule that failed"], decision
        )
    return decision


def assert_cites_known_rules(decision: Decision, policy: Policy) -> Decision:
    """Every rule the decision's explanation cites is a rule of ``policy``."""
    __tracebackhide__ = True
    known = policy.rule_index()
    unknown = [rule for rule in decision.rules if rule not in known]
    if unknown:
        raise DecisionAssertionError(
            [f"the explanation cites rules that {policy.id} does not have: {', '.join(unknown)}"],
            decision,
        )
    return decision
