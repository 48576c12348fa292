"""The values a store moves: :class:`ChangeSet` (the one unit of writing), :class:`AuditEntry`
(a line of the append-only audit log), :class:`StoreError`, and the checks every adapter runs
before it writes (:func:`check_changes`, :func:`normalised`).

Pure: imports the model, the errors and :mod:`fairproc.storage.codec`; never an adapter, a
driver, the engine or the condition language.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from fairproc.errors import FairprocError, InputError, Problem
from fairproc.model import Event, Record, SuppressionEntry
from fairproc.storage.codec import (
    MAX_EMAIL_LENGTH,
    MAX_ID_LENGTH,
    encode_data,
    instant_to_us,
    normalise_data,
    us_to_instant,
    utc,
)
from fairproc.values import Value


class StoreError(FairprocError):
    """A store could not be opened, read or written: says what, and where (file and line, or
    the database URL with its password hidden)."""


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(repr=False)
class AuditEntry(Value):
    """One line of the append-only audit log: what was done, when, about whom, by whom.

    It names things (the record, the rule, the field that changed), never their values; the
    entries fairproc writes name their subject by pseudonym where the store keeps a key
    (:class:`AuditKeys`), as an id may itself be personal data.
    """

    at: dt.datetime
    action: str  # erase, rectify, object, restrict, delete, anonymise, route, suppress, ...
    subject: str | None = None
    actor: str | None = None
    record: str | None = None
    rule: str | None = None
    field: str | None = None  # rectification: the category that changed, not its value
    due: dt.datetime | None = None  # sweeps: when the record fell due
    detail: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)
    # the policy the change was decided under: its version and content hash (Policy.digest)
    policy_version: str | None = None
    policy_digest: str | None = None


_AUDIT_NAMES = ("record", "rule", "field", "policy_version", "policy_digest")


def audit_detail(entry: AuditEntry) -> dict[str, Any]:
    """The entry's named fields folded into its detail, as adapters store them."""
    stored = dict(entry.detail)
    for name in _AUDIT_NAMES:
        value = getattr(entry, name)
        if value is not None:
            stored[f"_{name}"] = value
    if entry.due is not None:
        stored["_due"] = instant_to_us(entry.due)
    return stored


def audit_from_stored(
    at: dt.datetime,
    action: str,
    subject: str | None,
    actor: str | None,
    detail: Mapping[str, Any],
) -> AuditEntry:
    """The inverse of :func:`audit_detail`."""
    rest = dict(detail)
    named = {name: rest.pop(f"_{name}", None) for name in _AUDIT_NAMES}
    due = rest.pop("_due", None)
    return AuditEntry(
        at,
        action,
        subject,
        actor,
        named["record"],
        named["rule"],
        named["field"],
        us_to_instant(due) if isinstance(due, int) else None,
        rest,
        named["policy_version"],
        named["policy_digest"],
    )


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


@attrs.frozen(repr=False)
class ChangeSet(Value):
    """Writes applied together: all of them, or (on any error) none.

    Applied in this order: ``delete_records`` (ids; an unknown id is no error), then
    ``delete_subject_events`` (every event of those subjects) and ``delete_record_events``
    (every event naming those records): erasure and sweeps forget a timeline with its
    records; then ``put_records`` (insert, or replace the record with the same id in place),
    then ``add_events``, ``add_suppression`` and ``audit`` (appended). Suppression entries and
    audit entries are never changed or removed once written.
    """

    put_records: tuple[Record, ...] = attrs.field(default=(), converter=_tuple)
    delete_records: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    delete_subject_events: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    delete_record_events: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    add_events: tuple[Event, ...] = attrs.field(default=(), converter=_tuple)
    add_suppression: tuple[SuppressionEntry, ...] = attrs.field(default=(), converter=_tuple)
    audit: tuple[AuditEntry, ...] = attrs.field(default=(), converter=_tuple)

    def __bool__(self) -> bool:
        return bool(
            self.put_records
            or self.delete_records
            or self.delete_subject_events
            or self.delete_record_events
            or self.add_events
            or self.add_suppression
            or self.audit
        )


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: Sequence[str | int], message: str) -> None:
        self.problems.append(Problem(message, path=tuple(path)))

    def text(
        self,
        path: Sequence[str | int],
        value: Any,
        optional: bool = False,
        limit: int = MAX_ID_LENGTH,
    ) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str):
            self.add(path, f"expected text, got {type(value).__name__} {value!r}")
        elif not value:
            self.add(path, "must not be empty")
        elif len(value) > limit:
            self.add(path, f"is {len(value)} characters long; at most {limit} can be stored")
        elif "\x00" in value:
            self.add(path, "holds a NUL character, which cannot be stored")
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                self.add(path, "is not valid Unicode text")

    def instant(self, path: Sequence[str | int], value: Any) -> None:
        if not isinstance(value, dt.datetime):
            self.add(path, f"expected a timezone-aware datetime, got {type(value).__name__}")
        elif value.tzinfo is None or value.utcoffset() is None:
            self.add(path, f"naive datetime {value.isoformat()} has no time zone")

    def data(self, path: Sequence[str | int], value: Any) -> None:
        if not isinstance(value, Mapping):
            self.add(path, f"expected a table, got {type(value).__name__}")
            return
        if not value:
            return  # most audit entries' detail: nothing to encode (a sweep writes thousands)
        for key in value:
            self.text([*path, str(key)], key)
        try:
            encode_data(value)
        except ValueError as exc:
            self.add(path, str(exc))


