"""What the engine reads: records, events and suppression entries, and each subject's timeline
indexed once so that a decision never rescans it.

:class:`World` is an immutable in-memory collection. Storage adapters implement the same small
read protocol, :class:`HistorySource`; the engine asks nothing else of a store.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from fairproc.conditions import (
    remember,
)

# The policy's vocabulary lived here once; it is the condition language's now
# (fairproc.conditions.vocabulary), re-exported for code that imports it from the world.
from fairproc.conditions.vocabulary import CONTEXTS as CONTEXTS
from fairproc.conditions.vocabulary import Ctx as Ctx
from fairproc.conditions.vocabulary import vocabularies as vocabularies
from fairproc.conditions.vocabulary import vocabulary as vocabulary
from fairproc.model import (
    Event,
    Policy,
    Record,
    SuppressionEntry,
    address_of,
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
        self.audit: tuple[Any, ...] = tuple(audit)  # fairproc.storage.AuditEntry, oldest first
        self._givers: dict[str, GiverIndex] = {}
        # Unique per World and never changing: engines may cache what they derive from it.
        self.revision = next(_revisions)

    def with_changes(self, changes: Any) -> World:
        """A new World with ``changes`` (a :class:`fairproc.storage.ChangeSet`) applied."""
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

    def iter_records(self) -> Iterator[Record]:
        """Every record, in the order given."""
        return iter(tuple(self._records.values()))

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


def record_addresses(policy: Policy, records: Iterable[Record]) -> tuple[str, ...]:
    """The addresses ``records`` hold (the policy's email category), normalised, each once."""
    category = policy.info.email_category
    emails: dict[str, None] = {}
    for record in records:
        address = address_of(record, category)
        if address is not None:
            emails.setdefault(address, None)
    return tuple(emails)


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
        "_moments",
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
        self._moments: dict[bool, list[float]] = {}
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
            self._emails = record_addresses(self.policy, self.records)
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
        counted = self.counted_span(ctx.at)[2]
        remember(self.memo, key, counted)
        return counted

    def counted_span(self, at: dt.datetime) -> tuple[float, float, frozenset[str]]:
        """The records counted at ``at`` (:meth:`counted`) and the stretch of time ``[start,
        end)`` about it over which they are the same (:func:`fairproc.retention.counted_span`),
        leaving nothing provisional behind."""
        from fairproc.retention import counted_span  # retention reads its facts from here

        outer = self._provisional
        try:
            return counted_span(self, at)
        finally:
            self._provisional = outer

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

    def stretch(self, ts: float, listed: bool = False) -> tuple[float, float]:
        """The stretch of time ``[start, end)`` about ``ts`` (POSIX timestamps) between two
        moments of the history: its events and collections, and with ``listed`` the instants
        its addresses went on the suppression list. Every fact read "at or before" an instant
        is the same all through it."""
        moments = self._moments.get(listed)
        if moments is None:
            found = [e.at.timestamp() for e in self.events]
            found.extend(self._collected())
            if listed:
                found.extend(self._listed().values())
            moments = self._moments[listed] = sorted(set(found))
        i = bisect_right(moments, ts)
        return (
            moments[i - 1] if i else -math.inf,
            moments[i] if i < len(moments) else math.inf,
        )

    def has_events(self, kind: str) -> bool:
        return kind in self._kinds()
