"""Conditions compiled to SQL over a host's own columns (adapters/mapped_views.py): the mapped
store's ``find_rows`` and ``count_records`` give what the interpreter gives over its records,
on the example CRM host (SQLite, and PostgreSQL and MariaDB where their URLs are set), at
instants on both sides of the clocks changing; naive wall-clock columns are read in their
declared zone exactly as Python's ``fold=0`` reads them."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fairproc.adapters.mapped_sql import MappedSqlStore, open_mapped
from fairproc.adapters.mapped_views import local_to_utc, zone_steps
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fairproc import load_policy
from fairproc.mapping import parse_mapping
from fairproc.model import Policy
from fairproc.retention import due_condition, review_condition
from fairproc.storage import (
    ConditionLike,
    Row,
    Store,
    StoreError,
    filter_records,
    instant_to_us,
    records_value,
    rows_of,
)
from fairproc.whole_store import processable_node
from mapping_support import CRM_MAPPING, KINDS, crm_host, crm_module
from store_support import MYSQL_ENV, POSTGRESQL_ENV

UTC = dt.UTC
ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
INSTANTS = [
    dt.datetime(2025, 3, 30, 0, 30, tzinfo=UTC),  # London: the hour the clocks skip
    dt.datetime(2025, 10, 26, 1, 30, tzinfo=UTC),  # London: the hour repeated
    dt.datetime(2027, 6, 1, tzinfo=UTC),
]
CONDITIONS = [
    "record.source == 'website_visit' and at >= record.collected_at + P12M",
    "record.suppressed",
    "not record.suppressed and subject.suppressed",
    "subject.restricted",
    "'email' in record.categories and not 'phone' in record.categories",
    "at >= subject.last_interaction + P4Y",
    "record.collected_at < at - P30D and record.source in ['phone_call', 'quick_quote']",
]
VALUES = ["record.collected_at", "record.suppressed", "subject.suppressed", "record.source"]


def select_rows(
    store: Store,
    condition: ConditionLike,
    at: dt.datetime,
    policy: Policy,
    values: Sequence[str] = (),
) -> list[Row]:
    """The rows the interpreter gives: every record read and the condition evaluated in
    Python (not the store's ``find_records``, which is compiled to SQL too)."""
    exprs = [records_value(v, policy) for v in values]
    return list(rows_of(store, filter_records(store, condition, at, policy), at, policy, exprs))


def count_matching(store: Store, condition: ConditionLike, at: dt.datetime, policy: Policy) -> int:
    return sum(1 for _ in filter_records(store, condition, at, policy))


@given(
    zone=st.sampled_from(ZONES),
    local=st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(9999, 1, 1)),
)
@settings(max_examples=400, deadline=None)
@example(zone="Europe/London", local=dt.datetime(2025, 10, 26, 1, 30))  # repeated: fold=0
@example(zone="Europe/London", local=dt.datetime(2025, 3, 30, 1, 30))  # skipped
@example(zone="Australia/Lord_Howe", local=dt.datetime(2016, 4, 3, 1, 45))  # half an hour back
def test_a_wall_clock_reading_moves_to_utc_as_python_reads_it(
    zone: str, local: dt.datetime
) -> None:
    tz = ZoneInfo(zone)
    reading = instant_to_us(local.replace(tzinfo=UTC))
    want = instant_to_us(local.replace(tzinfo=tz).astimezone(UTC))
    assert reading - zone_steps(tz).offset(reading) == want


@pytest.fixture(scope="module")
def server_engines() -> Iterator[dict[str, sa.Engine]]:
    """An engine per database server whose URL is set (none skips the tests that need them)."""
    engines = {
        kind: sa.create_engine(os.environ[env])
        for kind, env in (("postgresql", POSTGRESQL_ENV), ("mysql", MYSQL_ENV))
        if os.environ.get(env, "").strip()
    }
    try:
        yield engines
    finally:
        for engine in engines.values():
            engine.dispose()


