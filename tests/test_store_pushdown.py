"""Pushdown: a sweep over 100,000 SQLite rows runs in the database. It issues a number of
statements bounded by the matches (one per page of results), never by the table, and loads
only the rows that match."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fairproc.adapters.sql import SqlStore
from sqlalchemy import event

from fairproc import Record, load_policy
from fairproc.clock import Period
from fairproc.storage import ChangeSet

POLICY = load_policy("flexioffices")
ROWS = 100_000
SOURCES = ("website_visit", "quick_quote", "handbook_download", "contact_form")
START = dt.datetime(2020, 1, 31, 12, tzinfo=dt.UTC)


def _collected(i: int) -> dt.datetime:
    # Spread over six years, hitting month ends, 29 February and both clock changes.
    return START + dt.timedelta(minutes=31 * i + (i % 17))


def _records() -> Iterator[Record]:
    for i in range(ROWS):
        data: dict[str, Any] = {"ip_address": f"10.0.{i % 250}.{i % 200}"}
        if i % 3:
            data = {"name": f"n{i}", "email": f"s{i % 25_000}@example.com"}
        yield Record(f"r{i:06}", f"s{i % 25_000}", SOURCES[i % 4], _collected(i), data)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    path: Path = tmp_path_factory.mktemp("pushdown") / "big.db"
    store = SqlStore(f"sqlite:///{path}")
    store.apply(ChangeSet(put_records=list(_records())))
    try:
        yield store
    finally:
        store.close()


class Counter:
    def __init__(self, store: SqlStore):
        self.store = store
        self.statements: list[str] = []

    def __enter__(self) -> Counter:
        event.listen(self.store.engine, "before_cursor_execute", self._count)
        self.rows_before = self.store.rows_fetched
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.store.engine, "before_cursor_execute", self._count)
        self.rows = self.store.rows_fetched - self.rows_before

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "ROLLBACK", "COMMIT")):
            self.statements.append(statement)


def test_a_retention_sweep_runs_in_the_database(big: SqlStore) -> None:
    at = dt.datetime(2024, 6, 30, 23, 30, tzinfo=dt.UTC)
    condition = "record.source == 'website_visit' and at >= record.collected_at + P12M"
    sql, exact = big.explain(condition, at, POLICY)
    assert exact, sql  # the calendar period is solved exactly: no row is checked in Python
    twelve_months = Period(months=12)
    want = [
        f"r{i:06}"
        for i in range(ROWS)
        if SOURCES[i % 4] == "website_visit"
        and at.timestamp() >= twelve_months.add_to(_collected(i), POLICY.tz).timestamp()
    ]
    assert 5_000 < len(want) < ROWS // 4
    with Counter(big) as counted:
        got = [r.id for r in big.find_records(condition, at, POLICY)]
    assert got == want
    assert counted.rows == len(want)  # loads only matching rows
    pages = len(want) // big.page_size + 1
    assert len(counted.statements) <= pages
    assert all("LIMIT" in s for s in counted.statements)


def test_a_subject_fact_sweep_runs_in_the_database(big: SqlStore) -> None:
    at = dt.datetime(2029, 9, 1, 0, 30, tzinfo=dt.UTC)
    condition = "not (at < subject.last_interaction + P4Y) and 'email' in record.categories"
    assert big.explain(condition, at, POLICY)[1]
    with Counter(big) as counted:
        got = [r.id for r in big.find_records(condition, at, POLICY)]
    # A subject's last interaction is the latest collection, by then, of its records that are
    # not past their own due date (the asked record counts for itself). Each subject's records
    # share a source: cookie data counts for 12 months; an unresolved enquiry always; handbook
    # downloads all count, or (when the latest is four years old) none does.
    four, twelve_months = Period(years=4), Period(months=12)

    def due(when: dt.datetime, period: Period) -> bool:
        return at.timestamp() >= period.add_to(when, POLICY.tz).timestamp()

    by_subject: dict[str, list[int]] = {}
    for i in range(ROWS):
        by_subject.setdefault(f"s{i % 25_000}", []).append(i)
    counts: dict[str, list[dt.datetime]] = {}
    for subject, rows in by_subject.items():
        source = SOURCES[rows[0] % 4]
        times = [_collected(i) for i in rows if _collected(i) <= at]
        if source == "website_visit":
            times = [t for t in times if not due(t, twelve_months)]
        elif source == "handbook_download" and times and due(max(times), four):
            times = []
        counts[subject] = times
    want = []
    for i in range(ROWS):
        own = [_collected(i)] if _collected(i) <= at else []
        times = counts[f"s{i % 25_000}"] + own
        if i % 3 and times and due(max(times), four):
            want.append(f"r{i:06}")
    assert 0 < len(want) < sum(1 for i in range(ROWS) if i % 3)
    assert got == want
    assert counted.rows == len(want)
    assert len(counted.statements) <= len(want) // big.page_size + 1


def test_what_sql_cannot_say_is_filtered_after_a_narrow_prefilter(big: SqlStore) -> None:
    """Office hours need the London clock: the database narrows to the handbook downloads
    collected in the last week, and only those rows are checked in Python."""
    at = dt.datetime(2024, 3, 8, tzinfo=dt.UTC)
    condition = (
        "record.source == 'handbook_download' and record.collected_at + P7D >= at"
        " and record.collected_at <= at and in_office_hours(record.collected_at)"
    )
    assert not big.explain(condition, at, POLICY)[1]
    candidates = [
        i
        for i in range(ROWS)
        if SOURCES[i % 4] == "handbook_download"
        and at - dt.timedelta(days=8) <= _collected(i) <= at
    ]
    with Counter(big) as counted:
        got = [r.id for r in big.find_records(condition, at, POLICY)]
    hours = POLICY.info.office_hours
    assert hours is not None
    want = [
        f"r{i:06}"
        for i in candidates
        if Period(days=7).add_to(_collected(i), POLICY.tz) >= at
        and hours.contains(_collected(i), POLICY.tz)
    ]
    assert 0 < len(want) < len(candidates)
    assert got == want
    assert counted.rows <= len(candidates)  # never the table
    assert len(counted.statements) <= 2 + 3 * (len(candidates) // 500 + 1)


def _plan(store: SqlStore, condition: str, at: dt.datetime) -> str:
    sql, exact = store.explain(condition, at, POLICY)
    assert exact, sql
    with store.engine.connect() as conn:
        return " / ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))


def test_a_sweep_s_selection_can_use_the_indexes(big: SqlStore) -> None:
    """Bare comparisons where a missing operand counts as false anyway: SQLite seeks the
    source and the collection bound in their index, and asks a latest instant with one
    probe."""
    at = dt.datetime(2024, 6, 30, 23, 30, tzinfo=dt.UTC)
    condition = (
        "record.source in ['website_visit'] and at >= record.collected_at + P12M"
        " and (subject.office_let is None or at >= subject.office_let + P10Y)"
    )
    plan = _plan(big, condition, at)
    assert "USING INDEX fairproc_records_source (source=? AND collected_at<?)" in plan, plan
    assert plan.count("SUBQUERY") == 1, plan
    # A list of most of the policy's sources cannot be selective: read the table in order.
    most = [s for s in POLICY.sources if s != "website_visit"]
    plan = _plan(big, f"record.source in {most!r}", at)
    assert plan.startswith("SCAN r"), plan


def test_a_record_s_resolution_is_one_probe_through_the_record_index(big: SqlStore) -> None:
    """A resolution is the record's own event: found through the index on the record (the
    one on the subject would read each of the subject's events to test its record), and
    "resolved before a bound" asked as the greatest resolution, once."""
    at = dt.datetime(2024, 6, 30, 23, 30, tzinfo=dt.UTC)
    condition = "record.source in ['contact_form'] and at >= record.resolved_at + P10Y"
    plan = _plan(big, condition, at)
    assert "fairproc_events_record (record=?" in plan, plan
    assert "fairproc_events_subject" not in plan, plan
    assert plan.count("SUBQUERY") == 1, plan


def test_postgresql_keeps_every_exists_a_probe_per_row() -> None:
    """On PostgreSQL each EXISTS of a compiled condition carries ``OFFSET 0``, so that the
    planner keeps it a probe by the index rather than a join it plans from an estimate far
    too low (the marketing list at a million records: a scan of every suppressing event per
    row, minutes, without parallel workers as in a streamed read); on SQLite none does."""
    import sqlalchemy as sa
    from fairproc.adapters.sqlcompile import Compiler
    from sqlalchemy.dialects import postgresql, sqlite

    from fairproc.storage import records_condition
    from fairproc.whole_store import _email_node, marketing

    policy = load_policy("flexioffices")
    purpose, category = marketing(policy)
    cond = records_condition(_email_node(policy, purpose.id, category), policy)
    at = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    store = SqlStore("sqlite://")
    try:
        texts = {}
        for name, dialect in (("postgresql", postgresql.dialect()), ("sqlite", sqlite.dialect())):
            r = store.tables.alias(store.records, "r")
            compiled = Compiler(policy, at, store.tables, r, name).compile(cond.node)
            texts[name] = str(sa.select(r.c.id).where(compiled.where).compile(dialect=dialect))
    finally:
        store.close()
    fenced = {
        name: [_ends_with_offset(body) for body in _exists_bodies(text)]
        for name, text in texts.items()
    }
    assert len(fenced["postgresql"]) >= 5
    assert all(fenced["postgresql"])
    assert not any(fenced["sqlite"])


def _exists_bodies(text: str) -> list[str]:
    """Each ``EXISTS (...)`` of a statement's text, to its closing parenthesis."""
    bodies = []
    for start in (i for i in range(len(text)) if text.startswith("EXISTS (", i)):
        depth, end = 0, start + len("EXISTS ")
        while True:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
            end += 1
        bodies.append(text[start : end + 1])
    return bodies


def _ends_with_offset(body: str) -> bool:
    return "OFFSET" in body.rsplit("\n", 1)[-1]
