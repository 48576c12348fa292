"""Retention: how long a record is kept, weighed in Python and restated as conditions.

A record's retention at ``at`` is weighed from the rules indexed for its source: each rule
keeps it (until a date, or with no date), lets it fall due, or asks for review; the rule
keeping it longest governs (:func:`weigh`). The same verdict is restated as conditions over
records (:func:`due_node`, :func:`review_node`) so that a store can select what is due itself.

Interactions and the fixpoint. A fact that counts record collections as interactions
(``subject.last_interaction``) counts only the records that are not themselves past their
retention due date at ``at`` (reference-policy.md, Events): every answer is the one a store
gives when every sweep has run on time. A record's own collection always counts for its own
retention (otherwise a record alone would lose its only anchor the moment it fell due, and be
kept with no date). Which records count is a fixpoint: start from every record collected by
``at``, drop those overdue, weigh again with the rest, until nothing more falls due
(:meth:`fairproc.world.SubjectHistory.counted`). Fewer records counted never keeps a record
longer, so this finds the largest set that is consistent: the one sweeps running on time leave.

This module is part of the pure core: it imports the model and the condition language, never a
store, the engine or the CLI.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import attrs

from fairproc.conditions import (
    BOOL,
    PERIOD,
    And,
    Call,
    Compare,
    Const,
    In,
    Kind,
    ListOf,
    Node,
    Not,
    Or,
    Ref,
    Shift,
    Type,
    reads,
    render,
)
from fairproc.model import Policy, Record, RetentionRule, derived
from fairproc.values import Value


@attrs.frozen(repr=False)
class RetentionEntry(Value):
    rule: RetentionRule
    action: str  # keep, delete or review
    until: dt.datetime | None  # None with keep: kept with no date


@attrs.frozen(repr=False)
class RetentionResult(Value):
    action: str
    until: dt.datetime | None
    governing: RetentionRule | None
    entries: tuple[RetentionEntry, ...]


class Verdict(NamedTuple):
    """One rule's verdict while weighing. Plain values: a sweep weighs every record, and most
    verdicts are never explained."""

    rule: RetentionRule
    action: str
    until: dt.datetime | None


class Kept(NamedTuple):
    """A record's retention as weighed: the action, its date, the governing rule, and the
    verdicts it was chosen from."""

    action: str
    until: dt.datetime | None
    governing: RetentionRule | None
    verdicts: list[Verdict]


def choose(verdicts: list[Verdict]) -> Kept:
    """The rule keeping the record longest governs; a record only one rule keeps is kept."""
    best: Verdict | None = None
    best_ts = 0.0
    review: RetentionRule | None = None
    for verdict in verdicts:
        rule, action, until = verdict
        if until is None:
            if action == "keep":  # kept with no date: nothing outlasts it
                return Kept("keep", None, rule, verdicts)
            if review is None:
                review = rule
        else:
            # Instants compare as instants: two written in the policy's zone would compare by
            # wall clock, and in the hour the clocks go back repeats that is the wrong order.
            ts = until.timestamp()
            if best is None or ts > best_ts:
                best, best_ts = verdict, ts
    if best is not None:
        if best.action == "keep":
            return Kept("keep", best.until, best.rule, verdicts)
        if review is not None:
            return Kept("review", None, review, verdicts)
        return Kept("delete", best.until, best.rule, verdicts)
    return Kept("review", None, review, verdicts)


def result(kept: Kept) -> RetentionResult:
    return RetentionResult(
        kept.action,
        kept.until,
        kept.governing,
        tuple(RetentionEntry(r, a, u) for r, a, u in kept.verdicts),
    )


def rules_for(policy: Policy, source: str) -> tuple[RetentionRule, ...]:
    """The retention rules weighed for a record of ``source``, in policy order (a source the
    policy does not declare has none)."""
    memo = derived(policy)
    key = ("retention_rules", source)
    found: tuple[RetentionRule, ...] | None = memo.get(key)
    if found is None:
        if source not in policy.sources:
            found = ()
        else:
            found = tuple(
                r
                for r in policy.retention
                if r.applies_to == "records" and (r.sources is None or source in r.sources)
            )
        memo[key] = found
    return found


def weigh(policy: Policy, record: Record, ctx: Any) -> Kept:
    """``record``'s retention at ``ctx.at`` (``ctx``: a :class:`fairproc.world.Ctx` about the
    record), from the rules for its source."""
    verdicts: list[Verdict] = []
    tz, ts = policy.tz, ctx.ts
    for rule in rules_for(policy, record.source):
        if rule.when is not None and not rule.when.evaluate(ctx):
            continue
        if rule.review:
            verdicts.append(Verdict(rule, "review", None))
        elif rule.forever or rule.keep is None or rule.from_ is None:
            verdicts.append(Verdict(rule, "keep", None))
        else:
            anchor = rule.from_.evaluate(ctx)
            if anchor is None:
                verdicts.append(Verdict(rule, "keep", None))
            else:
                until = rule.keep.add_to(anchor, tz)
                verdicts.append(
                    Verdict(rule, "keep" if ts < until.timestamp() else "delete", until)
                )
    return choose(verdicts)


def fixpoint(
    history: Any, at: dt.datetime, dates: list[float] | None = None
) -> tuple[frozenset[str], int]:
    """The records of ``history`` (a :class:`fairproc.world.SubjectHistory`) whose
    collection counts as an interaction at ``at``, and how many passes found them: start from
    every record collected by ``at``, drop those overdue, weigh again with the rest, until a
    pass drops nothing. Fewer records counted never keeps one longer, so this is the largest
    consistent set: the one sweeps running on time leave. ``dates``, when given, receives
    every due date (a timestamp) the passes compared ``at`` with."""
    from fairproc.conditions.vocabulary import Ctx  # read while the world counts interactions

    ts = at.timestamp()
    collected = [r for r in history.records if r.collected_at.timestamp() <= ts]
    counted = frozenset(r.id for r in collected)
    passes = 0
    while counted:
        passes += 1
        history.provisionally(ts, counted)
        overdue = set()
        for r in collected:
            if r.id not in counted:
                continue
            kept = weigh(history.policy, r, Ctx(at, history, r))
            if dates is not None:
                dates.extend(v.until.timestamp() for v in kept.verdicts if v.until is not None)
            if kept.action == "delete":
                overdue.add(r.id)
        if not overdue:
            break
        counted = counted - overdue
    return counted, passes


_SPAN = ("counted", "span")  # the history memo's key for the stretch counted_at last found


def counted_at(history: Any, at: dt.datetime) -> frozenset[str]:
    """:func:`fixpoint`'s records, worked out once per stretch of time over which they cannot
    change (a host asking at ``now``, a new instant every call, asks the same stretch again):
    :func:`counted_span`'s."""
    return counted_span(history, at)[2]


