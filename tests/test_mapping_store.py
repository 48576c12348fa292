"""The store over a mapping, on SQLite, PostgreSQL and MariaDB: the contract kit (over a
generic activity-log host), every shipped scenario with its world in the example CRM host's
own tables, erasure and sweeps that follow the foreign keys, mask as the mapping says, write
their audit in the same transaction, change nothing when they fail part way, and touch
nothing of another subject."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fairproc.adapters.mapped_sql import MappedSqlStore, MappedStores, open_mapped
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairproc import Engine, Event, Record, load_policy
from fairproc.errors import InputError
from fairproc.loader import shipped_scenarios
from fairproc.mapping import load_mapping, parse_mapping
from fairproc.rights import request
from fairproc.scenarios import run_paths
from fairproc.storage import AuditKeys, ChangeSet, DecidedWrites, Store, StoreError
from fairproc.sweep import plan_sweep, sweep
from fairproc.testing import strategies as fst
from fairproc.testing.contract import StoreContract
from mapping_support import (
    CRM_MAP,
    CRM_MAPPING,
    KINDS,
    activity_host,
    crm_host,
    erasure_spares_the_others,
)

POLICY = load_policy("flexioffices")
UTC = dt.UTC


def u(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


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
    factory = MappedStores(crm_url, CRM_MAPPING)
    results = run_paths([shipped_scenarios("flexioffices")], factory)
    assert len(results) >= 70
    failing = [(r.file, r.problems, [e for e in r.expectations if not e.passed]) for r in results]
    assert [f for f in failing if f[1] or f[2]] == []


def test_the_records_live_in_the_hosts_tables(crm: MappedSqlStore) -> None:
    crm.apply(
        ChangeSet(
            put_records=[
                Record(
                    "q1",
                    "ada",
                    "live_chat",
                    u(2026, 1, 2, 10),
                    {"name": "Ada Lovelace", "email": "ada@example.com", "office_size": 6},
                ),
                Record("w1", "ada", "website_visit", u(2026, 7, 1, 9), {"ip_address": "::1"}),
            ],
            add_events=[
                Event("ada", "office_let", u(2026, 2, 1)),
                Event("ada", "objected", u(2026, 3, 1), purpose="analytics"),
            ],
        )
    )
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
    got = crm.get_record("w1")
    assert got is not None and got.collected_at == u(2026, 7, 1, 9)
    assert [e.kind for e in crm.subject_events("ada")] == ["office_let", "objected"]
    assert isinstance(crm, DecidedWrites) and isinstance(crm, AuditKeys)


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


def _follow_up_world() -> ChangeSet:
    return ChangeSet(
        put_records=[
            Record("e1", "ada", "quick_quote", u(2020, 1, 2), {"email": "ada@example.com"}),
            Record("f1", "ada", "search_follow_up", u(2020, 1, 9), {"budget": "£900"}),
            Record("e2", "bob", "contact_form", u(2020, 1, 2), {"email": "bob@example.com"}),
        ]
    )


def _point(store: MappedSqlStore, follow_up: str, enquiry: str) -> None:
    # The host links a follow-up to its enquiry; the mapping does not read the link.
    with store.bind.connect() as conn:  # type: ignore[union-attr]
        conn.execute(
            sa.text("UPDATE search_follow_ups SET enquiry_ref = :e WHERE follow_up_ref = :f"),
            {"e": enquiry, "f": follow_up},
        )
        conn.commit()


def test_deletes_go_children_first_or_are_refused_naming_the_key(crm: MappedSqlStore) -> None:
    crm.apply(_follow_up_world())
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
    calls = [
        Record(
            "c1", "ada", "phone_call", u(2026, 1, 2), {"phone": "+44 1", "call_recording": "r1"}
        ),
        Record("c2", "bob", "phone_call", u(2026, 1, 3), {"phone": "+44 1"}),
    ]
    crm.apply(ChangeSet(put_records=calls))
    engine = Engine(POLICY, crm)
    result = request(engine, "ada", "erasure", u(2026, 2, 1), verified=True)
    assert result.decision.outcome == "granted"
    assert crm.get_record("c1") is None and crm.get_record("c2") is not None
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
    erase = [a for a in crm.audit_entries() if a.action == "erase"]
    assert erase and all(a.subject and a.subject.startswith("hmac-sha256:") for a in erase)


def _snapshot(store: Store, subjects: list[str]) -> Any:
    records = sorted(
        (r.id, r.subject, r.source, r.collected_at, json.dumps(dict(r.data), sort_keys=True))
        for r in store.iter_records()
    )
    events = {
        s: [(e.kind, e.at, e.record, e.purpose) for e in store.subject_events(s)] for s in subjects
    }
    return records, events, list(store.audit_entries())


def test_an_erasure_that_fails_part_way_changes_nothing(
    crm: MappedSqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm.apply(_follow_up_world())
    crm.apply(ChangeSet(add_events=[Event("ada", "office_let", u(2001, 1, 1))]))
    before = _snapshot(crm, ["ada", "bob"])

    def power_cut(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("power cut")

    # fairproc's own rows (events, suppression, audit) are appended after the host's rows
    # are deleted: failing there fails the erasure part way through.
    monkeypatch.setattr(MappedSqlStore, "_append", power_cut)
    engine = Engine(POLICY, crm)
    with pytest.raises(RuntimeError, match="power cut"):
        request(engine, "ada", "erasure", u(2026, 1, 1), verified=True)
    monkeypatch.undo()
    assert _snapshot(crm, ["ada", "bob"]) == before
    result = request(engine, "ada", "erasure", u(2026, 1, 1), verified=True)
    assert sorted(result.decision.erased) == ["e1", "f1"]
    assert crm.get_record("e2") is not None


def test_a_sweep_that_fails_part_way_changes_nothing(
    crm: MappedSqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm.apply(
        ChangeSet(
            put_records=[
                Record("w1", "ada", "website_visit", u(2020, 1, 2), {"ip_address": "192.0.2.1"}),
                Record("w2", "bob", "website_visit", u(2020, 1, 3), {"ip_address": "192.0.2.2"}),
            ]
        )
    )
    engine = Engine(POLICY, crm)
    at = u(2026, 1, 1)
    assert sorted(i.record for i in plan_sweep(engine, at).items) == ["w1", "w2"]
    before = _snapshot(crm, ["ada", "bob"])
    monkeypatch.setattr(MappedSqlStore, "_append", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        sweep(engine, at, apply=True)
    monkeypatch.undo()
    assert _snapshot(crm, ["ada", "bob"]) == before
    sweep(engine, at, apply=True)
    assert list(crm.iter_records()) == []
    assert sorted(a.record for a in crm.audit_entries() if a.record) == ["w1", "w2"]


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
