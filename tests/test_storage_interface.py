"""The storage interface (issue 18): the package's layout, capabilities chosen by isinstance,
one way to make a history, one write path, and adapters found through entry points."""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fairproc import Engine, Event, Record, World, load_policy
from fairproc.storage import (
    AuditEntry,
    AuditKeys,
    BulkHistories,
    ChangeSet,
    DecidedWrites,
    HistoryBatches,
    OwnTables,
    RowQueries,
    Snapshots,
    Store,
    StoreError,
    WriteBatching,
    open_store,
    registry,
    schemes,
)
from store_support import load_example

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = [ROOT / "src" / "fairproc", ROOT / "adapters"]
UTC = dt.UTC
POLICY = load_policy("flexioffices")


def _sources() -> Iterator[tuple[Path, str]]:
    for folder in LIBRARY:
        for path in sorted(folder.rglob("*.py")):
            yield path, path.read_text(encoding="utf-8")


def _calls(source: str, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def test_no_store_is_probed_by_attribute() -> None:
    # Capabilities are Protocols chosen with isinstance: getattr/hasattr on anything called a
    # store (or a store's factory) is the pattern the interface replaced.
    found = []
    for path, source in _sources():
        for call in _calls(source, "getattr") + _calls(source, "hasattr"):
            target = ast.unparse(call.args[0]) if call.args else ""
            if "store" in target.lower():
                found.append(f"{path.relative_to(ROOT)}:{call.lineno}: {ast.unparse(call)}")
    assert found == []


def test_a_history_is_made_in_one_place() -> None:
    makers = [
        f"{path.relative_to(ROOT)}:{call.lineno}"
        for path, source in _sources()
        for call in _calls(source, "SubjectHistory")
    ]
    assert len(makers) == 1 and makers[0].startswith("src/fairproc/storage/history.py:"), makers


def test_the_package_names_its_parts_and_each_says_what_it_must_not_import() -> None:
    folder = ROOT / "src" / "fairproc" / "storage"
    names = sorted(p.stem for p in folder.glob("*.py"))
    assert names == [
        "__init__",
        "codec",
        "fallback",
        "history",
        "interface",
        "pseudonyms",
        "registry",
        "values",
    ]
    for path in folder.glob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc, path.name
        if path.stem != "__init__":
            assert "import" in doc.lower(), f"{path.name} says nothing of what it imports"


def test_the_core_of_storage_loads_no_adapter_and_no_driver() -> None:
    code = textwrap.dedent(
        """
        import sys
        import fairproc.storage.values, fairproc.storage.codec, fairproc.storage.interface
        import fairproc.storage.fallback, fairproc.storage.history, fairproc.storage.pseudonyms
        bad = [m for m in sys.modules if m.startswith(("sqlalchemy", "fairproc.adapters"))]
        print(bad)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_each_store_offers_the_capabilities_it_has(tmp_path: Path) -> None:
    memory = open_store("memory://")
    sqlite = open_store(f"sqlite:///{tmp_path}/caps.db")
    folder = open_store(f"csv://{tmp_path}/caps")
    plain = load_example("dict_store").DictStore()
    try:
        table = {
            name: {
                cap.__name__
                for cap in (
                    RowQueries,
                    BulkHistories,
                    HistoryBatches,
                    Snapshots,
                    DecidedWrites,
                    AuditKeys,
                    WriteBatching,
                    OwnTables,
                )
                if isinstance(store, cap)
            }
            for name, store in [
                ("memory", memory),
                ("sqlite", sqlite),
                ("csv", folder),
                ("dict", plain),
            ]
        }
        for store in (memory, sqlite, folder, plain):
            assert isinstance(store, Store)
    finally:
        sqlite.close()
        folder.close()
    assert table["memory"] == {"BulkHistories", "HistoryBatches", "DecidedWrites", "AuditKeys"}
    assert {"RowQueries", "BulkHistories", "Snapshots", "DecidedWrites", "AuditKeys"} <= table[
        "sqlite"
    ]
    assert "OwnTables" in table["sqlite"] and "HistoryBatches" not in table["sqlite"]
    assert {"BulkHistories", "HistoryBatches", "DecidedWrites", "WriteBatching"} <= table["csv"]
    assert "RowQueries" not in table["csv"]
    assert table["dict"] == set()  # BaseStore adds no capability: the fallback is not pushdown


# --- one write path ---------------------------------------------------------------------------


def _record(rid: str, subject: str = "ada") -> Record:
    when = dt.datetime(2026, 1, 5, 10, tzinfo=UTC)
    return Record(rid, subject, "quick_quote", when, {"email": f"{subject}@example.com"})


def test_engine_apply_writes_to_a_store_and_stamps_the_audit() -> None:
    store = open_store("memory://")
    engine = Engine(POLICY, store)
    at = dt.datetime(2026, 2, 1, tzinfo=UTC)
    written = engine.apply(
        ChangeSet(put_records=[_record("r1")], audit=[AuditEntry(at, "note", subject="ada")])
    )
    assert [r.id for r in store.iter_records()] == ["r1"]
    (entry,) = list(store.audit_entries())
    assert entry.policy_digest == POLICY.digest and entry.policy_version == POLICY.info.version
    assert entry.subject is not None and entry.subject.startswith("hmac-sha256:")  # pseudonym
    assert written.put_records[0].id == "r1"
    assert not engine.apply(ChangeSet())  # nothing to write: nothing written


def test_engine_apply_decides_inside_the_write() -> None:
    store = open_store("memory://")
    store.apply(ChangeSet(put_records=[_record("r1"), _record("r2", "bob")]))
    engine = Engine(POLICY, store)
    seen: list[list[str]] = []

    def decide(view: object) -> ChangeSet:
        assert isinstance(view, Store)
        held = [r.id for r in view.iter_records()]
        seen.append(held)
        return ChangeSet(delete_records=[rid for rid in held if rid == "r2"])

    assert engine.apply(decide).delete_records == ("r2",)
    assert seen == [["r1", "r2"]]
    assert [r.id for r in store.iter_records()] == ["r1"]


def test_engine_apply_replaces_an_immutable_world() -> None:
    engine = Engine(POLICY, World([_record("r1")]))
    before = engine.store
    engine.apply(
        ChangeSet(add_events=[Event("ada", "unsubscribed", dt.datetime(2026, 2, 1, tzinfo=UTC))])
    )
    assert engine.store is not before and isinstance(engine.store, World)
    assert [e.kind for e in engine.store.subject_events("ada")] == ["unsubscribed"]


# --- the registry -----------------------------------------------------------------------------


def test_the_shipped_adapters_register_through_entry_points() -> None:
    assert {"memory", "sqlite", "postgresql", "mysql", "mariadb", "csv"} <= set(schemes())


def test_a_third_party_adapter_registers_a_scheme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed distribution is a *.dist-info folder on sys.path: this one registers the
    # docs' example store under "dict", as a third party's pyproject.toml would.
    example = (ROOT / "docs" / "examples" / "dict_store.py").read_text(encoding="utf-8")
    (tmp_path / "fairproc_dict_example.py").write_text(example, encoding="utf-8")
    info = tmp_path / "fairproc_dict_example-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fairproc-dict-example\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[fairproc.stores]\ndict = fairproc_dict_example:open_url\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._adapters.cache_clear()
    try:
        assert "dict" in schemes()
        store = open_store("dict://")
        assert type(store).__name__ == "DictStore" and isinstance(store, Store)
        engine = Engine(POLICY, store)
        engine.apply(ChangeSet(put_records=[_record("r1")]))
        assert engine.route("r1", dt.datetime(2026, 1, 5, 10, tzinfo=UTC)).outcome
    finally:
        registry._adapters.cache_clear()


def test_a_broken_adapter_is_named_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "fairproc_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fairproc-broken\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[fairproc.stores]\nbroken = no_such_module_here:open_url\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._adapters.cache_clear()
    try:
        with pytest.raises(StoreError, match=r"'broken'.*cannot be loaded"):
            open_store("broken://x")
    finally:
        registry._adapters.cache_clear()


def test_an_unknown_scheme_names_the_nearest_one() -> None:
    with pytest.raises(StoreError, match="did you mean 'sqlite'"):
        open_store("sqlit:///x.db")
