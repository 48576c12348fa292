"""The in-memory store: the default, and the reference the other adapters are tested against.

``find_records`` filters in Python (:func:`fairproc.storage.filter_records`). ``apply`` checks the
whole change set first, then applies it while keeping an undo log, so an error at any step
(even one nobody foresaw) leaves the store as it was.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from fairproc.model import Event, Policy, Record, SuppressionEntry, normalise_email
from fairproc.storage import (
    AuditEntry,
    BaseStore,
    ChangeSet,
    Decide,
    StoreError,
    build_history,
    check_changes,
    normalised,
)
from fairproc.world import GiverIndex, SubjectHistory, givers_in, index_givers, suppression_lookup

__all__ = ["MemoryStore", "open_url"]

T = TypeVar("T")


class MemoryStore(BaseStore):
    """Records, events, suppression entries and the audit log in dicts and lists."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, Record] = {}
        self._seq: dict[str, int] = {}  # record id -> order first put
        self._next_seq = 0
        self._by_subject: dict[str, dict[str, None]] = {}
        self._events: dict[str, list[Event]] = {}
        self._suppression: dict[str, list[SuppressionEntry]] = {}
        self._audit: list[AuditEntry] = []
        self._revision = 0
        self._deciding: threading.Thread | None = None  # the thread inside apply_decided
        self._audit_key = secrets.token_bytes(32)
        self._givers: tuple[int, str, GiverIndex] | None = None  # (revision, category, index)

    def audit_key(self) -> bytes:
        """The key naming subjects in the audit log (:class:`fairproc.storage.AuditKeys`): made
        with the store, gone with it."""
        return self._audit_key

    @property
    def revision(self) -> int:
        return self._revision

    # -- reads --

    def get_record(self, record_id: str) -> Record | None:
        with self._lock:
            return self._records.get(record_id)

    def subject_records(self, subject: str) -> Sequence[Record]:
        with self._lock:
            ids = sorted(self._by_subject.get(subject, ()), key=self._seq.__getitem__)
            return tuple(self._records[i] for i in ids)

    def subject_events(self, subject: str) -> Sequence[Event]:
        with self._lock:
            return tuple(self._events.get(subject, ()))

    def suppression_entries(self, emails: Iterable[str]) -> Sequence[SuppressionEntry]:
        with self._lock:
            out: list[SuppressionEntry] = []
            for email in emails:
                out.extend(self._suppression.get(normalise_email(email), ()))
            return out

    def subjects_giving(
        self, category: str, emails: Sequence[str]
    ) -> Sequence[tuple[str, str, dt.datetime]]:
        """Who gave each address (:class:`fairproc.world.AddressIndex`), from an index made
        once per revision."""
        with self._lock:
            cached = self._givers
            if cached is None or cached[0] != self._revision or cached[1] != category:
                index = index_givers(self._records.values(), category)
                cached = self._givers = (self._revision, category, index)
            return givers_in(cached[2], emails)

    def iter_records(self) -> Iterator[Record]:
        with self._lock:
            snapshot = sorted(self._records.values(), key=lambda r: self._seq[r.id])
        return iter(snapshot)

    def audit_entries(self, subject: str | None = None) -> Iterator[AuditEntry]:
        with self._lock:
            entries = list(self._audit)
        return iter([e for e in entries if subject is None or e.subject == subject])

    def histories(self, policy: Policy, subjects: Iterable[str]) -> dict[str, SubjectHistory]:
        # The suppression list is looked up when a fact first needs it: a sweep never does.
        return {
            s: build_history(
                policy,
                s,
                self.subject_records(s),
                self.subject_events(s),
                suppression_lookup(self, policy),
            )
            for s in dict.fromkeys(subjects)
        }

    def history_batches(
        self, policy: Policy, size: int = 20
    ) -> Iterator[dict[str, SubjectHistory]]:
        """The history of every subject with records, each exactly once, ``size`` subjects at
        a time: how sweeps read the store (one history per subject, not one per record).

        Small batches let each batch's histories die young: promoted into the garbage
        collector's oldest generation, they would trigger collections that walk the whole
        store (at 100,000 records that doubled the time of a sweep)."""
        with self._lock:
            subjects = list(self._by_subject)
        for start in range(0, len(subjects), size):
            yield self.histories(policy, subjects[start : start + size])

    # -- writes --

    def apply_decided(self, decide: Decide) -> ChangeSet:
        """``decide`` and its changes under the store's lock: no other thread writes between
        (:class:`fairproc.storage.DecidedWrites`)."""
        with self._lock:
            self._deciding = threading.current_thread()
            try:
                changes = decide(self)
            finally:
                self._deciding = None
            self.apply(changes)
        return changes

    def apply(self, changes: ChangeSet) -> None:
        check_changes(changes)
        if not changes:
            return
        changes = normalised(changes)
        with self._lock:
            if self._deciding is threading.current_thread():
                raise StoreError("memory store: cannot write while deciding a write")
            undo: list[Callable[[], None]] = []
            try:
                for record_id in changes.delete_records:
                    self._delete(record_id, undo)
                self._forget_events(changes, undo)
                for record in changes.put_records:
                    self._put(record, undo)
                for event in changes.add_events:
                    self._append(self._events.setdefault(event.subject, []), event, undo)
                for entry in changes.add_suppression:
                    key = normalise_email(entry.email)
                    self._append(self._suppression.setdefault(key, []), entry, undo)
                for audit in changes.audit:
                    self._append(self._audit, audit, undo)
            except BaseException:
                for step in reversed(undo):
                    step()
                raise
            self._revision += 1

    def _forget_events(self, changes: ChangeSet, undo: list[Callable[[], None]]) -> None:
        subjects = set(changes.delete_subject_events)
        records = set(changes.delete_record_events)
        if not subjects and not records:
            return
        for subject, events in list(self._events.items()):
            kept = [
                e
                for e in events
                if subject not in subjects and (e.record is None or e.record not in records)
            ]
            if len(kept) == len(events):
                continue
            self._events[subject] = kept

            def restore(subject: str = subject, events: list[Event] = events) -> None:
                self._events[subject] = events

            undo.append(restore)

    def _append(self, target: list[T], value: T, undo: list[Callable[[], None]]) -> None:
        target.append(value)

        def remove() -> None:
            target.pop()

        undo.append(remove)

    def _index(self, record_id: str, subject: str) -> None:
        self._by_subject.setdefault(subject, {})[record_id] = None

    def _unindex(self, record_id: str, subject: str) -> None:
        ids = self._by_subject.get(subject)
        if ids is not None:
            ids.pop(record_id, None)
            if not ids:
                del self._by_subject[subject]

    def _delete(self, record_id: str, undo: list[Callable[[], None]]) -> None:
        old = self._records.pop(record_id, None)
        if old is None:
            return
        seq = self._seq.pop(record_id)
        self._unindex(record_id, old.subject)

        def restore() -> None:
            self._records[record_id] = old
            self._seq[record_id] = seq
            self._index(record_id, old.subject)

        undo.append(restore)

    def _put(self, record: Record, undo: list[Callable[[], None]]) -> None:
        old = self._records.get(record.id)
        self._records[record.id] = record
        if old is None:
            self._seq[record.id] = self._next_seq
            self._next_seq += 1
            self._index(record.id, record.subject)

            def remove() -> None:
                del self._records[record.id]
                del self._seq[record.id]
                self._unindex(record.id, record.subject)

            undo.append(remove)
            return
        if old.subject != record.subject:
            self._unindex(record.id, old.subject)
            self._index(record.id, record.subject)

        def restore() -> None:
            self._records[record.id] = old
            if old.subject != record.subject:
                self._unindex(record.id, record.subject)
                self._index(record.id, old.subject)

        undo.append(restore)


def open_url(url: str, *, create: bool = True) -> MemoryStore:
    """``memory://``: a new, empty store (``create`` changes nothing: it is always new)."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    if rest not in ("", "/"):
        raise StoreError(f"memory:// takes no path or options, got {url!r}")
    return MemoryStore()
