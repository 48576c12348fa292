"""What the engine reads: records, events and suppression entries, and each subject's timeline
indexed once so that a decision never rescans it.

:class:`World` is an immutable in-memory collection. Storage adapters implement the same small
read protocol, :class:`HistorySource`; the engine asks nothing else of a store.
"""

from __future__ import annotations

import datetime as dt
import itertools
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

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
    remember,
)
from fairproc.model import (
    BASES,
    Event,
    Fact,
    Policy,
    Record,
    SuppressionEntry,
    address_of,
    derived,
    normalise_email,
)


@runtime_checkable
class HistorySource(Protocol):
    """The read side of a store, as the engine needs it."""

    def get_record(self, record_id: str) -> Record | None: ...

    def subject_records(self, subject: str) -> Sequence[Record]: ...

    def subject_events(self, subject: str) -> Sequence[Event]: ...

    def suppression_entries(self, emails: Iterable[str]) -> Sequence[SuppressionEntry]: ...


SuppressionLookup = Callable[[Sequence[str]], Sequence[SuppressionEntry]]


@runtime_checkable
class AddressIndex(Protocol):
    """A store that can say who gave an address: what suppression by address needs to find
    another subject's unsubscribe (:func:`listed_entries`)."""

    def subjects_giving(
        self, category: str, emails: Sequence[str]
    ) -> Sequence[tuple[str, str, dt.datetime]]:
        """For each normalised address of ``emails`` held in ``category`` by some record:
        (subject, address, when that subject first gave it)."""
        ...


GiverIndex = dict[str, dict[str, dt.datetime]]  # address -> {subject: when first given}


def index_givers(records: Iterable[Record], category: str) -> GiverIndex:
    """Who gave each address held in ``category`` (normalised), and when first: the
    :class:`AddressIndex` of a store that holds its records in memory."""
    index: GiverIndex = defaultdict(dict)
    for record in records:
        address = address_of(record, category)
        if address is not None:
            subjects = index[address]
            first = subjects.get(record.subject)
            if first is None or record.collected_at.timestamp() < first.timestamp():
                subjects[record.subject] = record.collected_at
    return index


def givers_in(index: GiverIndex, emails: Sequence[str]) -> list[tuple[str, str, dt.datetime]]:
    """What :meth:`AddressIndex.subjects_giving` answers, from an :func:`index_givers`."""
    return [
        (subject, email, at)
        for email in dict.fromkeys(emails)
        for subject, at in index.get(email, {}).items()
    ]


def suppressing_reason(policy: Policy, event: Event) -> str | None:
    """Why ``event`` puts the subject's addresses on the suppression list (an unsubscribe, an
    objection to marketing, an erasure of the subject), or None."""
    kind = policy.events.get(event.kind)
    if kind is None or not kind.effects:
        return None
    effects = kind.effects
    if "suppress" in effects:
        return "unsubscribed"
    if "object" in effects and (
        event.purpose is None or event.purpose in policy.suppressing_purposes()
    ):
        return "objected"
    if "erase" in effects and event.record is None:
        return "erased"
    return None


def derived_entries(
    store: HistorySource,
    policy: Policy,
    emails: Iterable[str],
    known: Callable[[str], Sequence[Event] | None] | None = None,
) -> list[SuppressionEntry]:
    """The suppression entries the subjects' own events put on the list for ``emails``:
    every subject who gave one of them, and unsubscribed, objected to marketing or was erased
    after giving it (reference-policy.md, Suppression). Needs an :class:`AddressIndex`
    store; others derive nothing, and only their stored entries apply. ``known``: the events
    of subjects the caller has loaded already (None for others), not read again."""
    category = policy.info.email_category
    wanted = list(dict.fromkeys(normalise_email(e) for e in emails))
    if not category or not wanted or not isinstance(store, AddressIndex):
        return []
    given: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for subject, email, at in store.subjects_giving(category, wanted):
        given[subject].append((email, at.timestamp()))
    found: list[SuppressionEntry] = []
    for subject, addresses in given.items():
        events = known(subject) if known is not None else None
        for event in store.subject_events(subject) if events is None else events:
            reason = suppressing_reason(policy, event)
            if reason is None:
                continue
            ts = event.at.timestamp()
            found.extend(
                SuppressionEntry(e, event.at, reason) for e, since in addresses if since <= ts
            )
    return found