@given(
    zone=st.sampled_from(ZONES),
    locals_=st.lists(
        st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(9999, 1, 1)),
        min_size=1,
        max_size=6,
    ),
)
@settings(max_examples=30, deadline=None)
@example(zone="Europe/London", locals_=[dt.datetime(2025, 10, 26, 1, 30)])  # repeated: fold=0
@example(zone="Europe/London", locals_=[dt.datetime(2025, 3, 30, 1, 30)])  # skipped
@example(zone="Europe/London", locals_=[dt.datetime(1900, 1, 2), dt.datetime(2200, 4, 1)])
@example(zone="Europe/London", locals_=[dt.datetime(2600, 3, 26, 1, 30), dt.datetime(9998, 7, 1)])
def test_each_server_moves_a_reading_to_utc_as_python_reads_it(
    server_engines: dict[str, sa.Engine], zone: str, locals_: list[dt.datetime]
) -> None:
    """The SQL each server runs for a naive column (a binary search of the zone's steps:
    PostgreSQL's ``width_bucket``, MariaDB's ``INTERVAL``) gives the instant Python's
    ``fold=0`` reading gives: before the first step, between, and long after the last (a
    rule's 400-year cycle)."""
    if not server_engines:
        pytest.skip(f"neither {POSTGRESQL_ENV} nor {MYSQL_ENV} is set: no server to ask")
    tz = ZoneInfo(zone)
    readings = [instant_to_us(local.replace(tzinfo=UTC)) for local in locals_]
    want = [instant_to_us(local.replace(tzinfo=tz).astimezone(UTC)) for local in locals_]
    for kind, engine in server_engines.items():
        values = [local_to_utc(sa.literal(r, sa.BigInteger()), tz, kind) for r in readings]
        with engine.connect() as conn:
            got = list(conn.execute(sa.select(*values)).one())
        assert got == want, kind


@pytest.fixture(scope="module", params=KINDS)
def crm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MappedSqlStore]:
    """The example CRM host with generated rows (customers, five record tables, two event
    tables) and fairproc's own events, mapped."""
    with crm_host(request.param, tmp_path_factory.mktemp("crm")) as url:
        engine = sa.create_engine(url)
        try:
            crm_module().generate(engine, 400, seed=7)
        finally:
            engine.dispose()
        store = open_mapped(url, CRM_MAPPING)
        try:
            yield store
        finally:
            store.close()


def _due(policy: Policy) -> list[str]:
    return [due_condition(policy), review_condition(policy)]


@pytest.mark.parametrize("at", INSTANTS, ids=lambda at: at.strftime("%Y%m%dT%H%M"))
def test_find_rows_over_the_host_s_columns_answers_as_the_interpreter(
    crm: MappedSqlStore, at: dt.datetime
) -> None:
    policy = load_policy("flexioffices")
    conditions = [*CONDITIONS, *_due(policy), processable_node(policy, "marketing_updates")]
    for condition in conditions:
        want = list(select_rows(crm, condition, at, policy, VALUES))
        assert list(crm.find_rows(condition, at, policy, VALUES)) == want, condition
        assert crm.count_records(condition, at, policy) == count_matching(
            crm, condition, at, policy
        ), condition
        assert [r.id for r in crm.find_records(condition, at, policy)] == [w[0] for w in want]


def test_explain_shows_the_sql_over_the_host_s_own_tables(crm: MappedSqlStore) -> None:
    policy = load_policy("flexioffices")
    at = INSTANTS[-1]
    sql, exact = crm.explain(CONDITIONS[0], at, policy)
    assert exact  # a record's own columns: no row is checked again in Python
    assert "-- web_sessions" in sql and "FROM web_sessions" in sql
    assert "fairproc_records" not in sql  # the host's tables, not a copy
    sql, exact = crm.explain("at >= subject.last_interaction + P4Y", at, policy)
    assert sql and not exact  # the retention fixpoint is finished in Python over views


