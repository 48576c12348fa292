"""What happens as things arrive: the meaning of a policy's reactions, in plain Python.

A reaction (``[[reaction]]`` in a rule file, :class:`fairproc.model.Reaction`) fires when
something arrives, a record collected (``on = "record"``) or an event posted
(``on = "event"``), and its ``when`` holds. This module is the reference: :func:`react` says
what an arrival fires and changes, and :class:`ReactionSession` posts arrivals one after the
other into a store. The durable-rules backend (:mod:`fairproc.reactive`) only chooses which
reactions fire; it hands them to :func:`carry_out` here, and a differential test holds its
choice to :func:`matching`.

What both backends keep:

* The arrival is read as ``record.*`` or ``event.*``; ``at`` is the instant it is handled
  (by default when it happened: the record's ``collected_at``, the event's ``at``). ``subject.*``
  facts and functions read the subject's history as it stood *before* the arrival: reacting is
  pure and the store is not changed until the result is applied.
* Every reaction whose ``on`` matches and whose ``when`` holds fires, in the policy's order.
* The arrival itself always goes into the store (the record put, the event added), whether or
  not anything fires. Each reaction fired adds one :class:`~fairproc.storage.AuditEntry`.
* ``route``: the routing decision for the record (:meth:`fairproc.engine.Engine.route`), with
  its due time.
* ``suppress``: each email of the subject (the policy's ``email_category`` in the subject's
  records, and in the record arriving), normalised, onto the suppression list with the reason
  ``unsubscribed``; an email already listed is not listed again.
* ``record_objection``: the objection event is kept; an objection naming no purpose, or a
  purpose that contacts the subject (``marketing_contact``, see
  :meth:`fairproc.model.Policy.suppressing_purposes`), also lists the subject's emails, with
  the reason ``objected``.
* ``record_restriction``: the restriction event is kept; later decisions obey it.

A reaction the loader would refuse but a policy built in code may hold (an unknown ``do``, or
one on the wrong kind of arrival) is refused here (:func:`check_reactions`) rather than
silently doing nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from fairproc.clock import require_aware
from fairproc.conditions.vocabulary import Ctx
from fairproc.decisions import Decision
from fairproc.engine import Engine
from fairproc.errors import InputError, PolicyError, Problem, did_you_mean
from fairproc.model import (
    Event,
    Policy,
    Reaction,
    Record,
    SuppressionEntry,
    address_of,
    normalise_email,
)
from fairproc.storage import AuditEntry, ChangeSet
from fairproc.values import Value
from fairproc.world import HistorySource, SubjectHistory

__all__ = [
    "Arrival",
    "Reacted",
    "ReactionSession",
    "arrival_context",
    "carry_out",
    "check_arrival",
    "check_reactions",
    "matching",
    "react",
]

Arrival = Record | Event

# What each ``do`` writes to the audit log.
_AUDIT_ACTION = {
    "route": "route",
    "suppress": "suppress",
    "record_objection": "object",
    "record_restriction": "restrict",
}
# The reactions that act on an event the arrival *is*: they have nothing to keep on a record.
_EVENT_ONLY = ("record_objection", "record_restriction")


@attrs.frozen(repr=False)
class Reacted(Value):
    """What one arrival fired: the reactions, their decisions, and the changes to apply."""

    arrival: Record | Event
    at: dt.datetime
    fired: tuple[str, ...]  # reaction ids, in the policy's order
    decisions: Mapping[str, Decision] = attrs.field(factory=dict, hash=False)  # by reaction id
    changes: ChangeSet = attrs.field(factory=ChangeSet)

    @property
    def decision(self) -> Decision | None:
        """The routing decision, when a ``route`` reaction fired."""
        return next(iter(self.decisions.values()), None)


# --- checks ----------------------------------------------------------------------------------


def check_reactions(policy: Policy) -> None:
    """Raise :class:`PolicyError` for a reaction that cannot be carried out."""
    problems = []
    for reaction in policy.reactions:
        if reaction.do not in _AUDIT_ACTION:
            problems.append(
                Problem(
                    f"reaction {reaction.id!r}: do = {reaction.do!r} has no meaning yet; "
                    f"fairproc carries out {', '.join(_AUDIT_ACTION)}",
                    path=("reaction", reaction.id, "do"),
                )
            )
        elif reaction.do == "route" and reaction.on != "record":
            problems.append(
                Problem(
                    f"reaction {reaction.id!r}: do = 'route' decides who follows up a record, "
                    "so it needs on = 'record'",
                    path=("reaction", reaction.id, "on"),
                )
            )
        elif reaction.do in _EVENT_ONLY and reaction.on != "event":
            problems.append(
                Problem(
                    f"reaction {reaction.id!r}: do = {reaction.do!r} keeps the event that "
                    f"arrives, so it needs on = 'event'",
                    path=("reaction", reaction.id, "on"),
                )
            )
        if reaction.when is not None and not reaction.when.compiled:
            problems.append(
                Problem(
                    f"reaction {reaction.id!r}: its condition was never compiled "
                    "(load the policy with fairproc.load_policy)",
                    path=("reaction", reaction.id, "when"),
                )
            )
    if problems:
        raise PolicyError(problems)


def _unknown(what: str, value: str, known: Iterable[str]) -> InputError:
    names = sorted(known)
    return InputError.one(
        f"unknown {what} {value!r}"
        + did_you_mean(value, names)
        + f" (known: {', '.join(names) or 'none'})"
    )


def _require_str(value: Any, what: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str):
        raise InputError.one(f"{what}: expected a string, got {type(value).__name__} {value!r}")


def check_arrival(policy: Policy, arrival: Any, at: dt.datetime | None = None) -> dt.datetime:
    """Check what arrives; return the instant it is handled (``at``, or when it happened)."""
    if isinstance(arrival, Record):
        _require_str(arrival.id, "record id")
        _require_str(arrival.subject, f"record {arrival.id!r}: subject")
        _require_str(arrival.source, f"record {arrival.id!r}: source")
        if arrival.source not in policy.sources:
            raise _unknown("source", arrival.source, policy.sources)
        happened = require_aware(arrival.collected_at, f"record {arrival.id!r}: collected_at")
    elif isinstance(arrival, Event):
        _require_str(arrival.subject, "event subject")
        _require_str(arrival.kind, "event kind")
        if arrival.kind not in policy.events:
            raise _unknown("event kind", arrival.kind, policy.events)
        what = f"event {arrival.kind!r} of subject {arrival.subject!r}"
        _require_str(arrival.record, f"{what}: record", optional=True)
        _require_str(arrival.purpose, f"{what}: purpose", optional=True)
        if arrival.purpose is not None and arrival.purpose not in policy.purposes:
            raise _unknown("purpose", arrival.purpose, policy.purposes)
        happened = require_aware(arrival.at, f"{what}: at")
    else:
        raise InputError.one(
            f"what arrives is a Record (collected) or an Event (posted), "
            f"not {type(arrival).__name__}"
        )
    return happened if at is None else require_aware(at)


# --- the Python meaning ----------------------------------------------------------------------


def arrival_context(engine: Engine, arrival: Arrival, at: dt.datetime) -> Ctx:
    """The question a reaction's ``when`` is asked: the arrival, and the subject's history
    before it."""
    history = engine.history(arrival.subject)
    if isinstance(arrival, Record):
        return Ctx(at, history, record=arrival)
    return Ctx(at, history, event=arrival)


def _on(arrival: Arrival) -> str:
    return "record" if isinstance(arrival, Record) else "event"


def matching(policy: Policy, arrival: Arrival, ctx: Ctx) -> tuple[Reaction, ...]:
    """The reactions ``arrival`` fires, in the policy's order, by evaluating each ``when``."""
    on = _on(arrival)
    return tuple(
        r for r in policy.reactions if r.on == on and (r.when is None or bool(r.when.evaluate(ctx)))
    )


