"""A pinned clock and a world builder, for tests (the pytest fixtures hand these out).

Neither reads the system clock: every instant is given, or is the pinned clock's ``now``.

>>> from fairproc import load_policy
>>> from fairproc.testing import Clock, EngineBuilder
>>> clock = Clock("2026-11-23T10:00:00Z")  # a Monday morning
>>> builder = EngineBuilder(load_policy("flexioffices"), clock)
>>> _ = builder.add_record("r1", "ada", "quick_quote", email="ada@example.com")
>>> builder.route("r1").outcome
'staff_contact'
>>> _ = clock.advance("P5D")  # Saturday
>>> _ = builder.add_record("r2", "ada", "quick_quote", email="ada@example.com")
>>> builder.route("r2").outcome
'pass_to_providers'
>>> builder.route("r1").outcome  # routing reads when the enquiry arrived
'staff_contact'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from fairproc.clock import Period, parse_instant
from fairproc.decisions import Decision
from fairproc.engine import Engine
from fairproc.errors import InputError, did_you_mean
from fairproc.model import Event, Policy, Record, SuppressionEntry
from fairproc.world import World

__all__ = ["DEFAULT_NOW", "Clock", "EngineBuilder"]

#: Where a pinned clock starts unless told otherwise: a Monday morning, in office hours.
DEFAULT_NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)

Instant = dt.datetime | str


class Clock:
    """A clock that only moves when a test moves it.

    ``clock.now`` is the pinned, timezone-aware instant; calling the clock returns it too
    (``clock()``, or ``clock(tz)`` for the same instant in another zone), so it can stand in
    for a host application's ``now()`` function. Calendar periods (``P1M``) are added on the
    clock's ``tz``, the policy's local time when the pytest fixture makes it.
    """

    def __init__(self, now: Instant = DEFAULT_NOW, tz: dt.tzinfo = dt.UTC):
        self._now = parse_instant(now, "now")
        self.tz = tz
        self._patch: Callable[[str, Any], None] | None = None

    @property
    def now(self) -> dt.datetime:
        return self._now

    def __call__(self, tz: dt.tzinfo | None = None) -> dt.datetime:
        return self._now if tz is None else self._now.astimezone(tz)

    def set(self, now: Instant) -> dt.datetime:
        """Pin the clock to ``now`` (an aware datetime or ISO 8601 text with an offset)."""
        self._now = parse_instant(now, "now")
        return self._now

    def advance(self, by: dt.timedelta | Period | str) -> dt.datetime:
        """Move the clock on by elapsed time (a timedelta, ``PT48H``) or calendar time
        (``P1M``, ``P10Y``: on the local wall clock, 31 Jan + P1M = 28/29 Feb)."""
        if isinstance(by, dt.timedelta):
            # Elapsed time, so add it in UTC: wall-clock arithmetic would ignore DST changes.
            self._now = (self._now.astimezone(dt.UTC) + by).astimezone(self._now.tzinfo)
        else:
            period = Period.parse(by) if isinstance(by, str) else by
            self._now = period.add_to(self._now, self.tz)
        return self._now

    def patch(self, target: str) -> None:
        """Replace ``target`` ("package.module.now") with this clock for the test's duration.

        Only the pytest fixture's clock can patch (it undoes the patch when the test ends).
        """
        if self._patch is None:
            raise RuntimeError("only the fairproc_clock fixture's clock can patch")
        self._patch(target, self)

    def __repr__(self) -> str:
        return f"Clock({self._now.isoformat()!r})"


class EngineBuilder:
    """Builds a world record by record and event by event, and asks the policy about it.

    Records and events are checked against the policy as a scenario file's are: an unknown
    source, event kind or purpose, or a category the source does not collect, is an
    :class:`~fairproc.InputError` at once rather than a puzzling decision later. Instants
    default to the clock's ``now``. Calling the builder with a :class:`~fairproc.World`
    returns an engine over that world instead.
    """

    def __init__(self, policy: Policy, clock: Clock | None = None):
        self.policy = policy
        self.clock = clock if clock is not None else Clock(tz=policy.tz)
        self._records: dict[str, Record] = {}
        self._events: list[Event] = []
        self._suppression: list[SuppressionEntry] = []
        self._engine: Engine | None = None

    # -- building --

    def _at(self, value: Instant | None, what: str) -> dt.datetime:
        return self.clock.now if value is None else parse_instant(value, what)

    def add_record(
        self,
        id: str,
        subject: str,
        source: str,
        collected_at: Instant | None = None,
        data: Mapping[str, Any] | None = None,
        **categories: Any,
    ) -> Record:
        """Add a record; its data is ``data`` and/or keyword arguments, category = value."""
        policy = self.policy
        if id in self._records:
            raise InputError.one(f"record id {id!r} is given twice")
        if source not in policy.sources:
            raise InputError.one(
                f"unknown source {source!r}{did_you_mean(source, policy.sources)} "
                f"(known: {', '.join(sorted(policy.sources))})"
            )
        values = {**(data or {}), **categories}
        allowed = set(policy.sources[source].categories) | {
            c.id for c in policy.categories.values() if c.about_others
        }
        extra = sorted(k for k in values if k not in allowed)
        if extra:
            raise InputError.one(
                f"{source} records do not collect {', '.join(map(repr, extra))} (they collect: "
                f"{', '.join(policy.sources[source].categories) or 'nothing'})"
            )
        record = Record(id, subject, source, self._at(collected_at, "collected_at"), values)
        self._records[id] = record
        self._engine = None
        return record

    def add_event(
        self,
        subject: str,
        kind: str,
        at: Instant | None = None,
        record: str | None = None,
        purpose: str | None = None,
    ) -> Event:
        """Add an event to the subject's timeline."""
        policy = self.policy
        event_kind = policy.events.get(kind)
        if event_kind is None:
            raise InputError.one(
                f"unknown event kind {kind!r}{did_you_mean(kind, policy.events)} "
                f"(known: {', '.join(sorted(policy.events))})"
            )
        if event_kind.names_record and record is None:
            raise InputError.one(f'a {kind} event names its record (record="...")')
        if record is not None and record not in self._records:
            raise InputError.one(f"no record with id {record!r}: add it first")
        if purpose is not None and purpose not in policy.purposes:
            raise InputError.one(
                f"unknown purpose {purpose!r}{did_you_mean(purpose, policy.purposes)} "
                f"(known: {', '.join(sorted(policy.purposes))})"
            )
        event = Event(subject, kind, self._at(at, "at"), record, purpose)
        self._events.append(event)
        self._engine = None
        return event

    def suppress(
        self, email: str, at: Instant | None = None, reason: str = "unsubscribed"
    ) -> SuppressionEntry:
        """Put ``email`` on the suppression list."""
        entry = SuppressionEntry(email, self._at(at, "at"), reason)
        self._suppression.append(entry)
        self._engine = None
        return entry

    def world(self) -> World:
        """The records, events and suppression entries added so far."""
        return World(self._records.values(), self._events, self._suppression)

    @property
    def engine(self) -> Engine:
        """An engine over :meth:`world` (a fresh one whenever something was added)."""
        if self._engine is None:
            self._engine = Engine(self.policy, self.world())
        return self._engine

    def __call__(self, world: World | None = None) -> Engine:
        return self.engine if world is None else Engine(self.policy, world)

    # -- asking, at the clock's now unless told --

    def may_process(
        self, record: str | Record, purpose: str, at: Instant | None = None
    ) -> Decision:
        return self.engine.may_process(record, purpose, self._at(at, "at"))

    def may_share(
        self,
        record: str | Record,
        recipient: str,
        at: Instant | None = None,
        court_order: bool = False,
    ) -> Decision:
        return self.engine.may_share(record, recipient, self._at(at, "at"), court_order)

    def transfer(self, recipient: str, at: Instant | None = None) -> Decision:
        return self.engine.transfer(recipient, self._at(at, "at"))

    def may_email(self, subject: str, at: Instant | None = None) -> Decision:
        return self.engine.may_email(subject, self._at(at, "at"))

    def retention(self, record: str | Record, at: Instant | None = None) -> Decision:
        return self.engine.retention(record, self._at(at, "at"))

    def route(self, record: str | Record, at: Instant | None = None) -> Decision:
        return self.engine.route(record, self._at(at, "at"))

    def __repr__(self) -> str:
        return (
            f"EngineBuilder({self.policy.id!r}, {len(self._records)} records, "
            f"{len(self._events)} events, {len(self._suppression)} suppression entries)"
        )
