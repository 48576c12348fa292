"""The interface: what fairproc asks of every store, and the capabilities a store may add.

Every store is a :class:`Store`: the engine's reads (:class:`~fairproc.world.HistorySource`:
``get_record``, ``subject_records``, ``subject_events``, ``suppression_entries``), plus
``revision``, ``iter_records``, ``find_records``, ``audit_entries``, ``apply`` and ``close``.
:class:`~fairproc.storage.fallback.BaseStore` gives a new adapter ``find_records`` (filtered in
Python) and the rest of the conveniences; the contract kit (:mod:`fairproc.testing.contract`)
holds an adapter to the interface.

A store may offer more. Each capability is a named ``runtime_checkable`` Protocol, and callers
choose their path with ``isinstance`` (never by probing attributes):

======================  ===============================================================
capability              what it buys
======================  ===============================================================
:class:`RowQueries`     conditions pushed down: sweeps, counts and whole-store questions
                        run in the store (``find_rows``, ``count_records``), no history
                        is built in Python
:class:`BulkHistories`  many subjects' histories in a few reads (``histories``)
:class:`HistoryBatches` every subject's history once, streamed (``history_batches``):
                        a sweep's Python path reads the store once
:class:`Snapshots`      several reads that agree (``reading()``: one transaction)
:class:`DecidedWrites`  decide and write as one step (``apply_decided``): safe beside
                        concurrent writers
:class:`AuditKeys`      the audit log names subjects by pseudonym (``audit_key``)
:class:`AddressIndex`   who gave an address (``subjects_giving``): suppression by address
:class:`WriteBatching`  the batch size a sweep should write in (``write_batch``)
:class:`OwnTables`      drops the tables it made (``drop_tables``): test and scenario runs
======================  ===============================================================

Imports only the condition language, the model and the world's read Protocols (the values for
type hints alone: the engine imports this module, and the values load when first written);
never an adapter, the engine, the fallback or a driver.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fairproc.conditions import Condition, Node
from fairproc.model import Policy, Record
from fairproc.world import AddressIndex, HistorySource

if TYPE_CHECKING:  # the engine reads this module at import: the values load when written
    from fairproc.storage.values import AuditEntry, ChangeSet
    from fairproc.world import SubjectHistory

__all__ = [
    "RECORDS_CONTEXT",
    "AddressIndex",
    "AuditKeys",
    "BulkHistories",
    "ConditionLike",
    "Decide",
    "DecidedWrites",
    "HistoryBatches",
    "HistorySource",
    "OwnTables",
    "RecordListing",
    "Replaceable",
    "Revisioned",
    "Row",
    "RowQueries",
    "Snapshots",
    "Store",
    "WriteBatching",
]

ConditionLike = Condition | Node | str
"""A condition over records: text, a parsed node, or a compiled :class:`Condition`."""

Row = tuple[str, str, str, tuple[Any, ...]]
"""What ``find_rows`` gives for one record: (id, subject, source, the values asked for)."""

RECORDS_CONTEXT = "retention"
"""The vocabulary ``find_records`` conditions are checked against: ``at``, ``record.*``,
``subject.*`` and the policy's functions (the names a retention or routing rule can read)."""