def _suppress(
    engine: Engine,
    history: SubjectHistory,
    arrival: Arrival,
    at: dt.datetime,
    reason: str,
    listed: set[str],
) -> tuple[SuppressionEntry, ...]:
    emails = list(history.emails)
    category = engine.policy.info.email_category
    address = address_of(arrival, category) if isinstance(arrival, Record) else None
    if address is not None:
        emails.append(address)
    fresh = [e for e in dict.fromkeys(emails) if e not in listed]
    listed.update(normalise_email(x.email) for x in engine.store.suppression_entries(fresh))
    entries = tuple(SuppressionEntry(e, at, reason) for e in fresh if e not in listed)
    listed.update(e.email for e in entries)
    return entries


def carry_out(
    engine: Engine,
    arrival: Arrival,
    at: dt.datetime,
    fired: Sequence[Reaction],
    history: SubjectHistory | None = None,
) -> Reacted:
    """What the reactions ``fired`` by ``arrival`` decide and change (nothing is applied)."""
    if history is None:
        history = engine.history(arrival.subject)
    decisions: dict[str, Decision] = {}
    suppression: list[SuppressionEntry] = []
    audit: list[AuditEntry] = []
    listed: set[str] = set()
    record_id = arrival.id if isinstance(arrival, Record) else arrival.record
    suppressing = engine.policy.suppressing_purposes()
    for reaction in fired:
        due = None
        if reaction.do == "route":
            assert isinstance(arrival, Record)  # check_reactions: route is on records
            decision = engine.route(arrival, at)
            decisions[reaction.id] = decision
            due = decision.due
        elif reaction.do == "suppress":
            suppression += _suppress(engine, history, arrival, at, "unsubscribed", listed)
        elif reaction.do == "record_objection":
            assert isinstance(arrival, Event)  # check_reactions: on events
            if arrival.purpose is None or arrival.purpose in suppressing:
                suppression += _suppress(engine, history, arrival, at, "objected", listed)
        elif reaction.do != "record_restriction":  # check_reactions refuses it first
            raise PolicyError([Problem(f"reaction {reaction.id!r}: cannot do {reaction.do!r}")])
        audit.append(
            AuditEntry(
                at,
                _AUDIT_ACTION[reaction.do],
                arrival.subject,
                record=record_id,
                rule=reaction.id,
                due=due,
            )
        )
    changes = ChangeSet(
        put_records=(arrival,) if isinstance(arrival, Record) else (),
        add_events=(arrival,) if isinstance(arrival, Event) else (),
        add_suppression=tuple(suppression),
        audit=tuple(audit),
    )
    return Reacted(arrival, at, tuple(r.id for r in fired), decisions, changes)


