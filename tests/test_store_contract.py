"""Every shipped store, and the worked example of docs/adapters.md, passes the contract kit;
and one world gives the same decisions through every store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fairproc.adapters import csv as csv_adapter
from fairproc.adapters.csv import CsvStore
from fairproc.adapters.memory import MemoryStore
from fairproc.adapters.sql import SqlStore

from fairproc import Engine
from fairproc.storage import ChangeSet, Store, open_store
from fairproc.testing.contract import (
    TIMES,
    StoreContract,
    decisions,
    reference_policy,
    reference_world,
)
from store_support import (
    MYSQL_ENV,
    POSTGRESQL_ENV,
    load_example,
    server_url,
    unique_prefix,
)


def crash_when_prepared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next write of a CSV store (native or mapped) fail once every new file is
    written and none is yet in place."""

    def fail(stage: str) -> None:
        if stage == "prepared":
            raise RuntimeError("injected fault")

    monkeypatch.setattr(csv_adapter, "crash_point", fail)


class TestMemoryStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return open_store("memory://")

    def break_next_write(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> bool:
        original = MemoryStore._append
        calls = []

        def failing(self: MemoryStore, *args: Any) -> None:
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("injected fault")
            original(self, *args)

        monkeypatch.setattr(MemoryStore, "_append", failing)
        return True


def _break_sql(monkeypatch: pytest.MonkeyPatch) -> bool:
    """Fail after the records are written and the events appended, inside the transaction."""
    original = SqlStore._append
    calls = []

    def failing(self: SqlStore, conn: Any, table: Any, rows: Any) -> None:
        original(self, conn, table, rows)
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("injected fault")

    monkeypatch.setattr(SqlStore, "_append", failing)
    return True


class TestSqliteFileStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return open_store(f"sqlite:///{tmp_path}/store.db")

    def reopen(self, store: Store, tmp_path: Path) -> Store | None:
        return open_store(f"sqlite:///{tmp_path}/store.db")

    def break_next_write(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> bool:
        return _break_sql(monkeypatch)


class TestSqliteMemoryStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return open_store("sqlite://")

    def break_next_write(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> bool:
        return _break_sql(monkeypatch)


class TestCsvStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return open_store(f"csv://{tmp_path}/folder")

    def reopen(self, store: Store, tmp_path: Path) -> Store | None:
        return CsvStore(tmp_path / "folder")

    def break_next_write(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> bool:
        crash_when_prepared(monkeypatch)
        return True


class _ServerStore(StoreContract):
    env = ""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        made = SqlStore(server_url(self.env), prefix=unique_prefix())
        try:
            yield made
        finally:
            made.drop_tables()
            made.close()

    def reopen(self, store: Store, tmp_path: Path) -> Store | None:
        assert isinstance(store, SqlStore)
        return SqlStore(store.url, prefix=store.prefix)

    def break_next_write(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> bool:
        return _break_sql(monkeypatch)


class TestPostgresqlStore(_ServerStore):
    env = POSTGRESQL_ENV


class TestMysqlStore(_ServerStore):
    env = MYSQL_ENV


class TestDocsExampleDictStore(StoreContract):
    """The worked example in docs/adapters.md."""

    def make_store(self, tmp_path: Path) -> Store:
        store: Store = load_example("dict_store").DictStore()
        return store

    def break_next_write(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> bool:
        module = sys.modules[type(store).__module__]
        real = module.normalised

        def events_fail_midway(changes: ChangeSet) -> ChangeSet:
            out = real(changes)

            def events() -> Iterator[Any]:
                yield from out.add_events[:1]
                raise RuntimeError("injected fault")

            object.__setattr__(out, "add_events", events())  # after the records are built
            return out

        monkeypatch.setattr(module, "normalised", events_fail_midway)
        return True


def test_docs_example_is_short_and_is_the_one_on_the_page() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs"
    example = (docs / "examples" / "dict_store.py").read_text(encoding="utf-8")
    assert len(example.splitlines()) < 100
    assert f"```python\n{example}```" in (docs / "adapters.md").read_text(encoding="utf-8")


def _all_stores(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    yield "memory", open_store("memory://")
    yield "sqlite", open_store(f"sqlite:///{tmp_path}/all.db")
    yield "csv", open_store(f"csv://{tmp_path}/all-csv")
    yield "dict example", load_example("dict_store").DictStore()
    import os

    for env in (POSTGRESQL_ENV, MYSQL_ENV):
        url = os.environ.get(env)
        if url:
            yield env, SqlStore(url, prefix=unique_prefix())


def test_one_world_gives_the_same_decisions_through_every_store(tmp_path: Path) -> None:
    policy = reference_policy()
    ref = reference_world()
    subjects = sorted({r.subject for r in ref.records})
    want = decisions(Engine(policy, ref.world()), ref.records, subjects, TIMES)
    assert len(want) > 1000
    seen = []
    for name, store in _all_stores(tmp_path):
        try:
            store.apply(ref.changes())
            got = decisions(Engine(policy, store), ref.records, subjects, TIMES)
            assert got == want, name
            seen.append(name)
        finally:
            if isinstance(store, SqlStore) and store.backend != "sqlite":
                store.drop_tables()
            store.close()
    assert {"memory", "sqlite", "csv"} <= set(seen)