@runtime_checkable
class Store(HistorySource, Protocol):
    """What fairproc asks of every store. Adapters may subclass
    :class:`~fairproc.storage.fallback.BaseStore` for the conveniences and the Python
    ``find_records``."""

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
        Every adapter gives exactly what :func:`~fairproc.storage.fallback.filter_records`
        gives."""
        ...

    def audit_entries(self, subject: str | None = None) -> Iterator[AuditEntry]:
        """The audit log in the order written; only the subject's entries when given."""
        ...

    def apply(self, changes: ChangeSet) -> None:
        """Apply every change or none (see :class:`ChangeSet`). Invalid values raise
        :class:`~fairproc.errors.InputError`; storage failures
        :class:`~fairproc.storage.values.StoreError`."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RecordListing(Protocol):
    """Anything that can stream every record it holds: every :class:`Store`, and an in-memory
    :class:`~fairproc.world.World` (what a sweep or a whole-store question reads when nothing
    is pushed down)."""

    def iter_records(self) -> Iterator[Record]: ...


@runtime_checkable
class RowQueries(Protocol):
    """A store that evaluates conditions itself (pushdown): sweeps ask it for the due
    records' rows and counts instead of building histories in Python.

    Both give exactly what :func:`~fairproc.storage.fallback.select_rows` and
    :func:`~fairproc.storage.fallback.count_matching` give over ``find_records``."""

    def find_rows(
        self,
        condition: ConditionLike,
        at: dt.datetime,
        policy: Policy,
        values: Sequence[ConditionLike] = (),
    ) -> Iterator[Row]:
        """For each record ``condition`` holds for at ``at``, in the order first put: (id,
        subject, source, ``values`` evaluated for it, as
        :func:`~fairproc.storage.codec.row_value` gives them)."""
        ...

    def count_records(self, condition: ConditionLike, at: dt.datetime, policy: Policy) -> int:
        """How many records ``condition`` holds for at ``at``."""
        ...


@runtime_checkable
class BulkHistories(Protocol):
    """A store that reads several subjects' histories at once (a few statements or one pass
    over its files, not three reads a subject)."""

    def histories(self, policy: Policy, subjects: Iterable[str]) -> dict[str, SubjectHistory]:
        """Each subject's history (:func:`~fairproc.storage.history.build_history`), keyed by
        subject, for every subject asked (one with nothing stored has an empty history)."""
        ...


@runtime_checkable
class HistoryBatches(Protocol):
    """A store that streams every subject's history exactly once, a batch at a time: a sweep
    that must decide in Python reads the store once."""

    def history_batches(self, policy: Policy) -> Iterator[dict[str, SubjectHistory]]: ...


@runtime_checkable
class Snapshots(Protocol):
    """A store whose reads inside ``with store.reading():`` agree with each other (one
    read-only transaction, one connection): an engine's history, a sweep's plan and its
    counts."""

    def reading(self) -> AbstractContextManager[Any]: ...


Decide = Callable[[HistorySource], "ChangeSet"]
"""What :meth:`DecidedWrites.apply_decided` calls: the store as it stands in (its reads), the
changes to make out (it must not write)."""


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
    subject by :func:`~fairproc.storage.pseudonyms.subject_pseudonym` under the store's key
    (memory: made with the store; SQL: a row of ``<prefix>keys``; CSV:
    ``.fairproc-audit-key``, mode 0600), created on first use and kept with the data. Without
    the key a pseudonym cannot be traced back to an id, nor an id guessed from a list of
    addresses; with it, :func:`~fairproc.storage.pseudonyms.subject_audit` answers for an
    id."""

    def audit_key(self) -> bytes: ...


@runtime_checkable
class WriteBatching(Protocol):
    """A store that names the batch size its writes should come in: one whose every write
    rewrites its files (CSV) takes large batches."""

    @property
    def write_batch(self) -> int: ...


@runtime_checkable
class OwnTables(Protocol):
    """A store that can drop the tables it created (a scenario run's throwaway tables)."""

    def drop_tables(self) -> None: ...


@runtime_checkable
class Revisioned(Protocol):
    """Anything that says when its data changed: an engine keeps the histories it read until
    the revision moves. Every :class:`Store` is one; a bare
    :class:`~fairproc.world.HistorySource` may not be."""

    @property
    def revision(self) -> Hashable: ...


@runtime_checkable
class Replaceable(Protocol):
    """An immutable source of histories that is changed by making a new one
    (:class:`~fairproc.world.World`): the engine replaces its store with the result."""

    def with_changes(self, changes: ChangeSet) -> Any: ...
