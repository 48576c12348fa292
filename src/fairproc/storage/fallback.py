"""The Python fallback: what a store that pushes nothing down still answers, and
:class:`BaseStore`, the class a new adapter inherits.

:class:`BaseStore` gives an adapter ``find_records`` (every record streamed, the condition
evaluated in Python: :func:`filter_records`, the reference every adapter's ``find_records``
must agree with), ``subjects_giving`` by a scan, the one-thing-at-a-time writes and use as a
context manager. The adapter supplies the reads, ``revision``, ``iter_records``,
``audit_entries`` and ``apply``.

:func:`find_rows`, :func:`count_records`, :func:`reading` and :func:`write_batch` ask a store
for what a capability buys (:mod:`fairproc.storage.interface`) and fall back to Python (or to
nothing) when the store lacks it: callers never probe a store's attributes.

Pure: imports the condition language, the world, the interface, the values and the history;
never an adapter or a driver.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any

from fairproc.conditions import (
    Condition,
    ConditionError,
    Kind,
    check,
    compile_python,
    parse,
    render,
)
from fairproc.conditions.vocabulary import Ctx, vocabulary
from fairproc.model import Event, Policy, Record, SuppressionEntry, derived
from fairproc.storage.codec import row_value
from fairproc.storage.history import with_histories
from fairproc.storage.interface import (
    RECORDS_CONTEXT,
    ConditionLike,
    Row,
    RowQueries,
    Snapshots,
    Store,
    WriteBatching,
)
from fairproc.storage.values import AuditEntry, ChangeSet
from fairproc.world import HistorySource, givers_in, index_givers

RECORDS_CONDITIONS_KEPT = 256  # compiled conditions over records kept per policy

WRITE_BATCH = 1000
"""Items per write batch for a store that names none (:class:`WriteBatching`)."""


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


def filter_records(
    store: Store, condition: ConditionLike, at: dt.datetime, policy: Policy
) -> Iterator[Record]:
    """The default ``find_records``: stream every record and evaluate the condition in Python.

    What every adapter's ``find_records`` must give, whatever it pushes down."""
    from fairproc.clock import require_aware

    at = require_aware(at)
    cond = records_condition(condition, policy)
    return matching(store, cond, at, policy, store.iter_records())


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


def find_rows(
    store: Store,
    condition: ConditionLike,
    at: dt.datetime,
    policy: Policy,
    values: Sequence[ConditionLike] = (),
) -> Iterator[Row]:
    """``store.find_rows`` where the store pushes conditions down (:class:`RowQueries`),
    :func:`select_rows` over its ``find_records`` otherwise: the same rows either way."""
    if isinstance(store, RowQueries):
        return store.find_rows(condition, at, policy, values)
    return select_rows(store, condition, at, policy, values)


def count_records(store: Store, condition: ConditionLike, at: dt.datetime, policy: Policy) -> int:
    """``store.count_records`` where the store pushes conditions down, else counted here."""
    if isinstance(store, RowQueries):
        return store.count_records(condition, at, policy)
    return count_matching(store, condition, at, policy)


def reading(store: object) -> AbstractContextManager[Any]:
    """The store's consistent snapshot (:class:`Snapshots`), or nothing to enter."""
    return store.reading() if isinstance(store, Snapshots) else nullcontext()


def write_batch(store: object) -> int:
    """The batch size the store asks writes to come in (:class:`WriteBatching`), else
    :data:`WRITE_BATCH`."""
    return int(store.write_batch) if isinstance(store, WriteBatching) else WRITE_BATCH


class BaseStore:
    """What a new adapter inherits: the Python ``find_records`` (:func:`filter_records`),
    ``subjects_giving`` by a scan, writes one thing at a time, and use as a context manager.
    Subclasses implement the :class:`~fairproc.world.HistorySource` reads, ``revision``,
    ``iter_records``, ``audit_entries`` and ``apply``; an adapter that can push conditions
    down adds ``find_rows`` and ``count_records`` (:class:`RowQueries`)."""

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
