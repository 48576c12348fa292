"""Storage: the one small interface every store implements, and the values it moves.

The engine reads a store through :class:`fairproc.world.HistorySource`. A :class:`Store` is that
read side plus what an application needs around it, and nothing more:

* ``revision``: changes on every write, so an :class:`~fairproc.engine.Engine` drops the
  subject histories it cached;
* ``iter_records()``: every record, streamed;
* ``find_records(condition, at, policy)``: the records a condition holds for at ``at`` (adapters
  that can push the condition down to their storage do; :func:`filter_records` is the default
  that filters in Python);
* optionally, ``find_rows(condition, at, policy, values)``: the same selection as plain rows
  (record id, subject, source and the value of each expression in ``values``), so a caller
  that needs a few facts per record builds no records (sweeps ask it); and
  ``count_records(condition, at, policy)``: how many records the condition holds for.
  :class:`BaseStore` answers both from ``find_records`` (:func:`select_rows`,
  :func:`count_matching`); the SQL store answers them in the database;
* ``audit_entries(subject)``: the append-only audit log, in the order it was written;
* ``apply(changes)``: a :class:`ChangeSet` (records put or deleted, events, suppression entries,
  audit entries) applied as a whole or not at all;
* ``close()``.

This module is part of the pure core: values, the protocol, validation and the Python
fallback. The adapters (``fairproc.adapters.memory``, ``.sql``, ``.csv``) hold the I/O, and
:func:`open_store` imports the one a URL names only when it is asked for.

Conventions every adapter keeps (the contract kit in :mod:`fairproc.testing.contract` checks
them): instants come back as UTC datetimes equal to the instants put in, at microsecond
precision; a record's ``data`` comes back as :func:`encode_data` / :func:`decode_data` round-trip
it (tuples become lists); ``subject_records`` lists records in the order they were first put,
``subject_events`` in the order they were added; ``suppression_entries`` answers as
:class:`fairproc.world.World` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import importlib
import json
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, Protocol, runtime_checkable

import attrs

from fairproc.conditions import (
    Condition,
    ConditionError,
    Kind,
    Node,
    check,
    compile_python,
    parse,
    render,
)
from fairproc.errors import FairprocError, InputError, Problem, did_you_mean
from fairproc.model import Event, Policy, Record, SuppressionEntry, derived, normalise_email
from fairproc.world import (
    Ctx,
    HistorySource,
    SubjectHistory,
    givers_in,
    index_givers,
    suppression_lookup,
    vocabulary,
)

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_US = dt.timedelta(microseconds=1)

MAX_ID_LENGTH = 255
"""Ids, subjects, sources, kinds, purposes, category names, reasons: at most this many
characters, in every adapter (SQL columns are sized for it)."""
MAX_EMAIL_LENGTH = 320

RECORDS_CONTEXT = "retention"
"""The vocabulary ``find_records`` conditions are checked against: ``at``, ``record.*``,
``subject.*`` and the policy's functions (the names a retention or routing rule can read)."""
RECORDS_CONDITIONS_KEPT = 256  # compiled conditions over records kept per policy


class StoreError(FairprocError):
    """A store could not be opened, read or written: says what, and where (file and line, or
    the database URL with its password hidden)."""


# --- values ----------------------------------------------------------------------------------


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class AuditEntry:
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


@attrs.frozen
class ChangeSet:
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


# --- the protocol ----------------------------------------------------------------------------


ConditionLike = Condition | Node | str


