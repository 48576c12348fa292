"""Data-subject rights on the reference policy: every right and every branch the spec names."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairproc import Engine, InputError, Policy, World
from fairproc.clock import Period
from fairproc.rights import access_report, due_date, plan_request, portable_csv, request
from helpers import LONDON, WorldBuilder, london, utc

RECEIVED = utc(2026, 11, 25, 10)


def _erasable_world(world: WorldBuilder) -> WorldBuilder:
    world.record("quick_quote", london(2026, 1, 10, 10), id="q1", other_people="Bob: 07700")
    world.record("handbook_download", london(2026, 2, 10, 10), id="h1")
    world.record("website_visit", london(2026, 11, 1, 10), id="w1")
    world.event("enquiry_resolved", london(2026, 2, 1), record="q1")
    world.event("cookies_accepted", london(2026, 11, 1, 10))
    return world


# --- due dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "complex_", "due"),
    [
        # the corresponding date in the next month, same London clock time
        (utc(2026, 11, 4, 10), False, utc(2026, 12, 4, 10)),
        # 25 Dec is Christmas, 26-27 a weekend, 28 Dec Boxing Day (substitute): the 29th
        (RECEIVED, False, utc(2026, 12, 29, 10)),
        # no 31 February: the last day, 28 Feb 2026, is a Saturday: Monday 2 March
        (utc(2026, 1, 31, 10), False, utc(2026, 3, 2, 10)),
        # a leap year's 29 February exists
        (utc(2028, 1, 29, 10), False, utc(2028, 2, 29, 10)),
        # three months when complex; 4 Feb 2027 + 3 months = 4 May 2027, no holiday
        (utc(2027, 2, 4, 10), True, utc(2027, 5, 4, 9)),
        # Easter Monday 6 April 2026 moves a due date to the Tuesday
        (utc(2026, 3, 6, 10), False, utc(2026, 4, 7, 9)),
        # received in GMT, due in BST: the same London clock time (10:00), not the same offset
        (utc(2026, 3, 10, 10), False, utc(2026, 4, 10, 9)),
    ],
)
def test_due_date_counts_as_the_ico_does(
    received: dt.datetime, complex_: bool, due: dt.datetime
) -> None:
    period = Period(months=3) if complex_ else Period(months=1)
    got = due_date(received, period, LONDON)
    assert got == due
    assert got.astimezone(LONDON).time() == received.astimezone(LONDON).time()


def test_every_request_is_due_one_month_after_receipt(world: WorldBuilder) -> None:
    _erasable_world(world)
    engine = world.engine()
    for right in (
        "access",
        "rectification",
        "objection",
        "restriction",
        "portability",
        "complaint",
        "erasure",
    ):
        decision = plan_request(engine, "ada", right, RECEIVED, verified=True).decision
        assert decision.due == utc(2026, 12, 29, 10), right
        assert decision.rules[0] == f"right.{right}"


# --- identity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "right",
    ["access", "erasure", "rectification", "objection", "restriction", "portability", "complaint"],
)
def test_an_unverified_request_is_refused_and_changes_nothing(
    world: WorldBuilder, right: str
) -> None:
    _erasable_world(world)
    engine = world.engine()
    before = engine.store
    result = request(
        engine, "ada", right, RECEIVED, verified=False, corrections={"q1": {"name": "Ada King"}}
    )
    assert result.decision.outcome == "refused"
    assert result.decision.reasons == ("identity_not_verified",)
    assert result.export is None
    assert not result.changes
    assert engine.store is before


# --- a subject of whom nothing is held ------------------------------------------------------


@pytest.mark.parametrize(
    "right", ["access", "rectification", "erasure", "objection", "restriction", "portability"]
)
def test_a_request_about_a_subject_with_no_records_says_so(world: WorldBuilder, right: str) -> None:
    """Never a silent 'granted' with nothing in it: refused, no_records, nothing changed."""
    _erasable_world(world)  # records of ada; none of zed
    engine = world.engine()
    result = request(engine, "zed", right, RECEIVED, verified=True)
    decision = result.decision
    assert (decision.outcome, decision.reasons) == ("refused", ("no_records",))
    assert "no records" in decision.explain() and "'zed'" in decision.explain()
    assert decision.due == utc(2026, 12, 29, 10)  # the answer is still due on time
    assert result.export is None and not result.changes


def test_a_complaint_is_answered_whatever_is_held(world: WorldBuilder) -> None:
    result = request(world.engine(), "zed", "complaint", RECEIVED, verified=True)
    assert result.decision.outcome == "granted" and result.export is not None


def test_access_for_a_subject_with_events_only_discloses_the_timeline(
    world: WorldBuilder,
) -> None:
    _erasable_world(world)
    engine = world.engine()
    assert request(engine, "ada", "erasure", RECEIVED, verified=True).decision.outcome == (
        "granted"
    )
    # every record is gone; the erasure's marker is still on the timeline: that is disclosed
    result = request(engine, "ada", "access", RECEIVED, verified=True)
    assert result.decision.outcome == "granted"
    assert result.export is not None and result.export["records"] == []
    assert [e["kind"] for e in result.export["events"]] == ["erased"]
    # and a second erasure finds nothing to erase, and says so
    again = request(engine, "ada", "erasure", RECEIVED, verified=True).decision
    assert (again.outcome, again.reasons) == ("refused", ("no_records",))


# --- access and portability ------------------------------------------------------------------


def test_access_copies_everything_but_other_people(world: WorldBuilder) -> None:
    _erasable_world(world)
    world.record(
        "quick_quote", london(2026, 1, 1), id="other", subject="bob", email="bob@example.com"
    )
    engine = world.engine()
    result = request(engine, "ada", "access", RECEIVED, verified=True)
    assert result.decision.outcome == "granted"
    assert result.decision.redacted == ("other_people",)
    export = result.export
    assert export is not None
    assert {r["id"] for r in export["records"]} == {"q1", "h1", "w1"}
    text = json.dumps(export)
    assert "Bob: 07700" not in text and "bob@example.com" not in text
    q1 = next(r for r in export["records"] if r["id"] == "q1")
    assert {"purpose": "office_search", "basis": "contract"} in q1["purposes"]
    assert "office_provider" in q1["recipients"]
    assert q1["retention"] == {"outcome": "keep", "until": "2036-02-01T12:00:00Z"}
    assert {e["kind"] for e in export["events"]} == {"enquiry_resolved", "cookies_accepted"}
    report = access_report(export)
    assert "# Your personal data held by Flexioffices" in report
    assert "Bob: 07700" not in report and "other_people" in report


def test_the_access_report_says_how_long_each_record_is_kept(world: WorldBuilder) -> None:
    """An overdue record is overdue for deletion since its date, never 'Kept: delete until'."""
    world.record("website_visit", london(2024, 6, 1, 10), id="w1")  # 12 months: overdue
    world.record("quick_quote", london(2026, 11, 1, 10), id="q1")  # unresolved: no date yet
    world.record("handbook_download", london(2026, 11, 2, 10), id="h1")
    export = request(world.engine(), "ada", "access", RECEIVED, verified=True).export
    assert export is not None
    w1 = next(r for r in export["records"] if r["id"] == "w1")
    assert w1["retention"]["outcome"] == "delete"
    report = access_report(export)
    assert f"Overdue for deletion since {w1['retention']['until']}" in report
    assert "Kept: no end date yet" in report  # q1
    assert "Kept until 20" in report  # h1, four years from the last interaction
    assert "Kept: delete" not in report and "Kept: keep" not in report


def test_portability_exports_contract_records_only(world: WorldBuilder) -> None:
    _erasable_world(world)
    result = request(world.engine(), "ada", "portability", RECEIVED, verified=True)
    assert result.decision.outcome == "granted"
    assert result.decision.per_record == {
        "q1": "exported",
        "h1": "not_portable",
        "w1": "not_portable",
    }
    assert result.export is not None
    assert [r["id"] for r in result.export["records"]] == ["q1"]
    csv_text = result.export["csv"]
    assert csv_text.splitlines()[0] == "record,source,collected_at,category,value"
    assert "Bob: 07700" not in csv_text


def test_portability_is_refused_without_contract_or_consent(world: WorldBuilder) -> None:
    world.record("handbook_download", london(2026, 2, 10), id="h1")
    result = request(world.engine(), "ada", "portability", RECEIVED, verified=True)
    assert result.decision.outcome == "refused"
    assert result.export is None


def test_portable_csv_is_safe_in_a_spreadsheet() -> None:
    text = portable_csv(
        [
            {
                "id": "r1",
                "source": "s",
                "collected_at": "t",
                "data": {
                    "name": '=HYPERLINK("http://x")',
                    "phone": "+44 1",
                    "company_name": "@SUM(A1)",
                },
            }
        ]
    )
    values = [row[-1] for row in csv.reader(io.StringIO(text))][1:]
    assert values == ['\'=HYPERLINK("http://x")', "'+44 1", "'@SUM(A1)"]


# --- erasure ---------------------------------------------------------------------------------


def test_erasure_erases_everything_and_suppresses_the_email(world: WorldBuilder) -> None:
    _erasable_world(world)
    engine = world.engine()
    result = request(engine, "ada", "erasure", RECEIVED, verified=True)
    d = result.decision
    assert d.outcome == "granted"
    assert set(d.erased) == {"q1", "h1", "w1"} and d.kept == ()
    store = engine.store
    assert isinstance(store, World)
    assert store.subject_records("ada") == ()
    assert [e.kind for e in store.subject_events("ada")] == ["erased"]
    assert [(e.email, e.reason) for e in store.suppression] == [("ada@example.com", "erasure")]
    assert {a.record for a in store.audit} == {"q1", "h1", "w1"}
    email = engine.may_email("ada", RECEIVED + dt.timedelta(days=1))
    assert email.outcome == "denied"
    assert "suppressed" in email.reasons


def test_erasure_keeps_records_a_letting_keeps(world: WorldBuilder) -> None:
    _erasable_world(world)
    world.event("office_let", london(2026, 3, 1))
    engine = world.engine()
    d = request(engine, "ada", "erasure", RECEIVED, verified=True).decision
    assert d.outcome == "refused"
    assert set(d.kept) == {"q1", "h1", "w1"}
    assert "retention.letting" in d.rules
    # kept records stay, and so does the timeline the letting is counted from
    assert len(engine.store.subject_records("ada")) == 3
    assert engine.may_email("ada", RECEIVED).outcome == "denied"


def test_erasure_is_partial_when_some_records_are_kept() -> None:
    policy_world = WorldBuilder()
    policy_world.record("quick_quote", london(2026, 1, 10), id="q1")
    policy_world.event("office_let", london(2010, 3, 1))  # the letting's 10 years are over
    policy_world.event("enquiry_resolved", london(2026, 2, 1), record="q1")
    policy_world.record("phone_call", london(2026, 5, 1), id="p1")
    engine = policy_world.engine()
    d = request(engine, "ada", "erasure", RECEIVED, verified=True).decision
    assert d.outcome == "granted"
    assert set(d.erased) == {"q1", "p1"}


def test_erasure_of_a_recent_letting_subject_names_the_rule(flexi: Policy) -> None:
    w = WorldBuilder(flexi)
    w.record("quick_quote", london(2026, 1, 10), id="q1")
    w.record("website_visit", london(2026, 11, 1), id="w1")
    w.event("office_let", london(2026, 3, 1))
    d = request(w.engine(), "ada", "erasure", RECEIVED, verified=True).decision
    assert d.outcome == "refused"
    kept = [c for c in d.checks if c.scope in {"q1", "w1"}]
    assert {c.rule for c in kept} == {"retention.letting"}


# --- rectification ---------------------------------------------------------------------------


def test_rectification_replaces_values_and_audits_the_field_only(world: WorldBuilder) -> None:
    _erasable_world(world)
    engine = world.engine()
    d = request(
        engine,
        "ada",
        "rectification",
        RECEIVED,
        verified=True,
        corrections={"q1": {"name": "Ada King"}},
    ).decision
    assert d.outcome == "granted"
    record = engine.store.get_record("q1")
    assert record is not None and record.data["name"] == "Ada King"
    store = engine.store
    assert isinstance(store, World)
    assert [(a.action, a.record, a.field) for a in store.audit] == [("rectify", "q1", "name")]
    assert "Lovelace" not in repr(store.audit)


def test_rectification_refuses_other_subjects_records(world: WorldBuilder) -> None:
    _erasable_world(world)
    world.record("quick_quote", london(2026, 1, 1), id="bob1", subject="bob")
    with pytest.raises(InputError, match="not one of 'ada'"):
        request(
            world.engine(),
            "ada",
            "rectification",
            RECEIVED,
            verified=True,
            corrections={"bob1": {"name": "x"}},
        )
    with pytest.raises(InputError, match="hold no 'budget'"):
        request(
            world.engine(),
            "ada",
            "rectification",
            RECEIVED,
            verified=True,
            corrections={"q1": {"budget": 1}},
        )


# --- objection and restriction ---------------------------------------------------------------


def test_objection_to_marketing_is_granted_recorded_and_suppresses(world: WorldBuilder) -> None:
    _erasable_world(world)
    engine = world.engine()
    d = request(
        engine, "ada", "objection", RECEIVED, verified=True, purposes=["marketing_updates"]
    ).decision
    assert d.outcome == "granted"
    later = RECEIVED + dt.timedelta(hours=1)
    denied = engine.may_process("h1", "marketing_updates", later)
    assert denied.outcome == "denied" and "objected" in denied.reasons
    # an objection to one purpose leaves the others
    assert engine.may_process("h1", "office_search", later).outcome == "allowed"
    assert "suppressed" in engine.may_email("ada", later).reasons


def test_objection_naming_no_purpose_covers_every_li_purpose(world: WorldBuilder) -> None:
    _erasable_world(world)
    engine = world.engine()
    assert (
        request(engine, "ada", "objection", RECEIVED, verified=True).decision.outcome == "granted"
    )
    later = RECEIVED + dt.timedelta(hours=1)
    for purpose in ("analytics", "website_content"):
        assert engine.may_process("w1", purpose, later).outcome == "denied"
    # contract processing carries on
    assert engine.may_process("q1", "office_search", later).outcome == "allowed"


def test_objection_to_contract_purposes_only_is_refused(world: WorldBuilder) -> None:
    _erasable_world(world)
    d = request(
        world.engine(),
        "ada",
        "objection",
        RECEIVED,
        verified=True,
        purposes=["provider_introduction", "legal_compliance"],
    ).decision
    assert d.outcome == "refused"


def test_restriction_granted_under_legitimate_interests(world: WorldBuilder) -> None:
    _erasable_world(world)
    engine = world.engine()
    assert (
        request(engine, "ada", "restriction", RECEIVED, verified=True).decision.outcome == "granted"
    )
    later = RECEIVED + dt.timedelta(hours=1)
    d = engine.may_process("q1", "office_search", later)
    assert d.outcome == "denied" and "restricted" in d.reasons


def test_restriction_refused_without_legitimate_interests(world: WorldBuilder) -> None:
    world.record("search_follow_up", london(2026, 1, 10), id="s1")
    d = request(world.engine(), "ada", "restriction", RECEIVED, verified=True).decision
    assert d.outcome == "refused"


def test_complaint_answers_with_the_icos_details(world: WorldBuilder) -> None:
    result = request(world.engine(), "ada", "complaint", RECEIVED, verified=True)
    assert result.decision.outcome == "granted"
    assert result.export is not None
    assert result.export["name"] == "Information Commissioner's Office"
    assert result.export["phone"] == "0303 123 1113"


def test_an_unknown_right_is_a_clear_error(world: WorldBuilder) -> None:
    with pytest.raises(InputError, match="unknown right 'forget'"):
        request(world.engine(), "ada", "forget", RECEIVED, verified=True)


# --- properties ------------------------------------------------------------------------------

SOURCES = [
    "quick_quote",
    "handbook_download",
    "contact_form",
    "website_visit",
    "phone_call",
    "live_chat",
    "search_follow_up",
]


@st.composite
def worlds(draw: st.DrawFn, flexi: Policy) -> tuple[WorldBuilder, list[str]]:
    w = WorldBuilder(flexi)
    subjects = ["ada", "bob", "cy"]
    for i in range(draw(st.integers(1, 8))):
        subject = draw(st.sampled_from(subjects))
        source = draw(st.sampled_from(SOURCES))
        day = draw(st.integers(0, 700))
        token = f"{subject}-secret-{i}"
        overrides: dict[str, object] = {}
        for category in flexi.sources[source].categories:
            overrides[category] = f"{token}-{category}"
        if draw(st.booleans()):
            overrides["other_people"] = f"{token}-other"
        w.record(
            source,
            utc(2025, 1, 1) + dt.timedelta(days=day),
            id=f"r{i}",
            subject=subject,
            data=overrides,
        )
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(
            st.sampled_from(["office_let", "unsubscribed", "email_open", "cookies_accepted"])
        )
        w.event(
            kind,
            utc(2025, 1, 1) + dt.timedelta(days=draw(st.integers(0, 700))),
            subject=draw(st.sampled_from(subjects)),
        )
    return w, subjects


@settings(max_examples=150)
@given(data=st.data())
def test_exports_never_hold_another_subjects_data(flexi: Policy, data: st.DataObject) -> None:
    w, subjects = data.draw(worlds(flexi))
    engine = w.engine()
    subject = data.draw(st.sampled_from(subjects))
    for right in ("access", "portability"):
        result = plan_request(engine, subject, right, utc(2027, 1, 1), verified=True)
        text = json.dumps(result.export)
        for other in subjects:
            if other != subject:
                assert f"{other}-secret" not in text
        assert "-other" not in text


@settings(max_examples=150)
@given(data=st.data())
def test_after_erasure_no_erased_value_remains(flexi: Policy, data: st.DataObject) -> None:
    w, subjects = data.draw(worlds(flexi))
    engine = w.engine()
    subject = data.draw(st.sampled_from(subjects))
    at = utc(2027, 1, 1)
    before = {r.id: r for r in w.records if r.subject == subject}
    result = request(engine, subject, "erasure", at, verified=True)
    store = engine.store
    assert isinstance(store, World)
    everything = repr((store.records, store.events, store.audit))
    for rid in result.decision.erased:
        for value in before[rid].data.values():
            assert str(value) not in everything
    emails = {str(r.data["email"]).strip().lower() for r in before.values() if "email" in r.data}
    assert emails <= {e.email for e in store.suppression}
    if emails:
        assert engine.may_email(subject, at + dt.timedelta(seconds=1)).outcome == "denied"


def test_plan_request_is_pure(world: WorldBuilder) -> None:
    _erasable_world(world)
    engine: Engine = world.engine()
    store = engine.store
    plan_request(engine, "ada", "erasure", RECEIVED, verified=True)
    assert engine.store is store
