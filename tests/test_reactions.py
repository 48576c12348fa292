"""The Python meaning of reactions (fairproc.reactions) on the reference policy: what each
arrival fires, decides and changes, and what later decisions make of it."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from fairproc import Event, InputError, Policy, PolicyError, Record, SuppressionEntry, World
from fairproc.conditions import Condition
from fairproc.conditions.vocabulary import vocabulary
from fairproc.engine import Engine
from fairproc.model import Reaction
from fairproc.reactions import Reacted, ReactionSession, check_reactions, react
from fairproc.storage import AuditEntry
from helpers import UTC, data_for, london


def reaction(policy: Policy, id: str, on: str, do: str, when: str | None = None) -> Reaction:
    """A reaction as the loader builds it: its condition compiled against the policy."""
    context = "reaction_event" if on == "event" else "reaction_record"
    built = None if when is None else Condition.build(when, vocabulary(policy, context), policy.tz)
    return Reaction(id, "test clause", on, do, built)


def with_reactions(policy: Policy, *reactions: Reaction) -> Policy:
    return attrs.evolve(policy, reactions=reactions)


def quote(at: dt.datetime, *, id: str = "q1", subject: str = "ada", **data: object) -> Record:
    return Record(
        id, subject, "quick_quote", at, {"name": "Ada", "email": "ada@example.com", **data}
    )


def record(
    policy: Policy, source: str, at: dt.datetime, *, id: str = "r1", **data: object
) -> Record:
    return Record(id, "ada", source, at, data_for(policy, source, **data))


# --- routing on arrival ----------------------------------------------------------------------

ENQUIRY_SOURCES = ("quick_quote", "multiquote", "live_chat")


@pytest.mark.parametrize("source", ENQUIRY_SOURCES)
@pytest.mark.parametrize(
    ("at", "outcome"),
    [
        (london(2026, 3, 2, 9, 0), "staff_contact"),  # Monday 09:00 exactly: open
        (london(2026, 3, 2, 8, 59, 59), "pass_to_providers"),  # a second before opening
        (london(2026, 3, 6, 17, 29, 59), "staff_contact"),  # Friday, the last second open
        (london(2026, 3, 6, 17, 30), "pass_to_providers"),  # Friday 17:30: closed
        (london(2026, 3, 4, 21, 0), "pass_to_providers"),  # a weekday evening
        (london(2026, 3, 7, 11, 0), "pass_to_providers"),  # Saturday
        (london(2026, 3, 8, 11, 0), "pass_to_providers"),  # Sunday
        (london(2026, 7, 1, 9, 30), "staff_contact"),  # BST: 08:30 UTC is 09:30 in London
        (dt.datetime(2026, 7, 1, 8, 30, tzinfo=UTC), "staff_contact"),
        (dt.datetime(2026, 7, 1, 16, 45, tzinfo=UTC), "pass_to_providers"),  # 17:45 BST
    ],
)
def test_an_enquiry_is_routed_as_it_arrives(
    flexi: Policy, source: str, at: dt.datetime, outcome: str
) -> None:
    reacted = react(Engine(flexi), record(flexi, source, at))
    assert reacted.fired == ("reaction.enquiry_routing",)
    assert reacted.decision is not None
    assert reacted.decision.outcome == outcome
    assert reacted.decision.due is None
    assert reacted.at == at


def test_a_handbook_download_is_followed_up_within_48_hours(flexi: Policy) -> None:
    at = london(2026, 3, 7, 23, 15)  # a Saturday night: the hour does not matter
    reacted = react(Engine(flexi), record(flexi, "handbook_download", at))
    assert reacted.fired == ("reaction.handbook_follow_up",)
    decision = reacted.decision
    assert decision is not None and decision.outcome == "phone_follow_up"
    assert decision.due == at + dt.timedelta(hours=48)
    assert reacted.changes.audit == (
        AuditEntry(
            at, "route", "ada", record="r1", rule="reaction.handbook_follow_up", due=decision.due
        ),
    )


def test_the_handbook_due_time_is_48_real_hours_across_the_clock_change(flexi: Policy) -> None:
    at = london(2026, 3, 28, 10)  # Saturday 10:00 GMT; BST starts on Sunday 29 March
    decision = react(Engine(flexi), record(flexi, "handbook_download", at)).decision
    assert decision is not None
    assert decision.due == dt.datetime(2026, 3, 30, 10, tzinfo=UTC)  # 11:00 BST on Monday
    assert decision.due == london(2026, 3, 30, 11)


@pytest.mark.parametrize(
    "source", ["contact_form", "website_visit", "search_follow_up", "phone_call"]
)
def test_other_sources_fire_nothing_but_are_stored(flexi: Policy, source: str) -> None:
    rec = record(flexi, source, london(2026, 3, 2, 10))
    reacted = react(Engine(flexi), rec)
    assert reacted.fired == ()
    assert reacted.decisions == {}
    assert reacted.changes.put_records == (rec,)
    assert reacted.changes.audit == ()


def test_react_changes_nothing_until_applied(flexi: Policy) -> None:
    engine = Engine(flexi)
    store = engine.store
    react(engine, quote(london(2026, 3, 2, 10)))
    assert engine.store is store
    assert engine.store.get_record("q1") is None


def test_react_at_another_instant_than_the_arrival(flexi: Policy) -> None:
    rec = quote(london(2026, 3, 7, 11))  # collected on a Saturday, handled on Monday
    reacted = react(Engine(flexi), rec, london(2026, 3, 9, 10))
    assert reacted.at == london(2026, 3, 9, 10)
    assert reacted.decision is not None
    # routing reads when the enquiry arrived, not when it is handled
    assert reacted.decision.outcome == "pass_to_providers"


# --- unsubscribe: the suppression list -------------------------------------------------------


def test_an_unsubscribe_lists_the_normalised_email(flexi: Policy) -> None:
    session = ReactionSession(flexi)
    session.post(quote(london(2026, 3, 2, 10), email="  Ada.Lovelace@Example.COM "))
    at = london(2026, 3, 3, 8)
    reacted = session.post(Event("ada", "unsubscribed", at))
    assert reacted.fired == ("reaction.unsubscribe",)
    assert reacted.changes.add_suppression == (
        SuppressionEntry("ada.lovelace@example.com", at, "unsubscribed"),
    )
    assert reacted.changes.audit == (
        AuditEntry(at, "suppress", "ada", rule="reaction.unsubscribe"),
    )
    store = session.store
    assert isinstance(store, World)
    assert store.suppression == reacted.changes.add_suppression
    assert Event("ada", "unsubscribed", at) in store.events
    decision = session.engine.may_email("ada", london(2026, 3, 4))
    assert not decision.allowed
    assert "suppressed" in decision.reasons


def test_an_unsubscribe_lists_every_address_of_the_subject_once(flexi: Policy) -> None:
    session = ReactionSession(flexi)
    session.post(quote(london(2026, 3, 2, 10), id="q1", email="ada@example.com"))
    session.post(quote(london(2026, 3, 2, 11), id="q2", email=" ADA@example.com"))
    session.post(quote(london(2026, 3, 2, 12), id="q3", email="ada@work.example"))
    session.post(Record("w1", "ada", "website_visit", london(2026, 3, 2), {"ip_address": "x"}))
    first = session.post(Event("ada", "unsubscribed", london(2026, 3, 3)))
    assert [e.email for e in first.changes.add_suppression] == [
        "ada@example.com",
        "ada@work.example",
    ]
    # unsubscribing again lists nothing already listed, but still fires (and is audited)
    session.post(quote(london(2026, 3, 4), id="q4", email="ada@home.example"))
    again = session.post(Event("ada", "unsubscribed", london(2026, 3, 5)))
    assert again.fired == ("reaction.unsubscribe",)
    assert [e.email for e in again.changes.add_suppression] == ["ada@home.example"]


def test_an_unsubscribe_of_a_subject_with_no_email_lists_nothing(flexi: Policy) -> None:
    session = ReactionSession(flexi)
    session.post(Record("w1", "ada", "website_visit", london(2026, 3, 2), {"ip_address": "x"}))
    reacted = session.post(Event("ada", "unsubscribed", london(2026, 3, 3)))
    assert reacted.fired == ("reaction.unsubscribe",)
    assert reacted.changes.add_suppression == ()
    assert reacted.changes.add_events == (Event("ada", "unsubscribed", london(2026, 3, 3)),)


# --- objection and restriction ---------------------------------------------------------------


def test_an_objection_is_recorded_and_later_processing_is_denied(flexi: Policy) -> None:
    session = ReactionSession(flexi)
    form = record(flexi, "contact_form", london(2026, 3, 2, 10), id="c1")
    session.post(form)
    assert session.engine.may_process("c1", "office_search", london(2026, 3, 3)).allowed
    objection = Event("ada", "objected", london(2026, 3, 4), purpose="office_search")
    reacted = session.post(objection)
    assert reacted.fired == ("reaction.objection",)
    assert reacted.changes.add_events == (objection,)
    assert reacted.changes.add_suppression == ()  # office search is not direct marketing
    assert reacted.changes.audit == (
        AuditEntry(london(2026, 3, 4), "object", "ada", rule="reaction.objection"),
    )
    later = session.engine.may_process("c1", "office_search", london(2026, 3, 5))
    assert not later.allowed
    assert "objected" in later.reasons
    # an objection to one purpose leaves the others
    assert session.engine.may_process("c1", "marketing_updates", london(2026, 3, 5)).allowed
    # and it does not reach back before it was made
    assert session.engine.may_process("c1", "office_search", london(2026, 3, 3)).allowed


@pytest.mark.parametrize("purpose", [None, "marketing_updates", "third_party_marketing"])
def test_an_objection_to_marketing_or_to_everything_also_suppresses(
    flexi: Policy, purpose: str | None
) -> None:
    session = ReactionSession(flexi)
    session.post(quote(london(2026, 3, 2, 10), email="Ada@Example.com"))
    at = london(2026, 3, 4)
    reacted = session.post(Event("ada", "objected", at, purpose=purpose))
    assert reacted.changes.add_suppression == (SuppressionEntry("ada@example.com", at, "objected"),)
    asked = purpose or "marketing_updates"
    decision = session.engine.may_process("q1", asked, london(2026, 3, 5))
    assert not decision.allowed
    assert {"objected", "suppressed"} <= set(decision.reasons)


def test_an_objection_to_retargeting_does_not_list_the_email(flexi: Policy) -> None:
    """Retargeting is direct marketing (an objection always wins) but sends no email."""
    session = ReactionSession(flexi)
    session.post(quote(london(2026, 3, 2, 10)))
    session.post(record(flexi, "website_visit", london(2026, 3, 2, 11), id="w1"))
    session.post(Event("ada", "cookies_accepted", london(2026, 3, 2, 12)))
    reacted = session.post(Event("ada", "objected", london(2026, 3, 4), purpose="retargeting"))
    assert reacted.fired == ("reaction.objection",)
    assert reacted.changes.add_suppression == ()
    denied = session.engine.may_process("w1", "retargeting", london(2026, 3, 5))
    assert "objected" in denied.reasons
    assert session.engine.may_email("ada", london(2026, 3, 5)).allowed


def test_a_restriction_is_recorded_and_later_processing_is_denied(flexi: Policy) -> None:
    session = ReactionSession(flexi)
    session.post(quote(london(2026, 3, 2, 10)))
    restricted = Event("ada", "restricted", london(2026, 3, 4))
    reacted = session.post(restricted)
    assert reacted.fired == ("reaction.restriction",)
    assert reacted.changes.add_events == (restricted,)
    assert reacted.changes.audit == (
        AuditEntry(london(2026, 3, 4), "restrict", "ada", rule="reaction.restriction"),
    )
    decision = session.engine.may_process("q1", "office_search", london(2026, 3, 5))
    assert not decision.allowed
    assert "restricted" in decision.reasons
    lifted = session.post(Event("ada", "restriction_lifted", london(2026, 3, 6)))
    assert lifted.fired == ()
    assert session.engine.may_process("q1", "office_search", london(2026, 3, 7)).allowed


@pytest.mark.parametrize(
    "kind", ["cookies_accepted", "cookies_rejected", "office_let", "website_visit", "email_open"]
)
def test_events_without_a_reaction_are_stored(flexi: Policy, kind: str) -> None:
    session = ReactionSession(flexi)
    event = Event("ada", kind, london(2026, 3, 4))
    reacted = session.post(event)
    assert reacted == Reacted(event, event.at, (), {}, reacted.changes)
    assert reacted.changes.add_events == (event,)
    assert list(session.store.subject_events("ada")) == [event]


def test_a_cookie_choice_posted_decides_analytics(flexi: Policy) -> None:
    session = ReactionSession(flexi)
    session.post(record(flexi, "website_visit", london(2026, 3, 2, 10), id="w1"))
    assert not session.engine.may_process("w1", "analytics", london(2026, 3, 2, 11)).allowed
    session.post(Event("ada", "cookies_accepted", london(2026, 3, 2, 12)))
    assert session.engine.may_process("w1", "analytics", london(2026, 3, 2, 13)).allowed


# --- what a reaction reads -------------------------------------------------------------------


def test_subject_facts_read_the_history_before_the_arrival(flexi: Policy) -> None:
    """A reaction on the first unsubscribe only: the arrival is not yet in the history."""
    policy = with_reactions(
        flexi,
        reaction(
            flexi,
            "first",
            "event",
            "suppress",
            "event.kind == 'unsubscribed' and not subject.suppressed",
        ),
    )
    session = ReactionSession(policy)
    session.post(quote(london(2026, 3, 2, 10)))
    assert session.post(Event("ada", "unsubscribed", london(2026, 3, 3))).fired == ("first",)
    assert session.post(Event("ada", "unsubscribed", london(2026, 3, 4))).fired == ()


def test_every_matching_reaction_fires_in_the_policy_order(flexi: Policy) -> None:
    policy = with_reactions(
        flexi,
        reaction(flexi, "b", "record", "route", "'email' in record.categories"),
        reaction(flexi, "a", "record", "route"),
        reaction(flexi, "c", "event", "suppress"),
        reaction(flexi, "d", "record", "suppress", "in_office_hours(record.collected_at)"),
    )
    session = ReactionSession(policy)
    reacted = session.post(quote(london(2026, 3, 2, 10), email=" X@Y.org"))
    assert reacted.fired == ("b", "a", "d")
    assert set(reacted.decisions) == {"b", "a"}
    # suppress on a record lists the address of the record arriving too
    assert [e.email for e in reacted.changes.add_suppression] == ["x@y.org"]
    assert [a.rule for a in reacted.changes.audit] == ["b", "a", "d"]


# --- bad input and policies that cannot be carried out ---------------------------------------


def test_bad_arrivals_are_refused_clearly(flexi: Policy) -> None:
    session = ReactionSession(flexi)
    with pytest.raises(InputError, match="naive datetime"):
        session.post(Record("r1", "ada", "quick_quote", dt.datetime(2026, 3, 2, 10)))
    with pytest.raises(InputError, match="did you mean 'quick_quote'"):
        session.post(Record("r1", "ada", "quick_qoute", london(2026, 3, 2)))
    with pytest.raises(InputError, match="unknown event kind 'unsubscribe'"):
        session.post(Event("ada", "unsubscribe", london(2026, 3, 2)))
    with pytest.raises(InputError, match="unknown purpose 'marketing'"):
        session.post(Event("ada", "objected", london(2026, 3, 2), purpose="marketing"))
    with pytest.raises(InputError, match="expected a string"):
        session.post(Record(7, "ada", "quick_quote", london(2026, 3, 2)))  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"a Record \(collected\) or an Event"):
        session.post("r1")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="naive datetime"):
        session.post(quote(london(2026, 3, 2)), dt.datetime(2026, 3, 2))
    assert session.store.events == () and session.store.records == ()


@pytest.mark.parametrize(
    ("on", "do", "message"),
    [
        ("record", "decide", "has no meaning yet"),
        ("record", "record_objection", "needs on = 'event'"),
        ("record", "record_restriction", "needs on = 'event'"),
        ("event", "route", "needs on = 'record'"),
    ],
)
def test_reactions_that_cannot_be_carried_out_are_refused(
    flexi: Policy, on: str, do: str, message: str
) -> None:
    policy = with_reactions(flexi, reaction(flexi, "x", on, do))
    with pytest.raises(PolicyError, match=message):
        check_reactions(policy)
    with pytest.raises(PolicyError, match=message):
        ReactionSession(policy)
    with pytest.raises(PolicyError, match=message):
        react(Engine(policy), quote(london(2026, 3, 2)))


def test_a_session_takes_a_policy_and_store_or_an_engine(flexi: Policy) -> None:
    world = World([quote(london(2026, 3, 2, 10))])
    assert ReactionSession(flexi, world).store is world
    engine = Engine(flexi, world)
    assert ReactionSession(engine).engine is engine
    with pytest.raises(InputError, match="not both"):
        ReactionSession(engine, world)


def test_post_all_posts_in_order_and_applies_each(flexi: Policy) -> None:
    session = ReactionSession(flexi)
    results = session.post_all(
        [
            quote(london(2026, 3, 2, 10)),
            Event("ada", "unsubscribed", london(2026, 3, 3)),
            Event("ada", "unsubscribed", london(2026, 3, 4)),
        ]
    )
    assert [r.fired for r in results] == [
        ("reaction.enquiry_routing",),
        ("reaction.unsubscribe",),
        ("reaction.unsubscribe",),
    ]
    assert len(results[1].changes.add_suppression) == 1
    assert results[2].changes.add_suppression == ()  # already listed by the first
