"""The policy and the world it judges, as frozen attrs values.

Conversion to and from plain data lives in :mod:`fairproc.convert` and the loader, not here.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from fairproc.clock import OfficeHours, Period, zone
from fairproc.conditions import Condition
from fairproc.values import Value

BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
BASIS_DPV = {
    "consent": "dpv:Consent",
    "contract": "dpv:Contract",
    "legal_obligation": "dpv:LegalObligation",
    "vital_interests": "dpv:VitalInterest",
    # DPV 2.3 has no PublicTask: Art 6(1)(e) (public interest or official authority) is this
    "public_task": "eu-gdpr:A6-1-e",
    "legitimate_interests": "dpv:LegitimateInterest",
}

# What an event kind means to the engine. The policy says which of its event kinds carry which
# effect; the engine owns what the effect does (GDPR semantics, not one notice's wording).
EVENT_EFFECTS = (
    "interaction",  # counts towards the subject's last interaction
    "suppress",  # puts the subject's email on the suppression list (unsubscribe)
    "object",  # an Art 21 objection, optionally naming a purpose
    "restrict",  # an Art 18 restriction comes into force
    "lift_restriction",  # ... and ends
    "resolve",  # an enquiry is resolved (names its record)
    "erase",  # written by the engine when it erases
)


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(repr=False)
class Rule(Value):
    """What every rule carries: an id, the notice's words behind it, and an optional reading."""

    id: str
    clause: str
    note: str | None = None


@attrs.frozen(repr=False)
class Contact(Value):
    name: str
    address: tuple[str, ...] = ()
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    registration: str | None = None
    clause: str | None = None
    note: str | None = None


@attrs.frozen(repr=False)
class PolicyInfo(Value):
    id: str
    title: str
    timezone: str
    controller: Contact
    dpo: Contact | None
    supervisory_authority: Contact | None
    office_hours: OfficeHours | None
    office_hours_rule: Rule | None
    marketing_purpose: str | None
    email_category: str | None
    notice: str | None = None
    version: str | None = None  # the policy's own name for this version of the notice and rules


@attrs.frozen(repr=False)
class Category(Value):
    id: str
    title: str
    clause: str
    dpv: str | None = None
    about_others: bool = False  # information about people other than the subject
    note: str | None = None


@attrs.frozen(repr=False)
class Source(Value):
    id: str
    title: str
    clause: str
    categories: tuple[str, ...]
    dpv: str | None = None
    note: str | None = None


@attrs.frozen(repr=False)
class BasisGrant(Value):
    """A purpose may run on ``basis`` for records from ``sources`` (None: all) when ``when``."""

    basis: str
    sources: tuple[str, ...] | None
    clause: str
    when: Condition | None = None
    stated: bool = True  # False where the notice names no basis and the policy reads one in
    note: str | None = None


@attrs.frozen(repr=False)
class Purpose(Value):
    id: str
    title: str
    clause: str
    bases: tuple[BasisGrant, ...]
    categories: tuple[str, ...] | None = None  # the categories it uses; None: all it receives
    dpv: str | None = None
    cookies: bool = False  # reads or stores information on the user's device (PECR reg 6)
    direct_marketing: bool = False  # Art 21(3): an objection always wins
    # contacts the subject (marketing email, calls): objecting to it puts the subject's
    # email on the suppression list, as an unsubscribe does
    marketing_contact: bool = False
    note: str | None = None

    @property
    def rule_id(self) -> str:
        return f"purpose.{self.id}"


@attrs.frozen(repr=False)
class ProcessingRule(Value):
    """A condition every processing of the named purposes (or on the named bases) must meet."""

    id: str
    clause: str
    require: Condition
    reason: str
    purposes: tuple[str, ...] | None = None
    bases: tuple[str, ...] | None = None
    note: str | None = None

    def applies(self, purpose: str, basis: str) -> bool:
        return (self.purposes is None or purpose in self.purposes) and (
            self.bases is None or basis in self.bases
        )


@attrs.frozen(repr=False)
class SharingRule(Value):
    """A condition every disclosure to the named recipients (None: all) must meet."""

    id: str
    clause: str
    require: Condition
    reason: str
    recipients: tuple[str, ...] | None = None
    note: str | None = None

    def applies(self, recipient: str) -> bool:
        return self.recipients is None or recipient in self.recipients


@attrs.frozen(repr=False)
class Successor(Value):
    name: str
    valid_from: dt.date