def listed_entries(
    store: HistorySource,
    policy: Policy,
    emails: Iterable[str],
    known: Callable[[str], Sequence[Event] | None] | None = None,
) -> list[SuppressionEntry]:
    """Every entry on the suppression list for ``emails``: stored, and derived from any
    subject's events (:func:`derived_entries`)."""
    wanted = list(dict.fromkeys(emails))
    if not wanted:
        return []
    return [*store.suppression_entries(wanted), *derived_entries(store, policy, wanted, known)]


def suppression_lookup(store: HistorySource, policy: Policy) -> SuppressionLookup:
    """:func:`listed_entries` for ``store``, as a history asks for its addresses."""

    def lookup(emails: Sequence[str]) -> Sequence[SuppressionEntry]:
        return listed_entries(store, policy, emails)

    return lookup


_revisions = itertools.count(1)
_NOT_YET = object()  # a memo miss (None is an answer)


class World:
    """An immutable in-memory set of records, events and suppression entries."""

    __slots__ = (
        "_events",
        "_givers",
        "_records",
        "_records_by_subject",
        "_suppression",
        "audit",
        "revision",
    )

    def __init__(
        self,
        records: Iterable[Record] = (),
        events: Iterable[Event] = (),
        suppression: Iterable[SuppressionEntry] = (),
        audit: Iterable[Any] = (),
    ):
        self._records: dict[str, Record] = {}
        self._records_by_subject: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            if record.id in self._records:
                from fairproc.errors import InputError

                raise InputError.one(f"record id {record.id!r} is given twice")
            self._records[record.id] = record
            self._records_by_subject[record.subject].append(record)
        self._events: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            self._events[event.subject].append(event)
        self._suppression: dict[str, list[SuppressionEntry]] = defaultdict(list)
        for entry in suppression:
            self._suppression[normalise_email(entry.email)].append(entry)
        self.audit: tuple[Any, ...] = tuple(audit)  # fairproc.store.AuditEntry, oldest first
        self._givers: dict[str, GiverIndex] = {}
        # Unique per World and never changing: engines may cache what they derive from it.
        self.revision = next(_revisions)

    def with_changes(self, changes: Any) -> World:
        """A new World with ``changes`` (a :class:`fairproc.store.ChangeSet`) applied."""
        deleted = set(changes.delete_records)
        replaced = {r.id: r for r in changes.put_records}
        records = [replaced.pop(r.id, r) for r in self.records if r.id not in deleted]
        records.extend(replaced.values())
        subjects = set(changes.delete_subject_events)
        forgotten = set(changes.delete_record_events)
        events = [
            e
            for e in self.events
            if e.subject not in subjects and (e.record is None or e.record not in forgotten)
        ]
        events.extend(changes.add_events)
        suppression = [e for entries in self._suppression.values() for e in entries]
        suppression.extend(changes.add_suppression)
        return World(records, events, suppression, (*self.audit, *changes.audit))

    @property
    def suppression(self) -> Sequence[SuppressionEntry]:
        return tuple(e for entries in self._suppression.values() for e in entries)

    def get_record(self, record_id: str) -> Record | None:
        return self._records.get(record_id)

    def subject_records(self, subject: str) -> Sequence[Record]:
        return self._records_by_subject.get(subject, ())

    def subject_events(self, subject: str) -> Sequence[Event]:
        return self._events.get(subject, ())

    def suppression_entries(self, emails: Iterable[str]) -> Sequence[SuppressionEntry]:
        out: list[SuppressionEntry] = []
        for email in emails:
            out.extend(self._suppression.get(normalise_email(email), ()))
        return out

    def subjects_giving(
        self, category: str, emails: Sequence[str]
    ) -> Sequence[tuple[str, str, dt.datetime]]:
        index = self._givers.get(category)
        if index is None:  # a World never changes: indexed once per category
            index = self._givers[category] = index_givers(self._records.values(), category)
        return givers_in(index, emails)

    @property
    def records(self) -> Sequence[Record]:
        return tuple(self._records.values())

    @property
    def events(self) -> Sequence[Event]:
        return tuple(e for events in self._events.values() for e in events)

    @property
    def subjects(self) -> Sequence[str]:
        return tuple(dict.fromkeys([*self._records_by_subject, *self._events]))