def _text_host(tmp_path: Path, stamps: list[str], declared: str = "TEXT") -> str:
    """A SQLite host whose timestamps are text in layouts SQLAlchemy does not write, in a
    column declared ``declared``."""
    url = f"sqlite:///{tmp_path}/text.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE visits (ref TEXT PRIMARY KEY, person TEXT NOT NULL, at {declared}"
            " NOT NULL, ip TEXT)"
        )
        for i, stamp in enumerate(stamps):
            conn.exec_driver_sql(
                "INSERT INTO visits VALUES (?, ?, ?, ?)", (f"v{i}", f"p{i % 3}", stamp, "192.0.2.1")
            )
    engine.dispose()
    return url


TEXT_MAPPING = """
[mapping]
policy = "flexioffices"

[state]
prefix = "fp_"

[record.visits]
source = "website_visit"
id = "ref"
subject = "person"
collected_at = "at"
timezone = "{zone}"

[record.visits.categories]
ip_address = "ip"
"""


@pytest.mark.parametrize("zone", ["Europe/London", "UTC"])
def test_sqlite_text_in_other_layouts_is_read_as_python_reads_it(tmp_path: Path, zone: str) -> None:
    stamps = [
        "2024-03-31 01:30:00",  # skipped in London
        "2024-10-27 01:30:00.250000",  # repeated in London
        "2024-10-27T01:30:00",  # ISO with a T
        "2024-06-01 12:00:00.5",  # fewer fractional digits
        "2023-06-01 12:00",
        "2022-01-01",
    ]
    url = _text_host(tmp_path, stamps)
    mapping = parse_mapping(TEXT_MAPPING.format(zone=zone), file="text.toml")
    store = MappedSqlStore(url, mapping)
    policy = load_policy("flexioffices")
    try:
        for at in (dt.datetime(2025, 4, 30, tzinfo=UTC), dt.datetime(2025, 10, 27, 1, tzinfo=UTC)):
            for condition in (CONDITIONS[0], "record.collected_at >= at - P13M"):
                want = list(select_rows(store, condition, at, policy, ["record.collected_at"]))
                got = list(store.find_rows(condition, at, policy, ["record.collected_at"]))
                assert got == want, (condition, at)
    finally:
        store.close()


def test_a_timestamp_the_store_cannot_read_is_refused_not_skipped(tmp_path: Path) -> None:
    url = _text_host(tmp_path, ["2024-06-01 12:00:00", "not a time"])
    mapping = parse_mapping(TEXT_MAPPING.format(zone="UTC"), file="text.toml")
    store = MappedSqlStore(url, mapping)
    policy = load_policy("flexioffices")
    at = dt.datetime(2025, 6, 1, tzinfo=UTC)
    try:
        with pytest.raises(StoreError):
            list(select_rows(store, CONDITIONS[0], at, policy))
        with pytest.raises(StoreError):
            list(store.find_rows(CONDITIONS[0], at, policy))
    finally:
        store.close()


# --- text compared as instants on SQLite, near a bound and the clocks changing ---------------

_LAYOUTS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M")
# the evenings before the clocks change in 2024, and the same a year on, by zone
_CHANGES = {
    "Europe/London": (dt.datetime(2024, 3, 30, 22), dt.datetime(2024, 10, 26, 22)),
    "America/New_York": (dt.datetime(2024, 3, 9, 22), dt.datetime(2024, 11, 2, 22)),
}


def _stamps_near_the_changes(zone: str) -> list[str]:
    """Wall-clock readings every 7 minutes through the hours ``zone``'s clocks change in
    2024, and a year later, in SQLAlchemy's layouts and others, with odd seconds and
    fractions."""
    found = []
    for evening in _CHANGES[zone]:
        for year in (0, 1):
            start = evening.replace(year=evening.year + year)
            for i in range(0, 60):
                local = start + dt.timedelta(minutes=7 * i, seconds=(13 * i) % 60)
                local = local.replace(microsecond=(7919 * i) % 1_000_000 if i % 3 else 0)
                found.append(local.strftime(_LAYOUTS[i % len(_LAYOUTS)]))
    return found