def react(engine: Engine, arrival: Arrival, at: dt.datetime | None = None) -> Reacted:
    """What ``arrival`` fires at ``at`` (by default when it happened), and the changes to
    apply; the store is not changed."""
    check_reactions(engine.policy)
    at = check_arrival(engine.policy, arrival, at)
    ctx = arrival_context(engine, arrival, at)
    return carry_out(engine, arrival, at, matching(engine.policy, arrival, ctx), ctx.history)


# --- posting arrivals into a store -----------------------------------------------------------


class ReactionSession:
    """Post arrivals, one after the other, into a store: each fires the policy's reactions and
    its changes are applied (:meth:`fairproc.engine.Engine.apply`) before the next.

    This is the reference the durable-rules engine (:class:`fairproc.reactive.ReactiveEngine`)
    is held to; it needs nothing beyond the core.
    """

    def __init__(self, policy: Policy | Engine, store: HistorySource | None = None):
        if isinstance(policy, Engine):
            if store is not None:
                raise InputError.one("give a store or an Engine (which has its store), not both")
            self.engine = policy
        else:
            self.engine = Engine(policy, store)
        self.policy = self.engine.policy
        check_reactions(self.policy)

    @property
    def store(self) -> HistorySource:
        """The store as it is now (an immutable World is replaced on every apply)."""
        return self.engine.store

    def _matching(self, arrival: Arrival, ctx: Ctx) -> tuple[Reaction, ...]:
        return matching(self.policy, arrival, ctx)

    def post(
        self, arrival: Arrival, at: dt.datetime | None = None, *, apply: bool = True
    ) -> Reacted:
        """Handle ``arrival`` at ``at`` (by default when it happened); with ``apply``, write its
        changes to the store before returning."""
        at = check_arrival(self.policy, arrival, at)
        ctx = arrival_context(self.engine, arrival, at)
        reacted = carry_out(self.engine, arrival, at, self._matching(arrival, ctx), ctx.history)
        if apply:
            self.engine.apply(reacted.changes)
        return reacted

    def post_all(self, arrivals: Iterable[Arrival], *, apply: bool = True) -> list[Reacted]:
        """Post each arrival in turn, each at the instant it happened."""
        return [self.post(a, apply=apply) for a in arrivals]
