"""Questions of the whole store (fairproc.whole_store): ``processable`` and ``may_email_all``
give what asking ``may_process`` of every record, and ``may_email`` of every subject, gives:
in memory (the condition evaluated in Python) and on SQLite (pushed down to SQL)."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fairproc.adapters.memory import MemoryStore
from fairproc.adapters.sql import SqlStore
from hypothesis import given, settings
from hypothesis import strategies as st

from fairproc import Engine, Event, InputError, Policy, Record, World, load_policy
from fairproc.storage import ChangeSet, records_condition
from fairproc.testing import strategies as fst
from fairproc.whole_store import processable_node

POLICY: Policy = load_policy("flexioffices")
UTC = dt.UTC
PURPOSES = sorted(POLICY.purposes)

CASES = fst.worlds(POLICY).flatmap(
    lambda w: st.tuples(
        st.just(w),
        st.lists(fst.instants_for(POLICY, w), min_size=1, max_size=3),
        st.sampled_from(PURPOSES),
    )
)


def expected(world: World, purpose: str, at: dt.datetime) -> tuple[set[str], set[str]]:
    """(records allowed for ``purpose``, the marketing list), one question at a time."""
    engine = Engine(POLICY, world)
    allowed = {r.id for r in world.records if engine.may_process(r, purpose, at).allowed}
    addresses: set[str] = set()
    for subject in world.subjects:
        addresses.update(engine.may_email(subject, at).addresses or ())
    return allowed, addresses


def asked(engine: Engine, purpose: str, at: dt.datetime) -> tuple[set[str], set[str]]:
    allowed = [row.record.id for row in engine.processable(purpose, at)]
    marketing = [row.address for row in engine.may_email_all(at)]
    assert len(set(allowed)) == len(allowed)
    assert len(set(marketing)) == len(marketing), "each address once"
    return set(allowed), set(marketing)


def storable(world: Any) -> Any:
    """The world as a store can hold it: a store refuses a blank suppression entry."""
    entries = [e for e in world.suppression if e.email.strip()]
    return fst.GeneratedWorld(world.records, world.events, entries)


def loaded(store: Any, world: Any) -> Any:
    store.apply(
        ChangeSet(
            put_records=world.records, add_events=world.events, add_suppression=world.suppression
        )
    )
    return store


@settings(max_examples=120, deadline=None)
@given(CASES)
def test_in_memory_the_whole_store_answers_as_each_question_does(case: Any) -> None:
    world, instants, purpose = case
    kept = storable(world)
    for at in instants:
        assert asked(Engine(POLICY, world), purpose, at) == expected(world, purpose, at), at
        want = expected(kept, purpose, at)
        assert asked(Engine(POLICY, loaded(MemoryStore(), kept)), purpose, at) == want, at


@settings(max_examples=40, deadline=None)
@given(CASES)
def test_on_sqlite_the_whole_store_answers_as_each_question_does(case: Any) -> None:
    world, instants, purpose = case
    world = storable(world)
    with tempfile.TemporaryDirectory() as folder:
        store = loaded(SqlStore(f"sqlite:///{Path(folder) / 'w.db'}"), world)
        try:
            for at in instants:
                assert asked(Engine(POLICY, store), purpose, at) == expected(world, purpose, at)
        finally:
            store.close()


def test_an_erased_record_is_left_out_and_sqlite_selects_exactly(tmp_path: Path) -> None:
    at = dt.datetime(2026, 11, 25, 12, tzinfo=UTC)
    collected = dt.datetime(2026, 11, 20, 10, tzinfo=UTC)
    records = [
        Record("h1", "ada", "handbook_download", collected, {"email": "Ada@example.com "}),
        Record("h2", "bob", "handbook_download", collected, {"email": "bob@example.com"}),
        Record("h3", "cy", "handbook_download", collected, {"email": "ada@example.com"}),
    ]
    events = [Event("bob", "erased", collected + dt.timedelta(days=1), record="h2")]
    store = loaded(SqlStore(f"sqlite:///{tmp_path / 'w.db'}"), World(records, events))
    try:
        engine = Engine(POLICY, store)
        rows = list(engine.may_email_all(at))
        assert [(r.address, r.subject, r.record) for r in rows] == [
            ("ada@example.com", "ada", "h1")
        ]
        allowed = list(engine.processable("marketing_updates", at))
        assert [a.record.id for a in allowed] == ["h1", "h3"]
        assert allowed[0].decision.allowed and "processing.li_window" in allowed[0].decision.rules
        condition = records_condition(processable_node(POLICY, "marketing_updates"), POLICY)
        _, exact = store.explain(condition, at, POLICY)
        assert exact, "the marketing rule is selected in SQL, no row finished in Python"
    finally:
        store.close()


def test_bad_input_is_refused() -> None:
    engine = Engine(POLICY, World())
    with pytest.raises(InputError, match="unknown purpose 'marketing'"):
        list(engine.processable("marketing", dt.datetime(2026, 1, 1, tzinfo=UTC)))
    with pytest.raises(InputError):
        list(engine.may_email_all(dt.datetime(2026, 1, 1)))
