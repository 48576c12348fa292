"""Retention sweeps: what they plan, what they apply, and that every store agrees."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairproc import Engine, Policy, Record, World
from fairproc.storage import ChangeSet, Store, instant_to_us, open_store
from fairproc.sweep import SweepItem, SweepItems, apply_sweep, due_condition, plan_sweep, sweep
from helpers import LONDON, WorldBuilder, london, utc
from store_support import STORE_KINDS, opened_store

SWEEP_AT = utc(2031, 6, 1)


def _world(flexi: Policy) -> WorldBuilder:
    w = WorldBuilder(flexi)
    w.record("website_visit", london(2026, 1, 10), id="w-old")  # cookies: due 2027-01-10
    w.record("website_visit", london(2031, 1, 10), id="w-new", subject="bob")
    w.record("quick_quote", london(2015, 1, 10), id="q-resolved", subject="cy")
    w.event("enquiry_resolved", london(2016, 1, 10), subject="cy", record="q-resolved")
    w.record("quick_quote", london(2015, 1, 10), id="q-open", subject="dee")  # unresolved: kept
    w.record("handbook_download", london(2026, 1, 10), id="h-old", subject="eve")
    w.record("handbook_download", london(2026, 1, 10), id="h-kept", subject="fay")
    w.event("email_open", london(2028, 1, 10), subject="fay")  # the LI window restarts
    w.record("phone_call", london(2020, 1, 10), id="p1", subject="gus")  # review, never swept
    w.record("website_visit", london(2020, 1, 10), id="w-let", subject="hal")
    w.event("office_let", london(2022, 1, 10), subject="hal")  # letting keeps it to 2032
    return w


DUE = {"w-old", "q-resolved", "h-old"}


@pytest.fixture(params=["world", *STORE_KINDS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store | World]:
    if request.param == "world":
        yield World()
        return
    with opened_store(request.param, tmp_path) as opened:
        yield opened


def _engine(flexi: Policy, store: Store | World, w: WorldBuilder) -> Engine:
    if isinstance(store, World):
        return Engine(flexi, w.world())
    store.apply(
        ChangeSet(put_records=w.records, add_events=w.events, add_suppression=w.suppression)
    )
    return Engine(flexi, store)


def _records(engine: Engine) -> set[str]:
    store = engine.store
    if isinstance(store, World):
        return {r.id for r in store.records}
    return {r.id for r in store.iter_records()}  # type: ignore[attr-defined]


def _audit(engine: Engine) -> list[tuple[str, str | None, str | None]]:
    store = engine.store
    entries = store.audit if isinstance(store, World) else store.audit_entries()  # type: ignore
    return [(a.action, a.record, a.rule) for a in entries]


def test_a_sweep_deletes_exactly_what_is_due_on_every_store(
    flexi: Policy, store: Store | World
) -> None:
    engine = _engine(flexi, store, _world(flexi))
    plan = plan_sweep(engine, SWEEP_AT)
    assert {i.record for i in plan.items} == DUE
    assert plan.counts() == {
        "retention.cookies": 1,
        "retention.enquiry": 1,
        "retention.legitimate_interests": 1,
    }
    dry = sweep(engine, SWEEP_AT)  # a dry run by default: nothing changes
    assert dry.applied == 0 and _records(engine) >= DUE
    result = sweep(engine, SWEEP_AT, apply=True, batch_size=2)
    assert result.applied == 3 and result.batches == 2
    remaining = _records(engine)
    assert remaining & DUE == set()
    assert remaining == {"w-new", "q-open", "h-kept", "p1", "w-let"}
    audit = _audit(engine)
    assert sorted(audit) == sorted(
        [
            ("delete", "w-old", "retention.cookies"),
            ("delete", "q-resolved", "retention.enquiry"),
            ("delete", "h-old", "retention.legitimate_interests"),
        ]
    )
    # the deleted enquiry's resolution event went with it
    assert list(engine.store.subject_events("cy")) == []
    # applied twice, the second sweep finds nothing and audits nothing more
    again = sweep(engine, SWEEP_AT, apply=True)
    assert again.plan.items == () and again.applied == 0
    assert len(_audit(engine)) == 3


def test_the_latest_of_the_passed_rules_governs_a_due_record_on_every_store(
    flexi: Policy, store: Store | World
) -> None:
    # w-let: cookies passed on 2021-01-10, the letting rule (let 2022-01-10) on 2032-01-10;
    # q-let: its enquiry (resolved 2015) passed in 2025, before its subject's letting did.
    w = _world(flexi)
    w.record("quick_quote", london(2014, 1, 10), id="q-let", subject="hal")
    w.event("enquiry_resolved", london(2015, 1, 10), subject="hal", record="q-let")
    engine = _engine(flexi, store, w)
    plan = plan_sweep(engine, utc(2033, 6, 1))
    governing = {i.record: (i.rule, i.due) for i in plan.items if i.subject == "hal"}
    assert governing == {
        "w-let": ("retention.letting", london(2032, 1, 10)),
        "q-let": ("retention.letting", london(2032, 1, 10)),
    }


def test_a_sweep_keeps_suppression_entries(flexi: Policy) -> None:
    w = _world(flexi)
    w.suppress("eve@example.com", london(2026, 2, 1))
    engine = w.engine()
    sweep(engine, SWEEP_AT, apply=True)
    store = engine.store
    assert isinstance(store, World)
    assert [e.email for e in store.suppression] == ["eve@example.com"]


def test_an_interrupted_sweep_leaves_whole_batches_and_can_run_again(
    flexi: Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/interrupted.db")
    engine = _engine(flexi, store, _world(flexi))
    plan = plan_sweep(engine, SWEEP_AT)
    real_write = store._write  # type: ignore[attr-defined]
    calls = {"n": 0}

    def failing_write(conn: Any, changes: ChangeSet) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("power cut")
        real_write(conn, changes)

    # Inside the write transaction a batch is decided and written in.
    monkeypatch.setattr(store, "_write", failing_write)
    with pytest.raises(RuntimeError, match="power cut"):
        apply_sweep(engine, plan, batch_size=1)
    monkeypatch.undo()
    first = plan.items[0].record
    # the first batch is fully applied with its audit entry; the rest untouched
    assert first not in _records(engine)
    assert {i.record for i in plan.items[1:]} <= _records(engine)
    assert [a[1] for a in _audit(engine)] == [first]
    # running again finishes the job without doubling anything
    result = sweep(engine, SWEEP_AT, apply=True)
    assert result.applied == 2
    assert sorted(a[1] for a in _audit(engine)) == sorted(DUE)
    store.close()


def test_a_progress_callback_reports_as_it_goes(flexi: Policy) -> None:
    engine = _world(flexi).engine()
    seen: list[tuple[int, int]] = []
    sweep(engine, SWEEP_AT, apply=True, batch_size=1, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(("option", "value"), [("chunk", 0), ("in_memory", -1), ("batch_size", 0)])
def test_sizes_that_could_drop_items_are_refused(flexi: Policy, option: str, value: int) -> None:
    from fairproc import InputError

    engine = _world(flexi).engine()
    with pytest.raises(InputError, match=f"{option} must be"):
        if option == "batch_size":
            sweep(engine, SWEEP_AT, apply=True, batch_size=value)
        else:
            plan_sweep(engine, SWEEP_AT, **{option: value})
    assert len(plan_sweep(engine, SWEEP_AT).items) == 3  # nothing was swept


def test_the_due_condition_reads_every_dated_rule(flexi: Policy) -> None:
    condition = due_condition(flexi)
    for rule in flexi.retention:
        if rule.keep is not None and rule.from_ is not None:
            assert f"{rule.from_.text} + {rule.keep}" in condition


# --- properties ------------------------------------------------------------------------------

SOURCES = ["website_visit", "quick_quote", "handbook_download", "contact_form", "phone_call"]
KINDS = [
    "email_open",
    "website_visit",
    "staff_contact",
    "enquiry_resolved",
    "office_let",
    "unsubscribed",
    "cookies_accepted",
    "objected",
    "restricted",
]
START = utc(2020, 1, 1)


@st.composite
def sweep_worlds(draw: st.DrawFn, flexi: Policy) -> WorldBuilder:
    w = WorldBuilder(flexi)
    n = draw(st.integers(1, 6))
    for i in range(n):
        w.record(
            draw(st.sampled_from(SOURCES)),
            START + dt.timedelta(days=draw(st.integers(0, 2000))),
            id=f"r{i}",
            subject=draw(st.sampled_from(["ada", "bob"])),
        )
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(KINDS))
        record = f"r{draw(st.integers(0, n - 1))}" if kind == "enquiry_resolved" else None
        subject = next((r.subject for r in w.records if r.id == record), None)
        w.event(
            kind,
            START + dt.timedelta(days=draw(st.integers(0, 2000))),
            subject=subject or draw(st.sampled_from(["ada", "bob"])),
            record=record,
        )
    return w


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_kept_until_u_means_delete_from_u_on(flexi: Policy, data: st.DataObject) -> None:
    w = data.draw(sweep_worlds(flexi))
    engine = w.engine()
    last_event = max([e.at for e in w.events] + [r.collected_at for r in w.records])
    for record in w.records:
        decision = engine.retention(record, last_event)
        if decision.outcome != "keep" or decision.until is None:
            continue
        # In UTC: arithmetic on a London datetime is on its wall clock, and a second before
        # 02:00 BST on the night the clocks go forward is a wall time that never was.
        until = decision.until.astimezone(dt.UTC)
        # with no event after last_event the date stays put: before U keep, from U on delete
        assert engine.retention(record, until - dt.timedelta(seconds=1)).outcome == "keep"
        assert engine.retention(record, until).outcome in ("delete", "review")
        later = until + dt.timedelta(days=data.draw(st.integers(0, 5000)))
        assert engine.retention(record, later).outcome in ("delete", "review")


def test_a_due_date_in_the_hour_the_clocks_skip_is_the_instant_they_jump(flexi: Policy) -> None:
    # 01:00 BST on 29 March 2022, four years on: 01:00 on 29 March 2026, a wall time the clocks
    # skip; it falls due at 01:00 UTC (02:00 BST), when they jump. Hypothesis found it.
    record = Record("r0", "ada", "handbook_download", utc(2022, 3, 29), {"name": "Ada"})
    engine = Engine(flexi, World([record]))
    until = engine.retention(record, utc(2022, 3, 29)).until
    assert until == utc(2026, 3, 29, 1) and until.astimezone(LONDON).hour == 2
    assert engine.retention(record, utc(2026, 3, 29, 0, 59, 59)).outcome == "keep"
    assert engine.retention(record, utc(2026, 3, 29, 1)).outcome == "delete"
    plan = plan_sweep(engine, utc(2026, 3, 29, 1))
    assert [(i.record, i.due) for i in plan.items] == [("r0", utc(2026, 3, 29, 1))]
    assert len(plan_sweep(engine, utc(2026, 3, 29, 0, 59, 59)).items) == 0


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_events_other_than_erasure_never_shorten_retention(
    flexi: Policy, data: st.DataObject
) -> None:
    w = data.draw(sweep_worlds(flexi))
    at = START + dt.timedelta(days=data.draw(st.integers(0, 6000)))
    before = {r.id: w.engine().retention(r, at) for r in w.records}
    kind = data.draw(st.sampled_from(KINDS))
    record = data.draw(st.sampled_from(w.records))
    w.event(
        kind,
        START + dt.timedelta(days=data.draw(st.integers(0, 6000))),
        subject=record.subject,
        record=record.id if kind == "enquiry_resolved" else None,
    )
    engine = w.engine()
    rank = {"delete": 0, "review": 1, "keep": 2}
    for r in w.records:
        old, new = before[r.id], engine.retention(r, at)
        if kind == "enquiry_resolved" and old.outcome == "keep" and old.until is None:
            continue  # resolving an enquiry starts its dated period: the spec's own reading
        assert rank[new.outcome] >= rank[old.outcome], (r.id, kind, old.outcome, new.outcome)
        if old.outcome == new.outcome == "keep" and old.until is not None:
            assert new.until is None or new.until >= old.until


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A kind of store this run can open: a server kind skips, saying why, without its URL."""
    with opened_store(request.param, tmp_path):
        return str(request.param)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_sweeps_delete_what_retention_says_on_every_store(
    flexi: Policy, store_kind: str, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    w = data.draw(sweep_worlds(flexi))
    at = START + dt.timedelta(days=data.draw(st.integers(0, 6000)))
    # Each due record's governing rule, action and date, as the engine decides them one by
    # one (a store that pushes down decides them from its rows, a batch at a time).
    engine = w.engine()
    items = set()
    for r in w.records:
        action, until, governing = engine.retention_action(r, at, engine.history(r.subject))
        if action == "delete" and governing is not None:
            items.add((r.id, r.subject, r.source, governing.action, governing.id, until))
    expected = {r.id for r in w.records if engine.retention(r, at).outcome == "delete"}
    assert {i[0] for i in items} == expected
    with opened_store(store_kind, tmp_path_factory.mktemp("sweep")) as store:
        engine = _engine(flexi, store, w)
        result = sweep(engine, at, apply=True)
        assert set(result.plan.items) == items
        assert _records(engine) == {r.id for r in w.records} - expected
        assert sorted(a[1] for a in _audit(engine)) == sorted(expected)
        # Retention is the fixpoint (reference-policy.md, Events): a second sweep at the same
        # instant deletes nothing, and what is left is what retention keeps.
        assert sweep(engine, at, apply=True).applied == 0
        after = World(
            [r for r in w.records if r.id not in expected],
            [e for e in w.events if e.record not in expected],
        )
        later = Engine(flexi, after)
        assert all(later.retention(r, at).outcome != "delete" for r in after.records)


def test_a_sweep_applied_twice_deletes_nothing_when_a_deleted_record_was_the_last_interaction(
    flexi: Policy, store: Store | World
) -> None:
    w = WorldBuilder(flexi)
    w.record("handbook_download", utc(2020, 1, 1), id="h", subject="ada")
    w.record("website_visit", utc(2020, 1, 2), id="w", subject="ada")  # cookies: 2021-01-02
    engine = _engine(flexi, store, w)
    at = utc(2024, 1, 1)
    # The overdue cookie data is no interaction: the download's own collection is the last.
    assert engine.retention("h", at).outcome == "delete"
    assert engine.retention("h", at).until == utc(2024, 1, 1)
    assert engine.may_process("h", "office_search", at).outcome == "denied"
    assert sorted(i.record for i in sweep(engine, at, apply=True).plan.items) == ["h", "w"]
    assert sweep(engine, at, apply=True).applied == 0
    # The day before, the download is kept until then, and only the cookie data is due.
    before = _engine(flexi, World(), w)
    assert before.retention("h", utc(2023, 12, 31)).until == utc(2024, 1, 1)
    assert [i.record for i in plan_sweep(before, utc(2023, 12, 31)).items] == ["w"]


def test_engine_apply_refuses_a_store_it_cannot_change(flexi: Policy) -> None:
    class ReadOnly:
        def get_record(self, record_id: str) -> Record | None:
            return None

    engine = Engine(flexi, World())
    engine.store = ReadOnly()  # type: ignore[assignment]
    from fairproc import InputError

    with pytest.raises(InputError, match="cannot be changed"):
        engine.apply(ChangeSet(delete_records=["x"]))


# --- plans bigger than memory -------------------------------------------------------------------


@pytest.mark.parametrize("in_memory", [0, 1, 2])
def test_a_spooled_plan_is_the_plan_and_applies_as_it(
    flexi: Policy, store: Store | World, in_memory: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Items past ``in_memory`` go to a temporary file, two to a block here: several blocks.
    monkeypatch.setattr(SweepItems, "BLOCK", 2)
    engine = _engine(flexi, store, _world(flexi))
    held = plan_sweep(engine, SWEEP_AT, in_memory=100)
    spooled = plan_sweep(engine, SWEEP_AT, in_memory=in_memory)
    assert isinstance(spooled.items, SweepItems)
    assert spooled.items == held.items == tuple(held.items)
    assert len(spooled.items) == 3 and spooled.counts() == held.counts()
    assert [spooled.items[i] for i in (0, 1, 2, -1)] == [*held.items, held.items[-1]]
    assert spooled.items[1:] == tuple(held.items)[1:]
    with pytest.raises(IndexError):
        spooled.items[3]
    assert spooled.to_dict() == held.to_dict()
    result = apply_sweep(engine, spooled, batch_size=2)
    assert result.applied == 3 and _records(engine) & DUE == set()


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.integers(min_value=0, max_value=7), max_size=8),
    in_memory=st.integers(min_value=0, max_value=9),
    block=st.integers(min_value=1, max_value=4),
)
def test_sweep_items_hold_what_was_added_in_batches_of_any_size(
    batches: list[int], in_memory: int, block: int
) -> None:
    """One at a time or a batch at a time, across the held head and blocks of any size: the
    items read back in order, by index and by rule, as added."""
    want: list[SweepItem] = []
    items = SweepItems(in_memory)
    items.BLOCK = block
    for size in batches:
        rows = []
        for _ in range(size):
            n = len(want) + len(rows)
            due = SWEEP_AT + dt.timedelta(microseconds=n)
            rows.append((f"r{n}", "s", "website_visit", "delete", f"rule{n % 3}", due))
        if size == 1:
            items.add(SweepItem(*rows[0]))
        else:
            items.extend_rows(
                [(r, sj, so, a, ru, instant_to_us(d)) for r, sj, so, a, ru, d in rows]
            )
        want.extend(SweepItem(*row) for row in rows)
    items.close()
    assert list(items) == want and len(items) == len(want)
    assert [items[i] for i in range(len(want))] == want
    assert all(item.due.utcoffset() == dt.timedelta(0) for item in items)
    assert dict(items.per_rule) == {
        rule: sum(1 for i in want if i.rule == rule) for rule in {i.rule for i in want}
    }


