"""Reads that stream: a store's queries hold a page of rows at a time, not their whole answer,
so a sweep's memory does not grow with the store (the native SQL store and the mapped one, on
SQLite; the CSV store's own test is in test_store_csv.py).

Each measure is against the same answer read into a list in the same process: the streamed
peak (tracemalloc) must be a small part of it, whatever the machine."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fairproc.adapters import mapped_sql
from fairproc.adapters.mapped_sql import MappedSqlStore, open_mapped
from fairproc.adapters.sql import SqlStore

from fairproc import Record, load_policy
from fairproc.storage import ChangeSet
from mapping_support import CRM_MAPPING, crm_host, crm_module

POLICY = load_policy("flexioffices")
AT = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
RECORDS = 20_000


def peak(read: Callable[[], Iterator[Any]], keep: bool) -> tuple[int, int]:
    """How many items ``read`` gives and the peak of memory allocated while they are read,
    each dropped once read (``keep`` false) or all kept in a list."""
    tracemalloc.start()
    try:
        if keep:
            count = len(list(read()))
        else:
            count = 0
            for _ in read():
                count += 1
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, top


def assert_streams(read: Callable[[], Iterator[Any]], at_least: int, share: int = 4) -> None:
    """``read`` gives at least ``at_least`` items, and holds less than a ``share``-th of the
    memory they take kept together while it gives them."""
    next(iter(read()), None)  # a first read builds what a store keeps (statements, views)
    streamed, streamed_peak = peak(read, keep=False)
    kept, kept_peak = peak(read, keep=True)
    assert streamed == kept >= at_least
    assert streamed_peak < kept_peak / share, (streamed_peak, kept_peak)


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    folder = tmp_path_factory.mktemp("native")
    store = SqlStore(f"sqlite:///{folder}/store.db")
    at = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    note = "n" * 300
    records = [
        Record(f"r{i:05}", f"s{i % 7000}", "website_visit", at, {"ip_address": note})
        for i in range(RECORDS)
    ]
    for start in range(0, RECORDS, 5000):
        store.apply(ChangeSet(put_records=records[start : start + 5000]))
    yield store
    store.close()


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MappedSqlStore]:
    with crm_host("sqlite", tmp_path_factory.mktemp("crm")) as url:
        engine = sa.create_engine(url)
        try:
            crm_module().generate(engine, RECORDS, seed=5)
        finally:
            engine.dispose()
        store = open_mapped(url, CRM_MAPPING)
        yield store
        store.close()


DUE_VISITS = "record.source == 'website_visit' and at >= record.collected_at + P12M"


def test_the_native_store_streams_its_records_and_rows(native: SqlStore) -> None:
    everything = "record.source == 'website_visit'"
    assert_streams(native.iter_records, RECORDS)
    assert_streams(lambda: native.find_records(everything, AT, POLICY), RECORDS)
    assert_streams(
        lambda: native.find_rows(everything, AT, POLICY, ["record.collected_at"]), RECORDS
    )


def test_the_mapped_store_streams_its_records_and_rows(
    mapped: MappedSqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_streams(mapped.iter_records, RECORDS - 10)
    # Finished in Python a page at a time (the fixpoint over views), each page with the whole
    # histories of its records' subjects: 200 records a page here (1,000 in use), so that a
    # page is a small part of the answer however the allocator rounds.
    monkeypatch.setattr(mapped_sql, "PAGE", 200)
    last_interaction = "at >= subject.last_interaction"
    assert_streams(lambda: mapped.find_records(last_interaction, AT, POLICY), 5000, share=2)
    # Exact in SQL: read STREAM_ROWS rows at a time (10,000, more than this host's due visits;
    # 400 here, to see the read hold one part of its answer at a time).
    monkeypatch.setattr(mapped_sql, "STREAM_ROWS", 400)
    assert_streams(lambda: mapped.find_rows(DUE_VISITS, AT, POLICY), 5000)


def test_a_stream_left_half_read_gives_its_connection_back(tmp_path: Path) -> None:
    """A caller that stops early (a sweep interrupted) leaves no statement open: closing the
    rows ends the read and gives its connection back to the pool, and a write goes through.
    A store of its own: the module's stores are shared by the other tests."""
    store = SqlStore(f"sqlite:///{tmp_path}/store.db")
    try:
        at = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        store.apply(
            ChangeSet(
                put_records=[Record(f"r{i:04}", "s", "website_visit", at) for i in range(3000)]
            )
        )
        pool = store.engine.pool
        assert isinstance(pool, sa.pool.QueuePool)
        rows = store.find_rows("record.source == 'website_visit'", AT, POLICY)
        assert next(rows)[0] == "r0000"
        assert pool.checkedout() == 1  # the statement is open, more pages to come
        rows.close()  # type: ignore[attr-defined]
        assert pool.checkedout() == 0
        store.apply(ChangeSet(delete_records=["r0001"]))
        assert store.get_record("r0001") is None
    finally:
        store.close()
