"""The policy's vocabulary: what each kind of rule may read (:data:`CONTEXTS`), the question a
condition is evaluated for (:class:`Ctx`), and the names and functions of a policy with how a
question gives each value (:func:`vocabulary`): ``at``, ``record.*``, ``subject.*`` (the
policy's facts, read from a :class:`~fairproc.world.SubjectHistory`), ``purpose``, ``basis``,
``recipient``, and the calendar functions.

Imports the model and the clock; the world only for its types. Not imported by
:mod:`fairproc.conditions` itself: the model imports that package, and this module the model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fairproc.clock import WEEKDAYS, OfficeHours, to_local
from fairproc.conditions import (
    BOOL,
    DATE,
    INSTANT,
    NUMBER,
    STRING,
    TIME,
    Function,
    Kind,
    Name,
    Type,
    Vocabulary,
)
from fairproc.model import (
    BASES,
    Event,
    Fact,
    Policy,
    Record,
    derived,
)

if TYPE_CHECKING:
    from fairproc.world import SubjectHistory


class Ctx:
    """The question a rule's condition is evaluated for."""

    __slots__ = (
        "at",
        "basis",
        "court_order",
        "event",
        "history",
        "purpose",
        "recipient",
        "record",
        "ts",
    )

    def __init__(
        self,
        at: dt.datetime,
        history: SubjectHistory,
        record: Record | None = None,
        purpose: str | None = None,
        basis: str | None = None,
        recipient: str | None = None,
        court_order: bool = False,
        event: Event | None = None,
    ):
        self.at = at
        self.event = event
        self.ts = at.timestamp()
        self.history = history
        self.record = record
        self.purpose = purpose
        self.basis = basis
        self.recipient = recipient
        self.court_order = court_order


# What each kind of rule can read. The loader checks conditions against these.
CONTEXTS = {
    "grant": ("record", "purpose"),
    "processing": ("record", "purpose", "basis"),
    "routing": ("record",),
    "sharing": ("record", "recipient", "court_order"),
    "retention": ("record",),
    "subject": (),
    # reactions: what arrives (a record collected, or an event) is what the condition reads
    "reaction_record": ("record",),
    "reaction_event": ("event",),
}


def _record_fact(fact: Fact) -> Name:
    kinds = fact.latest or ()

    def latest(c: Ctx) -> dt.datetime | None:
        assert c.record is not None  # a record context
        return c.history.record_latest(c.record.id, kinds, c.ts)

    return Name(fact.name, INSTANT, fact.clause, latest)


def _getter(attr: str) -> Any:
    def get(ctx: Ctx) -> Any:
        return getattr(ctx.record, attr)

    return get


def vocabulary(policy: Policy, context: str) -> Vocabulary:
    """The names and functions a condition in ``context`` may use, with their accessors
    (made once per policy and context)."""
    memo = derived(policy)
    found = memo.get(("vocabulary", context))
    if found is None:
        found = memo[("vocabulary", context)] = _vocabulary(policy, context)
    return found


