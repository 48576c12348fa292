"""The audit log names subjects by a keyed hash, so an email address used as a subject id
does not survive its erasure; a lookup by id still answers (issue 17, finding 8)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from fairproc import Engine, Policy, Record
from fairproc.rights import request
from fairproc.storage import PSEUDONYM, Store, open_store, subject_audit
from store_support import STORE_KINDS, opened_store

UTC = dt.UTC
AT = dt.datetime(2026, 1, 5, 10, tzinfo=UTC)
EMAIL = "ada.lovelace@example.com"


def _erase(store: Store, flexi: Policy) -> None:
    store.put_records(  # type: ignore[attr-defined]
        Record("q1", EMAIL, "quick_quote", dt.datetime(2025, 1, 1, tzinfo=UTC), {"email": EMAIL})
    )
    engine = Engine(flexi, store)
    assert request(engine, EMAIL, "erasure", AT, verified=True).decision.outcome == "granted"


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_an_erased_subjects_id_is_not_in_the_audit_log(
    kind: str, tmp_path: Path, flexi: Policy
) -> None:
    with opened_store(kind, tmp_path) as store:
        _erase(store, flexi)
        entries = list(store.audit_entries())
        assert entries and all(e.subject and e.subject.startswith(PSEUDONYM) for e in entries)
        assert EMAIL not in repr(entries) and "ada.lovelace" not in repr(entries)
        # Given the id, the lookup answers: erased, when, under which rule, which record.
        erased = [
            (a.at, a.rule, a.record) for a in subject_audit(store, EMAIL) if a.action == "erase"
        ]
        assert erased == [(AT, "right.erasure", "q1")]
        assert subject_audit(store, "someone.else@example.com") == []


def test_the_key_stays_with_the_store_and_differs_between_stores(
    tmp_path: Path, flexi: Policy
) -> None:
    stores: list[Store] = []

    def opened(url: str) -> Store:
        stores.append(open_store(url))
        return stores[-1]

    try:
        first = opened(f"csv://{tmp_path}/one")
        _erase(first, flexi)
        key = tmp_path / "one" / ".fairproc-audit-key"
        assert os.stat(key).st_mode & 0o077 == 0  # the key is private
        assert EMAIL.encode() not in (tmp_path / "one" / "audit.csv").read_bytes()
        reopened = opened(f"csv://{tmp_path}/one")
        assert [a.action for a in subject_audit(reopened, EMAIL)] == ["erase"]
        second = opened(f"sqlite:///{tmp_path}/two.db")
        _erase(second, flexi)
        assert {a.subject for a in first.audit_entries()}.isdisjoint(
            a.subject for a in second.audit_entries()
        )
        again = opened(f"sqlite:///{tmp_path}/two.db")
        assert [a.action for a in subject_audit(again, EMAIL)] == ["erase"]
    finally:
        for store in stores:  # an unclosed SQLite connection is a ResourceWarning on 3.13
            store.close()
