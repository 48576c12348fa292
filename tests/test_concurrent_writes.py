"""Concurrent writers (issue 17, findings 2 and 3): a sweep's plan made before another writer
recorded a reason to keep a record deletes nothing it now keeps, and two sweeps and two
erasures running at once, in processes (threads for the memory store), delete and audit every
record exactly once, with exact totals: on every store."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fairproc import Engine, Event, Policy, Record, load_policy
from fairproc.rights import request
from fairproc.storage import ChangeSet, Store, open_store
from fairproc.sweep import apply_sweep, plan_sweep
from store_support import (
    MYSQL_ENV,
    POSTGRESQL_ENV,
    STORE_KINDS,
    opened_store,
    server_url,
    unique_prefix,
)

UTC = dt.UTC
COLLECTED = dt.datetime(2024, 1, 1, tzinfo=UTC)
AT = dt.datetime(2026, 1, 1, tzinfo=UTC)  # cookie data (kept 12 months) is due
LET = dt.datetime(2025, 12, 1, tzinfo=UTC)  # a letting keeps every record of its subject
SUBJECTS = [f"s{i:03}" for i in range(60)]
KEPT = SUBJECTS[::7]  # subjects who let an office after the sweeps planned
ERASED = "ada"
SWEEP_RECORDS = ChangeSet(
    put_records=[
        Record(f"w-{s}", s, "website_visit", COLLECTED, {"ip_address": "203.0.113.7"})
        for s in [*SUBJECTS, ERASED]
    ]
    + [Record("q-ada", ERASED, "quick_quote", COLLECTED, {"email": "ada@example.com"})]
)
AUDITED = ("delete", "anonymise", "erase")
DUE = {f"w-{s}" for s in [*SUBJECTS, ERASED]}  # q-ada, an open enquiry, is kept


def _letting() -> ChangeSet:
    return ChangeSet(add_events=[Event(s, "office_let", LET) for s in KEPT])


def test_a_stale_plan_deletes_nothing_the_policy_now_keeps(
    kind: str, tmp_path: Path, flexi: Policy
) -> None:
    with opened_store(kind, tmp_path) as store:
        store.apply(SWEEP_RECORDS)
        engine = Engine(flexi, store)
        plan = plan_sweep(engine, AT)
        assert {i.record for i in plan.items} == DUE
        Engine(flexi, store).store.apply(_letting())  # another writer, after the plan
        result = apply_sweep(engine, plan, batch_size=5)
        kept = {f"w-{s}" for s in KEPT}
        held = {r.id for r in store.iter_records()}
        assert kept <= held
        assert held == kept | {"q-ada"}
        assert result.kept == len(kept) and result.gone == 0
        assert result.applied == len(plan.items) - len(kept)
        audited = [a.record for a in store.audit_entries() if a.action in AUDITED]
        assert sorted(audited) == sorted({i.record for i in plan.items} - kept)
        # Applied again: everything planned is gone or kept; nothing deleted, nothing audited.
        again = apply_sweep(engine, plan)
        assert (again.applied, again.kept, again.gone) == (0, len(kept), result.applied)
        assert len([a for a in store.audit_entries() if a.action in AUDITED]) == len(audited)


# --- two sweeps and two erasures at once ----------------------------------------------------


def _url(kind: str, tmp_path: Path) -> str:
    if kind in ("postgresql", "mysql"):
        base = server_url(POSTGRESQL_ENV if kind == "postgresql" else MYSQL_ENV)
        return f"{base}?prefix={unique_prefix()}"
    return {"sqlite": f"sqlite:///{tmp_path}/race.db", "csv": f"csv://{tmp_path}/race-csv"}[kind]


def _role(store: Store, role: str, barrier: Any, results: Any) -> None:
    """One writer: plan (a sweep), wait for all; the letting is written; then race."""
    policy = load_policy("flexioffices")
    engine = Engine(policy, store)
    plan = plan_sweep(engine, AT) if role == "sweep" else None
    barrier.wait()  # every sweep has planned
    if role == "letting":
        store.apply(_letting())
    barrier.wait()  # the plans are stale now: go
    if plan is not None:
        swept = apply_sweep(engine, plan, batch_size=3)
        results.put((role, swept.applied, swept.kept, swept.gone))
    elif role == "erase":
        erased = request(engine, ERASED, "erasure", AT, verified=True)
        results.put((role, len(erased.changes.delete_records), 0, 0))


def _process(url: str, role: str, barrier: Any, results: Any) -> None:
    store = open_store(url)
    try:
        _role(store, role, barrier, results)
    except BaseException as error:
        if role != "letting":
            results.put((f"error: {error!r}", 0, 0, 0))  # the test fails now, not at a timeout
        barrier.abort()
        raise
    finally:
        store.close()


ROLES = ["sweep", "sweep", "erase", "erase", "letting"]


def _race(kind: str, tmp_path: Path) -> Iterator[tuple[Store, list[tuple[str, int, int, int]]]]:
    """Run the writers at once against a fresh store of ``kind``; the store and their results."""
    if kind == "memory":
        store = open_store("memory://")
        store.apply(SWEEP_RECORDS)
        barrier_t = threading.Barrier(len(ROLES))
        got: queue.Queue[Any] = queue.Queue()
        threads = [
            threading.Thread(target=_role, args=(store, role, barrier_t, got)) for role in ROLES
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        yield store, [got.get_nowait() for _ in range(got.qsize())]
        return
    url = _url(kind, tmp_path)
    store = open_store(url)
    try:
        store.apply(SWEEP_RECORDS)
        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(len(ROLES))
        results = context.Queue()
        processes = [
            context.Process(target=_process, args=(url, role, barrier, results)) for role in ROLES
        ]
        for p in processes:
            p.start()
        found = [results.get(timeout=120) for role in ROLES if role != "letting"]
        for p in processes:
            p.join(60)
            assert p.exitcode == 0
        yield store, found
    finally:
        drop = getattr(store, "drop_tables", None)
        if callable(drop):
            drop()
        store.close()


def test_two_sweeps_and_two_erasures_at_once_audit_each_record_once(
    kind: str, tmp_path: Path, flexi: Policy
) -> None:
    for store, results in _race(kind, tmp_path):
        assert len(results) == 4
        held = {r.id for r in store.iter_records()}
        initial = {r.id for r in SWEEP_RECORDS.put_records}
        kept = {f"w-{s}" for s in KEPT}
        # Nothing deleted that a fresh decision keeps; everything else that was due is gone.
        assert held == kept
        fresh = Engine(flexi, store)
        assert all(fresh.retention(r, AT).outcome == "keep" for r in held)
        audit = [a for a in store.audit_entries() if a.action in AUDITED]
        # Every deleted record audited exactly once, by whichever writer deleted it.
        assert Counter(a.record for a in audit) == Counter(initial - held)
        swept = [r for r in results if r[0] == "sweep"]
        erased = [r for r in results if r[0] == "erase"]
        assert sum(r[1] for r in swept) == sum(1 for a in audit if a.action != "erase")
        assert sum(r[1] for r in erased) == sum(1 for a in audit if a.action == "erase")
        # Each sweep accounts for every planned item: applied, or kept, or gone.
        assert all(applied + k + g == len(DUE) for _, applied, k, g in swept)
        assert all(k == len(kept) for _, _, k, _ in swept)


@pytest.fixture(params=STORE_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value
