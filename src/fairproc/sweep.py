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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from fairproc.clock import require_aware
from fairproc.conditions import Condition
from fairproc.engine import Engine, RetentionResult
from fairproc.errors import InputError
from fairproc.model import Policy, Record
from fairproc.rights import apply_changes
from fairproc.store import AuditEntry, BaseStore, ChangeSet, records_condition
from fairproc.world import Ctx, SubjectHistory

Progress = Callable[[int, int], None]  # (done, total)


@attrs.frozen
class SweepItem:
    record: str
    subject: str
    source: str
    action: str  # delete or anonymise
    rule: str
    due: dt.datetime


@attrs.frozen
class SweepPlan:
    at: dt.datetime
    items: tuple[SweepItem, ...]
    scanned: int
    review: int  # records whose retention falls to review: never swept, counted

    def counts(self) -> dict[str, int]:
        """Due records per governing rule."""
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


@attrs.frozen
class SweepResult:
    plan: SweepPlan
    applied: int  # records deleted or anonymised by this run
    batches: int


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def iter_store_records(store: Any) -> Iterator[Record]:
    """Every record of a store: its streaming ``iter_records`` if it has one."""
    iterate = getattr(store, "iter_records", None)
    if callable(iterate):
        yield from iterate()
        return
    records = getattr(store, "records", None)
    if records is None:
        raise InputError.one(f"{type(store).__name__} cannot list its records")
    yield from (records() if callable(records) else records)


def due_conditions(policy: Policy) -> tuple[str, ...]:
    """For each dated retention rule, the condition under which it no longer keeps a record.

    A record is due only when the rule keeping it longest is past its date, so every due
    record meets at least one of these: a store that can push them down selects the
    candidates, and each candidate's retention is then decided exactly.
    """
    out = []
    for rule in policy.retention:
        if rule.applies_to != "records" or rule.keep is None or rule.from_ is None:
            continue
        parts = []
        if rule.sources is not None:
            parts.append(f"record.source in {list(rule.sources)!r}")
        if rule.when is not None:
            parts.append(f"({rule.when.text})")
        parts.append(f"at >= ({rule.from_.text}) + {rule.keep}")
        out.append(" and ".join(parts))
    return tuple(out)


def candidates(engine: Engine, at: dt.datetime) -> Iterator[Record]:
    """The records a sweep must look at: those the store selects as possibly due when it can
    push the selection down (each once, in store order), otherwise every record."""
    find = getattr(engine.store, "find_records", None)
    if not callable(find):
        yield from iter_store_records(engine.store)
        return
    seen: set[str] = set()
    for condition in due_conditions(engine.policy):
        for record in find(condition, at, engine.policy):
            if record.id not in seen:
                seen.add(record.id)
                yield record


