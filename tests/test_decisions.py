"""Decisions explain themselves: JSON that round-trips, text naming every rule and the notice's
words, rule ids that exist, and denials that name what failed."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairproc import Decision, Engine, Event, Policy, Record, World, load_policy
from fairproc.decisions import _when, _written
from fairproc.model import Purpose
from helpers import LONDON, WorldBuilder, london

POLICY = load_policy("flexioffices")

# --- a varied world, and every question asked of it at several instants ------------------------


def sweep_world(policy: Policy) -> WorldBuilder:
    w = WorldBuilder(policy)
    # ada: a quote in office hours, a handbook, a visit with cookies; unsubscribes later
    w.record("quick_quote", london(2020, 3, 2, 10), id="ada-quote")
    w.record("handbook_download", london(2021, 5, 1, 20), id="ada-handbook")
    w.record("website_visit", london(2021, 5, 1, 19), id="ada-visit")
    w.event("cookies_accepted", london(2021, 5, 1, 19))
    w.event("unsubscribed", london(2026, 1, 10))
    # bob: a contact form, resolved; objects to everything; restricted for a while
    w.record("contact_form", london(2020, 7, 14, 9), id="bob-form", subject="bob")
    w.event("enquiry_resolved", london(2020, 9, 1), subject="bob", record="bob-form")
    w.event("objected", london(2022, 2, 2), subject="bob")
    w.event("restricted", london(2023, 1, 1), subject="bob")
    w.event("restriction_lifted", london(2023, 6, 1), subject="bob")
    # cy: a recorded call, a follow-up; lets an office; one record erased
    w.record("phone_call", london(2020, 7, 15, 16), id="cy-call", subject="cy")
    w.record("search_follow_up", london(2020, 7, 16, 9), id="cy-search", subject="cy")
    w.record("live_chat", london(2020, 7, 15, 18), id="cy-chat", subject="cy")
    w.event("office_let", london(2020, 10, 1), subject="cy")
    w.event("erased", london(2024, 4, 4), subject="cy", record="cy-call")
    # dee: rejects cookies, clicks an email, resolves a multiquote on a weekend
    w.record("website_visit", london(2025, 3, 29, 23), id="dee-visit", subject="dee")
    w.record("multiquote", london(2025, 3, 30, 1, 30), id="dee-multi", subject="dee")
    w.event("cookies_rejected", london(2025, 3, 29, 23), subject="dee")
    w.event("email_click", london(2025, 10, 26, 1, 30), subject="dee")
    w.event("enquiry_resolved", london(2025, 11, 1), subject="dee", record="dee-multi")
    # eve: the calculator, and nothing more
    w.record("office_calculator", london(2024, 2, 29, 12), id="eve-calc", subject="eve", data={})
    return w


INSTANTS = [
    london(2020, 7, 15, 23, 59),
    london(2020, 7, 16, 0, 0),
    london(2023, 3, 1, 12),
    london(2026, 3, 4, 10),
    london(2031, 6, 1),
    dt.datetime(2045, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
]


def ask_everything(engine: Engine, world: WorldBuilder, at: dt.datetime) -> Iterator[Decision]:
    policy = engine.policy
    for recipient in policy.recipients:
        yield engine.transfer(recipient, at)
    for subject in ("ada", "bob", "cy", "dee", "eve", "nobody"):
        yield engine.may_email(subject, at)
    for rec in world.records:
        yield engine.route(rec.id, at)
        yield engine.retention(rec.id, at)
        for purpose in policy.purposes:
            yield engine.may_process(rec.id, purpose, at)
        for recipient in policy.recipients:
            yield engine.may_share(rec.id, recipient, at)
        yield engine.may_share(rec.id, "court", at, court_order=True)


@pytest.fixture(scope="module")
def decisions() -> list[Decision]:
    world = sweep_world(POLICY)
    engine = world.engine()
    return [d for at in INSTANTS for d in ask_everything(engine, world, at)]


def test_the_sweep_covers_every_outcome(decisions: list[Decision]) -> None:
    outcomes = {(d.question, d.outcome) for d in decisions}
    assert outcomes >= {
        ("may_process", "allowed"),
        ("may_process", "denied"),
        ("may_share", "allowed"),
        ("may_share", "denied"),
        ("transfer", "allowed"),
        ("may_email", "allowed"),
        ("may_email", "denied"),
        ("route", "staff_contact"),
        ("route", "pass_to_providers"),
        ("route", "phone_follow_up"),
        ("route", "not_applicable"),
        ("retention", "keep"),
        ("retention", "delete"),
        ("retention", "review"),
    }
    assert len(decisions) > 1000


# --- JSON ----------------------------------------------------------------------------------------


def _instant(text: str) -> dt.datetime:
    assert text.endswith("Z"), text  # instants are written in UTC
    return dt.datetime.fromisoformat(text[:-1] + "+00:00")


def test_json_round_trips_through_json_loads(decisions: list[Decision]) -> None:
    for d in decisions:
        data = json.loads(d.to_json())
        assert data == d.to_dict()
        assert json.loads(d.to_json(indent=None)) == data
        assert data["question"] == d.question
        assert data["outcome"] == d.outcome
        assert _instant(data["at"]) == d.at
        assert data["rules"] == list(d.rules)
        assert data.get("reasons", []) == list(d.reasons)
        assert data.get("basis") == d.basis
        assert data.get("categories") == (None if d.categories is None else list(d.categories))
        for key in ("until", "due"):
            value = getattr(d, key)
            assert (value is None and key not in data) or _instant(data[key]) == value
        assert [f["code"] for f in data.get("findings", [])] == [f.code for f in d.findings]
        assert len(data["explanation"]) == len(d.checks)
        for entry, check in zip(data["explanation"], d.checks, strict=True):
            assert entry["rule"] == check.rule
            assert entry["passed"] is check.passed
            assert entry["clause"] == check.clause
            assert entry.get("reason") == check.reason
            assert set(entry["facts"]) == set(check.facts)


def test_json_carries_what_was_asked(decisions: list[Decision]) -> None:
    for d in decisions:
        data = json.loads(d.to_json())
        for key, value in d.asked.items():
            assert data[key] == value


def test_json_facts_are_plain_values() -> None:
    world = sweep_world(POLICY)
    d = world.engine().may_process("ada-visit", "analytics", london(2021, 6, 1, 0))
    by_rule = {e["rule"]: e for e in json.loads(d.to_json())["explanation"]}
    assert by_rule["processing.cookie_consent"]["facts"] == {
        "subject.cookie_choice": "cookies_accepted"
    }
    window = by_rule["processing.li_window"]["facts"]
    assert window["at"] == "2021-05-31T23:00:00Z"  # 00:00 BST
    assert window["subject.last_interaction + P4Y"] == "2025-05-01T19:00:00Z"


# --- explain() -----------------------------------------------------------------------------------


def test_explain_names_each_rule_and_its_clause(decisions: list[Decision]) -> None:
    for d in decisions:
        text = d.explain()
        first = text.splitlines()[0]
        assert first.startswith(f"{d.question}(")
        assert first.endswith(f": {d.outcome.upper()}")
        for check in d.checks:
            assert f"] {check.rule}" in text
            assert f'notice: "{check.clause}"' in text
            if check.note:
                assert f"reading: {check.note}" in text
        for reason in d.reasons:
            assert reason in text
        for finding in d.findings:
            assert f"finding {finding.code}: {finding.message}" in text
        assert str(d) == text


def test_explain_marks_failures_with_their_reason() -> None:
    world = sweep_world(POLICY)
    d = world.engine().may_process("bob-form", "office_search", london(2023, 3, 1))
    text = d.explain()
    assert "[FAIL] processing.restriction -> restricted" in text
    assert "[FAIL] processing.objection -> objected" in text
    assert "[pass] purpose.office_search" in text
    assert "subject.restricted = True" in text
    assert "Wed 2023-03-01 12:00:00 GMT (2023-03-01T12:00:00Z)" in text


def test_explain_shows_local_and_utc_times() -> None:
    world = sweep_world(POLICY)
    d = world.engine().route("ada-handbook", london(2021, 5, 1, 20))
    assert "due Mon 2021-05-03 20:00:00 BST (2021-05-03T19:00:00Z)" in d.explain()


# --- rule ids ------------------------------------------------------------------------------------


def test_every_check_cites_a_rule_of_the_policy(decisions: list[Decision]) -> None:
    index = POLICY.rule_index()
    cited: set[str] = set()
    for d in decisions:
        for check in d.checks:
            assert check.rule in index, (check.rule, d.question)
            rule = index[check.rule]
            # the notice's words of the rule, or of the purpose's basis that applied
            grants = rule.bases if isinstance(rule, Purpose) else ()
            assert check.clause in {rule.clause} | {g.clause for g in grants}
            cited.add(check.rule)
        for finding in d.findings:
            assert finding.rule in index
    # the sweep reaches most of the policy: every purpose, recipient, safeguard and routing rule
    for rule_id in index:
        if rule_id.split(".")[0] in ("purpose", "recipient", "safeguard", "routing", "processing"):
            assert rule_id in cited, rule_id


def test_rule_index_holds_every_rule() -> None:
    index = POLICY.rule_index()
    expected = [
        *(p.rule_id for p in POLICY.purposes.values()),
        *(r.id for r in (*POLICY.processing, *POLICY.routing, *POLICY.retention)),
        *(r.rule_id for r in POLICY.recipients.values()),
        *(s.rule_id for s in POLICY.safeguards.values()),
        *(r.rule_id for r in POLICY.rights.values()),
        "office_hours",
    ]
    assert len(expected) == len(set(expected))
    assert set(expected) <= set(index)
    assert all(getattr(rule, "clause", "").strip() for rule in index.values())


# --- denials name what failed ------------------------------------------------------------------


def test_a_denial_names_at_least_one_failed_rule(decisions: list[Decision]) -> None:
    denied = [d for d in decisions if d.outcome == "denied"]
    assert denied
    for d in denied:
        assert d.failed, d.explain()
        assert d.reasons
        failed_reasons = {c.reason for c in d.failed}
        assert set(d.reasons) <= failed_reasons | {"suppressed"}, d.explain()


def test_an_allowed_decision_has_no_failed_rule(decisions: list[Decision]) -> None:
    for d in decisions:
        if d.outcome == "allowed" and d.question != "may_email":
            assert not d.failed, d.explain()
            assert d.reasons == ()


def test_an_allowed_email_has_one_record_with_nothing_failed(decisions: list[Decision]) -> None:
    for d in decisions:
        if d.question == "may_email" and d.outcome == "allowed":
            scopes = {c.scope for c in d.checks}
            assert any(
                all(c.passed is not False for c in d.checks if c.scope == scope) for scope in scopes
            )


def test_a_delete_names_the_retention_rule_that_ran_out(decisions: list[Decision]) -> None:
    for d in decisions:
        if d.question == "retention" and d.outcome == "delete":
            assert d.failed
            assert d.due is not None and d.due <= d.at
            assert {c.reason for c in d.failed} == {"retention_expired"}


def test_asking_twice_gives_the_same_decision() -> None:
    world = sweep_world(POLICY)
    first, second = world.engine(), world.engine()
    at = london(2026, 3, 4, 10)
    for a, b in zip(
        ask_everything(first, world, at), ask_everything(second, world, at), strict=True
    ):
        assert a == b
        assert a.to_json() == b.to_json()


# --- the same invariants on random worlds --------------------------------------------------------

TIMES = st.datetimes(
    min_value=dt.datetime(2019, 1, 1),
    max_value=dt.datetime(2032, 12, 31),
    timezones=st.sampled_from([dt.UTC, LONDON]),
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Record], list[Event]]:
    records = []
    for i in range(draw(st.integers(1, 4))):
        source = draw(st.sampled_from(sorted(POLICY.sources)))
        keep = draw(st.sets(st.sampled_from(POLICY.sources[source].categories or ("name",))))
        data: dict[str, Any] = {c: f"{c}-{i}" for c in keep}
        records.append(
            Record(f"r{i}", draw(st.sampled_from(["a", "b"])), source, draw(TIMES), data)
        )
    events = [
        Event(
            draw(st.sampled_from(["a", "b"])),
            draw(st.sampled_from(sorted(POLICY.events))),
            draw(TIMES),
            record=draw(st.sampled_from([None, *[r.id for r in records]])),
            purpose=draw(st.sampled_from([None, *sorted(POLICY.purposes)])),
        )
        for _ in range(draw(st.integers(0, 8)))
    ]
    return records, events


@settings(max_examples=150)
@given(worlds(), TIMES, st.data())
def test_decisions_on_random_worlds_keep_their_promises(
    world: tuple[list[Record], list[Event]], at: dt.datetime, data: st.DataObject
) -> None:
    records, events = world
    engine = Engine(POLICY, World(records, events))
    rec = data.draw(st.sampled_from(records))
    asked = [
        engine.may_process(rec, data.draw(st.sampled_from(sorted(POLICY.purposes))), at),
        engine.may_share(
            rec, data.draw(st.sampled_from(sorted(POLICY.recipients))), at, data.draw(st.booleans())
        ),
        engine.retention(rec, at),
        engine.route(rec, at),
        engine.may_email(rec.subject, at),
        engine.transfer(data.draw(st.sampled_from(sorted(POLICY.recipients))), at),
    ]
    index = POLICY.rule_index()
    for d in asked:
        assert set(d.rules) <= set(index)
        assert json.loads(d.to_json()) == d.to_dict()
        text = d.explain()
        assert all(f"] {c.rule}" in text for c in d.checks)
        if d.outcome == "denied":
            assert d.failed and d.reasons
        if d.outcome == "allowed" and d.question in ("may_process", "may_share", "transfer"):
            assert not d.failed
    shared = asked[1]
    if shared.allowed:
        assert set(shared.categories or ()) <= rec.categories
    retention = asked[2]
    if retention.outcome == "keep" and retention.until is not None:
        assert retention.until > at
    routed = asked[3]
    if routed.due is not None:
        elapsed = routed.due.astimezone(dt.UTC) - rec.collected_at.astimezone(dt.UTC)
        assert elapsed == dt.timedelta(hours=48)


# --- explanations built when read ----------------------------------------------------------------


def test_a_denial_gives_the_reasons_of_its_failed_checks(decisions: list[Decision]) -> None:
    # The engine decides from booleans and builds the checks only when read: both must agree.
    for d in decisions:
        failed = tuple(dict.fromkeys(c.reason for c in d.failed if c.reason))
        if d.question in ("may_process", "may_share") and not d.allowed:
            assert d.reasons == failed, d.explain()
        if d.question == "may_email" and not d.allowed:
            assert set(failed) <= set(d.reasons), d.explain()
            assert set(d.reasons) - set(failed) <= {"suppressed"}, d.explain()
        if d.allowed:
            assert not d.reasons and not d.failed, d.explain()


def test_an_explanation_read_later_is_of_the_store_as_it_was_decided() -> None:
    from fairproc.adapters.memory import MemoryStore

    store = MemoryStore()
    world = WorldBuilder(POLICY)
    rec = world.record("handbook_download", london(2026, 3, 2, 10))
    store.put_records(rec)
    engine = Engine(POLICY, store)
    at = london(2026, 3, 4, 10)
    before = engine.may_process(rec, "marketing_updates", at)
    store.add_events(Event("ada", "unsubscribed", london(2026, 3, 3, 10)))
    after = engine.may_process(rec, "marketing_updates", at)
    assert before.allowed and not after.allowed
    # ``before`` is explained only now, after the write: it still explains what was decided.
    assert not before.failed
    assert [c.rule for c in after.failed] == ["processing.suppression"]
    assert "FAIL" not in before.explain()


def test_lazy_checks_compare_and_hash_as_their_tuple() -> None:
    from fairproc.decisions import Check, LazyChecks

    check = Check("r", True, "clause")
    lazy = LazyChecks(lambda: [check])
    assert lazy == (check,) and LazyChecks(lambda: (check,)) == lazy
    assert hash(lazy) == hash((check,))
    assert len(lazy) == 1 and lazy[0] is check and list(lazy) == [check]
    assert repr(lazy) == repr((check,))


# --- snapshots: one revision read for many questions ---------------------------------------------


class CountingStore:
    """A store that counts how often its revision is read."""

    def __init__(self, store: Any):
        self.store = store
        self.reads = 0

    @property
    def revision(self) -> Any:
        self.reads += 1
        return self.store.revision

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_snapshot_reads_the_revision_once_and_a_later_write_is_seen() -> None:
    from fairproc.adapters.memory import MemoryStore

    from fairproc.rights import plan_request

    world = sweep_world(POLICY)
    inner = MemoryStore()
    inner.put_records(*world.records)
    inner.add_events(*world.events)
    store = CountingStore(inner)
    engine = Engine(POLICY, store)  # type: ignore[arg-type]
    at = london(2026, 3, 4, 10)
    records = [r for r in world.records if r.subject == "ada"]
    store.reads = 0
    with engine.snapshot():
        with engine.snapshot():  # nested: still the one read
            answers = [engine.may_process(r, p, at) for r in records for p in POLICY.purposes]
        engine.may_email("ada", at)
    assert store.reads == 1 and len(answers) > 10
    store.reads = 0
    plan_request(engine, "ada", "access", at, verified=True)
    assert store.reads == 1
    # Outside a block each question checks the revision, so a write is seen at once.
    inner.add_events(Event("ada", "unsubscribed", london(2026, 3, 3, 10)))
    assert "suppressed" in engine.may_email("ada", at).reasons


# --- what a history remembers per instant ---------------------------------------------------------


def test_an_edited_copy_of_a_record_is_weighed_as_itself_not_as_the_stored_one() -> None:
    world = WorldBuilder(POLICY)
    stored = world.record("website_visit", london(2025, 1, 10, 10), id="visit")
    engine = world.engine()
    at = london(2026, 3, 1, 10)
    assert engine.retention(stored, at).outcome == "delete"  # 12 months have passed
    # The same id, collected later: its own date governs, not the remembered verdict.
    later = attrs.evolve(stored, collected_at=london(2025, 12, 1, 10))
    assert engine.retention(later, at).outcome == "keep"
    assert engine.retention(stored, at).outcome == "delete"


def test_answers_hold_however_many_instants_are_asked_about() -> None:
    # More instants than a history remembers: the memo starts afresh and answers do not change.
    from fairproc.conditions import MEMO_SIZE

    world = sweep_world(POLICY)
    engine = world.engine()
    records = {r.id: r for r in world.records}
    start = london(2020, 7, 14, 9)
    instants = [start + dt.timedelta(days=9 * i, hours=i % 24) for i in range(MEMO_SIZE + 40)]
    for i, at in enumerate(instants * 2):
        rec = records["ada-handbook" if i % 2 else "bob-form"]
        fresh = world.engine()
        for purpose in ("marketing_updates", "office_search"):
            assert (
                engine.may_process(rec, purpose, at).outcome
                == fresh.may_process(rec, purpose, at).outcome
            ), (rec.id, purpose, at)
        assert engine.retention(rec, at).until == fresh.retention(rec, at).until


ZONES = st.sampled_from(
    [
        None,
        dt.UTC,
        LONDON,
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(dt.timedelta(hours=-3)),
        ZoneInfo("Asia/Kolkata"),
        ZoneInfo("America/St_Johns"),
        ZoneInfo("Australia/Lord_Howe"),  # clocks go back half an hour
        ZoneInfo("Europe/Amsterdam"),  # offsets in seconds before 1937
    ]
)


@settings(max_examples=400)
@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=ZONES
    ).filter(lambda v: v.tzinfo is not None),
    ZONES,
)
def test_an_instant_is_written_as_written_in_full(value: dt.datetime, tz: Any) -> None:
    """Writing an instant from its hour's text gives, to the byte, what writing it in full
    gives: every zone, offsets of half hours and seconds, the hours the clocks change."""
    assert _when(value, tz) == _written(value, tz)
    near = value.astimezone(dt.UTC).replace(minute=59, second=59, microsecond=999_999)
    assert _when(near, tz) == _written(near, tz)


@pytest.mark.parametrize("zone", ["Europe/London", "Australia/Lord_Howe", "America/St_Johns"])
def test_instants_about_a_change_of_the_clocks_are_written_as_written_in_full(zone: str) -> None:
    tz = ZoneInfo(zone)
    for day in (dt.datetime(2026, 3, 27, tzinfo=dt.UTC), dt.datetime(2026, 10, 23, tzinfo=dt.UTC)):
        for minutes in range(0, 4 * 24 * 60, 7):
            value = day + dt.timedelta(minutes=minutes, seconds=minutes % 60)
            assert _when(value, tz) == _written(value, tz), value
            assert _when(value.astimezone(tz), tz) == _written(value, tz), value
