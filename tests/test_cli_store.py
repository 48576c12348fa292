"""The CLI commands that work on a store: sweep and request."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fairproc import Record
from fairproc.cli import main
from fairproc.storage import ChangeSet, StoreError, open_store

UTC = dt.UTC


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    store = open_store(url)
    store.apply(
        ChangeSet(
            put_records=[
                Record(
                    "w1",
                    "ada",
                    "website_visit",
                    dt.datetime(2024, 1, 1, tzinfo=UTC),
                    {"ip_address": "203.0.113.7"},
                ),
                Record(
                    "q1",
                    "ada",
                    "quick_quote",
                    dt.datetime(2024, 1, 1, tzinfo=UTC),
                    {"name": "Ada", "email": "Ada@Example.com", "other_people": "Bob, 07700"},
                ),
            ]
        )
    )
    store.close()
    return url


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_sweep_is_a_dry_run_until_applied(store_url: str) -> None:
    code, out, _ = run("sweep", "--store", store_url, "--at", "2026-01-01T00:00:00Z")
    assert code == 0 and "1 due" in out and "(dry run)" in out and "retention.cookies" in out
    code, out, _ = run(
        "sweep", "--store", store_url, "--at", "2026-01-01T00:00:00Z", "--apply", "--format", "json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["applied"] == 1 and report["per_rule"] == {"retention.cookies": 1}
    store = open_store(store_url)
    assert [r.id for r in store.iter_records()] == ["q1"]
    assert [(a.action, a.record, a.rule) for a in store.audit_entries()] == [
        ("delete", "w1", "retention.cookies")
    ]
    store.close()


@pytest.mark.parametrize(
    "args",
    [
        ["--at", "2026-01-01T00:00:00"],  # naive
        ["--at", "tomorrow"],
    ],
)
def test_sweep_refuses_bad_instants(store_url: str, args: list[str]) -> None:
    code, _, err = run("sweep", "--store", store_url, *args)
    assert code == 2 and "--at" in err


def test_sweep_names_a_bad_store() -> None:
    code, _, err = run("sweep", "--store", "nosuch://x", "--at", "2026-01-01T00:00:00Z")
    assert code == 2 and "unknown store URL scheme" in err


def test_request_access_writes_the_copy(store_url: str, tmp_path: Path) -> None:
    out_dir = tmp_path / "exports"
    code, out, _ = run(
        "request",
        "ada",
        "access",
        "--store",
        store_url,
        "--at",
        "2026-01-05T10:00:00Z",
        "--verified",
        "--out",
        str(out_dir),
    )
    assert code == 0 and "GRANTED" in out and "redacted other_people" in out
    copy = json.loads((out_dir / "ada-access.json").read_text(encoding="utf-8"))
    assert {r["id"] for r in copy["records"]} == {"w1", "q1"}
    assert "Bob, 07700" not in json.dumps(copy)
    assert "# Your personal data" in (out_dir / "ada-access.md").read_text(encoding="utf-8")


def test_request_unverified_is_refused_and_changes_nothing(store_url: str) -> None:
    code, out, _ = run(
        "request",
        "ada",
        "erasure",
        "--store",
        store_url,
        "--at",
        "2026-01-05T10:00:00Z",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out)["outcome"] == "refused"
    store = open_store(store_url)
    assert len(list(store.iter_records())) == 2
    store.close()


def test_request_erasure_and_rectification(store_url: str) -> None:
    code, out, _ = run(
        "request",
        "ada",
        "rectification",
        "--store",
        store_url,
        "--at",
        "2026-01-05T10:00:00Z",
        "--verified",
        "--correct",
        "q1.name=Ada King",
    )
    assert code == 0 and "GRANTED" in out
    store = open_store(store_url)
    record = store.get_record("q1")
    assert record is not None and record.data["name"] == "Ada King"
    store.close()
    code, out, _ = run(
        "request",
        "ada",
        "erasure",
        "--store",
        store_url,
        "--at",
        "2026-01-05T10:00:00Z",
        "--verified",
        "--format",
        "json",
    )
    assert json.loads(out)["outcome"] == "granted"
    store = open_store(store_url)
    assert list(store.iter_records()) == []
    assert [e.email for e in store.suppression_entries(["ada@example.com"])] == ["ada@example.com"]
    store.close()


def test_request_bad_correction_and_unknown_right(store_url: str) -> None:
    code, _, err = run(
        "request",
        "ada",
        "rectification",
        "--store",
        store_url,
        "--at",
        "2026-01-05T10:00:00Z",
        "--verified",
        "--correct",
        "name=x",
    )
    assert code == 2 and "RECORD.CATEGORY=VALUE" in err
    code, _, err = run(
        "request",
        "ada",
        "forget",
        "--store",
        store_url,
        "--at",
        "2026-01-05T10:00:00Z",
        "--verified",
    )
    assert code == 2 and "unknown right 'forget'" in err


# --- a store that is not there is said to be missing, never created (issue 16, item 4) -------

AT = "2026-01-05T10:00:00Z"


@pytest.mark.parametrize(
    "command",
    [
        ["sweep", "--at", AT],
        ["sweep", "--at", AT, "--apply"],
        ["request", "ada", "access", "--at", AT, "--verified"],
        ["request", "ada", "erasure", "--at", AT, "--verified"],
    ],
    ids=["sweep", "sweep-apply", "request-access", "request-erasure"],
)
def test_a_missing_sqlite_file_is_named_and_not_created(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "crm.db"
    code, out, err = run(*command, "--store", f"sqlite:///{missing}")
    assert code == 2, out
    assert "no such database file" in err and str(missing) in err
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_missing_csv_folder_is_named_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "crm"
    code, _, err = run("sweep", "--store", f"csv://{missing}", "--at", AT)
    assert code == 2 and "no such folder" in err
    assert not missing.exists()


def test_a_database_without_fairproc_tables_is_not_given_them(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    sqlite3.connect(path).close()  # an existing, empty database of someone else's
    code, _, err = run("sweep", "--store", f"sqlite:///{path}", "--at", AT)
    assert code == 2 and "holds no fairproc tables" in err
    with sqlite3.connect(path) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master").fetchall()
    conn.close()
    assert tables == []


def test_open_store_creates_by_default_and_reads_only_when_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    with pytest.raises(StoreError, match="no such database file"):
        open_store(url, create=False)
    open_store(url).close()  # a store is created where asked for
    open_store(url, create=False).close()  # and then opens as an existing one