def _vocabulary(policy: Policy, context: str) -> Vocabulary:
    parts = CONTEXTS[context]
    tz = policy.tz
    hours: OfficeHours | None = policy.info.office_hours
    names: dict[str, Name] = {
        "at": Name("at", INSTANT, "the instant the question is asked for", lambda c: c.at),
        "subject.id": Name("subject.id", STRING, "the subject's id", lambda c: c.history.subject),
        "subject.suppressed": Name(
            "subject.suppressed",
            BOOL,
            "the subject has unsubscribed, objected to marketing or been erased",
            lambda c: c.history.suppressed(c.ts),
        ),
        "subject.restricted": Name(
            "subject.restricted",
            BOOL,
            "a restriction of processing (Art 18) is in force",
            lambda c: c.history.restricted(c.ts),
        ),
    }
    for fact in policy.facts.values():
        name = fact.name
        if fact.of_record:
            if "record" in parts and fact.latest is not None:
                names[name] = _record_fact(fact)
            continue
        if fact.latest is not None:
            kinds = fact.latest

            def latest(c: Ctx, kinds: Sequence[str] = kinds) -> dt.datetime | None:
                return c.history.latest(kinds, c.ts)

            def latest_interaction(c: Ctx, kinds: Sequence[str] = kinds) -> dt.datetime | None:
                return c.history.latest_interaction(kinds, c)

            getter = latest_interaction if fact.collections else latest
            names[name] = Name(name, INSTANT, fact.clause, getter, per_record=fact.collections)
        else:
            kinds = fact.latest_of or ()

            def latest_of(c: Ctx, kinds: Sequence[str] = kinds) -> str | None:
                return c.history.latest_of(kinds, c.ts)

            names[name] = Name(name, Type(Kind.STRING, "event"), fact.clause, latest_of)
    if "record" in parts:
        names.update(
            {
                "record.id": Name("record.id", STRING, "the record's id", _getter("id")),
                "record.subject": Name(
                    "record.subject", STRING, "the record's subject", _getter("subject")
                ),
                "record.source": Name(
                    "record.source",
                    Type(Kind.STRING, "source"),
                    "where the record was collected",
                    _getter("source"),
                ),
                "record.collected_at": Name(
                    "record.collected_at",
                    INSTANT,
                    "when the record was collected",
                    _getter("collected_at"),
                ),
                "record.categories": Name(
                    "record.categories",
                    Type(Kind.SET, "category"),
                    "the categories of data the record holds",
                    lambda c: c.record.categories,
                ),
                "record.suppressed": Name(
                    "record.suppressed",
                    BOOL,
                    "the record's email address is on the suppression list (whoever gave it)",
                    lambda c: c.history.record_suppressed(c.record, c.ts),
                ),
                "record.resolved_at": Name(
                    "record.resolved_at",
                    INSTANT,
                    "when the enquiry the record holds was resolved",
                    lambda c: c.history.record_event_at(c.record.id, "resolve", c.ts),
                ),
                "record.erased_at": Name(
                    "record.erased_at",
                    INSTANT,
                    "when the record was erased (the latest event naming it with effect erase)",
                    lambda c: c.history.record_event_at(c.record.id, "erase", c.ts),
                ),
            }
        )
    if "event" in parts:
        names.update(
            {
                "event.kind": Name(
                    "event.kind",
                    Type(Kind.STRING, "event"),
                    "what happened",
                    lambda c: c.event.kind,
                ),
                "event.at": Name("event.at", INSTANT, "when it happened", lambda c: c.event.at),
                "event.purpose": Name(
                    "event.purpose",
                    Type(Kind.STRING, "purpose"),
                    "the purpose the event names (an objection's)",
                    lambda c: c.event.purpose,
                ),
                "event.record": Name(
                    "event.record",
                    STRING,
                    "the record the event names",
                    lambda c: c.event.record,
                ),
            }
        )
    if "purpose" in parts:
        names["purpose"] = Name(
            "purpose", Type(Kind.STRING, "purpose"), "the purpose asked about", lambda c: c.purpose
        )
    if "basis" in parts:
        names["basis"] = Name(
            "basis",
            Type(Kind.STRING, "basis"),
            "the lawful basis the purpose runs on",
            lambda c: c.basis,
        )
    if "recipient" in parts:
        names["recipient"] = Name(
            "recipient",
            Type(Kind.STRING, "recipient"),
            "the recipient asked about",
            lambda c: c.recipient,
        )
    if "court_order" in parts:
        names["court_order"] = Name(
            "court_order", BOOL, "a court order requires disclosure", lambda c: c.court_order
        )

    def in_office_hours(c: Ctx, instant: dt.datetime) -> bool:
        return hours is not None and hours.contains(instant, tz)

    functions = {
        "in_office_hours": Function(
            "in_office_hours",
            (INSTANT,),
            BOOL,
            "the instant falls in the policy's office hours (local time, closed dates excluded)",
            in_office_hours,
            missing=False,
        ),
        "local_time": Function(
            "local_time",
            (INSTANT,),
            TIME,
            "wall-clock time, local",
            lambda c, i: to_local(i, tz).time().replace(tzinfo=None),
        ),
        "local_date": Function(
            "local_date",
            (INSTANT,),
            DATE,
            "calendar date, local",
            lambda c, i: to_local(i, tz).date(),
        ),
        "weekday": Function(
            "weekday",
            (INSTANT,),
            NUMBER,
            "day of the week, local: 0 Monday to 6 Sunday",
            lambda c, i: to_local(i, tz).weekday(),
        ),
        "objected": Function(
            "objected",
            (Type(Kind.STRING, "purpose"),),
            BOOL,
            "the subject has objected to the purpose (an objection naming none covers all)",
            lambda c, p: c.history.objected(p, c.ts),
            missing=False,
        ),
    }
    enums = {
        "source": frozenset(policy.sources),
        "category": frozenset(policy.categories),
        "purpose": frozenset(policy.purposes),
        "recipient": frozenset(policy.recipients),
        "event": frozenset(policy.events),
        "basis": frozenset(BASES),
        "weekday": frozenset(WEEKDAYS),
    }
    return Vocabulary(names=names, functions=functions, enums=enums)


def vocabularies(policy: Policy) -> Mapping[str, Vocabulary]:
    return {context: vocabulary(policy, context) for context in CONTEXTS}