def counted_span(history: Any, at: dt.datetime) -> tuple[float, float, frozenset[str]]:
    """:func:`fixpoint`'s records at ``at``, and the stretch of time ``[start, end)`` (POSIX
    timestamps) about ``at`` over which they are the same.

    When the policy's retention conditions read only the subject's timeline (its events, its
    records, not ``at`` itself nor the suppression list), the fixpoint at ``at`` depends on
    ``at`` only through which events and collections are at or before it, and through each
    comparison of ``at`` with a due date its passes made. Every instant from the latest of those
    moments at or before ``at`` to the earliest after it repeats the same passes exactly, so
    the answer holds there too. Otherwise the stretch is ``at`` alone.
    """
    ts = at.timestamp()
    memo = history.memo
    span = memo.get(_SPAN)
    if span is not None and span[0] <= ts < span[1]:
        found: tuple[float, float, frozenset[str]] = span
        return found
    if not timeline_only(history.policy):
        return ts, math.nextafter(ts, math.inf), fixpoint(history, at)[0]
    dates: list[float] = []
    counted, _ = fixpoint(history, at, dates)
    moments = [e.at.timestamp() for e in history.events]
    moments.extend(r.collected_at.timestamp() for r in history.records)
    moments.extend(dates)
    # an event or collection at ``at`` is already at or before it, as is a due date reached
    start = max((m for m in moments if m <= ts), default=-math.inf)
    end = min((m for m in moments if m > ts), default=math.inf)
    span = memo[_SPAN] = (start, end, counted)
    return span


# What a retention condition may read for :func:`counted_at` to reuse a fixpoint: names and
# functions whose value at an instant follows from the subject's events and records at or
# before it (or from their arguments alone).
TIMELINE_FUNCTIONS = frozenset(
    {"in_office_hours", "local_time", "local_date", "weekday", "objected"}
)


def timeline_only(policy: Policy) -> bool:
    """Whether every record retention rule reads only the subject's timeline."""
    memo = derived(policy)
    found: bool | None = memo.get("retention_timeline_only")
    if found is None:
        allowed = {
            "subject.id",
            "subject.restricted",
            "record.id",
            "record.subject",
            "record.source",
            "record.collected_at",
            "record.categories",
            "record.resolved_at",
            "record.erased_at",
            *(f.name for f in policy.facts.values()),
        }
        found = all(
            n.name in allowed if isinstance(n, Ref) else n.func in TIMELINE_FUNCTIONS
            for rule in policy.retention
            if rule.applies_to == "records"
            for cond in (rule.when, rule.from_)
            if cond is not None
            for n in reads(cond.node)
            if isinstance(n, Ref | Call)
        )
        memo["retention_timeline_only"] = found
    return found