@pytest.fixture(scope="module", params=sorted(_CHANGES))
def near_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, MappedSqlStore]]:
    zone = request.param
    # DATETIME: a column SQLAlchemy reads as timestamps, in the layouts its reader takes
    url = _text_host(tmp_path_factory.mktemp("near"), _stamps_near_the_changes(zone), "DATETIME")
    mapping = parse_mapping(TEXT_MAPPING.format(zone=zone), file="text.toml")
    store = MappedSqlStore(url, mapping)
    try:
        yield zone, store
    finally:
        store.close()


@given(
    change=st.sampled_from([0, 1]),
    later=st.timedeltas(min_value=dt.timedelta(hours=-6), max_value=dt.timedelta(hours=12)),
    condition=st.sampled_from(
        [
            CONDITIONS[0],
            "record.collected_at >= at - P12M",
            "record.collected_at < at - P1Y and record.collected_at >= at - P1Y - PT2H",
            "record.collected_at >= at - PT3H",
        ]
    ),
)
@settings(max_examples=80, deadline=None)
def test_sqlite_text_near_a_bound_compares_as_its_instant(
    near_store: tuple[str, MappedSqlStore], change: int, later: dt.timedelta, condition: str
) -> None:
    """The stored text is compared with a bound directly where its layout orders as instants
    (SQLAlchemy's), and read exactly near the bound or in any other layout: the same rows as
    Python's reading, in zones ahead of UTC and behind it, at instants a year after the
    clocks change (and just after), on both sides of the rows."""
    zone, store = near_store
    policy = load_policy("flexioffices")
    evening = _CHANGES[zone][change]
    at = (evening.replace(year=evening.year + 1) + later).replace(tzinfo=ZoneInfo(zone))
    want = list(select_rows(store, condition, at, policy, ["record.collected_at"]))
    got = list(store.find_rows(condition, at, policy, ["record.collected_at"]))
    assert got == want
    _, exact = store.explain(condition, at, policy)
    assert exact


# --- tables whose sources cannot hold are not read ---------------------------------------------


ALL_TABLES = {"enquiries", "search_follow_ups", "handbook_downloads", "calls", "web_sessions"}


@pytest.mark.parametrize(
    ("condition", "read"),
    [
        (CONDITIONS[0], {"web_sessions"}),
        ("record.source in ['quick_quote', 'website_visit']", {"enquiries", "web_sessions"}),
        ("record.source == 'quick_quote' and subject.restricted", {"enquiries"}),
        ("not (record.source != 'handbook_download')", {"handbook_downloads"}),
        ("record.source != 'website_visit'", ALL_TABLES - {"web_sessions"}),
        ("record.source == 'quick_quote' or at >= record.collected_at + P1Y", ALL_TABLES),
    ],
)
def test_a_table_whose_sources_cannot_hold_is_not_read(
    crm: MappedSqlStore, condition: str, read: set[str]
) -> None:
    """A value-mapped table (enquiries: five sources through ``channel``) is read only when
    one of its sources may hold; a fixed one only when its source may."""
    policy = load_policy("flexioffices")
    at = INSTANTS[-1]
    sql, _ = crm.explain(condition, at, policy)
    assert {line[3:] for line in sql.splitlines() if line.startswith("-- ")} == read
    assert list(crm.find_rows(condition, at, policy)) == list(
        select_rows(crm, condition, at, policy)
    )


def test_may_hold_for_reads_only_what_record_source_decides() -> None:
    from fairproc.adapters.mapped_views import may_hold_for

    from fairproc.conditions.parse import parse

    def holds(text: str, sources: list[str]) -> bool:
        return may_hold_for(parse(text), sources)

    assert not holds("record.source == 'a'", ["b", "c"])
    assert holds("record.source == 'a'", ["b", "a"])
    assert not holds("'a' == record.source and subject.restricted", ["b"])
    assert holds("record.source == 'a' or subject.restricted", ["b"])  # another fact may hold
    assert not holds("record.source in ['a', 'b']", ["c"])
    assert holds("record.source not in ['a', 'b']", ["c"])
    assert not holds("not (record.source != 'a')", ["b"])
    assert holds("subject.restricted", ["b"])
