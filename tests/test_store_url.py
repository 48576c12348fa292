"""open_store: one URL names a store; the core imports an adapter only when a URL asks for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fairproc.adapters.csv import CsvStore
from fairproc.adapters.memory import MemoryStore
from fairproc.adapters.sql import SqlStore

import fairproc
from fairproc.storage import Store, StoreError, hide_password, open_store


def test_memory_is_the_default() -> None:
    store = fairproc.open_store()
    assert isinstance(store, MemoryStore) and isinstance(store, Store)
    assert isinstance(open_store("memory://"), MemoryStore)
    assert isinstance(open_store("MEMORY://"), MemoryStore)
    with pytest.raises(StoreError, match="takes no path"):
        open_store("memory://somewhere")


def test_each_scheme_opens_its_adapter(tmp_path: Path) -> None:
    sqlite = open_store(f"sqlite:///{tmp_path}/a.db")
    assert isinstance(sqlite, SqlStore) and sqlite.backend == "sqlite"
    sqlite.close()
    assert isinstance(open_store(f"csv://{tmp_path}/folder"), CsvStore)


def test_passwords_are_hidden() -> None:
    assert hide_password("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert hide_password("postgresql://u@h/db") == "postgresql://u@h/db"
    assert hide_password("sqlite:///x.db") == "sqlite:///x.db"


def test_the_core_imports_no_adapter_and_no_driver() -> None:
    code = (
        "import sys, fairproc\n"
        "fairproc.open_store('memory://')\n"
        "loaded = [m for m in ('sqlalchemy', 'fairproc.adapters.sql', 'fairproc.adapters.csv')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sqlalchemy_is_a_core_dependency() -> None:
    """SQLite is the embedded default store: ``pip install fairproc`` is enough for it."""
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    core = [d.replace(" ", "").lower() for d in project["dependencies"]]
    assert any(d.startswith("sqlalchemy>=2") and ";" not in d for d in core), core
