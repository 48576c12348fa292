"""What the mapped-store tests share: the example CRM host (examples/crm/) made fresh on
SQLite or in a database of its own on a server, and a generic activity-log host for the
contract kit."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from fairproc import Engine, Event, Record, load_policy
from fairproc.loader import shipped_scenarios
from fairproc.mapping import HostMapping, load_mapping, parse_mapping
from fairproc.rights import request
from fairproc.scenarios import run_paths
from fairproc.storage import AuditKeys, ChangeSet, DecidedWrites, Store
from fairproc.sweep import plan_sweep, sweep
from store_support import MYSQL_ENV, POSTGRESQL_ENV, ROOT, server_url

CRM = ROOT / "examples" / "crm"
CRM_MAPPING = CRM / "mapping.toml"
KINDS = ["sqlite", "postgresql", "mysql"]


def crm_module() -> ModuleType:
    """examples/crm/host.py (the schema, the generator), imported once."""
    key = "fairproc_example_crm_host"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, CRM / "host.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


@contextmanager
def server_database(kind: str) -> Iterator[str]:
    """A database of its own on the server ``kind`` names (skips without its URL), dropped
    after: the example host's table names are fixed, so parallel runs each get one."""
    base = server_url(POSTGRESQL_ENV if kind == "postgresql" else MYSQL_ENV)
    name = f"fpmap_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield sa.make_url(base).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                if kind == "postgresql":
                    conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
                else:
                    conn.exec_driver_sql(f"DROP DATABASE {name}")
    finally:
        admin.dispose()