def _chunks(items: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _python_fallback(store: Any) -> bool:
    """Whether the store's ``find_records`` is :class:`~fairproc.store.BaseStore`'s Python
    fallback: selecting candidates would then read every record once per due condition."""
    find = getattr(store, "find_records", None)
    return callable(find) and getattr(type(store), "find_records", None) is BaseStore.find_records


class _Plan:
    """The plan as it is gathered, one record at a time."""

    def __init__(self, engine: Engine, at: dt.datetime, screen: bool):
        self.engine, self.at = engine, at
        self.items: list[SweepItem] = []
        self.scanned = self.review = 0
        # Screening: records other than the store's candidates may be considered (every record
        # of a history loaded), and only those meeting a due condition (the candidates) count.
        self.screen = screen
        self.sources = engine.policy.sources
        self.due: list[Condition] = []
        if screen:
            self.due = [records_condition(c, engine.policy) for c in due_conditions(engine.policy)]

    def consider(self, record: Record, history: SubjectHistory | None) -> None:
        result = self.engine.retention_result(record, self.at, history)
        if self.screen and not self._candidate(record, result, history):
            return
        self.scanned += 1
        if result.action == "delete" and result.governing is not None:
            assert result.until is not None
            self.items.append(
                SweepItem(
                    record.id,
                    record.subject,
                    record.source,
                    result.governing.action,
                    result.governing.id,
                    result.until,
                )
            )
        elif result.action == "review":
            self.review += 1

    def done(self) -> SweepPlan:
        return SweepPlan(self.at, tuple(self.items), self.scanned, self.review)

    def _candidate(
        self, record: Record, result: RetentionResult, history: SubjectHistory | None
    ) -> bool:
        """Whether the record meets a due condition. For a source the policy knows, a rule's
        due condition holds exactly when its entry says delete; for any other source only a
        rule for every source can apply, so the conditions are evaluated."""
        if any(entry.action == "delete" for entry in result.entries):
            return True
        if record.source in self.sources:
            return False
        if history is None:
            history = self.engine.history(record.subject)
        ctx = Ctx(self.at, history, record)
        return any(condition.evaluate(ctx) for condition in self.due)


def plan_sweep(
    engine: Engine, at: dt.datetime, progress: Progress | None = None, chunk: int = 1000
) -> SweepPlan:
    """Every record whose retention action is due at ``at``, with its rule and due date.

    Candidates stream from the store in chunks. A store that loads many subjects' histories
    at once (``histories``) is asked once per chunk, for the subjects not seen yet, and every
    record of each history loaded is considered then (those meeting no due condition are not
    counted), so a subject is loaded once however many candidates it has. A store whose
    ``find_records`` is the Python fallback is read once rather than once per due condition,
    subject by subject when it offers ``history_batches(policy)`` (every subject's history
    exactly once, a batch at a time). Items come in the order their subjects are loaded.
    """
    at = require_aware(at)
    store = engine.store
    fallback = _python_fallback(store)
    # A store that selects candidates gives those meeting a due condition; a store that cannot
    # gives every record (and every record is then a candidate).
    plan = _Plan(engine, at, screen=callable(getattr(store, "find_records", None)))
    batches = getattr(store, "history_batches", None)
    if fallback and callable(batches):
        for histories in batches(engine.policy):
            for history in histories.values():
                for record in history.records:
                    plan.consider(record, history)
            if progress is not None:
                progress(plan.scanned, 0)
        return plan.done()
    bulk = getattr(store, "histories", None)
    stream = iter_store_records(store) if fallback else candidates(engine, at)
    loaded: set[str] = set()
    for records in _chunks(stream, chunk):
        if not callable(bulk):
            for record in records:
                plan.consider(record, None)
        else:
            fresh = [r for r in records if r.subject not in loaded]
            wanted = list(dict.fromkeys(r.subject for r in fresh))
            histories = bulk(engine.policy, wanted)
            for subject in wanted:
                history = histories.get(subject)
                if history is None:  # pragma: no cover - every store answers every subject
                    for record in fresh:
                        if record.subject == subject:
                            plan.consider(record, None)
                    continue
                for record in history.records:
                    plan.consider(record, history)
            loaded.update(wanted)
        if progress is not None:
            progress(plan.scanned, 0)
    return plan.done()


def apply_sweep(
    engine: Engine, plan: SweepPlan, batch_size: int = 1000, progress: Progress | None = None
) -> SweepResult:
    """Apply ``plan`` in atomic batches; safe to run again after an interruption."""
    if batch_size < 1:
        raise InputError.one(f"batch_size must be at least 1, got {batch_size}")
    applied = batches = 0
    total = len(plan.items)
    for start in range(0, total, batch_size):
        batch = plan.items[start : start + batch_size]
        changes = _batch_changes(engine, plan.at, batch)
        if changes:
            apply_changes(engine, changes)
            batches += 1
            applied += len(changes.delete_records) + len(changes.put_records)
        if progress is not None:
            progress(min(start + batch_size, total), total)
    return SweepResult(plan, applied, batches)


def _batch_changes(engine: Engine, at: dt.datetime, batch: Iterable[SweepItem]) -> ChangeSet:
    delete: list[str] = []
    put: list[Record] = []
    audit: list[AuditEntry] = []
    for item in batch:
        record = engine.store.get_record(item.record)
        if record is None:  # applied by an earlier, interrupted run
            continue
        if item.action == "anonymise":
            put.append(attrs.evolve(record, subject=f"anonymised:{record.id}", data={}))
        else:
            delete.append(record.id)
        # No subject and no values: the audit trail outlives what it records.
        audit.append(AuditEntry(at, item.action, record=record.id, rule=item.rule, due=item.due))
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
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> SweepResult:
    """Plan a sweep at ``at``; apply it too when ``apply`` is true (a dry run by default)."""
    plan = plan_sweep(engine, at)
    if not apply:
        return SweepResult(plan, 0, 0)
    return apply_sweep(engine, plan, batch_size, progress)