def collection_facts(policy: Policy) -> frozenset[str]:
    """The names (``subject.<id>``) of the facts that count record collections."""
    return frozenset(f"subject.{f.id}" for f in policy.facts.values() if f.collections)


def reads_collections(policy: Policy, rule: RetentionRule) -> bool:
    """Whether ``rule`` reads a fact that counts record collections."""
    names = collection_facts(policy)
    return any(
        isinstance(n, Ref) and n.name in names
        for cond in (rule.when, rule.from_)
        if cond is not None
        for n in reads(cond.node)
    )


def collection_passes(policy: Policy) -> int:
    """How many passes find which records count as interactions, at most: one, and one more
    for each group of sources (the same rules) whose retention reads such a fact. Within a
    group every counted record reads the same facts, so each pass after the first either
    drops a whole group of a subject's records or changes nothing."""
    groups = sum(
        1 for _, rules in source_groups(policy) if any(reads_collections(policy, r) for r in rules)
    )
    return 1 + groups


# --- the retention rules as conditions over records --------------------------------------------
#
# For a record, each retention rule weighed for its source is one of: a review rule, a rule
# keeping with no date (``forever``, or no ``keep`` or ``from``), or a dated rule (``keep``
# counted ``from`` an anchor). :func:`weigh` then says:
#
# * keep, when a rule keeping with no date applies, or a dated rule whose anchor is missing
#   (kept with no date), or a dated rule whose date is still ahead;
# * otherwise delete, when some dated rule applies and no review rule does;
# * otherwise review (no rule applies, or a review rule does).
#
# A dated rule is "settled" when it does not apply or its date has passed: ``at >= anchor +
# keep`` is false when the anchor is missing, so a settled rule never keeps. Then
#
#     due    = no undated rule applies and every dated rule is settled and some dated rule
#              applies and no review rule applies
#     review = no keeping rule applies and every dated rule is settled and (no dated rule
#              applies or some review rule does)
#
# A source the policy does not declare has no rules (the engine indexes rules by declared
# source): its records are never due, always for review.

TRUE = Const(True, BOOL)
FALSE = Const(False, BOOL)


def is_dated(rule: RetentionRule) -> bool:
    return not rule.review and not rule.forever and rule.keep is not None and rule.from_ is not None


def source_groups(policy: Policy) -> tuple[tuple[tuple[str, ...], tuple[RetentionRule, ...]], ...]:
    """The policy's sources grouped by the retention rules weighed for them (in policy order):
    one condition per group rather than per source."""
    groups: dict[tuple[str, ...], list[str]] = {}
    rules: dict[tuple[str, ...], tuple[RetentionRule, ...]] = {}
    for source in policy.sources:
        found = rules_for(policy, source)
        key = tuple(r.id for r in found)
        groups.setdefault(key, []).append(source)
        rules[key] = found
    return tuple((tuple(sources), rules[key]) for key, sources in groups.items())


def all_of(items: Sequence[Node]) -> Node:
    if any(i == FALSE for i in items):
        return FALSE
    rest = [i for i in items if i != TRUE]
    return TRUE if not rest else rest[0] if len(rest) == 1 else And(tuple(rest))


def any_of(items: Sequence[Node]) -> Node:
    if any(i == TRUE for i in items):
        return TRUE
    rest = [i for i in items if i != FALSE]
    return FALSE if not rest else rest[0] if len(rest) == 1 else Or(tuple(rest))


def not_of(node: Node) -> Node:
    return FALSE if node == TRUE else TRUE if node == FALSE else Not(node)


def applies(rule: RetentionRule) -> Node:
    return TRUE if rule.when is None else rule.when.node


def passed(rule: RetentionRule) -> Node:
    """``at >= anchor + keep``: false when the anchor is missing."""
    assert rule.from_ is not None and rule.keep is not None
    return Compare(">=", Ref("at"), Shift("+", rule.from_.node, Const(rule.keep, PERIOD)))


def settled(rules: Sequence[RetentionRule]) -> Node:
    """No rule of ``rules`` keeps: no undated one applies and every dated one has passed."""
    return all_of(
        [
            any_of([not_of(applies(r)), passed(r)]) if is_dated(r) else not_of(applies(r))
            for r in rules
        ]
    )


def group_due(rules: Sequence[RetentionRule]) -> Node:
    dated = [r for r in rules if is_dated(r)]
    others = [r for r in rules if not is_dated(r)]  # review and undated: neither may apply
    return all_of(
        [settled(rules), *(not_of(applies(r)) for r in others), any_of(list(map(applies, dated)))]
    )


