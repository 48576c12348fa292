"""The SQL adapter: schema and versions, errors that say what and where, exact comparisons on
every database, calendar periods compiled exactly, and the same answers as the Python
evaluator on generated worlds."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fairproc.adapters import sqlcompile
from fairproc.adapters.memory import MemoryStore
from fairproc.adapters.sql import SCHEMA_VERSION, SqlStore
from hypothesis import given, settings
from hypothesis import strategies as st

from fairproc import Engine, Event, Record, SuppressionEntry, World, load_policy
from fairproc.clock import Period
from fairproc.storage import ChangeSet, Store, StoreError, instant_to_us, open_store, us_to_instant
from fairproc.testing import strategies as fst
from fairproc.testing.contract import CONDITIONS, expected_matches
from store_support import MYSQL_ENV, POSTGRESQL_ENV, server_url, unique_prefix

POLICY = load_policy("flexioffices")
LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC


def u(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path}/db.sqlite")
    else:
        env = POSTGRESQL_ENV if request.param == "postgresql" else MYSQL_ENV
        store = SqlStore(server_url(env), prefix=unique_prefix())
    try:
        yield store
    finally:
        if store.backend != "sqlite":
            store.drop_tables()
        store.close()


# --- schema --------------------------------------------------------------------------------


def test_the_schema_is_versioned_and_indexed(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    SqlStore(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    try:
        version = con.execute(
            "select value from fairproc_meta where name = 'schema_version'"
        ).fetchone()
        assert version == (SCHEMA_VERSION,)
        indexes = {row[1] for row in con.execute("select * from sqlite_master where type='index'")}
        assert {"fairproc_records_subject", "fairproc_events_subject"} <= indexes
        assert con.execute("pragma journal_mode").fetchone() == ("wal",)
    finally:
        con.close()


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    SqlStore(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("update fairproc_meta set value = 99 where name = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"schema version 99, newer than this fairproc knows"):
        open_store(f"sqlite:///{path}")


def test_tables_that_are_not_fairproc_s_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    con = sqlite3.connect(path)
    con.execute("create table fairproc_meta (name text primary key, value integer)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="holds no schema_version"):
        open_store(f"sqlite:///{path}")


def test_prefixes_keep_stores_in_one_database_apart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    one, two = open_store(url + "?prefix=one_"), open_store(url + "?prefix=two_")
    try:
        one.apply(ChangeSet(put_records=[Record("r1", "ada", "quick_quote", u(2024, 1, 1))]))
        assert one.get_record("r1") is not None
        assert two.get_record("r1") is None
        assert list(two.iter_records()) == []
    finally:
        one.close()
        two.close()


# --- errors say what and where -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "oracle://scott:tiger@db/x",
            r"unknown store URL scheme 'oracle' in 'oracle://scott:\*\*\*@",
        ),
        ("postgresql+psycopg2://u@127.0.0.1/db", r"pip install 'fairproc\[postgresql\]'"),
        ("mysql+mysqldb://u@127.0.0.1/db", r"pip install 'fairproc\[mysql\]'"),
        ("sqlite:///x.db?prefix=1bad", "table prefix '1bad'"),
        ("sqlite:///x.db?prefix=a;drop", "table prefix"),
        ("ftp://example.com/x", "unknown store URL scheme 'ftp'"),
        ("no url at all", "not a store URL"),
    ],
)
def test_bad_urls_say_what_is_wrong(
    url: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_sql_store_names_the_databases_it_knows() -> None:
    with pytest.raises(StoreError, match=r"unsupported database 'oracle'.*expected sqlite"):
        SqlStore("oracle://scott:tiger@db/x")
    with pytest.raises(StoreError, match="not a database URL"):
        SqlStore("::::")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://fairproc:s3cret@127.0.0.1:1/test",
        "mysql+pymysql://root:s3cret@127.0.0.1:1/test",
    ],
)
def test_an_unreachable_server_is_named_without_its_password(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "127.0.0.1" in message and ":1/" in message
    assert "s3cret" not in message
    assert "could not connect" in message


def test_a_corrupt_sqlite_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 100)
    with pytest.raises(StoreError, match=r"broken\.db.*file is not a database"):
        open_store(f"sqlite:///{path}")


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no-such-folder.*unable to open database file"):
        open_store(f"sqlite:///{tmp_path}/no-such-folder/db.sqlite")


def test_failures_after_opening_are_store_errors(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("drop table fairproc_events")
        with pytest.raises(StoreError, match=r"could not read a subject's events.*no such table"):
            store.subject_events("ada")
    finally:
        store.close()


def test_corrupt_data_in_a_row_is_named(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        store.apply(ChangeSet(put_records=[Record("r1", "ada", "quick_quote", u(2024, 1, 1))]))
        with store.engine.begin() as conn:
            conn.exec_driver_sql("update fairproc_records set data = '{broken'")
        with pytest.raises(StoreError, match=r"fairproc_records, record 'r1': data is not valid"):
            store.get_record("r1")
    finally:
        store.close()


# --- exact on every database ---------------------------------------------------------------


def test_text_compares_exactly_and_by_code_point(sql_store: SqlStore) -> None:
    """No case folding, no trailing-space padding, no locale order (MariaDB's and
    PostgreSQL's defaults do all three)."""
    t = u(2024, 1, 1)
    ids = ["a", "a ", "A", "B", "é", "z", "ä", "a\u0301"]
    sql_store.apply(ChangeSet(put_records=[Record(i, "s", "quick_quote", t, {}) for i in ids]))
    for i in ids:
        got = sql_store.get_record(i)
        assert got is not None and got.id == i
    world = World([Record(i, "s", "quick_quote", t, {}) for i in ids])
    for condition in (
        "record.id == 'a'",
        "record.id > 'a'",
        "record.id <= 'B'",
        "record.subject == 'S'",
        "record.subject == 's '",
        "record.id in ['A', 'é']",
    ):
        got = [r.id for r in sql_store.find_records(condition, t, POLICY)]
        assert got == expected_matches(world, condition, t, POLICY), condition


def test_instants_keep_their_microseconds(sql_store: SqlStore) -> None:
    at = dt.datetime(2023, 10, 29, 1, 30, 0, 1, tzinfo=LONDON, fold=1)
    sql_store.apply(ChangeSet(put_records=[Record("r1", "ada", "quick_quote", at, {})]))
    got = sql_store.get_record("r1")
    assert got is not None
    assert got.collected_at.timestamp() == at.timestamp()
    assert instant_to_us(got.collected_at) == instant_to_us(at)


# --- calendar periods compiled exactly ------------------------------------------------------

PERIODS = [
    Period(months=12),
    Period(years=4),
    Period(months=1),
    Period(years=10),
    Period(days=1),
    Period(months=1, hours=48),
    Period(weeks=2, days=3),
]
EDGES = [
    dt.datetime(2024, 2, 29, 12, tzinfo=LONDON),
    dt.datetime(2025, 1, 31, 23, 59, 59, 999999, tzinfo=LONDON),
    dt.datetime(2025, 3, 30, 1, 30, tzinfo=UTC),  # the hour that does not exist
    dt.datetime(2025, 10, 26, 1, 30, tzinfo=LONDON, fold=0),  # the hour that repeats
    dt.datetime(2025, 10, 26, 1, 30, tzinfo=LONDON, fold=1),
    dt.datetime(2024, 3, 31, 0, 0, tzinfo=LONDON),
    dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
]


def _holds(
    x: int, shifts: list[tuple[Period, int]], op: str, bound: int, tz: dt.tzinfo = LONDON
) -> bool:
    moment = us_to_instant(x)
    for period, sign in shifts:
        moment = period.add_to(moment, tz, sign)
    return bool(sqlcompile._CMP[op](instant_to_us(moment), bound))


def _inside(x: int, intervals: list[tuple[int | None, int | None]]) -> bool:
    return any((a is None or x >= a) and (b is None or x < b) for a, b in intervals)


SOLVE_ZONES = [LONDON, ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe")]


@settings(max_examples=300)
@given(
    shifts=st.lists(
        st.tuples(st.sampled_from(PERIODS), st.sampled_from([1, -1])), min_size=1, max_size=2
    ),
    zone=st.sampled_from(SOLVE_ZONES),
    op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
    edge=st.sampled_from(EDGES),
    offset=st.integers(-3 * 86400 * 10**6, 3 * 86400 * 10**6),
    probes=st.lists(st.integers(-4 * 86400 * 10**6, 4 * 86400 * 10**6), max_size=20),
)
def test_solve_agrees_with_calendar_arithmetic(
    shifts: list[tuple[Period, int]],
    zone: ZoneInfo,
    op: str,
    edge: dt.datetime,
    offset: int,
    probes: list[int],
) -> None:
    """``x + P op bound`` in SQL is the set of intervals solve() computes; check it against
    Period.add_to at each interval's ends (a microsecond either side), at probes around
    ``bound - P`` and at every local midnight and clock change near it, where month-end
    clamping, 29 February and clock changes bite (a half-hour change on Lord Howe)."""
    bound = instant_to_us(edge) + offset
    intervals = sqlcompile.solve(shifts, zone, op, bound)
    assert intervals is not None
    moment = us_to_instant(bound)
    for period, sign in reversed(shifts):
        moment = period.add_to(moment, zone, -sign)
    centre = instant_to_us(moment)
    points = {centre + p for p in probes}
    for hours in range(-96, 97):  # each hour's start, local midnights and changes among them
        points.add(centre - centre % 3_600_000_000 + hours * 3_600_000_000)
    for a, b in intervals:
        for end in (a, b):
            if end is not None:
                points.update({end - 1, end, end + 1})
    for x in points:
        expected = _holds(x, shifts, op, bound, zone)
        assert _inside(x, intervals) == expected, us_to_instant(x)


def test_solve_is_exact_across_29_february() -> None:
    # 2023-02-28 + P1Y = 2024-02-28, 2024-02-29 + P1Y = 2025-02-28: two instants a day apart
    # reach the same day, so x + P1Y < at is not x < at - P1Y.
    bound = instant_to_us(dt.datetime(2025, 2, 28, 12, tzinfo=LONDON))
    intervals = sqlcompile.solve([(Period(years=1), 1)], LONDON, "<", bound)
    assert intervals is not None
    leap = instant_to_us(dt.datetime(2024, 2, 29, 11, tzinfo=LONDON))
    assert _inside(leap, intervals) and _holds(leap, [(Period(years=1), 1)], "<", bound)
    late = instant_to_us(dt.datetime(2024, 2, 29, 12, tzinfo=LONDON))
    assert not _inside(late, intervals) and not _holds(late, [(Period(years=1), 1)], "<", bound)


@pytest.mark.parametrize(("months", "days"), [(1, 0), (12, 0), (-12, 0), (48, 0), (120, 7)])
def test_a_period_s_fewest_and_most_days_are_the_calendar_s(months: int, days: int) -> None:
    """The bounds the solver starts from, against relativedelta on every date of a whole
    400-year cycle (after which the Gregorian calendar repeats)."""
    from dateutil.relativedelta import relativedelta

    step = relativedelta(months=months, days=days)
    first = dt.date(2000, 1, 1).toordinal()
    moves = {
        (date + step).toordinal() - date.toordinal()
        for date in map(dt.date.fromordinal, range(first, dt.date(2400, 1, 1).toordinal()))
    }
    assert sqlcompile._days_range(months, days) == (min(moves), max(moves))


def test_irregular_offsets_fall_back_to_python_and_stay_right(tmp_path: Path) -> None:
    """London kept local mean time (-0:01:15) until 1847: solve() declines, the rows near
    the boundary are checked in Python, and the answers are still the interpreter's."""
    old = dt.datetime(1846, 12, 1, 12, tzinfo=LONDON)
    assert sqlcompile.solve([(Period(months=12), 1)], LONDON, ">=", instant_to_us(old)) is None
    records = [
        Record(f"r{i}", "ada", "website_visit", old - dt.timedelta(days=365, minutes=30 * i))
        for i in range(-3, 4)
    ]
    world = World(records)
    store = SqlStore(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        store.apply(ChangeSet(put_records=records))
        condition = "at >= record.collected_at + P12M"
        _, exact = store.explain(condition, old, POLICY)
        assert not exact
        got = [r.id for r in store.find_records(condition, old, POLICY)]
        assert got == expected_matches(world, condition, old, POLICY)
        assert 0 < len(got) < len(records)
    finally:
        store.close()


# --- the same answers as the Python evaluator, on generated worlds ---------------------------


def _storable(world: fst.GeneratedWorld) -> ChangeSet:
    # A blank address can be on no list (it matches no record), and stores refuse to keep one.
    return ChangeSet(
        put_records=world.records,
        add_events=world.events,
        add_suppression=[s for s in world.suppression if s.email.strip()],
    )


@settings(max_examples=60)
@given(data=st.data())
def test_memory_and_sqlite_answer_as_the_interpreter(data: st.DataObject) -> None:
    world = data.draw(fst.worlds(POLICY))
    ats = data.draw(st.lists(fst.instants_for(POLICY, world), min_size=1, max_size=3))
    conditions = data.draw(st.lists(st.sampled_from(CONDITIONS), min_size=1, max_size=4))
    changes = _storable(world)
    reference = World(changes.put_records, changes.add_events, changes.add_suppression)
    stores: list[Store] = [MemoryStore(), SqlStore("sqlite://")]
    try:
        for store in stores:
            store.apply(changes)
        for at in ats:
            for condition in conditions:
                want = expected_matches(reference, condition, at, POLICY)
                for store in stores:
                    got = [r.id for r in store.find_records(condition, at, POLICY)]
                    assert got == want, (type(store).__name__, condition, at)
    finally:
        for store in stores:
            store.close()


@settings(max_examples=40)
@given(data=st.data())
def test_memory_and_sqlite_decide_as_a_world(data: st.DataObject) -> None:
    world = data.draw(fst.worlds(POLICY))
    changes = _storable(world)
    reference = World(changes.put_records, changes.add_events, changes.add_suppression)
    asked = data.draw(st.lists(fst.questions(POLICY, reference), min_size=1, max_size=6))
    stores: list[Store] = [MemoryStore(), SqlStore("sqlite://")]
    try:
        for store in stores:
            store.apply(changes)
        engines = [Engine(POLICY, reference)] + [Engine(POLICY, s) for s in stores]
        for question in asked:
            answers = [question.ask(engine).to_dict() for engine in engines]
            assert answers[1] == answers[0], question
            assert answers[2] == answers[0], question
    finally:
        for store in stores:
            store.close()


# --- two processes, one SQLite file --------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import datetime as dt, sys
    from fairproc import Event, Record
    from fairproc.storage import ChangeSet, open_store
    url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(url)
    t = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i in range(count):
        store.apply(ChangeSet(
            put_records=[Record(f"{name}-{i}", name, "quick_quote", t, {"n": i})],
            add_events=[Event(name, "email_open", t + dt.timedelta(seconds=i))],
        ))
    store.close()
    """
)


def test_two_processes_writing_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    open_store(url).close()  # the schema exists before the race
    count = 60
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, name, str(count)])
        for name in ("left", "right")
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    store = open_store(url)
    try:
        ids = [r.id for r in store.iter_records()]
        assert sorted(ids) == sorted(f"{n}-{i}" for n in ("left", "right") for i in range(count))
        assert len(store.subject_events("left")) == count
        assert len(store.subject_events("right")) == count
        assert store.revision == 2 * count
    finally:
        store.close()


def test_engine_reads_a_sql_store(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        when = u(2026, 11, 21, 10)
        store.apply(
            ChangeSet(
                put_records=[Record("r1", "ada", "quick_quote", when, {"email": "a@example.com"})],
                add_suppression=[SuppressionEntry("A@example.com", when, "unsubscribed")],
                add_events=[Event("ada", "enquiry_resolved", u(2026, 12, 1, 12), record="r1")],
            )
        )
        engine = Engine(POLICY, store)
        assert engine.route("r1", when).outcome == "pass_to_providers"
        assert engine.may_email("ada", u(2027, 1, 1)).outcome == "denied"
        kept = engine.retention("r1", u(2027, 1, 1))
        assert kept.until is not None and kept.until.timestamp() == u(2036, 12, 1, 12).timestamp()
    finally:
        store.close()


def test_statement_uses_the_dialect(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        # The latest of two instants, compared with a column: SQLite's max() of two values.
        condition = "record.collected_at == subject.last_interaction"
        sql, exact = store.explain(condition, u(2026, 1, 1), POLICY)
        assert exact and "max(coalesce(" in sql
        assert isinstance(store.engine, sa.Engine)
    finally:
        store.close()


# --- latest instants asked with EXISTS probes, and bare comparisons where NULL is false ------


def _member(x: int | None, values: sqlcompile._Range) -> bool:
    if x is None:
        return values.missing
    return _inside(x, list(values.spans))


_points = st.integers(-20, 20)
_ranges = st.builds(
    lambda spans, missing: sqlcompile._Range(sqlcompile._normal(spans), missing),
    st.lists(st.tuples(st.none() | _points, st.none() | _points), max_size=4),
    st.booleans(),
)


@given(a=_ranges, b=_ranges, op=st.sampled_from(list(sqlcompile._CMP)), bound=_points)
def test_sets_of_instants_combine_as_sets(
    a: sqlcompile._Range, b: sqlcompile._Range, op: str, bound: int
) -> None:
    """The values of one latest instant that ``and``, ``or`` and ``not`` merge: missing is a
    value of its own, and a comparison never holds for it."""
    compared = sqlcompile._Range(sqlcompile._normal(sqlcompile._spans(op, bound)))
    for x in [None, *range(-22, 23)]:
        assert _member(x, a.complement()) == (not _member(x, a))
        assert _member(x, a.union(b)) == (_member(x, a) or _member(x, b))
        assert _member(x, a.intersect(b)) == (_member(x, a) and _member(x, b))
        assert _member(x, compared) == (x is not None and sqlcompile._CMP[op](x, bound))
    assert a.complement().complement() == a


REPEATED_HOUR = dt.datetime(2023, 10, 29, 1, 30, tzinfo=LONDON, fold=1)


def _latest_world() -> World:
    """Subjects with and without each latest instant; several values of one; an event at
    the very microsecond a bound falls on; a resolution filed under another subject; a
    record collected after the times asked at."""
    r, e = Record, Event
    records = [
        r("nil-wv", "nil", "website_visit", u(2020, 1, 1), {"ip_address": "::1"}),
        r("old-qq", "old", "quick_quote", u(2014, 3, 1), {"email": "old@example.com"}),
        r("new-hb", "new", "handbook_download", REPEATED_HOUR),
        r("new-cf", "new", "contact_form", u(2024, 1, 31), {"email": "new@example.com"}),
        r("two-wv", "two", "website_visit", u(2019, 3, 31), {"ip_address": "::2"}),
        r("two-qq", "two", "quick_quote", u(2026, 1, 31), {"name": "Two"}),
        r("late-oc", "late", "office_calculator", u(2031, 1, 1), {}),
        r("late-pc", "late", "phone_call", u(2015, 1, 31, 23, 59, 59, 999999), {"phone": "1"}),
    ]
    events = [
        e("old", "enquiry_resolved", u(2014, 6, 30, 23), record="old-qq"),
        e("old", "office_let", u(2015, 1, 31)),
        e("old", "email_open", u(2016, 2, 29, 12)),
        e("new", "office_let", dt.datetime(2024, 2, 29, 12, tzinfo=LONDON)),
        e("new", "staff_contact", u(2025, 3, 30, 1, 30)),
        e("new", "enquiry_resolved", u(2024, 2, 29), record="new-cf"),
        e("new", "enquiry_resolved", u(2026, 2, 1), record="two-qq"),  # not two's
        e("new", "cookies_accepted", u(2024, 1, 31)),
        e("two", "office_let", u(2018, 1, 31)),
        e("two", "office_let", u(2026, 1, 31)),
        e("two", "website_visit", u(2019, 3, 31)),
        e("two", "enquiry_resolved", u(2026, 3, 1), record="two-qq"),
        e("two", "cookies_rejected", u(2026, 1, 31)),
        e("late", "email_click", u(2016, 1, 31)),
        e("late", "restricted", u(2016, 2, 1)),
    ]
    return World(records, events)


def _latest_times() -> list[dt.datetime]:
    world = _latest_world()
    moments = {rec.collected_at for rec in world.records} | {ev.at for ev in world.events}
    periods = [Period(), Period(years=10), Period(years=4), Period(months=12), Period(hours=48)]
    out = set()
    for moment in moments:
        for period in periods:
            due = period.add_to(moment, LONDON)
            out.update(due + dt.timedelta(microseconds=d) for d in (-1, 0, 1))
    return sorted(out, key=lambda t: t.timestamp())


LATEST_ATOMS = [
    "subject.office_let is None",
    "subject.office_let is not None",
    "at >= subject.office_let + P10Y",
    "at < subject.office_let + P10Y",
    "subject.office_let > at - P12M",
    "subject.office_let == at",
    "subject.office_let != at",
    "subject.office_let + PT48H <= at",
    "at >= subject.last_interaction + P4Y",
    "subject.last_interaction is None",
    "subject.last_interaction < at",
    "subject.last_interaction == at - PT48H",
    "record.resolved_at is None",
    "at >= record.resolved_at + P10Y",
    "record.resolved_at > at - P4Y",
    "record.collected_at == subject.last_interaction",
    "record.collected_at < at - P12M",
    "record.source in ['website_visit', 'quick_quote', 'contact_form', 'live_chat', 'multiquote']",
    "record.source in ['handbook_download']",
    "record.source not in ['website_visit']",
    "subject.cookie_choice == 'cookies_accepted'",
    "subject.cookie_choice < 'cookies_rejected'",
    "subject.restricted",
    "'email' in record.categories",
]
_conditions = st.recursive(
    st.sampled_from(LATEST_ATOMS),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=5,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def latest_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('latest')}/db.sqlite")
    else:
        env = POSTGRESQL_ENV if request.param == "postgresql" else MYSQL_ENV
        store = SqlStore(server_url(env), prefix=unique_prefix())
    world = _latest_world()
    try:
        store.apply(ChangeSet(put_records=world.records, add_events=world.events))
        yield store
    finally:
        if store.backend != "sqlite":
            store.drop_tables()
        store.close()


@settings(max_examples=120, deadline=None)
@given(condition=_conditions, at=st.sampled_from(_latest_times()))
def test_latest_instants_and_missing_values_answer_as_the_interpreter(
    latest_store: SqlStore, condition: str, at: dt.datetime
) -> None:
    """Merged sets of a latest instant's values, EXISTS probes, bare comparisons where a
    missing operand (NULL) counts as false and wrapped ones under ``not``: the same records
    as the Python evaluator, on every database."""
    want = expected_matches(_latest_world(), condition, at, POLICY)
    got = [r.id for r in latest_store.find_records(condition, at, POLICY)]
    assert got == want, (condition, at)
    assert latest_store.count_records(condition, at, POLICY) == len(want)


def test_a_latest_instant_asked_twice_is_one_probe(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        condition = "subject.office_let is None or at >= subject.office_let + P10Y"
        sql, exact = store.explain(condition, u(2026, 1, 1), POLICY)
        assert exact
        assert sql.count("EXISTS") == 1 and "NOT (EXISTS" in sql
        assert "max(" not in sql and "coalesce" not in sql
        # Only a negated comparison that may be NULL is wrapped.
        at = u(2026, 1, 1)
        sql, _ = store.explain("not (subject.cookie_choice == 'cookies_accepted')", at, POLICY)
        assert "coalesce" in sql
        sql, _ = store.explain("not (record.source == 'phone_call')", at, POLICY)
        assert "coalesce" not in sql and "r.source != 'phone_call'" in sql
    finally:
        store.close()


# --- one snapshot ------------------------------------------------------------------------------


def _another(store: SqlStore) -> SqlStore:
    """A second store on the same tables: another connection, as another process would be."""
    return SqlStore(store.url, prefix=store.prefix)


def _rec(rid: str, subject: str, source: str = "website_visit") -> Record:
    return Record(rid, subject, source, u(2020, 1, 1), {})


def test_reads_inside_reading_see_one_snapshot(sql_store: SqlStore) -> None:
    at = u(2026, 1, 1)
    everything = "record.collected_at <= at"
    sql_store.apply(ChangeSet(put_records=[_rec("r1", "ada")]))
    other = _another(sql_store)
    try:
        with sql_store.reading():
            assert sql_store.count_records(everything, at, POLICY) == 1
            other.apply(ChangeSet(put_records=[_rec("r2", "bob")]))
            assert sql_store.count_records(everything, at, POLICY) == 1
            assert sql_store.get_record("r2") is None
            with sql_store.reading():  # blocks nest
                assert [r.id for r in sql_store.find_records(everything, at, POLICY)] == ["r1"]
            with pytest.raises(StoreError, match="inside reading"):
                sql_store.apply(ChangeSet(put_records=[_rec("r3", "cy")]))
        assert sql_store.count_records(everything, at, POLICY) == 2
        assert sql_store.get_record("r3") is None  # the refused write changed nothing
    finally:
        other.close()


def test_a_sweep_plan_selects_and_counts_from_one_snapshot(sql_store: SqlStore) -> None:
    """Records put while a plan is being made are in none of its figures, so its due items,
    review count and scanned count always add up as one moment's."""
    from fairproc.sweep import plan_sweep

    at = u(2026, 1, 1)
    sql_store.apply(ChangeSet(put_records=[_rec(f"old{i}", f"s{i}") for i in range(3)]))
    engine = Engine(POLICY, sql_store)
    other = _another(sql_store)
    written: list[int] = []

    def progress(done: int, total: int) -> None:
        if not written:  # after the first due item: the plan's statements have begun
            other.apply(ChangeSet(put_records=[_rec("new", "s9", "phone_call")]))
            written.append(done)

    try:
        plan = plan_sweep(engine, at, progress=progress, chunk=1)
        assert written == [1]
        assert (plan.scanned, plan.review, len(plan.items)) == (3, 0, 3)
        after = plan_sweep(engine, at)
        assert (after.scanned, after.review, len(after.items)) == (4, 1, 3)
    finally:
        other.close()


@pytest.mark.parametrize("env", [POSTGRESQL_ENV, MYSQL_ENV])
def test_opening_an_existing_store_on_a_server_creates_no_tables(env: str) -> None:
    """create=False (what sweep and request use) refuses a prefix with no fairproc tables
    and leaves the database as it was: asking twice is refused twice."""
    url = f"{server_url(env)}?prefix={unique_prefix()}"
    for _ in range(2):
        with pytest.raises(StoreError, match="holds no fairproc tables"):
            open_store(url, create=False)
    created = open_store(url)  # created now, on purpose
    try:
        open_store(url, create=False).close()
    finally:
        created.drop_tables()
        created.close()


def test_reads_on_postgresql_keep_the_connections_prepared_statements() -> None:
    """A read ends without a ROLLBACK (nothing was written), so psycopg keeps the statements it
    prepared: a lookup asked again is not planned again. Inside ``reading()`` and outside; an
    error inside the block still ends it, and the store reads on."""
    store = SqlStore(server_url(POSTGRESQL_ENV), prefix=unique_prefix())
    try:
        at = dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC)
        store.apply(ChangeSet(put_records=[Record("r1", "s1", "quick_quote", at, {})]))
        with pytest.raises(ZeroDivisionError), store.reading():
            store.subject_records("s1")
            1 / 0  # noqa: B018
        for _ in range(6):  # psycopg prepares a statement from its fifth run on a connection
            with store.reading():
                assert [r.id for r in store.subject_records("s1")] == ["r1"]
            assert [e.kind for e in store.subject_events("s1")] == []
        with store.engine.connect() as conn:  # the one connection the reads above used
            prepared = conn.execute(
                sa.text("SELECT statement FROM pg_prepared_statements")
            ).scalars()
            tables = {
                t for s in prepared for t in (store.records.name, store.events.name) if t in s
            }
        assert tables == {store.records.name, store.events.name}
    finally:
        store.drop_tables()
        store.close()


def test_a_record_whose_data_is_not_json_is_named_with_its_table(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        at = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
        store.apply(ChangeSet(put_records=[Record("r1", "ada", "quick_quote", at, {"x": 1})]))
        with store.engine.begin() as conn:
            conn.execute(sa.update(store.records).values(data="{not json"))
        with pytest.raises(StoreError) as raised:
            store.get_record("r1")
        assert "table fairproc_records, record 'r1': data is not valid JSON" in str(raised.value)
        assert str(tmp_path) in str(raised.value)
    finally:
        store.close()