@runtime_checkable
class Store(HistorySource, Protocol):
    """What fairproc asks of a store. Adapters may subclass :class:`BaseStore` for the
    conveniences and the Python fallback of ``find_records``."""

    @property
    def revision(self) -> Hashable:
        """Changes whenever the stored data changes (by this handle or any other)."""
        ...

    def iter_records(self) -> Iterator[Record]:
        """Every record, in the order first put, streamed (memory does not grow with the
        store)."""
        ...

    def find_records(
        self, condition: ConditionLike, at: dt.datetime, policy: Policy
    ) -> Iterator[Record]:
        """The records for which ``condition`` holds at ``at``, in the order first put.

        ``condition`` is checked against the records vocabulary (:data:`RECORDS_CONTEXT`).
        Every adapter gives exactly what :func:`filter_records` gives."""
        ...

    def audit_entries(self, subject: str | None = None) -> Iterator[AuditEntry]:
        """The audit log in the order written; only the subject's entries when given."""
        ...

    def apply(self, changes: ChangeSet) -> None:
        """Apply every change or none (see :class:`ChangeSet`). Invalid values raise
        :class:`~fairproc.errors.InputError`; storage failures :class:`StoreError`."""
        ...

    def close(self) -> None: ...


Decide = Callable[["Store"], ChangeSet]
"""What :meth:`DecidedWrites.apply_decided` calls: the store as it stands in, the changes to
make out (reads only: it must not write)."""


@runtime_checkable
class DecidedWrites(Protocol):
    """A store that can decide a write and make it as one step.

    Deciding from one read and writing later loses to a concurrent writer: two sweeps both
    delete (and audit) the same record, a sweep deletes a record another process has since
    given a reason to keep. ``apply_decided(decide)`` takes the store's write lock (SQL: the
    write transaction, its revision row locked; CSV: the folder's write lock; memory: its
    lock), calls ``decide(store)``, whose reads see every write committed before and none
    after, applies the :class:`ChangeSet` it returns in the same step, and returns it: only
    the writer whose change set deleted a row audits it and counts it. ``decide`` must not
    write (a write inside it is refused)."""

    def apply_decided(self, decide: Decide) -> ChangeSet: ...


@runtime_checkable
class AuditKeys(Protocol):
    """A store that keeps a secret key for naming subjects in its audit log.

    An audit entry outlives what it records: an email address used as a subject id would
    survive the subject's erasure in the log. So the audit entries fairproc writes name their
    subject by :func:`subject_pseudonym` under the store's key (memory: made with the store;
    SQL: a row of ``<prefix>keys``; CSV: ``.fairproc-audit-key``, mode 0600), created on first
    use and kept with the data. Without the key a pseudonym cannot be traced back to an id,
    nor an id guessed from a list of addresses; with it, :func:`subject_audit` answers for an
    id."""

    def audit_key(self) -> bytes: ...


PSEUDONYM = "hmac-sha256:"
"""How a pseudonymised subject in the audit log begins."""