def group_review(rules: Sequence[RetentionRule]) -> Node:
    keeping = [r for r in rules if not r.review]
    dated = [r for r in rules if is_dated(r)]
    reviews = [r for r in rules if r.review]
    return all_of(
        [
            settled(keeping),
            any_of(
                [
                    all_of([not_of(applies(r)) for r in dated]),
                    any_of([applies(r) for r in reviews]),
                ]
            ),
        ]
    )


def source_in(sources: Sequence[str], negated: bool = False) -> Node:
    items = tuple(Const(s, Type(Kind.STRING, "source")) for s in sources)
    return In(Ref("record.source"), ListOf(items), negated)


def by_group(policy: Policy, of_group: Callable[[Sequence[RetentionRule]], Node]) -> Node:
    parts = [
        all_of([source_in(sources), holds])
        for sources, rules in source_groups(policy)
        if (holds := of_group(rules)) != FALSE
    ]
    undeclared = of_group(())  # what a record of a source the policy does not declare gets
    if undeclared != FALSE:
        parts.append(all_of([source_in(list(policy.sources), negated=True), undeclared]))
    return any_of(parts)


def due_node(policy: Policy) -> Node:
    """:func:`due_condition` as a condition tree."""
    return by_group(policy, group_due)


class DuePart(NamedTuple):
    """One part of :func:`due_node`: ``all_of([records, holds])``."""

    records: Node
    """Which records the part is about: a selection by source."""
    holds: Node
    """When such a record is due."""


class DueParts(NamedTuple):
    """:func:`due_node` cut in two: its parts are those of ``due_node``, each in one of them."""

    fixed: tuple[DuePart, ...]
    """The groups of sources whose retention reads no fact counting collections, and sources
    the policy does not declare: the same at every pass of the interactions fixpoint. Their
    ``records`` select disjoint sets of records."""
    moving: Node
    """The groups whose retention reads such a fact (FALSE when there is none)."""
    moving_sources: tuple[str, ...]
    """The sources of those groups: ``moving`` holds only for records of these."""


def due_parts(policy: Policy) -> DueParts:
    """:func:`due_node` as the part each pass of the fixpoint must ask again and the part it
    need not (a store computing the passes one by one computes the fixed part once, each
    of its parts over its own records)."""
    fixed: list[DuePart] = []
    moving: list[Node] = []
    sources: list[str] = []
    for group, rules in source_groups(policy):
        holds = group_due(rules)
        if holds == FALSE:
            continue
        if any(reads_collections(policy, r) for r in rules):
            moving.append(all_of([source_in(group), holds]))
            sources.extend(group)
        else:
            fixed.append(DuePart(source_in(group), holds))
    undeclared = group_due(())  # a source the policy does not declare has no rules
    if undeclared != FALSE:
        fixed.append(DuePart(source_in(list(policy.sources), negated=True), undeclared))
    return DueParts(tuple(fixed), any_of(moving), tuple(sources))


def review_node(policy: Policy) -> Node:
    """:func:`review_condition` as a condition tree."""
    return by_group(policy, group_review)


def due_condition(policy: Policy) -> str:
    """A condition over records (:data:`~fairproc.storage.RECORDS_CONTEXT`) that holds exactly
    when ``Engine.retention_result(record, at).action == "delete"``: derived from the policy's
    retention rules, one part per group of sources with the same rules."""
    return render(due_node(policy))


def review_condition(policy: Policy) -> str:
    """A condition over records that holds exactly when the record's retention at ``at`` is
    ``review``."""
    return render(review_node(policy))


def forecast(policy: Policy, history: Any, record: Record, at: dt.datetime, kept: Kept) -> Any:
    """When ``record``, kept at ``at`` (``kept``), stops being kept if nothing new happens:
    ``kept.until``, or sooner where the interaction that keeps it that long is the collection
    of a record that falls due first (from then on it no longer counts). None: kept with no
    date. ``history``: the subject's :class:`fairproc.world.SubjectHistory`."""
    from fairproc.conditions.vocabulary import Ctx  # read while the world counts interactions

    until = kept.until
    if kept.action != "keep" or until is None:
        return until
    if not any(reads_collections(policy, r) for r in rules_for(policy, record.source)):
        return until
    t = at
    while True:
        counted = history.counted(Ctx(t, history, record))
        step: dt.datetime | None = None
        for other in history.records:
            if other.id == record.id or other.id not in counted:
                continue
            theirs = weigh(policy, other, Ctx(t, history, other))
            due = theirs.until
            if (
                theirs.action == "keep"
                and due is not None
                and due.timestamp() < until.timestamp()
                and (step is None or due.timestamp() < step.timestamp())
            ):
                step = due
        if step is None:
            return until
        t = step
        now = weigh(policy, record, Ctx(t, history, record))
        if now.action != "keep":
            return t  # it fell due, or to review, the moment that collection stopped counting
        if now.until is None:
            return None
        until = now.until
