"""What the storage tests share: the server URLs (from the environment), unique table
prefixes, and a way to import the worked example of docs/adapters.md."""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from fairproc.storage import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
POSTGRESQL_ENV = "FAIRPROC_TEST_POSTGRESQL_URL"
MYSQL_ENV = "FAIRPROC_TEST_MYSQL_URL"


def server_url(env: str) -> str:
    """The URL in ``env``, or skip the test saying which variable to set."""
    url = os.environ.get(env, "").strip()
    if not url:
        pytest.skip(f"{env} is not set: no database server to test against")
    return url


def unique_prefix() -> str:
    """A table prefix no other test (or parallel run) uses."""
    return f"t{uuid.uuid4().hex[:12]}_"


def load_example(name: str) -> ModuleType:
    """The module docs/examples/<name>.py (imported once, as ``docs_example_<name>``)."""
    key = f"docs_example_{name}"
    if key in sys.modules:
        return sys.modules[key]
    path = ROOT / "docs" / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(key, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


STORE_KINDS = ["memory", "sqlite", "csv", "postgresql", "mysql"]


@contextmanager
def opened_store(kind: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of ``kind`` (servers skip without their URL), dropped after."""
    if kind in ("postgresql", "mysql"):
        url = server_url(POSTGRESQL_ENV if kind == "postgresql" else MYSQL_ENV)
        store = open_store(f"{url}?prefix={unique_prefix()}")
    else:
        store = open_store(
            {
                "memory": "memory://",
                "sqlite": f"sqlite:///{tmp_path}/{kind}.db",
                "csv": f"csv://{tmp_path}/{kind}-csv",
            }[kind]
        )
    try:
        yield store
    finally:
        drop = getattr(store, "drop_tables", None)
        if callable(drop):
            drop()
        store.close()
