"""Retention sweeps: find what is due, plan it, then apply it in atomic batches with an audit
trail.

A sweep is a dry run until applied. Applying deletes (or anonymises, where the governing rule
says so) in batches, each batch one atomic change set with one audit entry per record (record
id, rule, due date, action, time; no personal data). Suppression entries are never swept. An
interrupted sweep can be run again: what was applied is gone from the next plan, so nothing is
deleted or audited twice.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter
from typing import IO, Any, NamedTuple, TypeVar, overload

import attrs

from fairproc.clock import IntegerShift, Period, integer_shift, require_aware
from fairproc.conditions import (
    Node,
    Present,
)
from fairproc.engine import Engine
from fairproc.errors import InputError
from fairproc.model import Policy, Record, RetentionRule
from fairproc.retention import (
    FALSE,
    TRUE,
    all_of,
    group_due,
    group_review,
    is_dated,
    source_groups,
    source_in,
)
from fairproc.retention import due_condition as due_condition  # re-exported
from fairproc.retention import review_condition as review_condition  # re-exported
from fairproc.storage import (
    AuditEntry,
    BulkHistories,
    ChangeSet,
    HistoryBatches,
    RecordListing,
    RowQueries,
    instant_to_us,
    load_histories,
    reading,
    us_to_instant,
    write_batch,
)
from fairproc.values import Value
from fairproc.world import HistorySource, SubjectHistory

Progress = Callable[[int, int], None]  # (done, total)
T = TypeVar("T")


class SweepItem(NamedTuple):
    """One due record of a plan: a tuple, as a sweep makes one per due record."""

    record: str
    subject: str
    source: str
    action: str  # delete or anonymise
    rule: str
    due: dt.datetime


Row = tuple[str, str, str, Sequence[Any]]  # (record, subject, source, values): find_rows gives
ItemRow = tuple[str, str, str, str, str, int]  # what SweepItems.extend_rows takes

IN_MEMORY = 10_000
"""Due items a plan holds as objects; past that many they are spooled to a temporary file."""


class SweepItems(Sequence[SweepItem]):
    """A plan's due items, in order.

    The first ``in_memory`` are held as :class:`SweepItem` objects. Past that, items are
    written to an anonymous temporary file in pickled blocks and read back a block at a time
    as they are iterated (or indexed), so planning a sweep over millions of records holds its
    working memory, not its size, while what is applied is still exactly what was planned.
    Items are added while the plan is made (:meth:`add`, then :meth:`close`); afterwards the
    sequence never changes. It compares equal to a tuple of the same items.
    """

    BLOCK = 2048

    def __init__(self, in_memory: int = IN_MEMORY):
        if in_memory < 0:
            raise InputError.one(f"in_memory must be 0 or more, got {in_memory}")
        self._in_memory = in_memory
        self._head: list[SweepItem] = []
        self._spool: IO[bytes] | None = None
        self._blocks: list[int] = []  # where each spooled block starts in the file
        self._pending: list[tuple[Any, ...]] = []
        self._len = 0
        self._cached: tuple[int, list[tuple[Any, ...]]] | None = None  # the last block read
        self._closed = False
        self.per_rule: Counter[str] = Counter()

    @classmethod
    def of(cls, items: Iterable[SweepItem], in_memory: int = IN_MEMORY) -> SweepItems:
        made = cls(in_memory)
        for item in items:
            made.add(item)
        made.close()
        return made

    def add(self, item: SweepItem) -> None:
        record, subject, source, action, rule, due = item
        self.add_row(record, subject, source, action, rule, instant_to_us(due))

    def add_row(
        self, record: str, subject: str, source: str, action: str, rule: str, due_us: int
    ) -> None:
        """One item, its due date in integer microseconds."""
        self.extend_rows([(record, subject, source, action, rule, due_us)])

    def extend_rows(self, rows: Sequence[ItemRow]) -> None:
        """Items as rows ``(record, subject, source, action, rule, due_us)``, the due date in
        integer microseconds: a spooled item stays a tuple of plain values until it is read
        back. A sweep adds its items a batch at a time."""
        if self._closed:
            raise RuntimeError("a plan's items do not change once it is made")
        self._len += len(rows)
        self.per_rule.update(map(itemgetter(4), rows))
        room = self._in_memory - len(self._head)
        if room > 0:
            instant = us_to_instant
            self._head.extend(
                [SweepItem(r, sj, so, a, ru, instant(due)) for r, sj, so, a, ru, due in rows[:room]]
            )
            rows = rows[room:]
        start = 0
        while start < len(rows):
            take = self.BLOCK - len(self._pending)
            self._pending.extend(rows[start : start + take])
            start += take
            if len(self._pending) >= self.BLOCK:
                self._flush()

    def close(self) -> None:
        """No more items: the last block goes to the file."""
        if self._pending:
            self._flush()
        self._closed = True

    def _flush(self) -> None:
        if self._spool is None:
            # Lives as long as the items do: closed, and so gone from disk, when they go.
            self._spool = tempfile.TemporaryFile(prefix="fairproc-sweep-")  # noqa: SIM115
            weakref.finalize(self, self._spool.close)
        spool = self._spool
        spool.seek(0, os.SEEK_END)
        self._blocks.append(spool.tell())
        pickle.dump(self._pending, spool, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending = []

    def _block(self, index: int) -> list[tuple[Any, ...]]:
        cached = self._cached
        if cached is not None and cached[0] == index:
            return cached[1]
        if index == len(self._blocks):  # not yet written (still being added)
            return self._pending
        assert self._spool is not None
        self._spool.seek(self._blocks[index])
        rows: list[tuple[Any, ...]] = pickle.load(self._spool)  # our own file, written above
        self._cached = (index, rows)
        return rows

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[SweepItem]:
        yield from self._head
        for index in range(len(self._blocks) + (1 if self._pending else 0)):
            for record, subject, source, action, rule, due in self._block(index):
                yield SweepItem(record, subject, source, action, rule, us_to_instant(due))

    @overload
    def __getitem__(self, index: int) -> SweepItem: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[SweepItem, ...]: ...

    def __getitem__(self, index: int | slice) -> SweepItem | tuple[SweepItem, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._len)))
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("sweep item index out of range")
        if index < len(self._head):
            return self._head[index]
        block, offset = divmod(index - len(self._head), self.BLOCK)
        record, subject, source, action, rule, due = self._block(block)[offset]
        return SweepItem(record, subject, source, action, rule, us_to_instant(due))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SweepItems | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        spooled = f", {len(self) - len(self._head)} spooled" if self._spool is not None else ""
        return f"<SweepItems: {len(self)} due{spooled}>"


@attrs.frozen(repr=False)
class SweepPlan(Value):
    at: dt.datetime
    items: Sequence[SweepItem]  # a SweepItems as planned; any sequence of items will do
    scanned: int
    review: int  # records whose retention falls to review: never swept, counted

    def counts(self) -> dict[str, int]:
        """Due records per governing rule."""
        if isinstance(self.items, SweepItems):
            return dict(self.items.per_rule)
        return dict(Counter(item.rule for item in self.items))

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "scanned": self.scanned,
            "due": len(self.items),
            "review": self.review,
            "per_rule": self.counts(),
            "items": [
                {"record": i.record, "action": i.action, "rule": i.rule, "due": _iso(i.due)}
                for i in self.items
            ],
        }


@attrs.frozen(repr=False)
class SweepResult(Value):
    plan: SweepPlan
    applied: int  # records deleted or anonymised by this run
    batches: int
    gone: int = 0  # planned records no longer held when their batch was written
    kept: int = 0  # planned records whose retention, decided again then, was no longer due


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- planning ----------------------------------------------------------------------------------


@contextmanager
def closing_rows(rows: Iterator[Any]) -> Iterator[None]:
    """Close ``rows`` on the way out when it is a generator (a store's open statement)."""
    try:
        yield
    finally:
        if isinstance(rows, Generator):
            rows.close()


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    assert size >= 1, size  # callers check what they are given: no size may drop items
    found = iter(items)
    while chunk := list(islice(found, size)):
        yield chunk


class _Plan:
    """The plan as it is gathered, one record at a time, deciding each record's retention."""

    def __init__(self, engine: Engine, at: dt.datetime, in_memory: int):
        self.engine, self.at = engine, at
        self.items = SweepItems(in_memory)
        self.scanned = self.review = 0

    def consider(self, record: Record, history: SubjectHistory | None) -> None:
        engine = self.engine
        if history is None:
            history = engine.history(record.subject)
        action, until, governing = engine.retention_action(record, self.at, history)
        self.scanned += 1
        if action == "delete" and governing is not None:
            assert until is not None
            self.items.add(
                SweepItem(
                    record.id, record.subject, record.source, governing.action, governing.id, until
                )
            )
        elif action == "review":
            self.review += 1

    def done(self) -> SweepPlan:
        self.items.close()
        return SweepPlan(self.at, self.items, self.scanned, self.review)


# One dated rule as a row shows it: the rule, the index of its ``when`` among the row's values
# (None: it has none, or it holds exactly when the anchor is there), the index of its anchor,
# and its due dates.
_Weighed = tuple[RetentionRule, int | None, int, IntegerShift]


def _row_values(
    rules: Sequence[RetentionRule], dates: Callable[[Period], IntegerShift]
) -> tuple[list[Node], list[_Weighed]]:
    """The values a row of this group must hold (each once) and how each dated rule reads
    them."""
    values: list[Node] = []

    def index(node: Node) -> int:
        if node not in values:
            values.append(node)
        return values.index(node)

    weighed: list[_Weighed] = []
    for rule in rules:
        if not is_dated(rule):
            continue
        from_, keep = rule.from_, rule.keep
        assert from_ is not None and keep is not None
        anchor = index(from_.node)
        when = rule.when
        # A due record's applying rules all have their anchor: a rule whose ``when`` only asks
        # for the anchor applies exactly when the anchor is there.
        if when is None or when.node == Present(from_.node):
            weighed.append((rule, None, anchor, dates(keep)))
        else:
            weighed.append((rule, index(when.node), anchor, dates(keep)))
    return values, weighed


Decide = Callable[[Sequence[Row]], list[ItemRow]]


def _decider(weighed: Sequence[_Weighed]) -> Decide:
    """A function from due records' rows to their items: each with its governing rule's
    action, id and date, of its dated rules the one that applies with the latest date (the
    first of equals, as the engine chooses). Made once per group of sources, asked a batch of
    rows at a time: each rule's dates are worked out for the whole batch in one pass."""
    steps = tuple((r.action, r.id, when, anchor, dates) for r, when, anchor, dates in weighed)

    def decide(rows: Sequence[Row]) -> list[ItemRow]:
        best: list[tuple[str, str] | None] = [None] * len(rows)
        until: list[int] = [0] * len(rows)
        for action, rule, when, anchor, dates in steps:
            if when is None:
                anchors = [row[3][anchor] for row in rows]
            else:
                anchors = [row[3][anchor] if row[3][when] else None for row in rows]
            chosen = (action, rule)
            for i, date in enumerate(dates.many(anchors)):
                if date is not None and (best[i] is None or date > until[i]):
                    best[i], until[i] = chosen, date
        items: list[ItemRow] = []
        for row, pair, date in zip(rows, best, until, strict=True):
            assert pair is not None, f"a due record has a dated rule that applies, got {row!r}"
            items.append((row[0], row[1], row[2], pair[0], pair[1], date))
        return items

    return decide


def _plan_in_store(
    engine: Engine, at: dt.datetime, progress: Progress | None, chunk: int, in_memory: int
) -> SweepPlan:
    """The plan from the store's own selection: per group of sources, one statement gives the
    due records with the values that decide their governing rule and date; no history is
    loaded and no record built. ``scanned`` and ``review`` are counted by the store too, all
    inside the store's ``reading()`` where it has one (one snapshot, one transaction)."""
    store = engine.store
    assert isinstance(store, RowQueries)
    policy = engine.policy

    def dates(period: Period) -> IntegerShift:
        return integer_shift(period, policy.tz)

    items = SweepItems(in_memory)
    with reading(store):
        for sources, rules in source_groups(policy):
            due = group_due(rules)
            if due == FALSE:
                continue
            values, weighed = _row_values(rules, dates)
            decide = _decider(weighed)
            rows = store.find_rows(all_of([source_in(sources), due]), at, policy, values)
            # Even when this stops half way, its statement ends before the next read.
            with closing_rows(rows):
                for batch in _chunks(rows, chunk):
                    items.extend_rows(decide(batch))
                    if progress is not None:
                        progress(len(items), 0)
        scanned = store.count_records(TRUE, at, policy)
        reviews = _count_reviews(policy, at, store.count_records, scanned)
    if progress is not None:
        progress(len(items), 0)
    items.close()
    return SweepPlan(at, items, scanned, reviews)


def _count_reviews(policy: Policy, at: dt.datetime, count: Callable[..., int], scanned: int) -> int:
    """Records whose retention falls to review, counted by the store: group by group (their
    sources apart), each through the index on sources; records of sources the policy does not
    declare, when all are review, as those that are not of the declared ones."""
    reviews = 0
    for sources, rules in source_groups(policy):
        holds = group_review(rules)
        if holds != FALSE:
            reviews += count(all_of([source_in(sources), holds]), at, policy)
    undeclared = group_review(())
    declared = list(policy.sources)
    if undeclared == TRUE:
        reviews += scanned - count(source_in(declared), at, policy)
    elif undeclared != FALSE:
        reviews += count(all_of([source_in(declared, negated=True), undeclared]), at, policy)
    return reviews


def plan_sweep(
    engine: Engine,
    at: dt.datetime,
    progress: Progress | None = None,
    chunk: int = 1000,
    in_memory: int = IN_MEMORY,
) -> SweepPlan:
    """Every record whose retention action is due at ``at``, with its rule and due date;
    ``scanned``: every record of the store; ``review``: those whose retention is ``review``.

    A store that pushes conditions down (:class:`~fairproc.storage.RowQueries`, like the
    SQL store) is asked for the due records (:func:`due_condition`) with the values that
    decide each one's governing rule and date (``find_rows``), and counts the rest
    (``count_records``): items come group of sources by group, in store order within a group.
    Otherwise every record's retention is decided in Python: subject by subject from
    ``history_batches(policy)`` when the store offers them
    (:class:`~fairproc.storage.HistoryBatches`: every subject's history exactly once, a
    batch at a time), else streaming the records in chunks and
    loading the histories of each chunk's new subjects at once (in bulk where the store
    offers :class:`~fairproc.storage.BulkHistories`); items come in the order subjects are
    loaded.

    The plan holds its first ``in_memory`` items as objects and spools the rest to a temporary
    file (:class:`SweepItems`): its memory does not grow with the store.
    """
    at = require_aware(at)
    if chunk < 1:
        raise InputError.one(f"chunk must be at least 1, got {chunk}")
    store = engine.store
    if isinstance(store, RowQueries):
        return _plan_in_store(engine, at, progress, chunk, in_memory)
    plan = _Plan(engine, at, in_memory)
    if isinstance(store, HistoryBatches):
        for histories in store.history_batches(engine.policy):
            for history in histories.values():
                for record in history.records:
                    plan.consider(record, history)
            if progress is not None:
                progress(plan.scanned, 0)
        return plan.done()
    if not isinstance(store, RecordListing):
        raise InputError.one(f"{type(store).__name__} cannot list its records")
    loaded: set[str] = set()
    for records in _chunks(store.iter_records(), chunk):
        if not isinstance(store, BulkHistories):
            for record in records:
                plan.consider(record, None)
        else:
            # Every record of a loaded history is considered with it, once.
            wanted = list(dict.fromkeys(r.subject for r in records if r.subject not in loaded))
            histories = store.histories(engine.policy, wanted)
            for subject in wanted:
                for record in histories[subject].records:
                    plan.consider(record, histories[subject])
            loaded.update(wanted)
        if progress is not None:
            progress(plan.scanned, 0)
    return plan.done()


def apply_sweep(
    engine: Engine,
    plan: SweepPlan,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Apply ``plan`` in atomic batches; safe to run again after an interruption, and beside
    other sweeps and requests writing the same store.

    Each batch is decided again as it is written (:meth:`fairproc.engine.Engine.apply`: in
    the store's write transaction, or under its write lock): a planned record the store no
    longer holds is skipped (``gone``: another writer deleted or anonymised it, and audited
    it), and each one still held has its retention decided afresh at ``plan.at`` by the
    engine, so a record something now keeps (an ``office_let`` recorded since the plan) is
    skipped too (``kept``); the rest are deleted or anonymised with one audit entry each,
    under the rule and date that govern now. ``applied`` counts only this run's writes.

    ``batch_size``: items per batch; by default the store's ``write_batch``
    (:class:`~fairproc.storage.WriteBatching`: a store whose every write rewrites its files,
    as the CSV store's does, takes large batches), else 1000.
    """
    if batch_size is None:
        batch_size = write_batch(engine.store)
    if batch_size < 1:
        raise InputError.one(f"batch_size must be at least 1, got {batch_size}")
    applied = batches = done = gone = kept = 0
    total = len(plan.items)
    for items in _chunks(plan.items, batch_size):
        batch = _Batch(engine, plan.at, items)
        changes = engine.apply(batch.changes)
        if changes:
            batches += 1
            applied += len(changes.delete_records) + len(changes.put_records)
        gone += batch.gone
        kept += batch.kept
        done += len(items)
        if progress is not None:
            progress(done, total)
    return SweepResult(plan, applied, batches, gone, kept)


class _Batch:
    """One batch of a plan, decided again against the store as the write sees it."""

    def __init__(self, engine: Engine, at: dt.datetime, items: Sequence[SweepItem]):
        self.engine, self.at, self.items = engine, at, items
        self.gone = self.kept = 0

    def changes(self, store: HistorySource) -> ChangeSet:
        engine, at = self.engine, self.at
        self.gone = self.kept = 0  # counted for the decision that is written
        histories = load_histories(store, engine.policy, (i.subject for i in self.items))
        held = {r.id: (r, h) for h in histories.values() for r in h.records}
        delete: list[str] = []
        put: list[Record] = []
        audit: list[AuditEntry] = []
        for item in self.items:
            found = held.pop(item.record, None)
            if found is None:  # deleted or anonymised since the plan (by this run or another)
                self.gone += 1
                continue
            record, history = found
            action, until, governing = engine.retention_action(record, at, history)
            if action != "delete" or governing is None or until is None:
                self.kept += 1  # something keeps it now (or puts it to review)
                continue
            if governing.action == "anonymise":
                put.append(attrs.evolve(record, subject=f"anonymised:{record.id}", data={}))
            else:
                delete.append(record.id)
            # No subject and no values: the audit trail outlives what it records.
            audit.append(
                AuditEntry(at, governing.action, record=record.id, rule=governing.id, due=until)
            )
        return ChangeSet(
            delete_records=delete,
            put_records=put,
            delete_record_events=[*delete, *(r.id for r in put)],
            audit=audit,
        )


def sweep(
    engine: Engine,
    at: dt.datetime,
    apply: bool = False,
    batch_size: int | None = None,
    progress: Progress | None = None,
    in_memory: int = IN_MEMORY,
) -> SweepResult:
    """Plan a sweep at ``at``; apply it too when ``apply`` is true (a dry run by default)."""
    plan = plan_sweep(engine, at, in_memory=in_memory)
    if not apply:
        return SweepResult(plan, 0, 0)
    return apply_sweep(engine, plan, batch_size, progress)