def test_sweep_items_are_fixed_once_the_plan_is_made() -> None:
    items = SweepItems.of([], in_memory=0)
    assert items == () and len(items) == 0 and list(items) == []
    item = SweepItem("r", "s", "website_visit", "delete", "retention.cookies", SWEEP_AT)
    with pytest.raises(RuntimeError, match="do not change"):
        items.add(item)


def test_the_due_condition_cut_where_the_fixpoint_moves(flexi: Policy) -> None:
    """``due_parts`` (what a store computing the fixpoint pass by pass asks again at each pass,
    and what it asks once) holds every part of ``due_node`` once, each on the right side."""
    from fairproc.conditions import Or
    from fairproc.retention import all_of, collection_passes, due_node, due_parts, source_in

    parts = due_parts(flexi)
    assert isinstance(due_node(flexi), Or)
    moving = parts.moving.items if isinstance(parts.moving, Or) else (parts.moving,)
    fixed = [all_of([part.records, part.holds]) for part in parts.fixed]
    assert sorted(map(repr, (*fixed, *moving))) == sorted(map(repr, due_node(flexi).items))
    # handbook downloads are kept from the last interaction, which counts collections
    assert parts.moving_sources == ("handbook_download",)
    assert collection_passes(flexi) == 1 + len(moving)
    for part in moving:
        assert part.items[0] == source_in(["handbook_download"])  # type: ignore[attr-defined]