def subject_pseudonym(key: bytes, subject: str) -> str:
    """``subject`` as the audit log names it: an HMAC-SHA256 of the id under ``key`` (128
    bits of it, in hex, after :data:`PSEUDONYM`)."""
    digest = hmac.new(key, subject.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return PSEUDONYM + digest.hexdigest()[:32]


def audit_subject(store: object, subject: str) -> str:
    """How ``store``'s audit log names ``subject``: its pseudonym under the store's key, or
    the id itself for a store that keeps no key (:class:`AuditKeys`)."""
    if isinstance(store, AuditKeys) and not subject.startswith(PSEUDONYM):
        return subject_pseudonym(store.audit_key(), subject)
    return subject


def pseudonymised(changes: ChangeSet, store: object) -> ChangeSet:
    """``changes`` with each audit entry's subject as ``store``'s log names it."""
    if not isinstance(store, AuditKeys) or not any(a.subject for a in changes.audit):
        return changes
    return attrs.evolve(
        changes,
        audit=[
            a if a.subject is None else attrs.evolve(a, subject=audit_subject(store, a.subject))
            for a in changes.audit
        ],
    )


def subject_audit(store: Store, subject: str) -> list[AuditEntry]:
    """Every audit entry about ``subject`` (given by its id), in the order written: was the
    subject erased, when, under which rule (``[(a.at, a.rule, a.record) for a in ... if
    a.action == "erase"]``)."""
    return list(store.audit_entries(audit_subject(store, subject)))


# --- instants and data, as every adapter stores them -----------------------------------------


def instant_to_us(value: dt.datetime) -> int:
    """Microseconds since the epoch: how the SQL adapter stores and compares instants."""
    return (value - EPOCH) // _US


def us_to_instant(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(0, 0, value)  # (days, seconds, microseconds): positional is faster


def utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(UTC)


def format_instant(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; microseconds only when there are some."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def parse_stored_instant(text: str) -> dt.datetime:
    """The inverse of :func:`format_instant` (any offset accepted); ValueError otherwise."""
    value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected an instant with an offset, got {text!r}")
    return value.astimezone(UTC)


_TAGS = ("$date", "$time", "$datetime")


def _encode_value(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value!r} is not a finite number")
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{path}: naive datetime {value.isoformat()} has no offset")
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be strings, got {key!r}")
            stored = "$" + key if key.startswith("$") else key
            out[stored] = _encode_value(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_encode_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise ValueError(
        f"{path}: {type(value).__name__} values cannot be stored (expected text, numbers, "
        "true/false, dates, times, aware datetimes, lists and tables)"
    )


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, item),) = value.items()
            if key in _TAGS and isinstance(item, str):
                if key == "$date":
                    return dt.date.fromisoformat(item)
                if key == "$time":
                    return dt.time.fromisoformat(item)
                return dt.datetime.fromisoformat(item)
        return {(k[1:] if k.startswith("$") else k): _decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value


def encode_data(data: Mapping[str, Any], what: str = "data") -> str:
    """A record's data (or an audit entry's detail) as JSON text; ValueError when a value
    cannot be stored faithfully (NaN, a naive datetime, an arbitrary object)."""
    text = json.dumps(
        _encode_value(data, what), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: holds text that is not valid Unicode") from None
    return text


def decode_data(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    if "$" not in text and "\\u" not in text:
        # No "$" anywhere, not even escaped: no tagged value and no escaped key, so the JSON
        # is the data as it is (most records: plain text and numbers).
        return value
    decoded: dict[str, Any] = _decode_value(value)
    return decoded


def normalise_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as a store gives it back."""
    return decode_data(encode_data(data))


def category_norms(record: Record) -> list[tuple[str, str | None]]:
    """(category, normalised text) for each category the record holds: what the SQL adapter
    indexes. The text is :func:`fairproc.model.normalise_email` of a non-blank string value
    (None otherwise, or when longer than an email can be), so a suppression entry can be
    matched without reading the data."""
    out: list[tuple[str, str | None]] = []
    for key, value in record.data.items():
        if value is None:
            continue
        norm = None
        if isinstance(value, str) and value.strip():
            norm = normalise_email(value)
            if len(norm) > MAX_EMAIL_LENGTH:
                norm = None
        out.append((key, norm))
    return out


# --- validation ------------------------------------------------------------------------------


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


# --- conditions over records, and the Python fallback ----------------------------------------


def records_condition(condition: ConditionLike, policy: Policy) -> Condition:
    """``condition`` checked against the records vocabulary and compiled to Python.

    A :class:`Condition` compiled for another kind of rule is checked again here, so one that
    reads ``purpose`` or ``recipient`` is refused with the names it may read."""
    # Compiled once per policy: a sweep asks the same few conditions every time. Bounded, as
    # an application may ask many one-off conditions.
    memo: dict[Any, Condition] = derived(policy).setdefault("records conditions", {})
    key = condition.text if isinstance(condition, Condition) else condition
    try:
        found = memo.get(key)
    except TypeError:  # a node holding an unhashable value: compiled every time
        return _records_condition(condition, policy)
    if found is None:
        if len(memo) >= RECORDS_CONDITIONS_KEPT:
            # The oldest goes; pop, as another thread may have just taken the same one.
            memo.pop(next(iter(memo)), None)
        found = memo[key] = _records_condition(condition, policy)
    return found


def _records_condition(condition: ConditionLike, policy: Policy) -> Condition:
    vocab = vocabulary(policy, RECORDS_CONTEXT)
    if isinstance(condition, str):
        return Condition.build(condition, vocab, policy.tz)
    node = condition.node if isinstance(condition, Condition) else condition
    text = condition.text if isinstance(condition, Condition) else render(node)
    t = check(node, vocab, text, Kind.BOOL)
    return Condition(text=text, node=node, type=t, evaluate=compile_python(node, vocab, policy.tz))


def build_history(
    policy: Policy,
    subject: str,
    records: Sequence[Record],
    events: Sequence[Event],
    suppression: Callable[[Sequence[str]], Sequence[SuppressionEntry]],
) -> SubjectHistory:
    """A subject's history exactly as :meth:`fairproc.engine.Engine.history` builds it."""
    history = SubjectHistory(policy, subject, records, events)
    entries = suppression(history.emails) if history.emails else ()
    if entries:
        history = SubjectHistory(policy, subject, records, events, entries)
    return history


def load_histories(
    store: HistorySource, policy: Policy, subjects: Iterable[str]
) -> dict[str, SubjectHistory]:
    """Histories for several subjects: one batched call when the store offers
    ``histories(policy, subjects)``, one subject at a time otherwise."""
    batch = getattr(store, "histories", None)
    wanted = list(dict.fromkeys(subjects))
    if callable(batch):
        found: dict[str, SubjectHistory] = batch(policy, wanted)
        return found
    return {
        s: build_history(
            policy,
            s,
            store.subject_records(s),
            store.subject_events(s),
            suppression_lookup(store, policy),
        )
        for s in wanted
    }


def matching(
    store: HistorySource,
    condition: Condition,
    at: dt.datetime,
    policy: Policy,
    records: Iterable[Record],
    batch: int = 500,
) -> Iterator[Record]:
    """The records of ``records`` for which ``condition`` holds at ``at``, in order, loading
    the histories they need ``batch`` records at a time."""
    for rec, history in with_histories(store, policy, records, batch):
        if condition.evaluate(Ctx(at, history, rec)):
            yield rec


def with_histories(
    store: HistorySource, policy: Policy, records: Iterable[Record], batch: int = 500
) -> Iterator[tuple[Record, SubjectHistory]]:
    """Each record of ``records`` with its subject's history, in order; the histories are
    loaded ``batch`` records at a time (:func:`load_histories`)."""
    chunk: list[Record] = []

    def flush() -> Iterator[tuple[Record, SubjectHistory]]:
        histories = load_histories(store, policy, (r.subject for r in chunk))
        for rec in chunk:
            yield rec, histories[rec.subject]

    for rec in records:
        chunk.append(rec)
        if len(chunk) >= batch:
            yield from flush()
            chunk = []
    if chunk:
        yield from flush()


def filter_records(
    store: Store, condition: ConditionLike, at: dt.datetime, policy: Policy
) -> Iterator[Record]:
    """The default ``find_records``: stream every record and evaluate the condition in Python.

    What every adapter's ``find_records`` must give, whatever it pushes down."""
    from fairproc.clock import require_aware

    at = require_aware(at)
    cond = records_condition(condition, policy)
    return matching(store, cond, at, policy, store.iter_records())


Row = tuple[str, str, str, tuple[Any, ...]]
"""What ``find_rows`` gives for one record: (id, subject, source, the values asked for)."""

_VALUE_KINDS = (Kind.INSTANT, Kind.BOOL, Kind.STRING, Kind.NUMBER, Kind.DATE, Kind.TIME)


def records_value(expression: ConditionLike, policy: Policy) -> Condition:
    """An expression of any type a row can hold (instant, bool, string, number, date, time)
    over the records vocabulary, checked and compiled to Python: a value ``find_rows`` gives."""
    vocab = vocabulary(policy, RECORDS_CONTEXT)
    if isinstance(expression, str):
        node, text = parse(expression), expression
    else:
        node = expression.node if isinstance(expression, Condition) else expression
        text = expression.text if isinstance(expression, Condition) else render(node)
    first: ConditionError | None = None
    for kind in _VALUE_KINDS:
        try:
            t = check(node, vocab, text, kind)
        except ConditionError as error:
            # A wrong kind and a real mistake both raise; a real mistake raises for every kind.
            first = first or error
            continue
        return Condition(
            text=text, node=node, type=t, evaluate=compile_python(node, vocab, policy.tz)
        )
    assert first is not None
    raise first


def row_value(value: Any) -> Any:
    """A value as ``find_rows`` gives it, whatever the store: an instant as integer
    microseconds (:func:`instant_to_us`), a truth as 0 or 1, anything else as it is."""
    if isinstance(value, dt.datetime):
        return instant_to_us(value)
    if isinstance(value, bool):
        return int(value)
    return value


def rows_of(
    store: HistorySource,
    records: Iterable[Record],
    at: dt.datetime,
    policy: Policy,
    values: Sequence[Condition],
    batch: int = 500,
) -> Iterator[Row]:
    """Each record of ``records`` as a row, its ``values`` evaluated in Python; the histories
    they need are loaded ``batch`` records at a time (none when no value is asked for)."""
    if not values:
        for rec in records:
            yield rec.id, rec.subject, rec.source, ()
        return
    for rec, history in with_histories(store, policy, records, batch):
        ctx = Ctx(at, history, rec)
        yield rec.id, rec.subject, rec.source, tuple(row_value(v.evaluate(ctx)) for v in values)


def select_rows(
    store: Store,
    condition: ConditionLike,
    at: dt.datetime,
    policy: Policy,
    values: Sequence[ConditionLike] = (),
) -> Iterator[Row]:
    """The default ``find_rows``: the store's ``find_records``, each record as a row.

    What every adapter's ``find_rows`` must give, whatever it pushes down."""
    from fairproc.clock import require_aware

    at = require_aware(at)
    exprs = [records_value(v, policy) for v in values]
    return rows_of(store, store.find_records(condition, at, policy), at, policy, exprs)


def count_matching(store: Store, condition: ConditionLike, at: dt.datetime, policy: Policy) -> int:
    """The default ``count_records``: the records ``find_records`` gives, counted."""
    return sum(1 for _ in store.find_records(condition, at, policy))


class BaseStore:
    """Conveniences on top of the protocol: put and get one thing at a time, the Python
    ``find_records`` fallback (and ``find_rows`` and ``count_records`` built on it), and use as
    a context manager. Subclasses implement the
    :class:`HistorySource` reads, ``revision``, ``iter_records``, ``audit_entries`` and
    ``apply``."""

    @property
    def revision(self) -> Hashable:  # pragma: no cover - every adapter overrides it
        raise NotImplementedError

    def get_record(self, record_id: str) -> Record | None:  # pragma: no cover
        raise NotImplementedError

    def subject_records(self, subject: str) -> Sequence[Record]:  # pragma: no cover
        raise NotImplementedError

    def subject_events(self, subject: str) -> Sequence[Event]:  # pragma: no cover
        raise NotImplementedError

    def suppression_entries(
        self, emails: Iterable[str]
    ) -> Sequence[SuppressionEntry]:  # pragma: no cover
        raise NotImplementedError

    def iter_records(self) -> Iterator[Record]:  # pragma: no cover
        raise NotImplementedError

    def subjects_giving(
        self, category: str, emails: Sequence[str]
    ) -> Sequence[tuple[str, str, dt.datetime]]:
        """Who gave each address (:class:`fairproc.world.AddressIndex`), by reading every
        record: an adapter that can look addresses up (an index) should override it."""
        return givers_in(index_givers(self.iter_records(), category), emails)

    def audit_entries(self, subject: str | None = None) -> Iterator[AuditEntry]:  # pragma: no cover
        raise NotImplementedError

    def apply(self, changes: ChangeSet) -> None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Release what the store holds; the default holds nothing."""

    def find_records(
        self, condition: ConditionLike, at: dt.datetime, policy: Policy
    ) -> Iterator[Record]:
        return filter_records(self, condition, at, policy)

    def find_rows(
        self,
        condition: ConditionLike,
        at: dt.datetime,
        policy: Policy,
        values: Sequence[ConditionLike] = (),
    ) -> Iterator[Row]:
        """For each record ``condition`` holds for at ``at``, in the order first put: (id,
        subject, source, ``values`` evaluated for it, as :func:`row_value` gives them)."""
        return select_rows(self, condition, at, policy, values)

    def count_records(self, condition: ConditionLike, at: dt.datetime, policy: Policy) -> int:
        """How many records ``condition`` holds for at ``at``."""
        return count_matching(self, condition, at, policy)

    # -- one thing at a time --

    def put_records(self, *records: Record) -> None:
        self.apply(ChangeSet(put_records=records))

    def delete_records(self, *record_ids: str) -> None:
        self.apply(ChangeSet(delete_records=record_ids))

    def add_events(self, *events: Event) -> None:
        self.apply(ChangeSet(add_events=events))

    def add_suppression(self, *entries: SuppressionEntry) -> None:
        self.apply(ChangeSet(add_suppression=entries))

    def append_audit(self, *entries: AuditEntry) -> None:
        self.apply(ChangeSet(audit=entries))

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- opening a store by URL ------------------------------------------------------------------

_SCHEMES = {
    "memory": "fairproc.adapters.memory",
    "sqlite": "fairproc.adapters.sql",
    "postgresql": "fairproc.adapters.sql",
    "postgres": "fairproc.adapters.sql",
    "mysql": "fairproc.adapters.sql",
    "mariadb": "fairproc.adapters.sql",
    "csv": "fairproc.adapters.csv",
}
_EXAMPLES = "memory://, sqlite:///path, postgresql://..., mysql+pymysql://..., csv:///folder"


def hide_password(url: str) -> str:
    """``url`` with the password (if any) replaced by ``***``, for error messages."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    return f"{head}{sep}{netloc}{slash}{tail}"


def open_store(url: str = "memory://", *, create: bool = True) -> Store:
    """The store a URL names: ``memory://`` (the default), ``sqlite:///path`` (relative) or
    ``sqlite:////abs/path``, ``postgresql://user@host/db``, ``mysql+pymysql://user@host/db``
    (MariaDB too), ``csv:///folder``. SQL URLs take ``?prefix=`` for the table-name prefix
    (default ``fairproc_``). Errors say what is wrong and where, never a driver traceback.

    ``create=False`` opens only a store that exists already (a SQLite file, a CSV folder, the
    fairproc tables of a SQL database) and otherwise raises :class:`StoreError` saying so, so
    that a command reading a mistyped path does not leave an empty store behind."""
    if not isinstance(url, str) or ("://" not in url and not url.startswith("csv:")):
        raise StoreError(f"not a store URL: {url!r}; expected one of {_EXAMPLES}")
    scheme = url.split(":", 1)[0].lower()
    base = scheme.split("+", 1)[0]
    module_name = _SCHEMES.get(base)
    if module_name is None:
        raise StoreError(
            f"unknown store URL scheme {scheme!r}{did_you_mean(base, _SCHEMES)} in "
            f"{hide_password(url)!r}; "
            f"expected one of {_EXAMPLES}"
        )
    module = importlib.import_module(module_name)
    opened: Store = module.open_url(url, create=create)
    return opened