@contextmanager
def crm_host(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty example CRM host of ``kind``."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/crm.db"
        engine = sa.create_engine(url)
        try:
            crm_module().create_schema(engine)
        finally:
            engine.dispose()
        yield url
        return
    with server_database(kind) as url:
        engine = sa.create_engine(url)
        try:
            crm_module().create_schema(engine)
        finally:
            engine.dispose()
        yield url


ACTIVITY_MAPPING = """
[mapping]
timezone = "UTC"

[state]
prefix = "{table}_fp_"

# A generic activity log: its kind column holds source names as they are, its extra column
# (JSON text) whatever no other column keeps as it is, its seq the order rows were added in.
[record.{table}]
source = {{ column = "kind" }}
id = "ref"
subject = "person"
collected_at = "happened_at"
extra = "extra"
order = "seq"

[record.{table}.categories]
name = ["first_name", "last_name"]
email = "email"
phone = "phone"
office_size = "office_size"
ip_address = "ip"
"""


@contextmanager
def activity_host(kind: str, tmp_path: Path) -> Iterator[tuple[str, HostMapping]]:
    """A host with one generic activity-log table (a name of its own), and its mapping."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/activity.db"
    else:
        url = server_url(POSTGRESQL_ENV if kind == "postgresql" else MYSQL_ENV)
    table = f"act{uuid.uuid4().hex[:10]}"
    md = sa.MetaData()
    instant = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    text = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
    sa.Table(
        table,
        md,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(255), nullable=False, unique=True),
        sa.Column("person", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(255), nullable=False),
        sa.Column("happened_at", instant, nullable=False),
        sa.Column("first_name", sa.String(255)),
        sa.Column("last_name", sa.String(255)),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(64)),
        sa.Column("office_size", sa.Integer),
        sa.Column("ip", sa.String(64)),
        sa.Column("extra", text),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    engine = sa.create_engine(url)
    try:
        md.create_all(engine)
        mapping = parse_mapping(ACTIVITY_MAPPING.format(table=table), file="activity.toml")
        try:
            yield url, mapping
        finally:
            md.drop_all(engine)
            with engine.begin() as conn:
                for name in sa.inspect(conn).get_table_names():
                    if name.startswith(f"{table}_fp_"):
                        conn.exec_driver_sql(f"DROP TABLE {name}")
    finally:
        engine.dispose()


# --- CSV folders -----------------------------------------------------------------------------


def crm_csv_host(tmp_path: Path) -> str:
    """The URL of a fresh, empty example CRM host as a folder of CSV files (headers only)."""
    folder = tmp_path / "crm-csv"
    crm_module().create_csv(folder)
    return f"csv://{folder}"


ACTIVITY_CSV_COLUMNS = (
    "ref,person,kind,happened_at,first_name,last_name,email,phone,office_size,ip,extra,notes"
)


def activity_csv_host(tmp_path: Path) -> tuple[Path, HostMapping]:
    """A folder holding one generic activity-log CSV file (with a column the mapping does not
    read), and its mapping: the CSV counterpart of :func:`activity_host`."""
    folder = tmp_path / "activity-csv"
    folder.mkdir()
    (folder / "activity.csv").write_text(ACTIVITY_CSV_COLUMNS + "\r\n", encoding="utf-8")
    # no order column: a file's rows are in the order they were added
    text = ACTIVITY_MAPPING.format(table="activity").replace(
        'order = "seq"\n', 'types = { office_size = "integer" }\n'
    )
    return folder, parse_mapping(text, file="activity.toml")


# --- nothing of another subject changes ------------------------------------------------------

POLICY = load_policy("flexioffices")
CRM_MAP = load_mapping(CRM_MAPPING, POLICY)


def fits(record: Record) -> Record:
    """``record``'s data as the example host's columns keep it: text (not empty), a whole
    number of desks, and only the categories its table has columns for."""
    table = CRM_MAP.table_for_source(record.source)
    assert table is not None
    data = {
        k: (v if k == "office_size" else str(v))
        for k, v in record.data.items()
        if k in table.categories
        and not (k == "office_size" and (not isinstance(v, int) or isinstance(v, bool)))
        and str(v)
    }
    return Record(record.id, record.subject, record.source, record.collected_at, data)


def erasure_spares_the_others(factory: Any, world: Any, which: str) -> None:
    """Load ``world`` (fitted to the example host) through ``factory`` (MappedStores), erase
    ``which`` and sweep: the other subjects' records and events are as they were, but for
    records the sweep deleted (and audited)."""
    at = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
    fitted = SimpleNamespace(
        records=[fits(r) for r in world.records],
        events=list(world.events),
        # (an entry for a blank address is refused by every store: not what is tested here)
        suppression=[e for e in world.suppression if e.email.strip()],
    )
    store = factory(fitted)
    try:
        others = sorted({"ada", "grace", "alan"} - {which})

        def of_others() -> Any:
            recs = sorted(
                (r.id, r.subject, r.collected_at, json.dumps(dict(r.data), sort_keys=True))
                for r in store.iter_records()
                if r.subject != which
            )
            return recs, {s: list(store.subject_events(s)) for s in others}

        before = of_others()
        engine = Engine(POLICY, store)
        request(engine, which, "erasure", at, verified=True)
        sweep(engine, at + dt.timedelta(days=1), apply=True)
        after = of_others()
        # a sweep may delete the others' records that fall due; nothing of theirs changes
        assert set(after[0]) <= set(before[0])
        swept = {a.record for a in store.audit_entries() if a.action != "erase" and a.record}
        gone = {r[0] for r in set(before[0]) - set(after[0])}
        assert gone <= swept
        for s in others:
            kept_before = [e for e in before[1][s] if e.record not in gone]
            assert after[1][s] == kept_before
    finally:
        factory.release(store)


# --- what the SQL and CSV mapped-store tests both do to the example host ---------------------


def u(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def put_ada(store: Store) -> None:
    """An enquiry, a web session (naive London time in the host), a letting (the host's event
    table) and an objection (fairproc's own events) for ``ada``, read back through the store."""
    store.apply(
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
    got = store.get_record("w1")
    assert got is not None and got.collected_at == u(2026, 7, 1, 9)
    assert [e.kind for e in store.subject_events("ada")] == ["office_let", "objected"]
    assert isinstance(store, DecidedWrites) and isinstance(store, AuditKeys)


def follow_up_world() -> ChangeSet:
    return ChangeSet(
        put_records=[
            Record("e1", "ada", "quick_quote", u(2020, 1, 2), {"email": "ada@example.com"}),
            Record("f1", "ada", "search_follow_up", u(2020, 1, 9), {"budget": "£900"}),
            Record("e2", "bob", "contact_form", u(2020, 1, 2), {"email": "bob@example.com"}),
        ]
    )


def snapshot(store: Store, subjects: list[str]) -> Any:
    """What ``store`` holds of ``subjects``, comparable."""
    records = sorted(
        (r.id, r.subject, r.source, r.collected_at, json.dumps(dict(r.data), sort_keys=True))
        for r in store.iter_records()
    )
    events = {
        s: [(e.kind, e.at, e.record, e.purpose) for e in store.subject_events(s)] for s in subjects
    }
    return records, events, list(store.audit_entries())


def erase_ada_calls(store: Store) -> None:
    """Two calls, one each of ada and bob, and ada's erasure: the calls table masks."""
    calls = [
        Record(
            "c1", "ada", "phone_call", u(2026, 1, 2), {"phone": "+44 1", "call_recording": "r1"}
        ),
        Record("c2", "bob", "phone_call", u(2026, 1, 3), {"phone": "+44 1"}),
    ]
    store.apply(ChangeSet(put_records=calls))
    result = request(Engine(POLICY, store), "ada", "erasure", u(2026, 2, 1), verified=True)
    assert result.decision.outcome == "granted"
    assert store.get_record("c1") is None and store.get_record("c2") is not None
    erase = [a for a in store.audit_entries() if a.action == "erase"]
    assert erase and all(a.subject and a.subject.startswith("hmac-sha256:") for a in erase)


Fault = Callable[[pytest.MonkeyPatch], None]
"""Patches a store's write to raise RuntimeError("power cut") part way."""


def a_failed_erasure_changes_nothing(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
    held: Callable[[], object] = lambda: None,
) -> None:
    """Erase ada with ``fault`` in place: what the store holds, and ``held()`` (what the
    caller reads of the host), are as before; without the fault the erasure goes through, and
    bob's record stays."""
    store.apply(follow_up_world())
    store.apply(ChangeSet(add_events=[Event("ada", "office_let", u(2001, 1, 1))]))
    before, kept = snapshot(store, ["ada", "bob"]), held()
    engine = Engine(POLICY, store)
    fault(monkeypatch)
    with pytest.raises(RuntimeError, match="power cut"):
        request(engine, "ada", "erasure", u(2026, 1, 1), verified=True)
    monkeypatch.undo()
    assert held() == kept
    assert snapshot(store, ["ada", "bob"]) == before
    result = request(engine, "ada", "erasure", u(2026, 1, 1), verified=True)
    assert sorted(result.decision.erased) == ["e1", "f1"]
    assert store.get_record("e2") is not None


def a_failed_sweep_changes_nothing(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
    held: Callable[[], object] = lambda: None,
) -> None:
    """A sweep of two due web sessions with ``fault`` in place (as
    :func:`a_failed_erasure_changes_nothing`) changes nothing; without it, both go, audited."""
    store.apply(
        ChangeSet(
            put_records=[
                Record("w1", "ada", "website_visit", u(2020, 1, 2), {"ip_address": "192.0.2.1"}),
                Record("w2", "bob", "website_visit", u(2020, 1, 3), {"ip_address": "192.0.2.2"}),
            ]
        )
    )
    engine = Engine(POLICY, store)
    at = u(2026, 1, 1)
    assert sorted(i.record for i in plan_sweep(engine, at).items) == ["w1", "w2"]
    before, kept = snapshot(store, ["ada", "bob"]), held()
    fault(monkeypatch)
    with pytest.raises(RuntimeError, match="power cut"):
        sweep(engine, at, apply=True)
    monkeypatch.undo()
    assert held() == kept
    assert snapshot(store, ["ada", "bob"]) == before
    sweep(engine, at, apply=True)
    assert list(store.iter_records()) == []
    assert sorted(a.record for a in store.audit_entries() if a.record) == ["w1", "w2"]


def every_shipped_scenario_passes(factory: Any) -> None:
    """flexioffices' shipped scenarios, each world loaded into the example host through
    ``factory`` (a MappedStores on it) and removed after, all pass."""
    folder = shipped_scenarios("flexioffices")
    assert folder is not None
    results = run_paths([folder], factory)
    assert len(results) >= 70
    failing = [(r.file, r.problems, [e for e in r.expectations if not e.passed]) for r in results]
    assert [f for f in failing if f[1] or f[2]] == []