class _Timeline:
    """Instants in order, with a payload each; ``latest(ts)`` finds the latest at or before."""

    __slots__ = ("items", "times")

    def __init__(self, pairs: Iterable[tuple[dt.datetime, Any]]):
        # By timestamp: datetimes written in one zone compare by wall clock, which is the wrong
        # order in the hour the clocks go back.
        ordered = sorted(pairs, key=lambda p: p[0].timestamp())
        self.times = [p[0].timestamp() for p in ordered]
        self.items = ordered

    @staticmethod
    def presorted(times: list[float], items: list[Any]) -> _Timeline:
        """From lists already in time order (``times`` the items' timestamps)."""
        timeline = _Timeline.__new__(_Timeline)
        timeline.times, timeline.items = times, items
        return timeline

    def count_upto(self, ts: float) -> int:
        return bisect_right(self.times, ts)

    def latest(self, ts: float) -> tuple[dt.datetime, Any] | None:
        i = bisect_right(self.times, ts)
        return self.items[i - 1] if i else None


class SubjectHistory:
    """One subject's records and timeline, indexed for the policy's facts.

    The engine caches it per subject, and a sweep builds one per subject of the store, so each
    index is built the first time a fact needs it (a retention sweep never reads objections,
    restrictions or the suppression list); every fact is then a binary search.
    """

    __slots__ = (
        "_by_kind",
        "_collected_ts",
        "_emails",
        "_events",
        "_listed_since",
        "_provisional",
        "_raw_events",
        "_record_events",
        "_state",
        "_suppression",
        "memo",
        "policy",
        "records",
        "subject",
    )

    def __init__(
        self,
        policy: Policy,
        subject: str,
        records: Sequence[Record],
        events: Sequence[Event],
        suppression: Sequence[SuppressionEntry] | SuppressionLookup = (),
    ):
        """``suppression``: the entries for the subject's addresses, or how to look them up
        (called with :attr:`emails` the first time a fact needs them; a sweep never does)."""
        self.policy = policy
        self.subject = subject
        self.records = tuple(records)
        self._raw_events = events
        self._suppression = suppression
        self._events: tuple[Event, ...] | None = None
        self._emails: tuple[str, ...] | None = None
        self._by_kind: dict[str, _Timeline] | None = None
        self._record_events: dict[str, _Timeline] | None = None
        self._state: tuple[_Timeline, _Timeline, _Timeline] | None = None
        self._listed_since: dict[str, float] | None = None
        self._collected_ts: tuple[float, ...] | None = None
        # while :meth:`counted` works out its fixpoint: (instant, the records counted so far)
        self._provisional: tuple[float, frozenset[str]] | None = None
        # values at an instant, remembered (conditions.remember): the history never changes
        self.memo: dict[Any, Any] = {}

    @property
    def events(self) -> tuple[Event, ...]:
        """The subject's events in time order (events at one instant in the order given)."""
        if self._events is None:
            self._index_events()
        assert self._events is not None
        return self._events

    @property
    def emails(self) -> tuple[str, ...]:
        """The addresses the subject's records hold, normalised, each once."""
        if self._emails is None:
            category = self.policy.info.email_category
            emails: dict[str, None] = {}
            for record in self.records:
                address = address_of(record, category)
                if address is not None:
                    emails.setdefault(address, None)
            self._emails = tuple(emails)
        return self._emails

    def _index_events(self) -> None:
        raw = self._raw_events
        stamps = [e.at.timestamp() for e in raw]
        if any(a > b for a, b in itertools.pairwise(stamps)):  # stores mostly give them in order
            order = sorted(range(len(raw)), key=stamps.__getitem__)  # stable: ties keep order
            events = tuple(raw[i] for i in order)
            stamps = [stamps[i] for i in order]
        else:
            events = tuple(raw)
        by_kind: dict[str, _Timeline] = {}
        by_record: dict[str, _Timeline] = {}
        for seq, event in enumerate(events):
            ts = stamps[seq]
            found = by_kind.get(event.kind)
            if found is None:
                found = by_kind[event.kind] = _Timeline.presorted([], [])
            found.times.append(ts)
            found.items.append((event.at, (seq, event)))
            if event.record is not None:
                mine = by_record.get(event.record)
                if mine is None:
                    mine = by_record[event.record] = _Timeline.presorted([], [])
                mine.times.append(ts)
                mine.items.append((event.at, event))
        self._events = events
        self._by_kind = by_kind
        self._record_events = by_record

    def _kinds(self) -> dict[str, _Timeline]:
        if self._by_kind is None:
            self._index_events()
        assert self._by_kind is not None
        return self._by_kind

    def _subject_state(self) -> tuple[_Timeline, _Timeline, _Timeline]:
        """(objections, restrictions, suppressions): what the subject's rights changed."""
        if self._state is not None:
            return self._state
        policy = self.policy
        objections: list[tuple[dt.datetime, str | None]] = []
        restrictions: list[tuple[dt.datetime, bool]] = []
        suppressions: list[tuple[dt.datetime, str]] = []
        kinds = policy.events
        for event in self.events:
            effects = kinds[event.kind].effects if event.kind in kinds else ()
            if not effects:
                continue
            if "object" in effects:
                objections.append((event.at, event.purpose))
            if "restrict" in effects:
                restrictions.append((event.at, True))
            if "lift_restriction" in effects:
                restrictions.append((event.at, False))
            reason = suppressing_reason(policy, event)
            if reason is not None:
                suppressions.append((event.at, reason))
        self._state = (_Timeline(objections), _Timeline(restrictions), _Timeline(suppressions))
        return self._state

    # -- facts at an instant (``ts`` is the instant as a POSIX timestamp) --

    def latest(self, kinds: Sequence[str], ts: float) -> dt.datetime | None:
        """The latest event of ``kinds`` at or before ``ts``."""
        # Several rules of one decision (and the decisions after it) read the same fact at the
        # same instant: remember a few answers.
        key = (kinds, ts)
        memo = self.memo
        if key in memo:
            found: dt.datetime | None = memo[key]
            return found
        best: dt.datetime | None = None
        best_ts = 0.0
        by_kind = self._kinds()
        for kind in kinds:
            timeline = by_kind.get(kind)
            if timeline is not None:
                i = bisect_right(timeline.times, ts)
                if i and (best is None or timeline.times[i - 1] > best_ts):
                    best, best_ts = timeline.items[i - 1][0], timeline.times[i - 1]
        remember(memo, key, best)
        return best

    def latest_interaction(self, kinds: Sequence[str], ctx: Ctx) -> dt.datetime | None:
        """The latest event of ``kinds`` or collection that counts (:meth:`counted`) at or
        before ``ctx.at``; the record asked about counts for itself."""
        best = self.latest(kinds, ctx.ts)
        collected = self.last_collection(ctx)
        if collected is not None and (best is None or collected.timestamp() > best.timestamp()):
            return collected
        return best

    def last_collection(self, ctx: Ctx) -> dt.datetime | None:
        """The latest collection at or before ``ctx.at`` of a record that counts as an
        interaction then (:meth:`counted`), or of the record asked about."""
        ts = ctx.ts
        own = ctx.record
        # Every rule of a decision, and its explanation, reads it again: remembered per
        # instant and record, once the records counted then are settled (not while
        # :meth:`counted` is still working them out).
        settled = self._provisional is None or self._provisional[0] != ts
        key = ("last_collection", ts, None if own is None else own.id)
        if settled:
            hit = self.memo.get(key, _NOT_YET)
            if hit is not _NOT_YET:
                found: dt.datetime | None = hit
                return found
        counted = self.counted(ctx)
        best: dt.datetime | None = None
        best_ts = 0.0
        own_id = None if own is None else own.id
        for record, at in zip(self.records, self._collected(), strict=True):
            later = at <= ts and (best is None or at > best_ts)
            if later and (record.id in counted or record.id == own_id):
                best, best_ts = record.collected_at, at
        if settled:
            remember(self.memo, key, best)
        return best

    def provisionally(self, ts: float, counted: frozenset[str]) -> None:
        """While :func:`fairproc.retention.fixpoint` works: count ``counted`` at ``ts``."""
        self._provisional = (ts, counted)

    def _collected(self) -> tuple[float, ...]:
        """Each record's collection instant as a timestamp, in the order of :attr:`records`."""
        found = self._collected_ts
        if found is None:
            found = self._collected_ts = tuple(r.collected_at.timestamp() for r in self.records)
        return found

    def counted(self, ctx: Ctx) -> frozenset[str]:
        """The ids of the records whose collection counts as an interaction at ``ctx.at``:
        those collected by then and not past their own retention due date, the fixpoint
        :mod:`fairproc.retention` describes. Worked out once per instant."""
        ts = ctx.ts
        if self._provisional is not None and self._provisional[0] == ts:
            return self._provisional[1]
        key = ("counted", ts)
        found: frozenset[str] | None = self.memo.get(key)
        if found is not None:
            return found
        from fairproc.retention import counted_at  # retention reads its facts from here

        outer = self._provisional
        try:
            counted = counted_at(self, ctx.at)
        finally:
            self._provisional = outer
        remember(self.memo, key, counted)
        return counted

    def latest_of(self, kinds: Sequence[str], ts: float) -> str | None:
        best: tuple[float, int, str] | None = None
        by_kind = self._kinds()
        for kind in kinds:
            timeline = by_kind.get(kind)
            if timeline is None:
                continue
            i = timeline.count_upto(ts)
            if i:
                at, (seq, _) = timeline.items[i - 1]
                # Equal instants: the event given later in the timeline wins.
                if best is None or (at.timestamp(), seq) > best[:2]:
                    best = (at.timestamp(), seq, kind)
        return best[2] if best else None

    def restricted(self, ts: float) -> bool:
        restrictions = (self._state or self._subject_state())[1]
        if not restrictions.times:  # most subjects never asked: no search
            return False
        hit = restrictions.latest(ts)
        return bool(hit and hit[1])

    def suppressed(self, ts: float) -> bool:
        suppressions = (self._state or self._subject_state())[2]
        return bool(suppressions.times) and suppressions.count_upto(ts) > 0

    def suppression_reasons(self, ts: float) -> tuple[str, ...]:
        """Why the subject, or an address the subject gave, is suppressed at ``ts``."""
        suppressions = self._subject_state()[2]
        n = suppressions.count_upto(ts)
        reasons = [reason for _, reason in suppressions.items[:n]]
        self._listed()
        assert not callable(self._suppression)
        reasons.extend(e.reason for e in self._suppression if e.at.timestamp() <= ts)
        return tuple(dict.fromkeys(reasons))

    def _listed(self) -> dict[str, float]:
        """When each of the subject's addresses went on the suppression list (its earliest
        entry, stored or derived from any subject's events: by address, whoever gave it)."""
        if self._listed_since is None:
            if callable(self._suppression):
                lookup, emails = self._suppression, self.emails
                self._suppression = tuple(lookup(emails)) if emails else ()
            since: dict[str, float] = {}
            for entry in self._suppression:
                norm, ts = normalise_email(entry.email), entry.at.timestamp()
                if norm not in since or ts < since[norm]:
                    since[norm] = ts
            self._listed_since = since
        return self._listed_since

    def address_suppressed(self, email: str, ts: float) -> bool:
        """Whether ``email`` is on the suppression list at ``ts`` (from its entry's date on,
        whichever subject gave it, before or after it was listed)."""
        since = self._listed().get(normalise_email(email))
        return since is not None and since <= ts

    def record_suppressed(self, record: Record, ts: float) -> bool:
        """Whether the address ``record`` holds is on the suppression list at ``ts``."""
        address = address_of(record, self.policy.info.email_category)
        return address is not None and self.address_suppressed(address, ts)

    def usable_addresses(self, records: Iterable[Record], ts: float) -> tuple[str, ...]:
        """The addresses of ``records``, normalised, each once, that are not on the list."""
        category = self.policy.info.email_category
        found: dict[str, None] = {}
        for record in records:
            address = address_of(record, category)
            if address is not None and not self.address_suppressed(address, ts):
                found.setdefault(address, None)
        return tuple(found)

    def objected(self, purpose: str, ts: float) -> bool:
        objections = (self._state or self._subject_state())[0]
        if not objections.times:
            return False
        n = objections.count_upto(ts)
        return any(p is None or p == purpose for _, p in objections.items[:n])

    def record_event_at(self, record_id: str, effect: str, ts: float) -> dt.datetime | None:
        if self._record_events is None:
            self._index_events()
        assert self._record_events is not None
        timeline = self._record_events.get(record_id)
        if timeline is None:
            return None
        kinds = self.policy.events
        n = timeline.count_upto(ts)
        for at, event in reversed(timeline.items[:n]):
            if event.kind in kinds and effect in kinds[event.kind].effects:
                found: dt.datetime = at
                return found
        return None

    def record_latest(self, record_id: str, kinds: Sequence[str], ts: float) -> dt.datetime | None:
        """The latest event of ``kinds`` naming ``record_id`` at or before ``ts``."""
        if self._record_events is None:
            self._index_events()
        assert self._record_events is not None
        timeline = self._record_events.get(record_id)
        if timeline is None:
            return None
        n = timeline.count_upto(ts)
        for at, event in reversed(timeline.items[:n]):
            if event.kind in kinds:
                found: dt.datetime = at
                return found
        return None

    def has_events(self, kind: str) -> bool:
        return kind in self._kinds()


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
