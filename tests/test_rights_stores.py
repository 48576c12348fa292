"""Rights carried out on every store: the same outcomes as in memory, and an erasure that fails
part way leaves the store exactly as it was."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fairproc import Engine, Policy
from fairproc.rights import request
from fairproc.storage import ChangeSet, Store
from helpers import WorldBuilder, london, utc
from store_support import STORE_KINDS, opened_store

RECEIVED = utc(2026, 11, 25, 10)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with opened_store(request.param, tmp_path) as opened:
        yield opened


def _world(flexi: Policy) -> WorldBuilder:
    w = WorldBuilder(flexi)
    w.record("quick_quote", london(2026, 1, 10, 10), id="q1", other_people="Bob: 07700")
    w.record("handbook_download", london(2026, 2, 10, 10), id="h1")
    w.record("website_visit", london(2026, 11, 1, 10), id="w1")
    w.record(
        "quick_quote",
        london(2026, 1, 1),
        id="b1",
        subject="bob",
        data={"name": "Bob Builder", "email": "bob@example.com"},
    )
    w.event("enquiry_resolved", london(2026, 2, 1), record="q1")
    w.event("cookies_accepted", london(2026, 11, 1, 10))
    w.event("office_let", london(2025, 3, 1), subject="bob")
    return w


def _engine(flexi: Policy, store: Store) -> Engine:
    w = _world(flexi)
    store.apply(ChangeSet(put_records=w.records, add_events=w.events))
    return Engine(flexi, store)


def _snapshot(store: Store) -> Any:
    records = sorted(
        (r.id, r.subject, r.source, json.dumps(dict(r.data), sort_keys=True))
        for r in store.iter_records()
    )
    events = [
        (e.subject, e.kind, e.at, e.record, e.purpose)
        for s in ("ada", "bob")
        for e in store.subject_events(s)
    ]
    suppression = [
        (e.email, e.at, e.reason)
        for e in store.suppression_entries(["ada@example.com", "bob@example.com"])
    ]
    audit = [(a.action, a.record, a.rule) for a in store.audit_entries()]
    return records, events, suppression, audit


@pytest.mark.parametrize(
    ("subject", "right", "kwargs", "outcome"),
    [
        ("ada", "access", {}, "granted"),
        ("ada", "portability", {}, "granted"),
        ("ada", "restriction", {}, "granted"),
        ("ada", "objection", {"purposes": ["marketing_updates"]}, "granted"),
        ("ada", "objection", {"purposes": ["provider_introduction"]}, "refused"),
        ("ada", "rectification", {"corrections": {"q1": {"name": "Ada King"}}}, "granted"),
        ("ada", "complaint", {}, "granted"),
        ("ada", "erasure", {}, "granted"),
        ("bob", "erasure", {}, "refused"),  # the letting keeps bob's record
        ("ada", "erasure", {"verified": False}, "refused"),
    ],
)
def test_every_right_decides_the_same_on_every_store(
    flexi: Policy, store: Store, subject: str, right: str, kwargs: dict[str, Any], outcome: str
) -> None:
    engine = _engine(flexi, store)
    memory = _world(flexi).engine()
    kwargs = {"verified": True, **kwargs}
    ours = request(engine, subject, right, RECEIVED, **kwargs)
    reference = request(memory, subject, right, RECEIVED, **kwargs)
    assert ours.decision.outcome == reference.decision.outcome == outcome
    assert ours.decision.per_record == reference.decision.per_record
    assert ours.export == reference.export
    later = RECEIVED + dt.timedelta(seconds=1)
    for who in ("ada", "bob"):
        assert engine.may_email(who, later).outcome == memory.may_email(who, later).outcome


def test_erasure_leaves_no_value_and_keeps_the_suppression_entry(
    flexi: Policy, store: Store
) -> None:
    engine = _engine(flexi, store)
    # the subject's own values (numbers such as an office size of 6 are too short to look for)
    values = [
        v
        for r in store.subject_records("ada")
        for v in r.data.values()
        if isinstance(v, str) and len(v) >= 5
    ]
    assert values
    result = request(engine, "ada", "erasure", RECEIVED, verified=True)
    assert result.decision.outcome == "granted"
    everything = repr(_snapshot(store)[:2]) + repr(list(store.audit_entries()))
    for value in values:
        assert value not in everything
    assert [e.email for e in store.suppression_entries(["ada@example.com"])] == ["ada@example.com"]
    assert engine.may_email("ada", RECEIVED + dt.timedelta(seconds=1)).outcome == "denied"


def test_an_erasure_that_fails_part_way_changes_nothing(
    flexi: Policy, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(flexi, store)
    before = _snapshot(store)

    def power_cut(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("power cut")

    # Every adapter appends events, suppression and audit entries after it has deleted the
    # records: failing there fails the erasure part way through its change set.
    monkeypatch.setattr(type(store), "_append", power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        request(engine, "ada", "erasure", RECEIVED, verified=True)
    monkeypatch.undo()
    assert _snapshot(store) == before
    # and the same request then succeeds
    assert request(engine, "ada", "erasure", RECEIVED, verified=True).decision.erased