def check_changes(changes: ChangeSet) -> None:
    """Raise :class:`InputError` naming every value in ``changes`` that no store can keep
    faithfully. Adapters call it before writing anything."""
    c = _Checker()
    if not isinstance(changes, ChangeSet):
        raise InputError.one(f"expected a ChangeSet, got {type(changes).__name__}")
    seen: set[str] = set()
    for i, rec in enumerate(changes.put_records):
        p: list[str | int] = ["put_records", i]
        if not isinstance(rec, Record):
            c.add(p, f"expected a Record, got {type(rec).__name__}")
            continue
        c.text([*p, "id"], rec.id)
        c.text([*p, "subject"], rec.subject)
        c.text([*p, "source"], rec.source)
        c.instant([*p, "collected_at"], rec.collected_at)
        c.data([*p, "data"], rec.data)
        if rec.id in seen:
            c.add([*p, "id"], f"record id {rec.id!r} is put twice in one change set")
        seen.add(rec.id)
    for i, rid in enumerate(changes.delete_records):
        c.text(["delete_records", i], rid)
    for i, subject in enumerate(changes.delete_subject_events):
        c.text(["delete_subject_events", i], subject)
    for i, rid in enumerate(changes.delete_record_events):
        c.text(["delete_record_events", i], rid)
    for i, ev in enumerate(changes.add_events):
        p = ["add_events", i]
        if not isinstance(ev, Event):
            c.add(p, f"expected an Event, got {type(ev).__name__}")
            continue
        c.text([*p, "subject"], ev.subject)
        c.text([*p, "kind"], ev.kind)
        c.instant([*p, "at"], ev.at)
        c.text([*p, "record"], ev.record, optional=True)
        c.text([*p, "purpose"], ev.purpose, optional=True)
        c.text([*p, "id"], ev.id, optional=True)
    for i, entry in enumerate(changes.add_suppression):
        p = ["add_suppression", i]
        if not isinstance(entry, SuppressionEntry):
            c.add(p, f"expected a SuppressionEntry, got {type(entry).__name__}")
            continue
        c.text([*p, "email"], entry.email, limit=MAX_EMAIL_LENGTH)
        if isinstance(entry.email, str) and entry.email and not entry.email.strip():
            c.add([*p, "email"], "is blank")
        c.instant([*p, "at"], entry.at)
        c.text([*p, "reason"], entry.reason)
    for i, audit in enumerate(changes.audit):
        p = ["audit", i]
        if not isinstance(audit, AuditEntry):
            c.add(p, f"expected an AuditEntry, got {type(audit).__name__}")
            continue
        c.instant([*p, "at"], audit.at)
        c.text([*p, "action"], audit.action)
        c.text([*p, "subject"], audit.subject, optional=True)
        c.text([*p, "actor"], audit.actor, optional=True)
        for name in _AUDIT_NAMES:
            c.text([*p, name], getattr(audit, name), optional=True)
        if audit.due is not None:
            c.instant([*p, "due"], audit.due)
        c.data([*p, "detail"], audit.detail)
    if c.problems:
        raise InputError(c.problems)


def normalised(changes: ChangeSet) -> ChangeSet:
    """``changes`` as a store gives its values back: instants in UTC, data round-tripped.
    Call after :func:`check_changes`."""
    return ChangeSet(
        put_records=[
            Record(r.id, r.subject, r.source, utc(r.collected_at), normalise_data(r.data))
            for r in changes.put_records
        ],
        delete_records=changes.delete_records,
        delete_subject_events=changes.delete_subject_events,
        delete_record_events=changes.delete_record_events,
        add_events=[attrs.evolve(e, at=utc(e.at)) for e in changes.add_events],
        add_suppression=[attrs.evolve(s, at=utc(s.at)) for s in changes.add_suppression],
        audit=[
            attrs.evolve(
                a,
                at=utc(a.at),
                due=None if a.due is None else utc(a.due),
                detail=normalise_data(a.detail) if a.detail else {},
            )
            for a in changes.audit
        ],
    )