@attrs.frozen(repr=False)
class Safeguard(Value):
    id: str
    title: str
    clause: str
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None  # exclusive: invalid from this local date on
    invalidated_by: str | None = None
    successors: tuple[Successor, ...] = ()
    dpv: str | None = None
    note: str | None = None

    @property
    def rule_id(self) -> str:
        return f"safeguard.{self.id}"

    def valid_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or day >= self.valid_from) and (
            self.valid_until is None or day < self.valid_until
        )


@attrs.frozen(repr=False)
class Recipient(Value):
    id: str
    title: str
    clause: str
    categories: tuple[str, ...] | None  # None: every category
    when: Condition | None = None
    requires_purpose: str | None = None
    location: str | None = None  # a country outside the adequate area means a transfer
    safeguards: tuple[str, ...] = ()
    dpv: str | None = None
    note: str | None = None

    @property
    def rule_id(self) -> str:
        return f"recipient.{self.id}"


@attrs.frozen(repr=False)
class RoutingRule(Value):
    id: str
    clause: str
    sources: tuple[str, ...]
    then: str
    otherwise: str | None = None
    when: Condition | None = None
    due: Condition | None = None  # an instant expression
    note: str | None = None


@attrs.frozen(repr=False)
class RetentionRule(Value):
    """Keep matching records for ``keep`` counted from ``from_``.

    ``from_`` evaluating to nothing (an unresolved enquiry) keeps the record with no date;
    ``review`` marks a record type for which the policy declares no period.
    """

    id: str
    clause: str
    sources: tuple[str, ...] | None = None
    when: Condition | None = None
    from_: Condition | None = None
    keep: Period | None = None
    review: bool = False
    forever: bool = False
    applies_to: str = "records"  # or "suppression"
    action: str = "delete"  # what a sweep does when the record falls due: delete or anonymise
    note: str | None = None


REACTIONS = ("route", "suppress", "record_objection", "record_restriction")


@attrs.frozen(repr=False)
class Reaction(Value):
    """What the engine does as something arrives: a record collected or an event posted.

    ``on`` is ``record`` or ``event``; ``when`` reads what arrived; ``do`` is one of
    :data:`REACTIONS`: ``route`` (the routing decision for the record, with its due time),
    ``suppress`` (the subject's email onto the suppression list), ``record_objection`` and
    ``record_restriction`` (the event is kept on the timeline and later decisions obey it).
    """

    id: str
    clause: str
    on: str
    do: str
    when: Condition | None = None
    note: str | None = None


@attrs.frozen(repr=False)
class Right(Value):
    id: str
    title: str
    clause: str
    dpv: str | None = None
    bases: tuple[str, ...] | None = None  # the bases under which the right applies
    refers_to_bases: tuple[str, ...] = ()  # bases the notice's wording of the right mentions
    erase_sources: tuple[str, ...] | None = None
    kept_by: tuple[str, ...] = ()  # retention rules whose records an erasure keeps
    due: Period = attrs.field(factory=lambda: Period(months=1))
    due_complex: Period = attrs.field(factory=lambda: Period(months=3))
    note: str | None = None

    @property
    def rule_id(self) -> str:
        return f"right.{self.id}"


@attrs.frozen(repr=False)
class EventKind(Value):
    id: str
    title: str
    clause: str
    effects: tuple[str, ...] = ()
    names_record: bool = False
    names_purpose: bool = False
    note: str | None = None


@attrs.frozen(repr=False)
class Fact(Value):
    """A per-subject fact derived from the timeline, named in conditions as ``subject.<id>``.

    ``latest``: the instant of the latest event of those kinds at or before the question's
    time (and of the subject's record collections when ``collections``; of the events naming
    the record asked about when ``of_record``, named ``record.<id>``);
    ``latest_of``: which of those kinds happened last.
    """

    id: str
    clause: str
    latest: tuple[str, ...] | None = None
    latest_of: tuple[str, ...] | None = None
    collections: bool = False
    # a fact of the record asked about (``record.<id>``): the latest event of ``latest`` that
    # names the record, rather than any of the subject's
    of_record: bool = False
    note: str | None = None

    @property
    def name(self) -> str:
        """How conditions name it: ``record.<id>`` or ``subject.<id>``."""
        return f"{'record' if self.of_record else 'subject'}.{self.id}"


_DERIVED: dict[int, tuple[weakref.ref[Policy], dict[Any, Any]]] = {}


