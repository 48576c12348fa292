"""A subject's history, made one way: :func:`build_history` is the only place a
:class:`~fairproc.world.SubjectHistory` is made from stored records, events and suppression
entries (the engine, the adapters' bulk reads, the contract kit's reference all call it), and
:func:`load_histories` reads several at once from any store (in bulk where it can:
:class:`~fairproc.storage.interface.BulkHistories`).

Pure: imports the world and the interface; never an adapter or the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from fairproc.model import Event, Policy, Record, SuppressionEntry
from fairproc.storage.interface import BulkHistories
from fairproc.world import HistorySource, SubjectHistory, SuppressionLookup, suppression_lookup


def build_history(
    policy: Policy,
    subject: str,
    records: Sequence[Record],
    events: Sequence[Event],
    suppression: Sequence[SuppressionEntry] | SuppressionLookup = (),
) -> SubjectHistory:
    """``subject``'s history: its records and events, and the suppression entries of the
    addresses its records hold: given, or how to look them up (called with the subject's
    normalised addresses the first time a fact needs them; a sweep never does)."""
    return SubjectHistory(policy, subject, records, events, suppression)


def read_history(store: HistorySource, policy: Policy, subject: str) -> SubjectHistory:
    """``subject``'s history as ``store`` holds it, one subject at a time."""
    return build_history(
        policy,
        subject,
        store.subject_records(subject),
        store.subject_events(subject),
        suppression_lookup(store, policy),
    )


def load_histories(
    store: HistorySource, policy: Policy, subjects: Iterable[str]
) -> dict[str, SubjectHistory]:
    """Histories for several subjects: one batched read when the store offers
    :class:`BulkHistories`, one subject at a time otherwise."""
    wanted = list(dict.fromkeys(subjects))
    if isinstance(store, BulkHistories):
        return store.histories(policy, wanted)
    return {s: read_history(store, policy, s) for s in wanted}


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
