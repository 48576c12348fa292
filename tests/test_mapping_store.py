"""The store over a mapping, on SQLite, PostgreSQL and MariaDB: the contract kit (over a
generic activity-log host), every shipped scenario with its world in the example CRM host's
own tables, erasure and sweeps that follow the foreign keys, mask as the mapping says, write
their audit in the same transaction, change nothing when they fail part way, and touch
nothing of another subject."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fairproc.adapters.mapped_sql import MappedSqlStore, MappedStores, open_mapped
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairproc import Record, load_policy
from fairproc.errors import InputError
from fairproc.mapping import load_mapping, parse_mapping
from fairproc.storage import ChangeSet, Snapshots, Store, StoreError
from fairproc.testing import strategies as fst
from fairproc.testing.contract import StoreContract
from mapping_support import (
    CRM_MAP,
    CRM_MAPPING,
    KINDS,
    a_failed_erasure_changes_nothing,
    a_failed_sweep_changes_nothing,
    activity_host,
    crm_host,
    erase_ada_calls,
    erasure_spares_the_others,
    every_shipped_scenario_passes,
    follow_up_world,
    put_ada,
    u,
)

POLICY = load_policy("flexioffices")
UTC = dt.UTC


# --- the contract kit ------------------------------------------------------------------------


class _MappedContract(StoreContract):
    kind = "sqlite"

    def make_store(self, tmp_path: Path) -> Store:  # pragma: no cover - the fixture below
        raise AssertionError("made by the store fixture")

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        with activity_host(self.kind, tmp_path) as (url, mapping):
            made = MappedSqlStore(url, mapping)
            try:
                yield made
            finally:
                made.close()

    def reopen(self, store: Store, tmp_path: Path) -> Store | None:
        assert isinstance(store, MappedSqlStore) and isinstance(store.bind, sa.Engine)
        return MappedSqlStore(store.bind.url.render_as_string(hide_password=False), store.mapping)

    def break_next_write(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> bool:
        # Fails on the audit entries: after the records are written and the events appended.
        original = MappedSqlStore._append
        calls: list[int] = []

        def failing(self: MappedSqlStore, *args: Any) -> None:
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("injected fault")
            original(self, *args)

        monkeypatch.setattr(MappedSqlStore, "_append", failing)
        return True


class TestMappedSqlite(_MappedContract):
    kind = "sqlite"


class TestMappedPostgresql(_MappedContract):
    kind = "postgresql"


class TestMappedMariadb(_MappedContract):
    kind = "mysql"


# --- the example CRM host --------------------------------------------------------------------


@pytest.fixture(params=KINDS)
def crm_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with crm_host(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def crm(crm_url: str) -> Iterator[MappedSqlStore]:
    store = open_mapped(crm_url, CRM_MAPPING)
    try:
        yield store
    finally:
        store.close()


def test_every_shipped_scenario_passes_in_the_hosts_own_tables(crm_url: str) -> None:
    every_shipped_scenario_passes(MappedStores(crm_url, CRM_MAPPING))


def test_the_records_live_in_the_hosts_tables(crm: MappedSqlStore) -> None:
    put_ada(crm)
    with crm.bind.connect() as conn:  # type: ignore[union-attr]
        enquiry = conn.execute(
            sa.text(
                "SELECT e.channel, e.first_name, e.last_name, e.office_size, c.customer_ref "
                "FROM enquiries e JOIN customers c ON c.customer_id = e.customer_id"
            )
        ).one()
        assert tuple(enquiry) == ("chat", "Ada", "Lovelace", 6, "ada")
        # naive wall time in London (BST in July), as the host's web tier writes it
        started = conn.execute(sa.text("SELECT started_at FROM web_sessions")).scalar_one()
        if isinstance(started, str):
            started = dt.datetime.fromisoformat(started)
        assert started.replace(tzinfo=None) == dt.datetime(2026, 7, 1, 10)
        assert conn.execute(sa.text("SELECT count(*) FROM lettings")).scalar_one() == 1
        own = conn.execute(sa.text("SELECT kind, purpose FROM fairproc_events")).all()
        assert [tuple(r) for r in own] == [("objected", "analytics")]


def test_what_the_hosts_columns_cannot_keep_is_refused_whole(crm: MappedSqlStore) -> None:
    good = Record("q1", "ada", "quick_quote", u(2026, 1, 2), {"email": "a@example.com"})
    crm.apply(ChangeSet(put_records=[good]))
    revision = crm.revision
    bad = [
        Record("x1", "bob", "quick_quote", u(2026, 1, 2), {"office_size": "ten"}),
        Record("x2", "bob", "quick_quote", u(2026, 1, 2), {"budget": "£1"}),
        Record("x3", "bob", "no_such_source", u(2026, 1, 2), {}),
        Record("x4", "bob", "quick_quote", u(2026, 1, 2), {"name": ["A", "B"]}),
    ]
    for record in bad:
        with pytest.raises(InputError) as caught:
            crm.apply(ChangeSet(put_records=[record], delete_records=["q1"]))
        assert "put_records[0]" in str(caught.value)
    assert crm.revision == revision
    assert [r.id for r in crm.iter_records()] == ["q1"]


def _point(store: MappedSqlStore, follow_up: str, enquiry: str) -> None:
    # The host links a follow-up to its enquiry; the mapping does not read the link.
    with store.bind.connect() as conn:  # type: ignore[union-attr]
        conn.execute(
            sa.text("UPDATE search_follow_ups SET enquiry_ref = :e WHERE follow_up_ref = :f"),
            {"e": enquiry, "f": follow_up},
        )
        conn.commit()


def test_deletes_go_children_first_or_are_refused_naming_the_key(crm: MappedSqlStore) -> None:
    crm.apply(follow_up_world())
    _point(crm, "f1", "e1")
    revision = crm.revision
    with pytest.raises(StoreError, match=r"search_follow_ups\(enquiry_ref\) -> enquiries"):
        crm.apply(ChangeSet(delete_records=["e1"]))
    assert crm.revision == revision and crm.get_record("e1") is not None
    # the child in the same change set: it goes first, whatever order the ids come in
    crm.apply(ChangeSet(delete_records=["e1", "f1"]))
    assert crm.get_record("e1") is None and crm.get_record("f1") is None
    assert crm.get_record("e2") is not None


def test_masked_tables_keep_their_rows_without_the_subject(crm: MappedSqlStore) -> None:
    erase_ada_calls(crm)
    with crm.bind.connect() as conn:  # type: ignore[union-attr]
        rows = conn.execute(
            sa.text(
                "SELECT call_ref, customer_id, phone_number, recording_url FROM calls "
                "ORDER BY call_ref"
            )
        ).all()
    (ref, customer, phone, recording), kept = rows
    assert (ref, customer, recording) == ("c1", None, None)
    assert phone != "+44 1" and len(phone) == 32  # a keyed hash, not the number
    assert kept[2] == "+44 1"


def _power_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    def power_cut(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("power cut")

    # fairproc's own rows (events, suppression, audit) are appended after the host's rows
    # are deleted: failing there fails the erasure part way through.
    monkeypatch.setattr(MappedSqlStore, "_append", power_cut)


def test_an_erasure_that_fails_part_way_changes_nothing(
    crm: MappedSqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_failed_erasure_changes_nothing(crm, monkeypatch, _power_cut)


def test_a_sweep_that_fails_part_way_changes_nothing(
    crm: MappedSqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_failed_sweep_changes_nothing(crm, monkeypatch, _power_cut)


def test_the_store_joins_the_hosts_transaction(crm_url: str) -> None:
    engine = sa.create_engine(crm_url)
    mapping = load_mapping(CRM_MAPPING, POLICY)
    try:
        with engine.connect() as conn:
            conn.begin()
            store = MappedSqlStore(conn, mapping)
            record = Record("q9", "ada", "quick_quote", u(2026, 1, 2), {"name": "Ada"})
            store.apply(ChangeSet(put_records=[record]))
            assert store.get_record("q9") is not None  # seen inside the host's transaction
            conn.rollback()  # the host changes its mind: fairproc's write goes with it
            assert store.get_record("q9") is None
            conn.rollback()  # SQLAlchemy 2 began a transaction for that read: end it
            conn.begin()
            store.apply(ChangeSet(put_records=[record]))
            conn.commit()
        other = MappedSqlStore(engine, mapping)
        assert other.get_record("q9") is not None
        other.close()
    finally:
        engine.dispose()


def test_a_missing_table_or_column_is_located(crm_url: str, tmp_path: Path) -> None:
    text = CRM_MAPPING.read_text(encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace('email = "email"', 'email = "e_mail"', 1), encoding="utf-8")
    with pytest.raises(StoreError, match=r"broken.toml:\d+: record.enquiries.categories.email: "):
        open_mapped(crm_url, broken)
    broken.write_text(
        text.replace("[record.calls]", "[record.phone_calls]").replace(
            "[record.calls.", "[record.phone_calls."
        ),
        encoding="utf-8",
    )
    with pytest.raises(StoreError, match=r"broken.toml:\d+: record.phone_calls: no table"):
        open_mapped(crm_url, broken)


def test_naive_timestamps_without_a_declared_zone_are_refused(tmp_path: Path) -> None:
    with crm_host("sqlite", tmp_path) as url:
        text = CRM_MAPPING.read_text(encoding="utf-8").replace('timezone = "UTC"\n', "", 1)
        mapping = parse_mapping(text, POLICY, file="nozone.toml")
        store = MappedSqlStore(url, mapping)
        try:
            record = Record("q1", "ada", "quick_quote", u(2026, 1, 2), {})
            with pytest.raises(
                StoreError, match=r"nozone.toml:\d+: .*without a zone|keeps no zone"
            ):
                store.apply(ChangeSet(put_records=[record]))
        finally:
            store.close()


# --- nothing of another subject changes ------------------------------------------------------


@pytest.fixture(scope="module")
def shared_crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MappedStores]:
    with crm_host("sqlite", tmp_path_factory.mktemp("crm")) as url:
        yield MappedStores(url, CRM_MAP)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=fst.worlds(POLICY, max_records=8), which=st.sampled_from(["ada", "grace", "alan"]))
def test_erasure_changes_nothing_of_another_subject(
    shared_crm: MappedStores, world: Any, which: str
) -> None:
    erasure_spares_the_others(shared_crm, world, which)


def test_reads_inside_reading_see_one_snapshot(crm_url: str) -> None:
    """``reading()`` (the Snapshots capability: an engine's access request, a sweep's plan)
    holds one transaction: a write by another store after its first read is not seen until
    it ends; blocks nest; a write inside one is refused and changes nothing."""
    if crm_url.startswith("sqlite"):
        # a host that writes while others read keeps its SQLite file in WAL mode: in the
        # default journal, a reader's open transaction holds every writer off
        engine = sa.create_engine(crm_url)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        engine.dispose()
    store = open_mapped(crm_url, CRM_MAPPING)
    other = open_mapped(crm_url, CRM_MAPPING)
    everything = "record.collected_at <= at"
    at = u(2027, 1, 1)
    try:
        assert isinstance(store, Snapshots)
        store.apply(ChangeSet(put_records=[Record("q1", "ada", "quick_quote", u(2026, 1, 2))]))
        with store.reading():
            assert store.count_records(everything, at, POLICY) == 1
            other.apply(ChangeSet(put_records=[Record("q2", "bob", "quick_quote", u(2026, 1, 3))]))
            assert store.count_records(everything, at, POLICY) == 1
            assert store.get_record("q2") is None
            with store.reading():  # blocks nest
                assert [r.id for r in store.find_records(everything, at, POLICY)] == ["q1"]
            with pytest.raises(StoreError, match="inside a decision or reading"):
                store.apply(ChangeSet(put_records=[Record("q3", "cy", "quick_quote", at)]))
        assert store.count_records(everything, at, POLICY) == 2
        assert store.get_record("q3") is None  # the refused write changed nothing
    finally:
        other.close()
        store.close()


def test_a_read_on_postgresql_leaves_the_host_s_settings_as_they_were() -> None:
    """The mapped store turns JIT off and plans its cursors for every row for its own reads
    only: inside the host's transaction, the host's settings are back after each read."""
    with crm_host("postgresql", Path("unused")) as url:
        engine = sa.create_engine(url)
        mapping = load_mapping(CRM_MAPPING, POLICY)
        settings_now = sa.text(
            "SELECT current_setting('jit'), current_setting('cursor_tuple_fraction')"
        )
        try:
            with engine.connect() as conn:
                conn.begin()
                conn.exec_driver_sql("SET LOCAL jit = on")
                conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 0.2")
                store = MappedSqlStore(conn, mapping)
                store.apply(
                    ChangeSet(put_records=[Record("q1", "ada", "quick_quote", u(2026, 1, 2))])
                )
                due = "record.collected_at <= at - P1D"
                assert [row[0] for row in store.find_rows(due, u(2027, 1, 1), POLICY)] == ["q1"]
                assert store.count_records(due, u(2027, 1, 1), POLICY) == 1
                assert tuple(conn.execute(settings_now).one()) == ("on", "0.2")
                conn.rollback()
        finally:
            engine.dispose()


def test_a_read_of_its_own_on_postgresql_ends_with_its_settings() -> None:
    """On the store's own connection, a read's transaction ends right after it: its settings
    (local to that transaction) end with it, and are not put back by a statement of their own."""
    with crm_host("postgresql", Path("unused")) as url:
        store = open_mapped(url, CRM_MAPPING)
        settings_now = sa.text(
            "SELECT current_setting('jit'), current_setting('cursor_tuple_fraction')"
        )
        try:
            assert isinstance(store.bind, sa.Engine)
            with store.bind.connect() as conn:
                before = tuple(conn.execute(settings_now).one())
            put_ada(store)
            statements: list[str] = []

            def seen(*args: Any) -> None:
                statements.append(args[2])

            sa.event.listen(store.bind, "before_cursor_execute", seen)
            due = "record.collected_at <= at - P1D"
            assert list(store.find_rows(due, u(2027, 1, 1), POLICY))
            sa.event.remove(store.bind, "before_cursor_execute", seen)
            assert not [s for s in statements if "set_config('jit', %(jit)s" in s]
            with store.bind.connect() as conn:  # the pool's one connection, used again
                assert tuple(conn.execute(settings_now).one()) == before
        finally:
            store.close()


def test_reads_on_postgresql_keep_the_connections_prepared_statements() -> None:
    """A read on the store's own connection ends without a ROLLBACK (nothing was written),
    so psycopg keeps the statements it prepared: a subject's lookup asked again is not
    planned again, inside ``reading()`` and outside."""
    with crm_host("postgresql", Path("unused")) as url:
        store = open_mapped(url, CRM_MAPPING)
        try:
            put_ada(store)
            for _ in range(6):  # psycopg prepares a statement from its fifth run
                with store.reading():
                    assert [r.id for r in store.subject_records("ada")]
                assert store.subject_events("ada")
            assert isinstance(store.bind, sa.Engine)
            with store.bind.connect() as conn:  # the pool's one connection: the reads' own
                prepared = " ".join(
                    conn.execute(sa.text("SELECT statement FROM pg_prepared_statements")).scalars()
                )
            assert "web_sessions" in prepared and "lettings" in prepared
        finally:
            store.close()