def derived(policy: Policy) -> dict[Any, Any]:
    """What has been worked out from ``policy`` once, to be reused while it lives: its
    vocabularies, its compiled conditions. A policy never changes, so nothing here goes
    stale; it goes with the policy. Keyed by identity (a policy's mappings are unhashable)."""
    key = id(policy)
    found = _DERIVED.get(key)
    if found is not None and found[0]() is policy:
        return found[1]
    memo: dict[Any, Any] = {}

    def gone(_: weakref.ref[Policy]) -> None:
        _DERIVED.pop(key, None)

    _DERIVED[key] = (weakref.ref(policy, gone), memo)
    return memo


@attrs.frozen(repr=False)
class Policy(Value):
    info: PolicyInfo
    categories: Mapping[str, Category]
    sources: Mapping[str, Source]
    purposes: Mapping[str, Purpose]
    processing: tuple[ProcessingRule, ...]
    recipients: Mapping[str, Recipient]
    safeguards: Mapping[str, Safeguard]
    routing: tuple[RoutingRule, ...]
    retention: tuple[RetentionRule, ...]
    rights: Mapping[str, Right]
    events: Mapping[str, EventKind]
    facts: Mapping[str, Fact]
    reactions: tuple[Reaction, ...] = ()
    sharing: tuple[SharingRule, ...] = ()
    adequate_locations: tuple[str, ...] = ()
    path: str | None = None
    # sha256 of the rule files and the notice as loaded: two policies with the same digest say
    # the same thing, whatever their version says
    digest: str | None = None

    @property
    def id(self) -> str:
        return self.info.id

    def __repr__(self) -> str:
        # Short: the whole policy as attrs would print it runs to hundreds of lines.
        counts = ", ".join(
            f"{len(items)} {name}"
            for name, items in (
                ("sources", self.sources),
                ("categories", self.categories),
                ("purposes", self.purposes),
                ("recipients", self.recipients),
                ("rights", self.rights),
                ("rules", self.rule_index()),
            )
        )
        version = f" {self.info.version}" if self.info.version else ""
        return f"<Policy {self.id}{version} {self.info.title!r}: {counts}>"

    @property
    def tz(self) -> dt.tzinfo:
        return zone(self.info.timezone)

    def rule_index(self) -> dict[str, Any]:
        """Every rule of the policy by the id decisions cite it with."""
        index: dict[str, Any] = {}
        for purpose in self.purposes.values():
            index[purpose.rule_id] = purpose
        for rules in (
            self.processing,
            self.sharing,
            self.routing,
            self.retention,
            self.reactions,
        ):
            for rule in rules:
                index[rule.id] = rule
        for recipient in self.recipients.values():
            index[recipient.rule_id] = recipient
        for safeguard in self.safeguards.values():
            index[safeguard.rule_id] = safeguard
        for right in self.rights.values():
            index[right.rule_id] = right
        if self.info.office_hours_rule is not None:
            index[self.info.office_hours_rule.id] = self.info.office_hours_rule
        return index

    def route_outcomes(self) -> frozenset[str]:
        """What ``route`` can answer under this policy: each routing rule's ``then`` and
        ``otherwise``, and ``not_applicable`` (a record no routing rule covers)."""
        named = {rule.then for rule in self.routing}
        named |= {rule.otherwise for rule in self.routing if rule.otherwise is not None}
        return frozenset({*named, "not_applicable"})

    def suppressing_purposes(self) -> frozenset[str]:
        """Purposes an objection to which puts the subject's email on the suppression list."""
        return frozenset(p.id for p in self.purposes.values() if p.marketing_contact)

    def events_with(self, effect: str) -> tuple[str, ...]:
        return tuple(k.id for k in self.events.values() if effect in k.effects)


# --- the world: what an application holds -------------------------------------------------


@attrs.frozen(repr=False)
class Record(Value):
    """Personal data collected from one source about one subject."""

    id: str
    subject: str
    source: str
    collected_at: dt.datetime
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(k for k, v in self.data.items() if v is not None)


@attrs.frozen(repr=False)
class Event(Value):
    """Something that happened on a subject's timeline."""

    subject: str
    kind: str
    at: dt.datetime
    record: str | None = None
    purpose: str | None = None
    id: str | None = None


@attrs.frozen(repr=False)
class SuppressionEntry(Value):
    """An email that must never be sent marketing again. Holds nothing more than this."""

    email: str
    at: dt.datetime
    reason: str


def normalise_email(email: str) -> str:
    return email.strip().lower()


def address_of(record: Record, category: str | None) -> str | None:
    """The address ``record`` holds in ``category`` (the policy's email category),
    normalised; None where it holds none."""
    value = record.data.get(category) if category else None
    if isinstance(value, str) and value.strip():
        return normalise_email(value)
    return None
