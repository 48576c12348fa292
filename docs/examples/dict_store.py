"""A complete fairproc store in plain dicts: the worked example of docs/adapters.md.

It passes fairproc's contract test kit (tests/test_store_contract.py runs it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from fairproc import Event, Record, SuppressionEntry
from fairproc.model import normalise_email
from fairproc.storage import AuditEntry, BaseStore, ChangeSet, check_changes, normalised


class DictStore(BaseStore):
    """Everything in four collections; a write builds new collections, then swaps them in."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}  # dicts keep insertion order
        self.events: list[Event] = []
        self.suppression: list[SuppressionEntry] = []
        self.audit: list[AuditEntry] = []
        self.version = 0

    # -- what the engine reads (fairproc.HistorySource) --

    def get_record(self, record_id: str) -> Record | None:
        return self.records.get(record_id)

    def subject_records(self, subject: str) -> Sequence[Record]:
        return [r for r in self.records.values() if r.subject == subject]

    def subject_events(self, subject: str) -> Sequence[Event]:
        return [e for e in self.events if e.subject == subject]

    def suppression_entries(self, emails: Iterable[str]) -> Sequence[SuppressionEntry]:
        return [
            entry
            for email in emails
            for entry in self.suppression
            if normalise_email(entry.email) == normalise_email(email)
        ]

    # -- the rest of fairproc.storage.Store --

    @property
    def revision(self) -> int:
        return self.version  # the engine drops its cached histories when this changes

    def iter_records(self) -> Iterator[Record]:
        return iter(list(self.records.values()))

    def audit_entries(self, subject: str | None = None) -> Iterator[AuditEntry]:
        return iter([a for a in self.audit if subject is None or a.subject == subject])

    # find_records: BaseStore filters iter_records() in Python; a database would push the
    # condition down instead (see fairproc.adapters.sqlcompile).

    def apply(self, changes: ChangeSet) -> None:
        check_changes(changes)  # refuse what no store can keep (naive datetimes, NaN, ...)
        changes = normalised(changes)  # instants in UTC, data as every store gives it back
        # All or nothing: work on copies, and swap them in only when every step succeeded.
        records = dict(self.records)
        for record_id in changes.delete_records:
            records.pop(record_id, None)
        for record in changes.put_records:
            records[record.id] = record  # an existing id keeps its place
        forget_subjects = set(changes.delete_subject_events)
        forget_records = set(changes.delete_record_events)
        events = [
            e for e in self.events
            if e.subject not in forget_subjects and e.record not in forget_records
        ] + list(changes.add_events)
        suppression = [*self.suppression, *changes.add_suppression]
        audit = [*self.audit, *changes.audit]
        self.records, self.events = records, events
        self.suppression, self.audit = suppression, audit
        self.version += 1


def open_url(url: str, *, create: bool = True) -> DictStore:
    """What ``fairproc.storage.open_store`` calls for a ``dict://`` URL (its entry point)."""
    return DictStore()
